"""Audit-trail verification speed.

A trail of realistic entries (the appliance's request cycle: received, review with
movements, decision, approval token, two approvals, signing, response; an HSM-style seal
every 20 entries, signed here by a software secp256k1 key) is written by the real
:class:`~coldvault.records.audit.AuditLog` and then verified by
:func:`coldvault.records.audit.verify` (structure, canonical form, hash chain, every seal).
The trail is written to ``/dev/shm`` when it exists (its fsyncs are not what is measured).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import coincurve

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.records.audit import AuditLog, verify

#: entries in the trail (quick mode: a few hundred)
ENTRIES = 20_000
SEAL_EVERY = 20
ROUNDS = 3


def _cycle(n: int) -> list[tuple[str, dict[str, object]]]:
    digest = hashlib.sha256(n.to_bytes(8, "big")).hexdigest()
    return [
        ("request-received", {"digest": digest, "format": "ur", "kind": "psbt", "bytes": 9000}),
        ("review", {
            "digest": digest, "fingerprint": digest[:16], "chain": "bitcoin", "network": "test",
            "kind": "psbt", "wallet": "bench-wpkh", "client": "client-7",
            "movements": [
                {"kind": "send", "asset": "BTC", "amount": str(1_234_567 + n),
                 "destination": "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
                 "note": "whitelisted"},
                {"kind": "change", "asset": "BTC", "amount": str(98_765 + n),
                 "destination": "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
                 "note": "m/84h/1h/0h/1/0"},
            ],
            "fee": "1500", "fee_rate": 10.5, "details": [["inputs", "10"]], "warnings": [],
        }),  # fmt: skip
        ("decision", {"allowed": True, "required_approvals": 2, "rules": ["whitelist", "limit"]}),
        ("approval-token", {"digest": digest, "nonce": digest[:32], "expires": "2026-12-01"}),
        ("approval", {"serial": "BENCH-APR-1", "holder": "Approver 1"}),
        ("approval", {"serial": "BENCH-APR-2", "holder": "Approver 2"}),
        ("signing", {"digest": digest, "inputs": 10}),
        ("signature", {"digest": digest, "count": 10}),
        ("response", {"shown": True}),
    ]


def write_trail(path: Path, entries: int) -> bytes:
    """Write ``entries`` (about) through AuditLog; return the audit public key."""
    key = coincurve.PrivateKey(hashlib.sha256(b"coldvault-bench-audit").digest())

    def sealer(digest: bytes) -> EcdsaSignature:
        return EcdsaSignature.from_der(key.sign(digest, hasher=None))

    public = key.public_key.format(compressed=False)
    log = AuditLog(path, sealer=sealer, audit_public_key=public, seal_every=SEAL_EVERY)
    try:
        n = 0
        while log.next_seq < entries:
            for event, fields in _cycle(n):
                log.append(event, fields)
            n += 1
    finally:
        log.close()
    return public


def audit_verify_rate(entries: int) -> tuple[float, int, int]:
    """(entries verified per second, best of ROUNDS; entries; bytes)."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - bench scratch
    directory = Path(tempfile.mkdtemp(prefix="coldvault-bench-audit-", dir=parent))
    try:
        path = directory / "audit.jsonl"
        public = write_trail(path, entries)
        best = float("inf")
        report = None
        for _ in range(ROUNDS):
            start = time.perf_counter()
            report = verify(path, public)
            best = min(best, time.perf_counter() - start)
        assert report is not None
        return report.entries / best, report.entries, path.stat().st_size
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    rate, entries, size = audit_verify_rate(300 if quick else ENTRIES)
    lines = [
        f"audit verify: {entries} entries ({size / entries:.0f} B each, a seal every "
        f"{SEAL_EVERY}): {rate:,.0f} entries/s (best of {ROUNDS})",
    ]
    return {"audit_verify_entries_per_s": rate}, lines


def run() -> list[str]:
    return figures(quick=False)[1]
