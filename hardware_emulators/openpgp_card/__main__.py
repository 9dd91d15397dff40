"""Run one virtual OpenPGP card: ``python -m hardware_emulators.openpgp_card``.

    python -m hardware_emulators.openpgp_card --state card.json --port 40123 [--serial N]

The card is "inserted" while this process is connected to the vpcd reader port and
"removed" when it exits.  It exits 0 when the reader closes the connection.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import signal
import sys
from pathlib import Path

from . import state as card_state
from .card import OpenPgpCard
from .vpcd import connect, serve


def _terminate(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardware_emulators.openpgp_card")
    parser.add_argument("--state", type=Path, required=True, help="card state file (JSON)")
    parser.add_argument("--port", type=int, required=True, help="vpcd reader port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--serial", type=int, help="serial number when creating a new card")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument(
        "--trace-apdus", action="store_true", help="log raw APDUs (DEBUG ONLY: includes PINs)"
    )
    parser.add_argument(
        "--stall",
        metavar="INS:SECONDS",
        help="fault injection: wait before answering instruction INS (hex), e.g. 2A:5",
    )
    args = parser.parse_args(argv)
    stall = None
    if args.stall:
        ins, seconds = args.stall.split(":")
        stall = (int(ins, 16), float(seconds))
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    signal.signal(signal.SIGTERM, _terminate)
    log = logging.getLogger("openpgp_card")
    # A physical card sits in one reader at a time: hold a lock for as long as we run.
    lock = open(args.state.with_name(args.state.name + ".lock"), "a")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.error("card %s is already inserted in another reader (state file locked)", args.state)
        return 3
    state = card_state.load_or_create(args.state, serial=args.serial)
    card = OpenPgpCard(state, persist=lambda s: card_state.save(s, args.state))
    try:
        sock = connect(args.host, args.port, args.connect_timeout)
    except OSError as err:
        log.error("cannot reach reader port %d: %s", args.port, err)
        return 2
    with sock:
        serve(card, sock, trace_apdus=args.trace_apdus, stall=stall)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
