from __future__ import annotations

import json
from pathlib import Path

import coincurve
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.records import audit
from coldvault.records.audit import AuditLog, entry_hash, verify, verify_prefix
from coldvault.records.errors import (
    AuditChainBroken,
    AuditHashMismatch,
    AuditLogLocked,
    AuditMalformed,
    AuditSealInvalid,
    AuditSequenceError,
    AuditTampered,
    AuditTruncated,
    SealFailed,
)

KEY = coincurve.PrivateKey(b"\x07" * 32)
PUB = KEY.public_key.format()
OTHER = coincurve.PrivateKey(b"\x08" * 32)


def der_sealer(digest: bytes) -> bytes:
    return KEY.sign(digest, hasher=None)


def obj_sealer(digest: bytes) -> EcdsaSignature:
    r, s = decode_dss_signature(KEY.sign(digest, hasher=None))
    return EcdsaSignature(r, s)


class Clock:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"2026-11-22T18:{self.n // 60:02d}:{self.n % 60:02d}.000000Z"


def build(path: Path, n: int = 10, seal_every: int = 4, sealer=der_sealer) -> Path:
    with AuditLog(
        path, sealer=sealer, audit_public_key=PUB, seal_every=seal_every, clock=Clock()
    ) as log:
        log.append("startup", {"version": "0.1.0"})
        for i in range(1, n):
            log.append(
                "request-received", {"fingerprint": f"AAAA-{i:04d}", "digest": bytes([i]) * 32}
            )
    return path


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new: list[bytes]) -> None:
    path.write_bytes(b"".join(new))


def relink(raw: list[bytes], start: int) -> list[bytes]:
    """Recompute prev/hash from ``start`` on: what a forger without the audit key can do."""
    out = list(raw)
    prev = json.loads(out[start - 1])["hash"] if start else "0" * 64
    for i in range(start, len(out)):
        obj = json.loads(out[i])
        obj["prev"] = prev
        if obj["event"] == "seal":
            obj["fields"]["head"] = prev
        obj.pop("hash")
        obj["hash"] = prev = entry_hash(obj)
        out[i] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return out


def test_append_seal_verify(tmp_path: Path) -> None:
    path = build(tmp_path / "audit.jsonl")
    report = verify(path, PUB)
    # 10 entries + a seal after every 4 non-seal entries: seals at 4, 9; 12 lines in all
    assert report.entries == 12 and report.seals == 2
    assert report.sealed_through == 8 and report.unsealed == 2
    assert report.events == {"startup": 1, "request-received": 9, "seal": 2}
    assert report.head == json.loads(lines(path)[-1])["hash"]
    assert json.loads(lines(path)[1])["fields"]["digest"] == "01" * 32
    assert report.to_dict()["entries"] == 12


def test_compact_signature_object_sealer(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl", n=3, seal_every=100, sealer=obj_sealer)
    with AuditLog(path, sealer=obj_sealer, audit_public_key=PUB) as log:
        seal = log.seal()
    assert seal.fields["through_seq"] == 2
    assert verify(path, PUB).unsealed == 0


def test_reopen_continues_chain(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    with AuditLog(path, audit_public_key=PUB) as log:
        assert log.next_seq == 12
        log.append("shutdown", {})
    assert verify(path, PUB).entries == 13


def test_every_append_is_fsynced_before_return(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    real = audit.os.fsync
    monkeypatch.setattr(audit.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    with AuditLog(tmp_path / "a.jsonl") as log:
        before = len(calls)  # file + directory at creation
        assert before >= 1
        log.append("startup", {})
        assert len(calls) == before + 1
        assert (tmp_path / "a.jsonl").read_bytes().count(b"\n") == 1


def test_secret_fields_refused(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl") as log:
        for key in ("pin", "user_PIN", "seed", "share", "backup-shares", "mnemonic",
                    "private_key", "privateKey", "passphrase", "client_secret"):  # fmt: skip
            with pytest.raises(ValueError, match="secret"):
                log.append("review", {key: "x"})
        with pytest.raises(ValueError, match="secret"):
            log.append("review", {"nested": [{"seed": "x"}]})
        with pytest.raises(ValueError, match="bytearray"):
            log.append("review", {"blob": bytearray(b"x")})
        with pytest.raises(ValueError):
            log.append("seal", {})
        with pytest.raises(ValueError):
            log.append("not-an-event", {})
        log.append("review", {"spin": 1, "pinned_genesis": "ab"})  # words, not substrings
    assert b"x" not in (tmp_path / "a.jsonl").read_bytes().replace(b"0x", b"")


def test_second_writer_refused(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl"), pytest.raises(AuditLogLocked):
        AuditLog(tmp_path / "a.jsonl")


def test_bad_sealer_refused(tmp_path: Path) -> None:
    with AuditLog(
        tmp_path / "a.jsonl", sealer=lambda d: OTHER.sign(d, hasher=None), audit_public_key=PUB
    ) as log:
        log.append("startup", {})
        with pytest.raises(SealFailed):
            log.seal()


# ---------------------------------------------------------------- each tamper kind
def test_edit_detected(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    raw[2] = raw[2].replace(b"AAAA-0002", b"AAAA-9999")
    rewrite(path, raw)
    with pytest.raises(AuditHashMismatch) as info:
        verify(path, PUB)
    assert info.value.index == 2


def test_edit_with_rehash_breaks_chain(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    raw[2] = raw[2].replace(b"AAAA-0002", b"AAAA-9999")
    rewrite(path, relink(raw, 2)[:3] + raw[3:])
    with pytest.raises(AuditChainBroken) as info:
        verify(path, PUB)
    assert info.value.index == 3


def test_full_rechain_fails_at_seal(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    raw[2] = raw[2].replace(b"AAAA-0002", b"AAAA-9999")
    rewrite(path, relink(raw, 2))
    with pytest.raises(AuditSealInvalid) as info:
        verify(path, PUB)
    assert info.value.index == 4


def test_deletion_detected(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    rewrite(path, raw[:3] + raw[4:])
    with pytest.raises(AuditSequenceError) as info:
        verify(path, PUB)
    assert (info.value.index, info.value.found) == (3, 4)


def test_deleting_the_first_entry_detected(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    rewrite(path, lines(path)[1:])
    with pytest.raises(AuditSequenceError) as info:
        verify(path, PUB)
    assert info.value.index == 0


def test_insertion_detected(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    rewrite(path, raw[:3] + [raw[2]] + raw[3:])
    with pytest.raises(AuditSequenceError) as info:
        verify(path, PUB)
    assert info.value.index == 3


def test_reordering_detected(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    raw[5], raw[6] = raw[6], raw[5]
    rewrite(path, raw)
    with pytest.raises(AuditSequenceError) as info:
        verify(path, PUB)
    assert info.value.index == 5


def test_truncation_after_last_seal_reported_as_unsealed(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    rewrite(path, lines(path)[:-1])
    report = verify(path, PUB)
    assert report.sealed_through == 8 and report.unsealed == 1


def test_truncation_of_seals_detected_with_anchor(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    rewrite(path, lines(path)[:7])
    assert verify(path, PUB).sealed_through == 3
    with pytest.raises(AuditTruncated) as info:
        verify(path, PUB, expect_sealed_through=8)
    assert (info.value.expected_through, info.value.found_through) == (8, 3)


def test_torn_last_line(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(AuditMalformed) as info:
        verify(path, PUB)
    assert info.value.index == 11 and info.value.reason == "incomplete last line"
    with pytest.raises(AuditMalformed):
        AuditLog(path)
    cut = data[:-20]
    torn = cut[cut.rindex(b"\n") + 1 :]
    assert verify_prefix(path, PUB)[0].entries == 11 and verify_prefix(path, PUB)[1] == len(torn)
    with AuditLog(path, recover_torn_tail=True) as log:
        assert log.recovered_bytes == len(torn) and log.next_seq == 11
        assert log.torn_file is not None and log.torn_file.read_bytes() == torn  # moved aside
        log.append("startup", {"recovered_torn_bytes": log.recovered_bytes})
    assert verify(path, PUB).entries == 12


def test_wrong_audit_key(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    with pytest.raises(AuditSealInvalid) as info:
        verify(path, OTHER.public_key.format())
    assert info.value.index == 4


def test_non_canonical_line(tmp_path: Path) -> None:
    path = build(tmp_path / "a.jsonl")
    raw = lines(path)
    raw[1] = raw[1].replace(b'","', b'", "', 1)
    rewrite(path, raw)
    with pytest.raises(AuditMalformed) as info:
        verify(path, PUB)
    assert info.value.index == 1


@pytest.fixture(scope="module")
def sealed_log(tmp_path_factory) -> bytes:
    path = build(tmp_path_factory.mktemp("audit") / "a.jsonl", n=8, seal_every=3)
    return path.read_bytes()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_mutation_fails(sealed_log: bytes, tmp_path: Path, data) -> None:
    pos = data.draw(st.integers(0, len(sealed_log) - 1))
    xor = data.draw(st.integers(1, 255))
    mutated = bytearray(sealed_log)
    mutated[pos] ^= xor
    path = tmp_path / "m.jsonl"
    path.write_bytes(bytes(mutated))
    with pytest.raises(AuditTampered):
        verify(path, PUB)


def test_on_seal_feeds_the_ledger_anchor(tmp_path: Path) -> None:
    from coldvault.records.ledger import Ledger

    with Ledger(tmp_path / "l.db") as ledger:
        with AuditLog(
            tmp_path / "a.jsonl", sealer=der_sealer, audit_public_key=PUB, seal_every=3,
            on_seal=ledger.set_audit_sealed_through,
        ) as log:  # fmt: skip
            for i in range(7):
                log.append("review", {"n": i})
        assert ledger.audit_sealed_through() == 6  # seals after entries 0-2 and 4-6
        report = verify(
            tmp_path / "a.jsonl", PUB, expect_sealed_through=ledger.audit_sealed_through()
        )
        assert report.unsealed == 1


def test_verify_input_errors(tmp_path: Path) -> None:
    from coldvault.records.errors import AuditLogNotFound, BadAuditPublicKey

    with pytest.raises(AuditLogNotFound):
        verify(tmp_path / "missing.jsonl", PUB)
    path = build(tmp_path / "a.jsonl", n=2)
    with pytest.raises(BadAuditPublicKey):
        verify(path, b"\x02" + b"\xff" * 32)
