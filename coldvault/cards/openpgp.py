"""OpenPGP smart-card client (OpenPGP card spec v3.4) over a tiny connection interface.

The session is handed a :class:`CardConnection` (``send_and_receive(apdu) -> (data, sw)``)
and never goes looking for one; ``coldvault.backends.pcsc.PcscConnection`` is the PC/SC
implementation, tests may use any other.  Only standard ISO 7816 / OpenPGP APDUs are sent
(no vendor commands), so the same code drives YubiKey 5, Nitrokey 3 and the lab's virtual
card.  Long responses (``61xx`` + GET RESPONSE) and long commands (command chaining) are
handled here; card status words become exceptions in exactly one place
(:func:`_status_error`).

Quorum use::

    session = OpenPgpSession(connection)
    session.select()
    session.verify_pin(pin, Pw.SIGN)                 # PW1 in mode 81: one signature
    signature = session.sign(token_digest_or_message)
    verify_card_signature(algorithm, public_key, data, signature)
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from coldvault.crypto import secp256k1
from coldvault.errors import AuthError, HardwareError

log = logging.getLogger(__name__)

OPENPGP_RID_PIX = bytes.fromhex("D27600012401")
#: Manufacturer ids the OpenPGP card spec reserves for test cards; the lab's virtual card
#: uses 0xFFFF.  Production refuses such cards unless emulated hardware is allowed.
TEST_MANUFACTURERS = frozenset({0x0000, 0xFFFF})
MAX_RESPONSE = 65536
MIN_PIN_LENGTH = {0x81: 6, 0x82: 6, 0x83: 8}
MAX_PIN_LENGTH = 127
PRIVATE_DOS = range(1, 5)


# ---------------------------------------------------------------------------------------
# The connection seam and transport errors (raised by connection implementations)
# ---------------------------------------------------------------------------------------
class CardConnection(Protocol):
    """One wire primitive: send a command APDU, get response data and the status word."""

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]: ...


class CardTransportError(HardwareError):
    """The reader or the card's connection failed."""

    code = "card-transport"


class ReaderNotFound(CardTransportError):
    """The named smart-card reader is not attached."""

    code = "reader-not-found"

    def __init__(self, reader: str) -> None:
        super().__init__(f"The smart-card reader {reader!r} was not found.")
        self.reader = reader


class NoCard(CardTransportError):
    """The reader has no card in it."""

    code = "no-card"

    def __init__(self, reader: str) -> None:
        super().__init__(f"There is no card in the reader {reader!r}; insert a card.")
        self.reader = reader


class CardRemoved(CardTransportError):
    """The card was removed (or reset) while it was in use."""

    code = "card-removed"

    def __init__(self, reader: str) -> None:
        super().__init__(
            f"The card was removed from the reader {reader!r} during the operation; "
            "insert it again and repeat the operation."
        )
        self.reader = reader


class PcscUnavailable(CardTransportError):
    """The PC/SC service (pcscd) is not running or not reachable."""

    code = "pcsc-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The smart-card service is not available ({detail}).")
        self.detail = detail


class CardBusy(CardTransportError):
    """Another program holds the card exclusively."""

    code = "card-busy"

    def __init__(self, reader: str) -> None:
        super().__init__(
            f"The card in {reader!r} is in use by another program (e.g. gpg's scdaemon); "
            "close it and try again."
        )
        self.reader = reader


class CardTimeout(CardTransportError):
    """Waiting for a card to be inserted or removed timed out."""

    code = "card-timeout"

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"Timed out after {seconds:g} seconds waiting for {what}.")
        self.what = what
        self.seconds = seconds


# ---------------------------------------------------------------------------------------
# Card status errors
# ---------------------------------------------------------------------------------------
class ApduError(HardwareError):
    """The card answered a command with an unexpected status word."""

    code = "card-status"

    def __init__(self, sw: int, ins: int, message: str | None = None) -> None:
        super().__init__(
            message or f"The card refused command {ins:02X} with status word {sw:04X}."
        )
        self.sw = sw
        self.ins = ins


class ApplicationNotFound(ApduError):
    """The card has no OpenPGP application."""

    code = "no-openpgp-application"


class CardRejectedData(ApduError):
    """The card rejected the command data as invalid (6A80)."""

    code = "card-rejected-data"


class UnsupportedAlgorithm(CardRejectedData):
    """The card does not support the requested key algorithm or curve."""

    code = "unsupported-algorithm"


class DataNotFound(ApduError):
    """The requested data object or key does not exist on the card (6A88)."""

    code = "card-data-not-found"


class NoKey(DataNotFound):
    """The card has no key in the signature slot."""

    code = "no-key"


class UnsupportedCommand(ApduError):
    """The card does not implement the command (6D00/6E00/6A81)."""

    code = "card-unsupported"


class CardProtocolError(HardwareError):
    """The card's response is malformed (bad TLV, wrong lengths, endless chaining)."""

    code = "card-protocol"


class Pw(enum.IntEnum):
    """PIN references for VERIFY: PW1 for one signature, PW1 for other uses, PW3 (admin)."""

    SIGN = 0x81
    USER = 0x82
    ADMIN = 0x83

    @property
    def label(self) -> str:
        return "admin PIN" if self is Pw.ADMIN else "user PIN"


class WrongPin(AuthError):
    """A PIN was wrong; carries the tries left before it blocks."""

    code = "card-wrong-pin"

    def __init__(self, pw: Pw, tries_left: int) -> None:
        plural = "try" if tries_left == 1 else "tries"
        super().__init__(
            f"The card rejected the {pw.label}; {tries_left} {plural} left before it blocks."
        )
        self.pw = pw
        self.tries_left = tries_left


class PinBlocked(AuthError):
    """A PIN is blocked (no tries left)."""

    code = "pin-blocked"

    def __init__(self, pw: Pw) -> None:
        hint = (
            "the card must be reset by an administrator"
            if pw is Pw.ADMIN
            else "unblock it with the admin PIN"
        )
        super().__init__(f"The card's {pw.label} is blocked; {hint}.")
        self.pw = pw
        self.tries_left = 0


class PinRequired(AuthError):
    """The card requires a PIN verification that has not happened (6982)."""

    code = "pin-required"

    def __init__(self, ins: int) -> None:
        super().__init__(
            f"The card requires PIN verification before command {ins:02X}; verify the PIN "
            "first (a signature PIN is valid for one signature only)."
        )
        self.ins = ins
        self.sw = 0x6982


class PinFormatError(AuthError):
    """A PIN has an impossible length; nothing was sent to the card."""

    code = "pin-format"

    def __init__(self, pw: Pw, minimum: int) -> None:
        super().__init__(
            f"The {pw.label} must be {minimum} to {MAX_PIN_LENGTH} characters long; "
            "it was not sent to the card."
        )
        self.pw = pw
        self.minimum = minimum


# ---------------------------------------------------------------------------------------
# Wire codes and value types
# ---------------------------------------------------------------------------------------
class Ins(enum.IntEnum):
    SELECT = 0xA4
    GET_DATA = 0xCA
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    PUT_DATA = 0xDA
    GENERATE_ASYMMETRIC_KEY_PAIR = 0x47
    PSO = 0x2A
    GET_RESPONSE = 0xC0


class Sw(enum.IntEnum):
    OK = 0x9000
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS = 0x6982
    AUTH_BLOCKED = 0x6983
    CONDITIONS = 0x6985
    WRONG_DATA = 0x6A80
    FUNC_UNSUPPORTED = 0x6A81
    NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88
    INS_UNSUPPORTED = 0x6D00
    CLA_UNSUPPORTED = 0x6E00


class Do(enum.IntEnum):
    """Data object tags used here."""

    AID = 0x4F
    NAME = 0x5B
    HISTORICAL = 0x5F52
    CARDHOLDER = 0x65
    APPLICATION = 0x6E
    DISCRETIONARY = 0x73
    SECURITY_SUPPORT = 0x7A
    SIG_COUNTER = 0x93
    EXT_CAPS = 0xC0
    ALGO_SIG = 0xC1
    ALGO_DEC = 0xC2
    ALGO_AUT = 0xC3
    PW_STATUS = 0xC4
    FINGERPRINTS = 0xC5
    FP_SIG = 0xC7
    GEN_TIMES = 0xCD
    TIME_SIG = 0xCE
    PUBLIC_KEY = 0x7F49
    POINT = 0x86


class CardAlgorithm(enum.Enum):
    """Signature algorithms coldvault uses on cards, with their attribute encodings."""

    ED25519 = "ed25519"
    NIST_P256 = "nistp256"
    SECP256K1 = "secp256k1"

    @property
    def attributes(self) -> bytes:
        return _ATTRIBUTES[self]

    @property
    def openpgp_algo(self) -> int:
        return self.attributes[0]

    @property
    def oid(self) -> bytes:
        return self.attributes[1:]

    @classmethod
    def from_attributes(cls, data: bytes) -> CardAlgorithm | None:
        if len(data) > 1 and data[-1] == 0xFF:  # optional import-format byte
            data = data[:-1]
        for algo, attrs in _ATTRIBUTES.items():
            if attrs == data:
                return algo
        return None


_ATTRIBUTES = {
    CardAlgorithm.ED25519: bytes.fromhex("16") + bytes.fromhex("2B06010401DA470F01"),
    CardAlgorithm.NIST_P256: bytes.fromhex("13") + bytes.fromhex("2A8648CE3D030107"),
    CardAlgorithm.SECP256K1: bytes.fromhex("13") + bytes.fromhex("2B8104000A"),
}


@dataclass(frozen=True)
class PinStatus:
    """PW status bytes (DO C4)."""

    pw1_single_signature: bool
    max_length_pw1: int
    max_length_rc: int
    max_length_pw3: int
    tries_pw1: int
    tries_rc: int
    tries_pw3: int

    def tries(self, pw: Pw) -> int:
        return self.tries_pw3 if pw is Pw.ADMIN else self.tries_pw1


@dataclass(frozen=True)
class ApplicationData:
    """The parts of Application Related Data (DO 6E) coldvault uses."""

    aid: bytes
    version: tuple[int, int]
    manufacturer: int
    serial: int
    historical_bytes: bytes
    extended_capabilities: bytes
    algorithm_attributes: tuple[bytes, bytes, bytes]
    pin_status: PinStatus
    fingerprints: tuple[bytes, bytes, bytes]
    generation_times: tuple[int, int, int]

    @property
    def serial_hex(self) -> str:
        """The serial as gpg and openpgp-tool print it (8 hex digits)."""
        return f"{self.serial:08X}"

    @property
    def card_id(self) -> str:
        """Manufacturer + serial: unique across vendors (use this in the roster)."""
        return f"{self.manufacturer:04X}{self.serial:08X}"

    @property
    def signature_algorithm(self) -> CardAlgorithm | None:
        return CardAlgorithm.from_attributes(self.algorithm_attributes[0])


# ---------------------------------------------------------------------------------------
# BER-TLV (bounded; card responses are not trusted to be well formed)
# ---------------------------------------------------------------------------------------
def _tlv_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    i, n = 0, len(data)
    while i < n:
        if data[i] in (0x00, 0xFF):  # padding between objects
            i += 1
            continue
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= n:
                raise CardProtocolError("The card sent a truncated TLV tag.")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= n:
            raise CardProtocolError("The card sent a truncated TLV length.")
        length = data[i]
        i += 1
        if length in (0x81, 0x82):
            width = length - 0x80
            if i + width > n:
                raise CardProtocolError("The card sent a truncated TLV length.")
            length = int.from_bytes(data[i : i + width], "big")
            i += width
        elif length > 0x80:
            raise CardProtocolError("The card sent an unsupported TLV length form.")
        if i + length > n:
            raise CardProtocolError("The card sent a TLV value longer than its response.")
        yield tag, data[i : i + length]
        i += length


def _tlv_find(data: bytes, *path: int) -> bytes | None:
    """Value at ``path`` (outer tag first), or None when absent."""
    current = data
    for tag in path:
        found = None
        for t, v in _tlv_items(current):
            if t == tag:
                found = v
                break
        if found is None:
            return None
        current = found
    return current


def _tlv(tag: int, value: bytes) -> bytes:
    raw = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    if len(value) < 0x80:
        return raw + bytes([len(value)]) + value
    if len(value) < 0x100:
        return raw + bytes([0x81, len(value)]) + value
    return raw + b"\x82" + len(value).to_bytes(2, "big") + value


def _parse_pin_status(data: bytes) -> PinStatus:
    if len(data) < 7:
        raise CardProtocolError("The card's PIN status (DO C4) is shorter than 7 bytes.")
    return PinStatus(data[0] == 0, data[1] & 0x7F, data[2], data[3], data[4], data[5], data[6])


def parse_application_data(data: bytes) -> ApplicationData:
    """Parse DO 6E (with or without its outer tag)."""
    inner = _tlv_find(data, Do.APPLICATION)
    if inner is not None:
        data = inner
    aid = _tlv_find(data, Do.AID)
    if aid is None or len(aid) != 16 or not aid.startswith(OPENPGP_RID_PIX):
        raise CardProtocolError("The card's application data has no valid OpenPGP AID.")
    disc = _tlv_find(data, Do.DISCRETIONARY)
    if disc is None:  # some cards put the discretionary objects directly in 6E
        disc = data

    def get(tag: int, size: int | None = None) -> bytes:
        value = _tlv_find(disc, tag)
        if value is None or (size is not None and len(value) < size):
            raise CardProtocolError(f"The card's application data lacks DO {tag:02X}.")
        return value

    fps = get(Do.FINGERPRINTS, 60)
    times = _tlv_find(disc, Do.GEN_TIMES) or bytes(12)
    return ApplicationData(
        aid=aid,
        version=(aid[6], aid[7]),
        manufacturer=int.from_bytes(aid[8:10], "big"),
        serial=int.from_bytes(aid[10:14], "big"),
        historical_bytes=_tlv_find(data, Do.HISTORICAL) or b"",
        extended_capabilities=get(Do.EXT_CAPS),
        algorithm_attributes=(get(Do.ALGO_SIG), get(Do.ALGO_DEC), get(Do.ALGO_AUT)),
        pin_status=_parse_pin_status(get(Do.PW_STATUS)),
        fingerprints=(fps[0:20], fps[20:40], fps[40:60]),
        generation_times=tuple(  # type: ignore[arg-type]
            int.from_bytes(times[i : i + 4], "big") for i in (0, 4, 8)
        ),
    )


# ---------------------------------------------------------------------------------------
# Status words -> exceptions: the one place
# ---------------------------------------------------------------------------------------
def _status_error(sw: int, ins: int, *, pw: Pw | None = None, tag: int | None = None) -> Exception:
    if sw & 0xFFF0 == 0x63C0 and pw is not None:
        tries = sw & 0x0F
        return PinBlocked(pw) if tries == 0 else WrongPin(pw, tries)
    if sw == Sw.AUTH_BLOCKED:
        return PinBlocked(pw or Pw.USER)
    if sw == Sw.SECURITY_STATUS:
        return PinRequired(ins)
    if sw == Sw.WRONG_DATA:
        if ins == Ins.PUT_DATA and tag in (Do.ALGO_SIG, Do.ALGO_DEC, Do.ALGO_AUT):
            return UnsupportedAlgorithm(
                sw, ins, "The card does not support the requested key algorithm or curve."
            )
        return CardRejectedData(sw, ins, f"The card rejected the data of command {ins:02X}.")
    if sw == Sw.DATA_NOT_FOUND:
        if ins in (Ins.GENERATE_ASYMMETRIC_KEY_PAIR, Ins.PSO):
            return NoKey(sw, ins, "The card has no signature key; generate one first.")
        what = f"data object {tag:04X}" if tag is not None else "the requested data"
        return DataNotFound(sw, ins, f"The card does not hold {what}.")
    if sw == Sw.NOT_FOUND and ins == Ins.SELECT:
        return ApplicationNotFound(sw, ins, "The card has no OpenPGP application.")
    if sw in (Sw.INS_UNSUPPORTED, Sw.CLA_UNSUPPORTED, Sw.FUNC_UNSUPPORTED):
        return UnsupportedCommand(sw, ins, f"The card does not support command {ins:02X}.")
    if sw == Sw.WRONG_LENGTH:
        return CardRejectedData(sw, ins, f"The card rejected the length of command {ins:02X}.")
    return ApduError(sw, ins)


# ---------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------
def _wipe(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


class OpenPgpSession:
    """A session with the OpenPGP application of one card, over ``connection``."""

    def __init__(self, connection: CardConnection) -> None:
        self.connection = connection
        self._app: ApplicationData | None = None

    # -- transport ------------------------------------------------------------------------
    def _send(
        self,
        ins: int,
        p1: int,
        p2: int,
        data: bytes | bytearray = b"",
        *,
        le: bool = True,
        pw: Pw | None = None,
        tag: int | None = None,
        check: bool = True,
    ) -> tuple[bytes, int]:
        """Send one command (chaining data > 255 bytes), collect 61xx, map errors."""
        chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
        sw = 0
        response = b""
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            apdu = bytearray([0x00 if last else 0x10, ins, p1, p2])
            if chunk:
                apdu += bytes([len(chunk)]) + chunk
            if le and last:
                apdu.append(0x00)
            try:
                response, sw = self.connection.send_and_receive(bytes(apdu))
            finally:
                _wipe(apdu)
            if not last and sw != Sw.OK:
                break
        collected = bytearray(response)
        while sw >> 8 == 0x61:
            if len(collected) > MAX_RESPONSE:
                raise CardProtocolError("The card's response exceeds 64 KiB.")
            more, sw = self.connection.send_and_receive(
                bytes([0x00, Ins.GET_RESPONSE, 0x00, 0x00, sw & 0xFF])
            )
            collected += more
        if check and sw != Sw.OK:
            raise _status_error(sw, ins, pw=pw, tag=tag)
        return bytes(collected), sw

    def _require_app(self) -> ApplicationData:
        if self._app is None:
            raise ValueError("call select() first")
        return self._app

    # -- application ----------------------------------------------------------------------
    def select(self) -> ApplicationData:
        """Select the OpenPGP application and read its application data."""
        self._send(Ins.SELECT, 0x04, 0x00, OPENPGP_RID_PIX, le=False)
        self._app = self.application_data()
        return self._app

    def application_data(self) -> ApplicationData:
        data, _ = self._send(Ins.GET_DATA, 0x00, Do.APPLICATION, tag=Do.APPLICATION)
        self._app = parse_application_data(data)
        return self._app

    @property
    def serial(self) -> int:
        return self._require_app().serial

    @property
    def serial_hex(self) -> str:
        return self._require_app().serial_hex

    @property
    def manufacturer(self) -> int:
        return self._require_app().manufacturer

    @property
    def card_id(self) -> str:
        return self._require_app().card_id

    @property
    def is_test_card(self) -> bool:
        """True for manufacturer ids reserved for test cards (the lab's virtual card)."""
        return self.manufacturer in TEST_MANUFACTURERS

    def get_data(self, tag: int) -> bytes:
        data, _ = self._send(Ins.GET_DATA, tag >> 8, tag & 0xFF, tag=tag)
        return data

    def put_data(self, tag: int, value: bytes) -> None:
        self._send(Ins.PUT_DATA, tag >> 8, tag & 0xFF, value, le=False, tag=tag)

    def cardholder_name(self) -> str:
        """The cardholder name (ISO 8859-1, ``Surname<<Given`` per the spec)."""
        data = self.get_data(Do.CARDHOLDER)
        name = _tlv_find(data, Do.CARDHOLDER, Do.NAME)
        if name is None:
            name = _tlv_find(data, Do.NAME) or b""
        return name.decode("latin-1")

    def set_cardholder_name(self, name: str) -> None:
        """Write DO 5B (needs the admin PIN verified)."""
        raw = name.encode("latin-1")
        if len(raw) > 39:
            raise ValueError("cardholder name is longer than 39 characters")
        self.put_data(Do.NAME, raw)

    def algorithm(self) -> CardAlgorithm | None:
        """The signature key's algorithm, or None if it is one coldvault does not use."""
        return self.application_data().signature_algorithm

    def pin_status(self) -> PinStatus:
        return _parse_pin_status(self.get_data(Do.PW_STATUS))

    def signature_counter(self) -> int:
        data = self.get_data(Do.SECURITY_SUPPORT)
        value = _tlv_find(data, Do.SECURITY_SUPPORT, Do.SIG_COUNTER)
        if value is None:
            value = _tlv_find(data, Do.SIG_COUNTER)
        if value is None or len(value) != 3:
            raise CardProtocolError("The card's security support template has no counter.")
        return int.from_bytes(value, "big")

    # -- PINs -----------------------------------------------------------------------------
    @staticmethod
    def _pin_bytes(pin: str, pw: Pw) -> bytearray:
        raw = bytearray(pin.encode("utf-8"))
        minimum = MIN_PIN_LENGTH[pw]
        if not minimum <= len(raw) <= MAX_PIN_LENGTH:
            _wipe(raw)
            raise PinFormatError(pw, minimum)
        return raw

    def verify_pin(self, pin: str, pw: Pw) -> None:
        """VERIFY; raises :class:`WrongPin` (with tries left) or :class:`PinBlocked`."""
        raw = self._pin_bytes(pin, pw)
        try:
            _, sw = self._send(Ins.VERIFY, 0x00, pw, raw, le=False, pw=pw, check=False)
        finally:
            _wipe(raw)
        if sw == Sw.OK:
            return
        if sw == Sw.SECURITY_STATUS:  # some cards (YubiKey) answer a wrong PIN with 6982
            tries = self.pin_status().tries(pw)
            raise PinBlocked(pw) if tries == 0 else WrongPin(pw, tries)
        raise _status_error(sw, Ins.VERIFY, pw=pw)

    def pin_verified(self, pw: Pw) -> bool:
        """VERIFY without data: is ``pw`` currently verified?  Costs no try."""
        _, sw = self._send(Ins.VERIFY, 0x00, pw, le=False, pw=pw, check=False)
        return sw == Sw.OK

    def tries_left(self, pw: Pw) -> int:
        return self.pin_status().tries(pw)

    def change_pin(self, pw: Pw, old: str, new: str) -> None:
        """CHANGE REFERENCE DATA for the user (PW1) or admin (PW3) PIN."""
        ref = Pw.ADMIN if pw is Pw.ADMIN else Pw.SIGN
        old_raw = self._pin_bytes(old, pw)
        new_raw = self._pin_bytes(new, pw)
        data = old_raw + new_raw
        try:
            self._send(Ins.CHANGE_REFERENCE_DATA, 0x00, ref, data, le=False, pw=pw)
        finally:
            _wipe(old_raw)
            _wipe(new_raw)
            _wipe(data)

    def reset_pin(self, new_pin: str) -> None:
        """RESET RETRY COUNTER: set a new user PIN and unblock it (admin PIN verified)."""
        raw = self._pin_bytes(new_pin, Pw.USER)
        try:
            self._send(Ins.RESET_RETRY_COUNTER, 0x02, Pw.SIGN, raw, le=False)
        finally:
            _wipe(raw)

    # -- keys and signing -----------------------------------------------------------------
    def set_algorithm(self, algorithm: CardAlgorithm) -> None:
        """PUT DATA C1 (admin PIN verified).  Changing it deletes the signature key."""
        self.put_data(Do.ALGO_SIG, algorithm.attributes)

    def public_key(self) -> bytes:
        """The signature public key (Ed25519: 32 bytes; ECDSA: 04||X||Y)."""
        data, _ = self._send(Ins.GENERATE_ASYMMETRIC_KEY_PAIR, 0x81, 0x00, b"\xb6\x00")
        return self._point(data)

    def generate_key(
        self, algorithm: CardAlgorithm, *, timestamp: int | None = None
    ) -> bytes:
        """Generate the signature key on the card (admin PIN verified); returns its
        public key.  Also writes the generation time (CE) and OpenPGP v4 fingerprint (C7)
        as gpg does, so gpg and openpgp-tool show the key."""
        app = self.application_data()
        if app.algorithm_attributes[0] != algorithm.attributes:
            self.set_algorithm(algorithm)
        data, _ = self._send(Ins.GENERATE_ASYMMETRIC_KEY_PAIR, 0x80, 0x00, b"\xb6\x00")
        point = self._point(data)
        created = int(time.time()) if timestamp is None else timestamp
        self.put_data(Do.TIME_SIG, created.to_bytes(4, "big"))
        self.put_data(Do.FP_SIG, openpgp_v4_fingerprint(algorithm, point, created))
        return point

    @staticmethod
    def _point(data: bytes) -> bytes:
        point = _tlv_find(data, Do.PUBLIC_KEY, Do.POINT)
        if point is None:
            raise CardProtocolError("The card's public key response has no EC point (86).")
        return point

    def sign(self, data: bytes) -> bytes:
        """PSO: COMPUTE DIGITAL SIGNATURE.  ECDSA: pass the digest, get r||s.  Ed25519:
        pass the message, get R||S.  Needs the user PIN verified as :attr:`Pw.SIGN`."""
        if not data:
            raise ValueError("nothing to sign")
        signature, _ = self._send(Ins.PSO, 0x9E, 0x9A, data)
        if len(signature) != 64:
            raise CardProtocolError(
                f"The card returned a {len(signature)}-byte signature; 64 bytes expected."
            )
        return signature

    # -- private-use data objects ---------------------------------------------------------
    def read_private_do(self, number: int) -> bytes:
        """DO 0101..0104 (``number`` 1..4); 3 needs the user PIN (82), 4 the admin PIN."""
        if number not in PRIVATE_DOS:
            raise ValueError("private-use DO number must be 1..4")
        return self.get_data(0x0100 + number)

    def write_private_do(self, number: int, data: bytes) -> None:
        """Write DO 0101..0104: 1 and 3 need the user PIN (82), 2 and 4 the admin PIN."""
        if number not in PRIVATE_DOS:
            raise ValueError("private-use DO number must be 1..4")
        self.put_data(0x0100 + number, data)


# ---------------------------------------------------------------------------------------
# Host-side helpers
# ---------------------------------------------------------------------------------------
def _mpi(value: bytes) -> bytes:
    stripped = value.lstrip(b"\x00")
    bits = len(stripped) * 8 - (8 - stripped[0].bit_length()) if stripped else 0
    return bits.to_bytes(2, "big") + stripped


def openpgp_v4_fingerprint(algorithm: CardAlgorithm, point: bytes, created: int) -> bytes:
    """RFC 4880 v4 fingerprint of the card's public key packet (as gpg computes it)."""
    if algorithm is CardAlgorithm.ED25519:
        point = b"\x40" + point  # native point format prefix for EdDSA in OpenPGP
    oid = algorithm.oid
    body = (
        b"\x04"
        + created.to_bytes(4, "big")
        + bytes([algorithm.openpgp_algo, len(oid)])
        + oid
        + _mpi(point)
    )
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).digest()  # noqa: S324


_PREHASH: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(),  # noqa: S303 - whatever digest the caller chose
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}


def verify_card_signature(
    algorithm: CardAlgorithm, public_key: bytes, data: bytes, signature: bytes
) -> bool:
    """Check a card signature.  ``data`` is what was given to :meth:`OpenPgpSession.sign`
    (the message for Ed25519, the digest for ECDSA).  ``signature`` is r||s or R||S.

    secp256k1 signatures are normalised to low-S before verification (cards produce high-S
    about half the time and libsecp256k1 rejects those); replay protection must therefore
    rest on the signed token, never on the signature bytes.
    """
    if len(signature) != 64:
        return False
    if algorithm is CardAlgorithm.ED25519:
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        try:
            nacl.signing.VerifyKey(public_key).verify(data, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if algorithm is CardAlgorithm.NIST_P256:
        digest_alg = _PREHASH.get(len(data))
        if digest_alg is None:
            raise ValueError("ECDSA data must be a 20, 32, 48 or 64-byte digest")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        try:
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(Prehashed(digest_alg)))
        except InvalidSignature:
            return False
        return True
    if algorithm is CardAlgorithm.SECP256K1:
        if len(data) != 32:
            raise ValueError("secp256k1 data must be a 32-byte digest")
        try:
            sig = secp256k1.EcdsaSignature.from_compact(signature).low_s()
        except secp256k1.InvalidSignature:
            return False
        return sig.verify(public_key, data)
    raise ValueError(f"unsupported algorithm {algorithm!r}")
