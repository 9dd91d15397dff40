"""The one chain log under the audit trail and transcripts: the formats stay byte-compatible,
and the two logs cannot drift apart again (same secret verdicts, same reader errors)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mnemonic import Mnemonic
from shamir_mnemonic.wordlist import WORDLIST as SLIP39_WORDS

from coldvault.errors import IntegrityError
from coldvault.records import audit, transcript
from coldvault.records.audit import AUDIT, AuditLog
from coldvault.records.chain import (
    MAX_DEPTH,
    ChainFormat,
    Defect,
    find_secret,
    read,
    walk,
)
from coldvault.records.errors import (
    AuditMalformed,
    AuditSequenceError,
    SecretInAudit,
    SecretInTranscript,
    TranscriptDecodeError,
    TranscriptTampered,
)
from coldvault.records.transcript import TRANSCRIPT, TranscriptWriter

from . import golden

XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRN"
    "NU3TGtRBeJgk33yuGBxrMPHi"
)
BIP39 = "abandon " * 11 + "about"
NUMBERED_BIP39 = " ".join(f"{i}. {w}" for i, w in enumerate(Mnemonic("english").wordlist[:12], 1))
SLIP39_SHARE = " ".join(SLIP39_WORDS[i * 37 % 1024] for i in range(20))


# --------------------------------------------------------------------------- formats
def test_golden_files_written_before_the_merge_still_verify() -> None:
    report = audit.verify(golden.AUDIT_FILE, golden.AUDIT_PUBLIC_KEY, expect_sealed_through=7)
    assert (report.entries, report.seals, report.unsealed) == (9, 3, 0)
    result = transcript.verify(golden.TRANSCRIPT_FILE, min_witnesses=1)
    assert (result.entries, result.status, result.witnesses[0]["holder"]) == (
        7, "completed", "Bob Witness",
    )  # fmt: skip


@pytest.mark.parametrize(
    "write,original",
    [(golden.write_audit, golden.AUDIT_FILE), (golden.write_transcript, golden.TRANSCRIPT_FILE)],
    ids=["audit", "transcript"],
)
def test_writers_produce_the_golden_bytes(
    write: Callable[[Path], Path], original: Path, tmp_path: Path
) -> None:
    assert write(tmp_path / "again.jsonl").read_bytes() == original.read_bytes()


def test_hash_rules_and_domains() -> None:
    audit_entry = json.loads(golden.AUDIT_FILE.read_bytes().splitlines()[0])
    transcript_entry = json.loads(golden.TRANSCRIPT_FILE.read_bytes().splitlines()[0])
    assert AUDIT.entry_hash(audit_entry) == audit_entry["hash"]
    assert TRANSCRIPT.entry_hash(transcript_entry) == transcript_entry["hash"]
    # the domain prefix is part of the hash: the same body hashes differently per log
    assert AUDIT.entry_hash(transcript_entry) != transcript_entry["hash"]


def test_default_clock_is_utc_with_z(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.jsonl") as log:
        time = log.append("startup", {}).time
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", time)
    w = TranscriptWriter.create(tmp_path / "t.jsonl", "x", actor="op")
    stamp = transcript.read_entries(w.path)[0]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)


# --------------------------------------------------------------------------- secrets
# (field name, value): refused by both logs, at the top level and nested in a list
REFUSED: list[tuple[str, Any]] = [
    ("pin", "123456"),
    ("user_PIN", "123456"),
    ("userPin", "123456"),
    ("new_pin2", "123456"),
    ("puk", "12345678"),
    ("seed", "00ff"),
    ("seeds", ["00ff"]),
    ("seed_hex", "00ff"),
    ("mnemonic", "x"),
    ("mnemonic_words", ["x"]),
    ("words", ["abandon"]),
    ("share", "x"),
    ("backup-shares", ["x"]),
    ("dice", "123456"),
    ("passphrase", ""),
    ("password", "x"),
    ("client_secret", "x"),
    ("private_key", "00"),
    ("privateKey", "00"),
    ("PRIVATEKEY", "00"),
    ("privkey", "00"),
    ("xprv", "x"),
    ("tprv", "x"),
    ("wif", "x"),
    ("scalar", "01"),
    ("entropy", "00ff"),
    # a public-derivative name with a value of the wrong kind is still a secret
    ("seed_bytes", "00ff"),
    ("dice_rolls", "3612"),
    ("user_pin_set", "123456"),
    ("seed_fingerprint", {"words": "x"}),
    ("share_count", True),
    # values that look like secrets, whatever the name
    ("note", BIP39),
    ("note", NUMBERED_BIP39),
    ("note", SLIP39_SHARE),
    ("k", XPRV),
    ("reason", f"pasted: {XPRV}"),
]
ALLOWED: list[tuple[str, Any]] = [
    ("seed_fingerprint", "73c5da0a"),
    ("seed_sha256", "ab" * 32),
    ("mnemonic_hash", "ab" * 32),
    ("share_set_identifier", 4711),
    ("private_key_id", "audit"),
    ("share_count", 5),
    ("share_threshold", 3),
    ("word_count", 24),
    ("mnemonic_length", 12),
    ("dice_rolls", 99),
    ("dice_bits", 255.9),
    ("entropy_bits", 256),
    ("seed_bytes", 64),
    ("pin_tries", 3),
    ("pin_retries", None),
    ("so_pin_changed", True),
    ("user_pin_set", True),
    ("pins_changed", True),
    ("passphrase_set", False),
    ("spin", 1),
    ("pinned_genesis", "ab"),
    ("mix", "sha512-v1"),
    ("hsm_bytes", 32),
    ("note", "sign in with your wallet to prove you own the address"),
    ("xpub", "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df"),
]


def _audit_write(path: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Append one entry to the audit trail at ``path`` (created if missing)."""
    with AuditLog(path) as log:
        return dict(log.append("review", fields).fields)


def _transcript_write(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Create a transcript at ``path`` and append one step after its open entry."""
    w = TranscriptWriter.create(path, "x", actor="op")
    return dict(w.append("step", actor="op", data=data)["data"])


@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
@pytest.mark.parametrize("name,value", REFUSED)
def test_both_logs_refuse_the_same_secrets(
    name: str, value: Any, nested: bool, tmp_path: Path
) -> None:
    fields = {"outer": [{"ok": 1}, {name: value}]} if nested else {name: value}
    assert find_secret(fields) is not None
    with pytest.raises((ValueError, SecretInAudit), match="secret"):
        _audit_write(tmp_path / "a.jsonl", fields)
    with pytest.raises(SecretInTranscript) as info:
        _transcript_write(tmp_path / "t.jsonl", fields)
    assert info.value.key == name
    assert audit.verify(tmp_path / "a.jsonl", golden.AUDIT_PUBLIC_KEY).entries == 0
    assert transcript.verify(tmp_path / "t.jsonl").entries == 1  # only the open entry
    secret = json.dumps(value).encode()
    if len(secret) > 4:
        for log in ("a.jsonl", "t.jsonl"):
            assert secret not in (tmp_path / log).read_bytes()


@pytest.mark.parametrize("name,value", ALLOWED)
def test_both_logs_allow_the_same_public_derivatives(
    name: str, value: Any, tmp_path: Path
) -> None:
    fields = {name: value, "nested": [{name: value}]}
    assert find_secret(fields) is None
    assert _audit_write(tmp_path / "a.jsonl", fields) == fields
    assert _transcript_write(tmp_path / "t.jsonl", fields) == fields
    assert audit.verify(tmp_path / "a.jsonl", golden.AUDIT_PUBLIC_KEY).entries == 1
    assert transcript.verify(tmp_path / "t.jsonl").entries == 2


def test_verdicts_name_the_field_never_the_value() -> None:
    found = find_secret({"fields": {"accounts": [{"seed": "00ff" * 16}]}})
    assert found is not None
    assert (found.path, found.key) == ("fields.accounts[0].seed", "seed")
    assert "00ff" not in repr(found)
    assert find_secret({"note": BIP39}) == find_secret({"note": BIP39})
    assert find_secret({"note": BIP39}).reason == "the value looks like a mnemonic"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value,match",
    [
        (bytearray(b"secret"), "bytearray"),
        (memoryview(b"x"), "memoryview"),
        (float("nan"), "finite"),
        ({1: "x"}, "non-string key"),
        (object(), "unsupported type"),
    ],
)
def test_both_logs_refuse_unstorable_values(value: Any, match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        _audit_write(tmp_path / "a.jsonl", {"v": value})
    with pytest.raises(ValueError, match=match):
        _transcript_write(tmp_path / "t.jsonl", {"v": value})


def test_bytes_are_written_as_hex_by_both_logs(tmp_path: Path) -> None:
    assert _audit_write(tmp_path / "a.jsonl", {"digest": b"\x01\x02"}) == {"digest": "0102"}
    assert _transcript_write(tmp_path / "t.jsonl", {"digest": b"\x01\x02"}) == {"digest": "0102"}


# --------------------------------------------------------------------------- reading
def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_writers_refuse_what_the_readers_refuse(tmp_path: Path) -> None:
    deep = {"deep": _nest(MAX_DEPTH - 1)}  # entry, data, then 31 lists: 33 levels
    with pytest.raises(ValueError, match="nested"):
        _audit_write(tmp_path / "a.jsonl", deep)
    with pytest.raises(ValueError, match="nested"):
        _transcript_write(tmp_path / "t1.jsonl", deep)
    with pytest.raises(ValueError, match="exceeds"):
        _audit_write(tmp_path / "a.jsonl", {"text": "x" * audit.MAX_LINE_BYTES})
    with pytest.raises(ValueError, match="exceeds"):
        _transcript_write(tmp_path / "t2.jsonl", {"text": "x" * TRANSCRIPT.max_line_bytes})
    # one level less is accepted, and read back, by both
    shallow = {"deep": _nest(MAX_DEPTH - 2)}  # entry, data, then 30 lists: 32 levels
    assert _audit_write(tmp_path / "a.jsonl", shallow) == shallow
    assert _transcript_write(tmp_path / "t3.jsonl", shallow) == shallow
    assert audit.verify(tmp_path / "a.jsonl", golden.AUDIT_PUBLIC_KEY).entries == 1
    assert transcript.verify(tmp_path / "t3.jsonl").entries == 2


def _prefix(path: Path, n: int = 2) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:n])


def _line(path: Path, index: int) -> bytes:
    return path.read_bytes().splitlines(keepends=True)[index]


def _retyped(path: Path, index: int) -> bytes:
    obj = json.loads(_line(path, index))
    obj["hash"] = 1
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


BIG = 5 * 1024 * 1024  # over both logs' line limit
DAMAGE: list[tuple[str, Callable[[Path], bytes], int, Defect]] = [
    ("torn", lambda p: _prefix(p) + _line(p, 2)[:-9], 2, Defect.TORN),
    ("torn-first", lambda p: _line(p, 0)[:-1], 0, Defect.TORN),
    ("oversized", lambda p: _prefix(p) + b"x" * BIG + b"\n", 2, Defect.TOO_LONG),
    ("oversized-torn", lambda p: _prefix(p) + b"x" * BIG, 2, Defect.TOO_LONG),
    ("deep", lambda p: _prefix(p) + b"[" * 100_000 + b"\n", 2, Defect.TOO_DEEP),
    ("not-json", lambda p: _prefix(p) + b"{oops}\n", 2, Defect.NOT_JSON),
    ("not-utf8", lambda p: _prefix(p) + b'"\xff"\n', 2, Defect.NOT_JSON),
    ("blank-line", lambda p: _prefix(p) + b"\n" + _line(p, 2), 2, Defect.NOT_JSON),
    ("wrong-keys", lambda p: _prefix(p) + b'{"a":1}\n', 2, Defect.WRONG_KEYS),
    ("array", lambda p: _prefix(p) + b"[]\n", 2, Defect.WRONG_KEYS),
    ("wrong-type", lambda p: _prefix(p) + _retyped(p, 2), 2, Defect.WRONG_TYPE),
    (
        "not-canonical",
        lambda p: _prefix(p) + _line(p, 2).replace(b'","', b'", "', 1),
        2,
        Defect.NOT_CANONICAL,
    ),
    ("crlf", lambda p: _prefix(p) + _line(p, 2)[:-1] + b"\r\n", 2, Defect.NOT_CANONICAL),
]


@pytest.mark.parametrize(
    "make,index,defect", [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE]
)
def test_both_logs_report_the_same_reader_error(
    make: Callable[[Path], bytes], index: int, defect: Defect, tmp_path: Path
) -> None:
    bad_audit, bad_transcript = tmp_path / "a.jsonl", tmp_path / "t.jsonl"
    bad_audit.write_bytes(make(golden.AUDIT_FILE))
    bad_transcript.write_bytes(make(golden.TRANSCRIPT_FILE))
    with pytest.raises(AuditMalformed) as a:
        audit.verify(bad_audit, golden.AUDIT_PUBLIC_KEY)
    with pytest.raises(TranscriptDecodeError) as t:
        transcript.verify(bad_transcript)
    assert (a.value.index, a.value.reason) == (t.value.index, t.value.reason) == (index, defect)
    with pytest.raises(TranscriptDecodeError) as t:
        transcript.read_entries(bad_transcript)
    assert (t.value.index, t.value.reason) == (index, defect)


def test_only_a_torn_tail_may_be_recovered(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(_prefix(golden.AUDIT_FILE, 3) + _line(golden.AUDIT_FILE, 3)[:-9])
    assert [line.index for line in read(path, AUDIT, allow_torn_tail=True)] == [0, 1, 2]
    path.write_bytes(_prefix(golden.AUDIT_FILE, 3) + b"x" * BIG)
    with pytest.raises(AuditMalformed, match="too long"):
        list(read(path, AUDIT, allow_torn_tail=True))


def test_both_logs_report_the_same_chain_errors(tmp_path: Path) -> None:
    bad_audit, bad_transcript = tmp_path / "a.jsonl", tmp_path / "t.jsonl"
    for damage, index in (
        (lambda raw: raw[:2] + raw[3:], 2),  # deleted
        (lambda raw: raw[:2] + [raw[1]] + raw[2:], 2),  # inserted (a copy)
        (lambda raw: [raw[0], raw[2], raw[1], *raw[3:]], 1),  # reordered
    ):
        bad_audit.write_bytes(b"".join(damage(golden.AUDIT_FILE.read_bytes().splitlines(True))))
        bad_transcript.write_bytes(
            b"".join(damage(golden.TRANSCRIPT_FILE.read_bytes().splitlines(True)))
        )
        with pytest.raises(AuditSequenceError) as a:
            audit.verify(bad_audit, golden.AUDIT_PUBLIC_KEY)
        with pytest.raises(TranscriptTampered) as t:
            transcript.verify(bad_transcript)
        assert a.value.index == t.value.index == index and "index" in t.value.reason


@pytest.mark.parametrize("fmt", [AUDIT, TRANSCRIPT], ids=["audit", "transcript"])
def test_an_edited_entry_fails_its_hash_and_a_rehashed_one_breaks_the_chain(
    fmt: ChainFormat, tmp_path: Path
) -> None:
    source = golden.AUDIT_FILE if fmt is AUDIT else golden.TRANSCRIPT_FILE
    lines = source.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[1])
    obj["time" if fmt is AUDIT else "timestamp"] = "2030-01-01T00:00:00.000Z"
    edited = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    obj["hash"] = fmt.entry_hash(obj)
    rehashed = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path = tmp_path / "bad.jsonl"
    for line, expected in ((edited, Defect.HASH_MISMATCH), (rehashed, Defect.CHAIN_BROKEN)):
        path.write_bytes(b"".join([lines[0], line, *lines[2:]]))
        with pytest.raises(IntegrityError) as info:
            if fmt is AUDIT:
                audit.verify(path, golden.AUDIT_PUBLIC_KEY)
            else:
                transcript.verify(path)
        assert getattr(info.value, "index", None) == (1 if expected is Defect.HASH_MISMATCH else 2)


def test_transcript_limits_are_the_format_s(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"")
    with pytest.raises(TranscriptDecodeError) as info:
        transcript.verify(path)
    assert (info.value.index, info.value.reason) == (0, "the file is empty")
    assert audit.verify(path, golden.AUDIT_PUBLIC_KEY).entries == 0  # a new, empty trail
    lines = golden.TRANSCRIPT_FILE.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[0])
    obj["v"] = 2
    path.write_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    with pytest.raises(TranscriptDecodeError) as info:
        transcript.verify(path)
    assert info.value.reason == Defect.UNKNOWN_VERSION


@pytest.mark.parametrize("fmt", [AUDIT, TRANSCRIPT], ids=["audit", "transcript"])
def test_every_entry_and_every_hash_edit_is_judged_like_a_full_reserialisation(
    fmt: ChainFormat, tmp_path: Path
) -> None:
    """The reader hashes each line by cutting its hash out of the canonical bytes; that must
    agree with ``entry_hash`` on every golden entry, and a hash that is not 64 hex digits
    (an edit) must still fail as a hash mismatch."""
    source = golden.AUDIT_FILE if fmt is AUDIT else golden.TRANSCRIPT_FILE
    lines = source.read_bytes().splitlines(keepends=True)
    walked = list(walk(source, fmt))
    assert [line.raw for line in walked] == lines
    assert all(line.entry["hash"] == fmt.entry_hash(line.entry) for line in walked)
    path = tmp_path / "bad.jsonl"
    for bad in ("A" * 64, "\u00e9" * 64, "", "0" * 63 + '"'):
        obj = json.loads(lines[1])
        obj["hash"] = bad
        line = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        path.write_bytes(b"".join([lines[0], line, *lines[2:]]))
        with pytest.raises(IntegrityError) as info:
            list(walk(path, fmt))
        assert getattr(info.value, "index", None) == 1
