"""Unit tests of the virtual card's APDU state machine (no sockets, no pcscd)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from hardware_emulators.openpgp_card import state as card_state
from hardware_emulators.openpgp_card.card import ATR, OpenPgpCard
from hardware_emulators.openpgp_card.tlv import parse

SELECT = bytes.fromhex("00A4040006D27600012401")
ED25519_ATTR = bytes.fromhex("162B06010401DA470F01")
P256_ATTR = bytes.fromhex("132A8648CE3D030107")
K1_ATTR = bytes.fromhex("132B8104000A")
BRAINPOOL_ATTR = bytes.fromhex("132B2403030208010107")
RSA2048_ATTR = bytes.fromhex("010800002000")


def apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le])
    return out


class Card:
    """Test helper: a selected card with its state file."""

    def __init__(self, path: Path, serial: int = 0x01020304) -> None:
        self.path = path
        self.state = card_state.load_or_create(path, serial=serial)
        self.card = OpenPgpCard(self.state, persist=lambda s: card_state.save(s, path))
        assert self.send(SELECT) == (b"", 0x9000)

    def send(self, raw: bytes) -> tuple[bytes, int]:
        out = self.card.process(raw)
        return out[:-2], int.from_bytes(out[-2:], "big")

    def cmd(self, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = 0):
        return self.send(apdu(0, ins, p1, p2, data, le))

    def verify(self, ref: int, pin: str) -> int:
        return self.cmd(0x20, 0, ref, pin.encode(), le=None)[1]

    def put(self, tag: int, data: bytes) -> int:
        return self.cmd(0xDA, tag >> 8, tag & 0xFF, data, le=None)[1]

    def get(self, tag: int) -> tuple[bytes, int]:
        return self.cmd(0xCA, tag >> 8, tag & 0xFF)

    def generate(self) -> bytes:
        data, sw = self.cmd(0x47, 0x80, 0, b"\xb6\x00")
        assert sw == 0x9000
        [(tag, inner)] = parse(data)
        assert tag == 0x7F49
        [(t86, point)] = parse(inner)
        assert t86 == 0x86
        return point

    def sign(self, data: bytes) -> tuple[bytes, int]:
        return self.cmd(0x2A, 0x9E, 0x9A, data)


@pytest.fixture
def card(tmp_path: Path) -> Card:
    return Card(tmp_path / "card.json")


def test_atr_checksum_and_historical_bytes() -> None:
    assert ATR[0] == 0x3B
    tck = 0
    for b in ATR[1:]:
        tck ^= b
    assert tck == 0


def test_select_wrong_aid_and_commands_before_select(tmp_path: Path) -> None:
    state = card_state.load_or_create(tmp_path / "c.json", serial=7)
    c = OpenPgpCard(state)
    assert c.process(bytes.fromhex("00CA006E00"))[-2:] == b"\x69\x85"
    assert c.process(bytes.fromhex("00A4040006A00000030800"))[-2:] == b"\x6a\x82"


def test_aid_serial_and_test_manufacturer(card: Card) -> None:
    aid, sw = card.get(0x4F)
    assert sw == 0x9000
    assert aid == bytes.fromhex("D27600012401 0304 FFFF 01020304 0000".replace(" ", ""))


def test_application_related_data_layout(card: Card) -> None:
    data, sw = card.get(0x6E)
    assert sw == 0x9000
    [(tag, inner)] = parse(data) if data[0] == 0x6E else [(0x6E, data)]
    items = dict(parse(inner))
    assert items[0x4F][10:14] == bytes.fromhex("01020304")
    assert 0x5F52 in items
    disc = dict(parse(items[0x73]))
    assert disc[0xC1] == ED25519_ATTR
    assert disc[0xC4] == bytes([0, 127, 127, 127, 3, 0, 3])
    assert len(disc[0xC5]) == 60 and len(disc[0xCD]) == 12 and len(disc[0xC0]) == 10


def test_cardholder_data(card: Card) -> None:
    assert card.put(0x5B, b"Doe<<Jane") == 0x6982  # needs PW3
    assert card.verify(0x83, "12345678") == 0x9000
    assert card.put(0x5B, b"Doe<<Jane") == 0x9000
    data, sw = card.get(0x65)
    assert sw == 0x9000
    fields = dict(parse(data))
    assert fields[0x5B] == b"Doe<<Jane" and fields[0x5F35] == b"9" and 0x5F2D in fields


def test_verify_status_query_and_lockout(card: Card) -> None:
    assert card.cmd(0x20, 0, 0x81, le=None) == (b"", 0x63C3)
    assert card.verify(0x81, "000000") == 0x63C2
    assert card.verify(0x82, "000000") == 0x63C1  # 81 and 82 share PW1's counter
    assert card.verify(0x81, "000000") == 0x63C0
    assert card.verify(0x81, "123456") == 0x6983  # blocked, even with the right PIN
    assert card.cmd(0x20, 0, 0x81, le=None)[1] == 0x6983
    assert card_state.load_or_create(card.path, serial=None).pw1.tries == 0


def test_correct_pin_resets_counter_and_empty_verify_says_verified(card: Card) -> None:
    assert card.verify(0x82, "000000") == 0x63C2
    assert card.verify(0x82, "123456") == 0x9000
    assert card.cmd(0x20, 0, 0x82, le=None) == (b"", 0x9000)
    assert card.cmd(0xCA, 0, 0xC4)[0][4] == 3


def test_reset_retry_counter_needs_admin(card: Card) -> None:
    for _ in range(3):
        card.verify(0x81, "999999")
    assert card.cmd(0x2C, 0x02, 0x81, b"654321", le=None)[1] == 0x6982
    assert card.verify(0x83, "12345678") == 0x9000
    assert card.cmd(0x2C, 0x02, 0x81, b"654", le=None)[1] == 0x6A80  # too short
    assert card.cmd(0x2C, 0x02, 0x81, b"654321", le=None)[1] == 0x9000
    assert card.verify(0x81, "654321") == 0x9000
    # no resetting code set: its counter is 0, so the P1=00 form is blocked
    assert card.cmd(0xCA, 0, 0xC4)[0][5] == 0
    assert card.cmd(0x2C, 0x00, 0x81, b"00000000654321", le=None)[1] == 0x6983


def test_resetting_code_unblocks_pw1_and_blocks_after_three_wrong_codes(card: Card) -> None:
    assert card.put(0xD3, b"RC-12345") == 0x6982  # setting it needs PW3
    assert card.verify(0x83, "12345678") == 0x9000
    assert card.put(0xD3, b"short") == 0x6A80  # 8 bytes at least
    assert card.put(0xD3, b"RC-12345") == 0x9000
    assert card.get(0xD3)[1] == 0x6A88  # write only
    assert card.cmd(0xCA, 0, 0xC4)[0][5] == 3
    for _ in range(3):
        card.verify(0x81, "999999")
    card.card.power_off()  # a new session: PW3 no longer verified
    assert card.send(SELECT)[1] == 0x9000
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-12345" + b"654", le=None)[1] == 0x6A80  # too short
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-12345" + b"654321", le=None)[1] == 0x9000
    assert card.cmd(0xCA, 0, 0xC4)[0][4:6] == bytes([3, 3])
    assert card.verify(0x81, "654321") == 0x9000
    # wrong codes count down the code's own counter (PW1 and PW3 untouched), then block it
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-00000" + b"111111", le=None)[1] == 0x63C2
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-00000" + b"111111", le=None)[1] == 0x63C1
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-00000" + b"111111", le=None)[1] == 0x63C0
    assert card.cmd(0x2C, 0x00, 0x81, b"RC-12345" + b"111111", le=None)[1] == 0x6983
    status = card.cmd(0xCA, 0, 0xC4)[0]
    assert (status[4], status[5], status[6]) == (3, 0, 3)
    assert card.verify(0x81, "654321") == 0x9000  # the PIN was not changed
    saved = card_state.load_or_create(card.path, serial=None)
    assert saved.rc is not None and saved.rc.tries == 0
    assert "RC-12345" not in card.path.read_text()  # stored as a salted hash
    # the admin sets it again (counter back to 3), or deletes it with empty data
    assert card.verify(0x83, "12345678") == 0x9000
    assert card.put(0xD3, b"RC-67890") == 0x9000
    assert card.cmd(0xCA, 0, 0xC4)[0][5] == 3
    assert card.put(0xD3, b"") == 0x9000
    assert card.cmd(0xCA, 0, 0xC4)[0][5] == 0


def test_change_reference_data(card: Card) -> None:
    assert card.cmd(0x24, 0, 0x81, b"123456" + b"abc", le=None)[1] == 0x6A80
    assert card.cmd(0x24, 0, 0x81, b"000000" + b"abcdef", le=None)[1] == 0x63C2
    assert card.cmd(0x24, 0, 0x81, b"123456" + b"abcdefgh", le=None)[1] == 0x9000
    assert card.verify(0x81, "abcdefgh") == 0x9000
    assert card.cmd(0x24, 0, 0x83, b"12345678" + b"87654321", le=None)[1] == 0x9000
    assert card.verify(0x83, "87654321") == 0x9000


@pytest.mark.parametrize("attrs", [BRAINPOOL_ATTR, RSA2048_ATTR, b"\x16\x2b", b""])
def test_unsupported_algorithm_attributes(card: Card, attrs: bytes) -> None:
    assert card.verify(0x83, "12345678") == 0x9000
    sw = card.put(0xC1, attrs) if attrs else card.cmd(0xDA, 0, 0xC1, le=None)[1]
    assert sw == 0x6A80


def test_algorithm_change_needs_admin(card: Card) -> None:
    assert card.put(0xC1, P256_ATTR) == 0x6982


def test_generate_requires_admin_and_read_without(card: Card) -> None:
    assert card.cmd(0x47, 0x80, 0, b"\xb6\x00")[1] == 0x6982
    assert card.cmd(0x47, 0x81, 0, b"\xb6\x00")[1] == 0x6A88  # no key yet
    assert card.verify(0x83, "12345678") == 0x9000
    point = card.generate()
    assert len(point) == 32
    data, sw = card.cmd(0x47, 0x81, 0, b"\xb6\x00")
    assert sw == 0x9000 and data.endswith(point)


def test_eddsa_signature_verifies_and_pw1_is_single_use(card: Card) -> None:
    card.verify(0x83, "12345678")
    point = card.generate()
    assert card.sign(b"message")[1] == 0x6982
    assert card.verify(0x81, "123456") == 0x9000
    sig, sw = card.sign(b"message")
    assert sw == 0x9000
    ed25519.Ed25519PublicKey.from_public_bytes(point).verify(sig, b"message")
    assert card.sign(b"message")[1] == 0x6982  # PW1/81 valid for one signature
    assert card.get(0x93)[0] == b"\x00\x00\x01"
    assert card.get(0x7A)[0] == bytes.fromhex("9303000001")


def test_pw1_82_does_not_allow_signing(card: Card) -> None:
    card.verify(0x83, "12345678")
    card.generate()
    assert card.verify(0x82, "123456") == 0x9000
    assert card.sign(b"m")[1] == 0x6982


def test_multiple_signatures_when_pw_status_allows(card: Card) -> None:
    card.verify(0x83, "12345678")
    card.generate()
    assert card.put(0xC4, b"\x01") == 0x9000
    card.verify(0x81, "123456")
    assert card.sign(b"a")[1] == 0x9000
    assert card.sign(b"b")[1] == 0x9000
    assert card.get(0xC4)[0][0] == 1


@pytest.mark.parametrize("attrs,curve", [(P256_ATTR, ec.SECP256R1()), (K1_ATTR, ec.SECP256K1())])
def test_ecdsa_over_digest(card: Card, attrs: bytes, curve: ec.EllipticCurve) -> None:
    card.verify(0x83, "12345678")
    assert card.put(0xC1, attrs) == 0x9000
    point = card.generate()
    assert len(point) == 65 and point[0] == 4
    digest = hashlib.sha256(b"approve").digest()
    card.verify(0x81, "123456")
    sig, sw = card.sign(digest)
    assert sw == 0x9000 and len(sig) == 64
    pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    card.verify(0x81, "123456")
    assert card.sign(b"not a digest")[1] == 0x6700


def test_algorithm_change_deletes_key(card: Card) -> None:
    card.verify(0x83, "12345678")
    card.generate()
    assert card.put(0xC1, P256_ATTR) == 0x9000
    assert card.cmd(0x47, 0x81, 0, b"\xb6\x00")[1] == 0x6A88


def test_get_response_for_long_response(card: Card) -> None:
    first, sw = card.cmd(0xCA, 0, 0x6E, le=0x40)
    assert sw >> 8 == 0x61
    rest, sw2 = card.send(bytes([0, 0xC0, 0, 0, sw & 0xFF]))
    full, _ = card.get(0x6E)
    assert sw2 == 0x9000 and first + rest == full
    assert card.send(bytes.fromhex("00C0000000"))[1] == 0x6985  # nothing pending


def test_command_chaining_for_long_messages(card: Card) -> None:
    card.verify(0x83, "12345678")
    point = card.generate()
    card.verify(0x81, "123456")
    message = bytes(range(256)) * 2
    assert card.send(apdu(0x10, 0x2A, 0x9E, 0x9A, message[:255]))[1] == 0x9000
    assert card.send(apdu(0x10, 0x2A, 0x9E, 0x9A, message[255:510]))[1] == 0x9000
    sig, sw = card.send(apdu(0x00, 0x2A, 0x9E, 0x9A, message[510:], 0))
    assert sw == 0x9000
    ed25519.Ed25519PublicKey.from_public_bytes(point).verify(sig, message)


def test_chaining_interrupted_by_another_command(card: Card) -> None:
    assert card.send(apdu(0x10, 0x2A, 0x9E, 0x9A, b"x" * 10))[1] == 0x9000
    assert card.send(apdu(0x00, 0xCA, 0x00, 0x4F, le=0))[1] == 0x6985


@pytest.mark.parametrize(
    "do,read_pw,write_pw",
    [(0x0101, None, 0x82), (0x0102, None, 0x83), (0x0103, 0x82, 0x82), (0x0104, 0x83, 0x83)],
)
def test_private_do_access(card: Card, do: int, read_pw: int | None, write_pw: int) -> None:
    pins = {0x82: "123456", 0x83: "12345678"}
    assert card.put(do, b"secret") == 0x6982
    card.verify(write_pw, pins[write_pw])
    assert card.put(do, b"secret") == 0x9000
    card.card.power_off()
    card.send(SELECT)
    if read_pw is None:
        assert card.get(do) == (b"secret", 0x9000)
    else:
        assert card.get(do)[1] == 0x6982
        card.verify(read_pw, pins[read_pw])
        assert card.get(do) == (b"secret", 0x9000)


def test_power_off_clears_verification(card: Card) -> None:
    card.verify(0x82, "123456")
    card.card.power_off()
    card.send(SELECT)
    assert card.cmd(0x20, 0, 0x82, le=None)[1] == 0x63C3


def test_unknown_instruction_and_class(card: Card) -> None:
    assert card.cmd(0x88, 0, 0)[1] == 0x6D00
    assert card.send(bytes.fromhex("80CA004F00"))[1] == 0x6E00
    assert card.send(b"\x00")[1] == 0x6700


def test_state_file_persists_and_holds_no_clear_pins(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    c = Card(path, serial=99)
    c.verify(0x83, "12345678")
    point = c.generate()
    c.verify(0x81, "123456")
    c.sign(b"m")
    c.verify(0x81, "000000")
    text = path.read_text()
    assert "123456" not in text and "12345678" not in text
    doc = json.loads(text)
    assert doc["WARNING"].startswith("EMULATOR ONLY")
    reloaded = Card(path, serial=99)
    assert reloaded.cmd(0x47, 0x81, 0, b"\xb6\x00")[0].endswith(point)
    assert reloaded.get(0x93)[0] == b"\x00\x00\x01"
    assert reloaded.cmd(0x20, 0, 0x81, le=None)[1] == 0x63C2


def test_state_serial_mismatch_is_a_programmer_error(tmp_path: Path) -> None:
    card_state.load_or_create(tmp_path / "c.json", serial=1)
    with pytest.raises(ValueError, match="serial"):
        card_state.load_or_create(tmp_path / "c.json", serial=2)


def test_decryption_and_authentication_slots_generate(card: Card) -> None:
    card.verify(0x83, "12345678")
    for crt, size in ((b"\xb8\x00", 32), (b"\xa4\x00", 32)):
        data, sw = card.cmd(0x47, 0x80, 0, crt)
        assert sw == 0x9000
        assert dict(parse(dict(parse(data))[0x7F49]))[0x86].__len__() == size
    assert card.cmd(0x47, 0x80, 0, b"\xb7\x00")[1] == 0x6A80  # no such key slot
    assert card.put(0xC2, ED25519_ATTR) == 0x6A80  # EdDSA is not a decryption algorithm
