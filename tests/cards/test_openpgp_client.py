"""Client-side behaviour of ``coldvault.cards`` that the virtual card does not exercise:
scripted card responses (YubiKey-style status words, chaining, malformed data), the
status-word table, ISO 7816 framing and TLV as pure functions, the error codes, and the v4
fingerprint vs GnuPG.  The card-signature check has its own tests (tests/domain/test_cardsig.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from coldvault.cards import CardAlgorithm, OpenPgpSession, Pw, WrongPin, openpgp_v4_fingerprint, tlv
from coldvault.cards.errors import (
    ApduError,
    ApplicationNotFound,
    CardProtocolError,
    CardRejectedData,
    DataNotFound,
    NoKey,
    UnsupportedAlgorithm,
    UnsupportedCommand,
)
from coldvault.cards.iso7816 import Ins, command, transmit
from coldvault.cards.openpgp import PinBlocked, PinRequired, status_error
from coldvault.errors import AuthError, HardwareError

Handler = Callable[[bytes], tuple[bytes, int]]


class Scripted:
    """A connection whose answers come from a function; records every APDU."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[bytes] = []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        self.sent.append(apdu)
        return self.handler(apdu)


def test_select_on_a_card_without_openpgp() -> None:
    session = OpenPgpSession(Scripted(lambda apdu: (b"", 0x6A82)))
    with pytest.raises(ApplicationNotFound) as err:
        session.select()
    assert err.value.sw == 0x6A82
    assert isinstance(err.value, HardwareError)


def test_methods_need_select_first() -> None:
    with pytest.raises(ValueError):
        _ = OpenPgpSession(Scripted(lambda apdu: (b"", 0x9000))).serial


def test_get_response_reassembles_long_answers() -> None:
    payload = bytes(range(256)) * 2 + b"tail"
    pending = [payload]

    def handler(apdu: bytes) -> tuple[bytes, int]:
        data = pending[0]
        chunk, pending[0] = data[:200], data[200:]
        left = len(pending[0])
        return chunk, (0x6100 | min(left, 255)) if left else 0x9000

    conn = Scripted(handler)
    assert OpenPgpSession(conn).get_data(0x0101) == payload
    assert [a[1] for a in conn.sent[1:]] == [Ins.GET_RESPONSE] * (len(conn.sent) - 1)


def test_endless_get_response_is_bounded() -> None:
    session = OpenPgpSession(Scripted(lambda apdu: (b"x" * 255, 0x6100)))
    with pytest.raises(CardProtocolError):
        session.get_data(0x0101)


def test_long_commands_are_chained() -> None:
    conn = Scripted(lambda apdu: (b"\x01" * 64, 0x9000))
    OpenPgpSession(conn).sign(b"m" * 600)
    assert [a[0] for a in conn.sent] == [0x10, 0x10, 0x00]
    assert [a[4] for a in conn.sent] == [255, 255, 90]
    assert conn.sent[-1][-1] == 0x00  # Le on the last command only


def test_yubikey_style_wrong_pin_reads_tries_from_pw_status() -> None:
    def handler(apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == Ins.VERIFY:
            return b"", 0x6982
        return bytes([1, 127, 127, 127, 2, 0, 3]), 0x9000  # C4: 2 tries left

    with pytest.raises(WrongPin) as err:
        OpenPgpSession(Scripted(handler)).verify_pin("000000", Pw.SIGN)
    assert err.value.tries_left == 2 and err.value.pw is Pw.SIGN


def test_pin_bytes_are_sent_but_never_in_errors() -> None:
    conn = Scripted(lambda apdu: (b"", 0x63C1))
    with pytest.raises(WrongPin) as err:
        OpenPgpSession(conn).verify_pin("s3cr3t-pin", Pw.USER)
    assert conn.sent[0] == bytes.fromhex("0020008" + "2") + b"\x0a" + b"s3cr3t-pin"
    assert "s3cr3t" not in str(err.value) and "s3cr3t" not in repr(err.value.to_dict())


@pytest.mark.parametrize(
    "sw,ins,kwargs,cls",
    [
        (0x63C2, Ins.VERIFY, {"pw": Pw.USER}, WrongPin),
        (0x63C0, Ins.VERIFY, {"pw": Pw.USER}, PinBlocked),
        (0x6983, Ins.VERIFY, {"pw": Pw.ADMIN}, PinBlocked),
        (0x6982, Ins.PSO, {}, PinRequired),
        (0x6A80, Ins.PUT_DATA, {"tag": 0xC1}, UnsupportedAlgorithm),
        (0x6A80, Ins.PUT_DATA, {"tag": 0x5B}, CardRejectedData),
        (0x6700, Ins.PSO, {}, CardRejectedData),
        (0x6A88, Ins.PSO, {}, NoKey),
        (0x6A88, Ins.GET_DATA, {"tag": 0x0104}, DataNotFound),
        (0x6A82, Ins.SELECT, {}, ApplicationNotFound),
        (0x6D00, 0x88, {}, UnsupportedCommand),
        (0x6581, Ins.PSO, {}, ApduError),
    ],
)
def test_status_word_table(sw: int, ins: int, kwargs: dict, cls: type) -> None:
    err = status_error(sw, ins, **kwargs)
    assert type(err) is cls
    assert str(err).endswith(".")
    if isinstance(err, ApduError):
        assert err.sw == sw and err.ins == ins
    else:
        assert isinstance(err, AuthError)


def test_malformed_application_data() -> None:
    def handler(apdu: bytes) -> tuple[bytes, int]:
        if apdu[1] == Ins.SELECT:
            return b"", 0x9000
        return bytes.fromhex("6E0A4F10D276"), 0x9000  # truncated

    with pytest.raises(CardProtocolError):
        OpenPgpSession(Scripted(handler)).select()


def test_short_signature_from_card_is_a_protocol_error() -> None:
    with pytest.raises(CardProtocolError):
        OpenPgpSession(Scripted(lambda apdu: (b"\x00" * 10, 0x9000))).sign(b"m")


def test_command_apdu_forms() -> None:
    assert command(Ins.SELECT, 4, 0, b"\xd2\x76") == bytes.fromhex("00A4040002D276")
    assert command(Ins.GET_DATA, 0, 0x6E, le=0) == bytes.fromhex("00CA006E00")
    assert command(Ins.PSO, 0x9E, 0x9A, b"m", le=0, chained=True) == bytes.fromhex(
        "102A9E9A016D00"
    )
    assert command(Ins.GET_RESPONSE, 0, 0, le=0x10) == bytes.fromhex("00C0000010")
    with pytest.raises(ValueError):
        command(Ins.PSO, 0x9E, 0x9A, bytes(256))
    with pytest.raises(ValueError):
        command(Ins.GET_RESPONSE, 0, 0, le=256)


def test_transmit_wipes_what_it_sent_and_stops_a_refused_chain() -> None:
    conn = Scripted(lambda apdu: (b"", 0x6A80))
    pin = bytearray(b"1" * 300)
    data, sw = transmit(conn, Ins.VERIFY, 0, 0x82, pin, le=False)
    assert (data, sw) == (b"", 0x6A80)
    assert len(conn.sent) == 1 and conn.sent[0][0] == 0x10  # the chain stopped after part 1
    assert bytes(pin) == b"1" * 300  # the caller's buffer is the caller's to wipe


def test_tlv_parse_and_find() -> None:
    data = bytes.fromhex("6E 0B 4F 02 D276 00 FF 5F52 02 0102".replace(" ", ""))
    assert list(tlv.parse(data)) == [(0x6E, bytes.fromhex("4F02D27600FF5F52020102"))]
    assert tlv.find(data, 0x6E, 0x5F52) == b"\x01\x02"
    assert tlv.find(data, 0x6E, 0x4F) == bytes.fromhex("D276")
    assert tlv.find(data, 0x6E, 0x73) is None
    long_value = bytes(300)
    assert tlv.find(b"\x86\x82\x01\x2c" + long_value, 0x86) == long_value
    assert tlv.find(b"\x86\x81\x81" + bytes(0x81), 0x86) == bytes(0x81)


@pytest.mark.parametrize(
    "data",
    ["86", "5F", "86 05 01", "86 82 01", "86 83 000001 00"],
)
def test_tlv_malformed_is_a_protocol_error(data: str) -> None:
    with pytest.raises(CardProtocolError):
        list(tlv.parse(bytes.fromhex(data.replace(" ", ""))))


def test_card_and_hsm_wrong_pins_have_distinct_codes_and_carry_tries() -> None:
    from coldvault.backends.pkcs11.errors import WrongPin as HsmWrongPin

    card = WrongPin(Pw.SIGN, 2)
    hsm = HsmWrongPin("token", role="user", tries_left=2)
    assert card.code == "card-wrong-pin" and hsm.code == "hsm-wrong-pin"
    assert card.to_dict()["error"] != hsm.to_dict()["error"]
    assert card.to_dict()["attempts_remaining"] == 2 and card.tries_left == 2
    assert isinstance(card, AuthError) and isinstance(hsm, AuthError)


def test_error_codes_of_cards_quorum_and_backends_are_unique() -> None:
    """Every error the card, quorum and hardware-backend packages define has its own code."""
    import importlib
    import inspect
    import pkgutil

    import coldvault
    from coldvault.errors import ColdvaultError

    seen: dict[str, str] = {}
    clashes = []
    for prefix in ("cards", "quorum", "backends"):
        package = importlib.import_module(f"coldvault.{prefix}")
        names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
        for name in [package.__name__, *names]:
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if not issubclass(cls, ColdvaultError) or cls.__module__ != name:
                    continue
                where = f"{name}.{cls.__qualname__}"
                if seen.setdefault(cls.code, where) != where:
                    clashes.append(f"{cls.code}: {seen[cls.code]} and {where}")
    for root in vars(importlib.import_module("coldvault.errors")).values():
        if inspect.isclass(root) and issubclass(root, ColdvaultError) and root.code in seen:
            clashes.append(f"{root.code}: coldvault.errors.{root.__name__} and {seen[root.code]}")
    assert coldvault and len(seen) > 40
    assert clashes == []


def _mpi_from_gpg_export(blob: bytes) -> tuple[int, bytes, int]:
    """(created, point, algo) from the first public-key packet of ``gpg --export``."""
    tag = blob[0]
    assert tag & 0xC0 == 0xC0 or tag & 0x80
    if tag & 0x40:  # new format
        length, body = blob[2], blob[3:]
        if length >= 192:
            length, body = ((blob[2] - 192) << 8) + blob[3] + 192, blob[4:]
    else:
        ltype = tag & 3
        size = {0: 1, 1: 2, 2: 4}[ltype]
        length = int.from_bytes(blob[1 : 1 + size], "big")
        body = blob[1 + size :]
    body = body[:length]
    assert body[0] == 4
    created, algo, oid_len = int.from_bytes(body[1:5], "big"), body[5], body[6]
    mpi = body[7 + oid_len :]
    bits = int.from_bytes(mpi[:2], "big")
    point = mpi[2 : 2 + (bits + 7) // 8]
    return created, point, algo


@pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG is not installed")
@pytest.mark.parametrize(
    "algorithm,gpg_algo",
    [(CardAlgorithm.ED25519, "ed25519"), (CardAlgorithm.NIST_P256, "nistp256")],
)
def test_v4_fingerprint_matches_gnupg(tmp_path: Path, algorithm, gpg_algo) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    try:
        run = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run(
            [*run, "--quick-gen-key", "Vector <fp@example.org>", gpg_algo, "sign", "never"],
            env=env, check=True, capture_output=True, timeout=60,
        )
        listing = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--list-keys"],
            env=env, check=True, capture_output=True, text=True, timeout=30,
        ).stdout
        blob = subprocess.run(
            ["gpg", "--batch", "--export"], env=env, check=True, capture_output=True, timeout=30
        ).stdout
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, timeout=30)
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    created, point, algo = _mpi_from_gpg_export(blob)
    assert algo == algorithm.openpgp_algo
    if algorithm is CardAlgorithm.ED25519:
        assert point[0] == 0x40
        point = point[1:]
    assert openpgp_v4_fingerprint(algorithm, point, created).hex().upper() == fpr
