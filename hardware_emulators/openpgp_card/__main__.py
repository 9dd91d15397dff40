"""Run one virtual OpenPGP card: ``python -m hardware_emulators.openpgp_card``.

    python -m hardware_emulators.openpgp_card --state card.json --port 40123 [--serial N]

The card is "inserted" while this process is connected to the vpcd reader port and
"removed" when it exits.  It exits 0 when the reader closes the connection.
"""

from __future__ import annotations

import argparse
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
    state = card_state.load_or_create(args.state, serial=args.serial)
    card = OpenPgpCard(state, persist=lambda s: card_state.save(s, args.state))
    try:
        sock = connect(args.host, args.port, args.connect_timeout)
    except OSError as err:
        logging.getLogger("openpgp_card").error("cannot reach reader port %d: %s", args.port, err)
        return 2
    with sock:
        serve(card, sock, trace_apdus=args.trace_apdus, stall=stall)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
