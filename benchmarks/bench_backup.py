"""Time per step of a backup (``ceremony backup``) and of a restore drill, human time
excluded.

The lab plan (three sites, 2-of-3 site groups, each 1-of-2 of {backup token, custodian
card}) on a private SoftHSM2 lab (three backup tokens, a production token provisioned with
a BIP84 + ETH + SOL pool, a fresh token for the restore) and three in-process virtual
OpenPGP cards (the card's own state machine, no pcscd).  Every prompt is answered by a
script the moment it is asked, so the figures are machine time: the backup's steps are
timed from one ``op.step`` to the next; the drill's are the report's own ``steps``
("site-b lost", with the wallet comparison and the restore into the fresh token).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backup.drill import DrillScenario
from coldvault.backup.plan import parse_plan
from coldvault.ceremonies.drill import FreshToken, RestoreDrill, restore_drill
from coldvault.ceremonies.sharding import ShardBackup, shard_backup
from coldvault.crypto import mnemonics
from coldvault.keys.pool import AccountSpec, Template, provision
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec
from tests.backup.lab_backup import direct_sessions
from tests.backup.lab_devices import LabDevices, RuleOperator
from tests.backup.plans import lab_plan

SEED = bytes.fromhex("8dc652d6d6cd370d8c963141f6d79ba440300f25c467302c1d966bff8f62300d")
PIN, SO_PIN = "bench-user-pin", "bench-so-pin"  # noqa: S105 - lab tokens of this run only
CARD_USER, CARD_ADMIN = "123456", "12345678"  # noqa: S105 - the virtual cards' factory PINs
SITES = ("site-a", "site-b", "site-c")
PRODUCTION, FRESH = "bench-production", "bench-fresh"
#: the backup ceremony's steps (their titles on screen) and the figure names
BACKUP_STEPS = {
    "Check the plan and the backup directory": "plan",
    "Bring in the seed": "seed",
    "Enrol the targets": "enrol",
    "Split, seal and write the shares": "seal_write",
    "Read every share back through its own target": "read_back",
    "Close the transcript": "close",
}
DRILL_STEPS = ("plan", "collect", "rebuild", "compare", "restore", "wipe")


class TimedOperator(RuleOperator):
    """Answers by rule, and stamps the moment each step begins."""

    def __init__(self, *rules) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*rules)
        self.stamps: list[tuple[str, float]] = []

    def step(self, title: str, checks=()) -> None:  # type: ignore[no-untyped-def]
        self.stamps.append((title, time.perf_counter()))
        super().step(title, checks)


class _Cards:
    def __init__(self, directory: Path) -> None:
        from coldvault.cards.openpgp import OpenPgpSession
        from tests.backup.conftest import DirectConnection

        def make(serial: int) -> OpenPgpSession:
            state = directory / f"card-{serial:08X}.json"
            session = OpenPgpSession(DirectConnection(state, serial))
            session.select()
            return session

        self.sessions = direct_sessions(make)


@contextmanager
def _lab() -> Iterator[tuple[SoftHsmLab, Path]]:
    parent = os.environ.get("COLDVAULT_BENCH_DIR") or None
    root = Path(tempfile.mkdtemp(prefix="coldvault-bench-backup-", dir=parent))
    labels = [f"backup-{s}" for s in SITES] + [PRODUCTION, FRESH]
    lab = SoftHsmLab(state_dir=root / "softhsm",
                     tokens=[TokenSpec(label, so_pin=SO_PIN, user_pin=PIN) for label in labels])
    saved = os.environ.get("SOFTHSM2_CONF")
    try:
        lab.setup()
        os.environ["SOFTHSM2_CONF"] = str(lab.conf_path)
        yield lab, root
    finally:
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved
        lab.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _rules(*first):  # type: ignore[no-untyped-def]
    return (
        *first,
        (r"^Is this the approved plan", True),
        (r"^Run the drill", True),
        (r"^User PIN of backup token ", PIN),
        (r"^User PIN of the fresh token ", PIN),
        (r"^Card \w+: admin PIN$", CARD_ADMIN),
        (r"^Card \w+: user PIN$", CARD_USER),
    )


def measure(pool_size: int) -> tuple[dict[str, float], dict[str, float]]:
    """(backup step -> seconds, drill step -> seconds) of one backup and one drill."""
    with _lab() as (lab, root):
        serials = {s.label: s.serial for s in lab.status()}
        plan = parse_plan(lab_plan({s: serials[f"backup-{s}"] for s in SITES}))
        devices = LabDevices(lab.module_path, _Cards(root).sessions)
        typed = mnemonics.split_secret(SEED, 2, 3)[:2]
        op = TimedOperator(*_rules((r"^SLIP-39 share \d+$", list(typed))))
        start = time.perf_counter()
        shard_backup(op, ShardBackup(actor="bench", transcript=root / "backup.jsonl",
                                     plan=plan, out=root / "backup"), devices)  # fmt: skip
        end = time.perf_counter()
        backup: dict[str, float] = {}
        stamps = [*op.stamps, ("", end)]
        backup["total"] = end - start
        for (title, at), (_next, then) in zip(stamps, stamps[1:], strict=False):
            backup[BACKUP_STEPS[title]] = then - at

        specs = [AccountSpec(Template.BIP84, network="main"), AccountSpec(Template.ETH),
                 AccountSpec(Template.SOL)]  # fmt: skip
        with Pkcs11Keystore.open(lab.module_path, PRODUCTION, PIN, allow_emulated=True) as ks:
            record = provision(ks, SEED, specs, pool_size)

        @contextmanager
        def opener(label: str, pin: str) -> Iterator[Pkcs11Keystore]:
            with Pkcs11Keystore.open(lab.module_path, label, pin, allow_emulated=True) as ks:
                yield ks

        op = TimedOperator(*_rules())
        params = RestoreDrill(actor="bench", plan=plan, backup_dir=root / "backup",
                              scenario=DrillScenario.site_lost("site-b"),
                              reports_dir=root / "drills",
                              provisioning=json.dumps(record.to_dict()).encode())  # fmt: skip
        result = restore_drill(op, params, devices, FreshToken(FRESH, opener))
        if not result.report.passed:
            raise RuntimeError(f"the benchmark drill failed: {result.report.reasons}")
        drill = {s.step: s.seconds for s in result.report.steps}
        drill["total"] = sum(drill.values())
        return backup, drill


def figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    pool = 2 if quick else 20
    backup, drill = measure(pool)
    out = {f"backup_step_seconds.{k}": v for k, v in backup.items()}
    out |= {f"drill_step_seconds.{k}": v for k, v in drill.items()}
    lines = [
        "backup (3 tokens + 3 in-process cards, 2-of-3 sites), seconds per step: "
        + ", ".join(f"{k} {v:.2f}" for k, v in backup.items()),
        f"drill 'site-b lost' (compare + restore of a pool of {pool} keys per branch), "
        "seconds per step: " + ", ".join(f"{k} {v:.2f}" for k, v in drill.items()),
    ]
    return out, lines


def run() -> list[str]:
    return figures(quick=False)[1]
