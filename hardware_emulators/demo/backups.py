"""The demo's backup and drill sections, driven through the real console prompts.

* **Backup**: a plan over the lab's three backup tokens (``backup-site-a/-b/-c``, one
  site each, any 2 of 3 rebuild) is checked with ``coldvault backup plan check``, then
  ``coldvault ceremony backup`` takes the seed from two of the SLIP-39 shares read off the
  screen at ``generate-seed``, seals a share to a key generated inside each token, writes
  the envelopes and reads every share back.
* **Drill**: ``coldvault drill run --scenario "site-b lost"`` collects the shares of sites A
  and C (token PINs typed), rebuilds the seed in memory, compares every provisioned account,
  restores the key pool into a fresh SoftHSM token and verifies its test signatures against
  the production keys; ``drill verify`` and ``drill list`` check the report.
* The admin quorum (both admin cards, through the lab reader) signs the backup record and
  the drill report; the drill checks the record's signatures first and appends itself to
  the appliance's audit trail.

Every PIN and word typed here is lab data.
"""

from __future__ import annotations

import json
import subprocess  # noqa: S404
from collections.abc import Callable, Sequence
from pathlib import Path

from hardware_emulators.ceremony_driver import (
    answer,
    finish,
    pin_prompt,
    spawn,
    spawn_coldvault,
    use_card,
)
from hardware_emulators.demo.ceremonies import READER, Pins
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import LabTrust

FRESH_TOKEN = "drill-fresh"  # noqa: S105 - a token label, not a secret
FRESH_PIN = "drill-fresh-user"  # lab only
JSON_LINE = r'\{"[^\r\n]*"ok": (true|false)[^\r\n]*\}(?=\r?\n)'


def _plan(lab: Lab, custodians: Sequence[str]) -> str:
    serials = {s.label: s.serial for s in lab.softhsm.status()}
    tokens = [t for t in lab.config.tokens if t.role == "backup"]
    ids = [f"{t.spec.label.removeprefix('backup-site-')}-hsm" for t in tokens]
    out = ['format = "coldvault-backup-plan/1"', 'id = "demo-2of3"',
           'description = "any 2 of 3 sites; one backup HSM token per site"',
           "[scheme]", "threshold = 2", f"members = {json.dumps(ids)}"]  # fmt: skip
    for token, target, custodian in zip(tokens, ids, custodians, strict=True):
        site = token.spec.label.removeprefix("backup-")
        out += ["[[sites]]", f'name = "{site}"', f'location = "lab {site}"',
                f'custodians = ["{custodian}"]', "[[sites.targets]]", f'id = "{target}"',
                'kind = "hsm"', f'label = "{token.spec.label}"',
                f'serial = "{serials[token.spec.label]}"']  # fmt: skip
    return "\n".join(out) + "\n"


def _pins(lab: Lab) -> list[tuple[str, str]]:
    return [
        (f"User PIN of backup token {t.spec.label} \\(", t.spec.user_pin)
        for t in lab.config.tokens
        if t.role == "backup"
    ]


def _json(child) -> dict[str, object]:  # type: ignore[no-untyped-def]
    child.expect(JSON_LINE)
    return dict(json.loads(child.match.group(0)))


def _pool_record(exports: Path) -> dict[str, object]:
    """One provisioning record (accounts and pool keys) of every provisioning run."""
    docs = [json.loads(p.read_text()) for p in sorted(exports.glob("*/provisioning.json"))]
    merged = dict(docs[0])
    merged["accounts"] = [a for d in docs for a in d["accounts"]]
    merged["keys"] = [k for d in docs for k in d["keys"]]
    return merged


def _fresh_token(lab: Lab) -> None:
    subprocess.run(  # noqa: S603 - the lab's SoftHSM tool, no shell
        ["softhsm2-util", "--init-token", "--free", "--label", FRESH_TOKEN,  # noqa: S607
         "--so-pin", "drill-fresh-so", "--pin", FRESH_PIN],
        env={**lab.env, "PATH": "/usr/bin:/bin"}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _admins_sign(child, lab: Lab, trust: LabTrust, pins: Pins) -> None:  # type: ignore[no-untyped-def]
    """The roster's admin threshold of admin cards sign, one at a time in the lab reader."""
    threshold = trust.roster.admin_threshold
    admins = [c.serial for c in lab.config.cards if c.role == "admin"][:threshold]
    for number, serial in enumerate(admins, start=1):
        use_card(child, lab, serial, f"Admin approval {number} of {threshold}: insert an admin "
                 "card.", [(pin_prompt(lab.config.card(serial).holder), pins.card(serial))],
                 reader=READER)  # fmt: skip


def backup_and_drill(
    lab: Lab,
    out: Path,
    trust: LabTrust,
    shares: Sequence[str],
    say: Callable[[str], None],
    *,
    pins: Pins,
    audit_trail: Path,
) -> list[str]:
    """Run both sections into ``out`` (the drill appended to ``audit_trail``); returns the
    OK lines."""
    out.mkdir(parents=True, exist_ok=True)
    custodians = sorted(trust.card_ids.values())[:3]
    plan = out / "backup-plan.toml"
    plan.write_text(_plan(lab, custodians))
    log = out / "console.log"
    module = lab.softhsm.module_path

    child = spawn_coldvault(["backup", "plan", "check", str(plan), "--json"], lab.env, log)
    checked = _json(child)
    if finish(child) != 0 or not checked.get("ok"):
        raise RuntimeError(f"the backup plan was refused: {checked}")
    say("backup plan check: VALID (no site alone, any 1 site may be lost)")

    token_pins = _pins(lab)
    roster = str(trust.roster_path)
    child = spawn(["backup", "--operator", "Olga Operator", "--allow-emulated", "--module",
                   module, "--plan", str(plan), "--out", str(out / "envelopes"), "--yes",
                   "--roster", roster,
                   "--transcript", str(out / "backup.jsonl"), "--json"], lab.env, log)  # fmt: skip
    answer(child, [("SLIP-39 share 1: ", shares[0]), ("SLIP-39 share 2: ", shares[2]),
                   *token_pins, *token_pins])  # fmt: skip
    _admins_sign(child, lab, trust, pins)
    backup = _json(child)
    if finish(child) != 0 or not backup.get("ok"):
        raise RuntimeError(f"ceremony backup failed: {backup}")
    say(f"ceremony backup: share set {backup['share_set']} sealed to 3 tokens, read back, "
        "record signed by the admin quorum")

    provisioning = out / "provisioning.json"
    provisioning.write_text(json.dumps(_pool_record(trust.directory / "exports")))
    _fresh_token(lab)
    reports = out / "drills"
    child = spawn_coldvault(
        ["drill", "run", "--operator", "Dana Drill-lead", "--allow-emulated", "--module",
         module, "--plan", str(plan), "--backup", str(out / "envelopes"),
         "--scenario", "site-b lost", "--reports", str(reports),
         "--provisioning", str(provisioning), "--restore-token", FRESH_TOKEN, "--yes",
         "--roster", roster, "--audit-trail", str(audit_trail), "--json"],
        lab.env, log,
    )  # fmt: skip
    answer(child, [(f"User PIN of the fresh token {FRESH_TOKEN} ", FRESH_PIN),
                   token_pins[0], token_pins[2]])  # fmt: skip
    _admins_sign(child, lab, trust, pins)
    result = _json(child)
    status = finish(child)
    report = result.get("report")
    if status != 0 or not isinstance(report, dict) or report.get("passed") is not True:
        raise RuntimeError(f"the drill 'site-b lost' failed: {result}")
    restore = report["restore"]
    say(f"drill run 'site-b lost': sites used {', '.join(report['sites_used'])}; "
        f"{restore['keys_imported']} keys restored into {FRESH_TOKEN}, "
        f"{len(restore['signatures'])} test signatures verified")  # fmt: skip

    child = spawn_coldvault(["drill", "verify", "--json", "--roster", roster,
                             str(result["report_file"])], lab.env, log)  # fmt: skip
    verified = _json(child)
    if finish(child) != 0 or not verified.get("ok"):
        raise RuntimeError(f"drill verify failed: {verified}")
    audited = [json.loads(line) for line in audit_trail.read_text().splitlines()]
    if not any(e["event"] == "ceremony" and e["fields"].get("report_sha256")
               == result["report_sha256"] for e in audited):  # fmt: skip
        raise RuntimeError("the drill is not in the appliance's audit trail")
    signed_by = verified.get("signed_by")
    if not isinstance(signed_by, list) or not signed_by:
        raise RuntimeError(f"drill verify: the report carries no admin signatures: {verified}")
    say(f"drill report signed by {', '.join(map(str, signed_by))} (drill verify); "
        f"appended to the appliance's audit trail {audit_trail}")
    child = spawn_coldvault(["drill", "list", "--json", "--reports", str(reports)], lab.env, log)
    history = _json(child)
    if finish(child) != 0 or history.get("overdue") is not False:
        raise RuntimeError(f"drill list: {history}")
    return [
        f"Backup: seed {report['expected_fingerprint']} sharded 2-of-3 over the three site "
        "tokens, every share read back",
        f"Drill 'site-b lost' PASSED: rebuilt {report['rebuilt_fingerprint']}, restored into "
        f"a fresh token whose signatures verify against the production keys; report "
        f"{str(result['report_sha256'])[:16]}... verified",
    ]


__all__ = ["backup_and_drill"]
