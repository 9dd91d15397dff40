"""Seeded generator of the golden chain logs in ``tests/records/golden/``.

The committed files were written by the audit-trail and transcript writers before the two
logs shared one chain-log module; ``test_chain_log.py`` checks that they still verify and that
today's writers, given the same inputs, clock and keys, produce the same bytes.
Regenerate (only on a deliberate format change): ``python -m tests.records.golden``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import coincurve
from nacl.signing import SigningKey

from coldvault.records.audit import AuditLog
from coldvault.records.transcript import Device, TranscriptWriter, WitnessSignature

HERE = Path(__file__).resolve().parent / "golden"
AUDIT_FILE = HERE / "audit.jsonl"
TRANSCRIPT_FILE = HERE / "transcript.jsonl"
AUDIT_KEY = coincurve.PrivateKey(b"\x07" * 32)  # RFC 6979: deterministic seals
AUDIT_PUBLIC_KEY = AUDIT_KEY.public_key.format()
WITNESS_KEY = SigningKey(b"\x11" * 32)  # Ed25519: deterministic signatures
CEREMONY_ID = "5f0c3a9e-1b2d-4c6e-8f00-0123456789ab"


def clock(start: int = 0, *, millis: bool = False) -> Callable[[], str]:
    """A clock that ticks one second per call from 2026-11-22T18:00:00Z."""
    ticks = iter(range(start, 10_000))

    def now() -> str:
        n = next(ticks)
        frac = f"{n % 1000:03d}" if millis else f"{n * 1001 % 1_000_000:06d}"
        return f"2026-11-22T18:{n // 60 % 60:02d}:{n % 60:02d}.{frac}Z"

    return now


def write_audit(path: Path) -> Path:
    with AuditLog(
        path,
        sealer=lambda digest: AUDIT_KEY.sign(digest, hasher=None),
        audit_public_key=AUDIT_PUBLIC_KEY,
        seal_every=3,
        clock=clock(),
    ) as log:
        log.append("startup", {"version": "0.1.0", "wallets": ["ops", "cold"], "emulated": True})
        log.append(
            "request-received",
            {"sha256": bytes(range(32)), "format": "ur", "ur_type": "crypto-psbt", "bytes": 512},
        )
        log.append(
            "review",
            {
                "fingerprint": "3F2A-9C01-77BE",
                "movements": [
                    {"kind": "external", "asset": "BTC", "amount": "50000000", "note": "Zoë €"},
                    {"kind": "change", "asset": "BTC", "amount": "1234", "note": None},
                ],
                "fee": "1410",
                "fee_rate": 10.5,
                "details": [["network", "mainnet"], ["quote", 'say "hi"\\n']],
                "warnings": [],
            },
        )
        log.append("decision", {"allowed": True, "required_approvals": 2, "rules": []})
        log.append("approval", {"fingerprint": "3F2A-9C01-77BE", "card": "0006:1", "holder": "A"})
        log.append("shutdown", {})
        log.seal()
    return path


def _witness(message: bytes) -> WitnessSignature:
    return WitnessSignature(
        "0006:00000001", "Bob Witness", "admin", "ed25519",
        bytes(WITNESS_KEY.verify_key), WITNESS_KEY.sign(message).signature,
    )  # fmt: skip


def write_transcript(path: Path) -> Path:
    w = TranscriptWriter.create(
        path,
        "generate-seed",
        actor="Alice Operätor",
        devices=[Device("host", "ceremony-laptop")],
        data={"parameters": {"backup": {"format": "slip39", "share_threshold": 2}}, "pid": 4242},
        ceremony_id=CEREMONY_ID,
        clock=clock(millis=True),
    )
    w.append("room-checked", actor="Alice Operätor", data={"confirmed_by": "Alice Operätor"})
    w.append(
        "entropy",
        actor="Alice Operätor",
        devices=[Device("hsm", "label:0001")],
        data={"sources": {"mix": "sha512-v1", "hsm_bytes": 32, "dice_rolls": 99,
                          "dice_bits": 255.9, "output_bytes": 32}},
    )  # fmt: skip
    w.append(
        "shares-created",
        actor="Alice Operätor",
        data={"share_threshold": 2, "share_count": 3, "share_set_identifier": 4711,
              "extendable": True, "seed_fingerprint": "73c5da0a"},
    )  # fmt: skip
    w.append(
        "pins-set", actor="Alice Operätor", data={"so_pin_changed": True, "user_pin_set": True}
    )
    w.close(actor="Alice Operätor", data={"master_fingerprint": "73c5da0a"})
    w.add_witness(_witness)
    return path


if __name__ == "__main__":  # pragma: no cover - regenerates the committed files
    HERE.mkdir(exist_ok=True)
    for target in (AUDIT_FILE, TRANSCRIPT_FILE):
        target.unlink(missing_ok=True)
    write_audit(AUDIT_FILE)
    write_transcript(TRANSCRIPT_FILE)
