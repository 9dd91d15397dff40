"""The OpenPGP card application (OpenPGP smart card spec v3.4), over a tiny connection.

:class:`OpenPgpSession` is handed a :class:`~coldvault.cards.iso7816.CardConnection`
(``send_and_receive(apdu) -> (data, sw)``) and never goes looking for one;
``coldvault.backends.pcsc.PcscConnection`` is the PC/SC implementation, tests use the virtual
card's state machine in-process.  Only standard ISO 7816 / OpenPGP APDUs are sent (no vendor
commands), so the same code drives YubiKey 5, Nitrokey 3 and the lab's virtual card.
Framing (chaining, GET RESPONSE) is :mod:`coldvault.cards.iso7816`, TLV parsing
:mod:`coldvault.cards.tlv`; card status words become exceptions in exactly one place,
:func:`status_error`.

Quorum use (the approval loop, :mod:`coldvault.quorum.collect`, does exactly this)::

    session = OpenPgpSession(connection)
    session.select()
    session.verify_pin(pin, Pw.SIGN)                 # PW1 in mode 81: one signature
    signature = session.sign(card_input(algorithm, data))
    verify_card_signature(algorithm, public_key, data, signature)   # coldvault.cards.signatures
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from coldvault.cards import tlv
from coldvault.cards.algorithms import CardAlgorithm
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
from coldvault.cards.fingerprints import openpgp_v4_fingerprint
from coldvault.cards.iso7816 import CardConnection, Ins, Sw, transmit
from coldvault.crypto import wipe
from coldvault.errors import AuthError

OPENPGP_RID_PIX = bytes.fromhex("D27600012401")
#: Manufacturer ids the OpenPGP card spec reserves for test cards; the lab's virtual card
#: uses 0xFFFF.  Production refuses such cards unless emulated hardware is allowed.
TEST_MANUFACTURERS = frozenset({0x0000, 0xFFFF})
MIN_PIN_LENGTH = {0x81: 6, 0x82: 6, 0x83: 8}
MAX_PIN_LENGTH = 127
#: The resetting code (DO D3) is at least 8 characters (spec 3.4, 4.3.4).
MIN_RESET_CODE_LENGTH = 8
PRIVATE_DOS = range(1, 5)
MAX_CARDHOLDER_NAME = 39
SIGNATURE_LENGTH = 64


# ---------------------------------------------------------------------------------------
# PIN references and PIN errors
# ---------------------------------------------------------------------------------------
class Pw(enum.IntEnum):
    """PIN references for VERIFY: PW1 for one signature, PW1 for other uses, PW3 (admin)."""

    SIGN = 0x81
    USER = 0x82
    ADMIN = 0x83

    @property
    def label(self) -> str:
        return "admin PIN" if self is Pw.ADMIN else "user PIN"


class WrongPin(AuthError):
    """A card PIN was wrong; carries the tries left before it blocks.

    Its code says *card*: an HSM token's wrong PIN is
    :class:`coldvault.backends.pkcs11.errors.WrongPin` (``hsm-wrong-pin``)."""

    code = "card-wrong-pin"

    def __init__(self, pw: Pw, tries_left: int) -> None:
        plural = "try" if tries_left == 1 else "tries"
        super().__init__(
            f"The card rejected the {pw.label}; {tries_left} {plural} left before it blocks."
        )
        self.pw = pw
        self.tries_left = tries_left
        self.attempts_remaining = tries_left


class PinBlocked(AuthError):
    """A card PIN is blocked (no tries left)."""

    code = "pin-blocked"

    def __init__(self, pw: Pw) -> None:
        hint = (
            "the card must be reset by an administrator"
            if pw is Pw.ADMIN
            else "unblock it with the admin PIN (coldvault card unblock) or with the card's "
            "resetting code (coldvault card unblock --reset-code)"
        )
        super().__init__(f"The card's {pw.label} is blocked; {hint}.")
        self.pw = pw
        self.tries_left = 0
        self.attempts_remaining = 0


class WrongResetCode(AuthError):
    """The card rejected its resetting code; carries the code's tries left.  The user PIN
    was not changed."""

    code = "card-wrong-reset-code"

    def __init__(self, tries_left: int) -> None:
        plural = "try" if tries_left == 1 else "tries"
        counter = (
            f"{tries_left} {plural} left before it blocks" if tries_left
            else "it is now blocked (0 tries left); the admin PIN can still unblock the user "
            "PIN (coldvault card unblock)"
        )  # fmt: skip
        super().__init__(
            f"The card rejected the resetting code; {counter}. The user PIN was not changed."
        )
        self.tries_left = tries_left
        self.attempts_remaining = tries_left


class ResetCodeUnusable(AuthError):
    """The card has no resetting code, or it is blocked (its counter is 0)."""

    code = "reset-code-unusable"

    def __init__(self) -> None:
        super().__init__(
            "The card's resetting code is not set or is blocked (0 tries left); unblock the "
            "user PIN with the admin PIN (coldvault card unblock), or have an admin set a new "
            "code (coldvault card set-reset-code)."
        )
        self.tries_left = 0
        self.attempts_remaining = 0


class ResetCodeFormatError(AuthError):
    """A resetting code has an impossible length; nothing was sent to the card."""

    code = "reset-code-format"

    def __init__(self) -> None:
        super().__init__(
            f"The resetting code must be {MIN_RESET_CODE_LENGTH} to {MAX_PIN_LENGTH} "
            "characters long; it was not sent to the card."
        )
        self.minimum = MIN_RESET_CODE_LENGTH


class PinRequired(AuthError):
    """The card requires a PIN verification that has not happened (6982)."""

    code = "pin-required"

    def __init__(self, ins: int) -> None:
        super().__init__(
            f"The card requires PIN verification before command {ins:02X}; verify the PIN "
            "first (a signature PIN is valid for one signature only)."
        )
        self.ins = ins
        self.sw = int(Sw.SECURITY_STATUS)


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
# Data objects
# ---------------------------------------------------------------------------------------
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
    RESETTING_CODE = 0xD3
    PUBLIC_KEY = 0x7F49
    POINT = 0x86


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


def parse_pin_status(data: bytes) -> PinStatus:
    """Parse DO C4 (PW status bytes)."""
    if len(data) < 7:
        raise CardProtocolError("The card's PIN status (DO C4) is shorter than 7 bytes.")
    return PinStatus(data[0] == 0, data[1] & 0x7F, data[2], data[3], data[4], data[5], data[6])


def parse_application_data(data: bytes) -> ApplicationData:
    """Parse DO 6E (with or without its outer tag)."""
    inner = tlv.find(data, Do.APPLICATION)
    if inner is not None:
        data = inner
    aid = tlv.find(data, Do.AID)
    if aid is None or len(aid) != 16 or not aid.startswith(OPENPGP_RID_PIX):
        raise CardProtocolError("The card's application data has no valid OpenPGP AID.")
    disc = tlv.find(data, Do.DISCRETIONARY)
    if disc is None:  # some cards put the discretionary objects directly in 6E
        disc = data

    def get(tag: int, size: int | None = None) -> bytes:
        value = tlv.find(disc, tag)
        if value is None or (size is not None and len(value) < size):
            raise CardProtocolError(f"The card's application data lacks DO {tag:02X}.")
        return value

    fps = get(Do.FINGERPRINTS, 60)
    times = tlv.find(disc, Do.GEN_TIMES) or bytes(12)
    return ApplicationData(
        aid=aid,
        version=(aid[6], aid[7]),
        manufacturer=int.from_bytes(aid[8:10], "big"),
        serial=int.from_bytes(aid[10:14], "big"),
        historical_bytes=tlv.find(data, Do.HISTORICAL) or b"",
        extended_capabilities=get(Do.EXT_CAPS),
        algorithm_attributes=(get(Do.ALGO_SIG), get(Do.ALGO_DEC), get(Do.ALGO_AUT)),
        pin_status=parse_pin_status(get(Do.PW_STATUS)),
        fingerprints=(fps[0:20], fps[20:40], fps[40:60]),
        generation_times=(
            int.from_bytes(times[0:4], "big"),
            int.from_bytes(times[4:8], "big"),
            int.from_bytes(times[8:12], "big"),
        ),
    )


# ---------------------------------------------------------------------------------------
# Status words -> exceptions: the one place
# ---------------------------------------------------------------------------------------
def status_error(sw: int, ins: int, *, pw: Pw | None = None, tag: int | None = None) -> Exception:
    """The exception for status word ``sw`` answering command ``ins`` (``pw``: the PIN the
    command verified; ``tag``: the data object it read or wrote)."""
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
        """Send one command, collect its whole response, map a failing status word."""
        response, sw = transmit(self.connection, ins, p1, p2, data, le=le)
        if check and sw != Sw.OK:
            raise status_error(sw, ins, pw=pw, tag=tag)
        return response, sw

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
        name = tlv.find(data, Do.CARDHOLDER, Do.NAME)
        if name is None:
            name = tlv.find(data, Do.NAME) or b""
        return name.decode("latin-1")

    def set_cardholder_name(self, name: str) -> None:
        """Write DO 5B (needs the admin PIN verified)."""
        raw = name.encode("latin-1")
        if len(raw) > MAX_CARDHOLDER_NAME:
            raise ValueError(f"cardholder name is longer than {MAX_CARDHOLDER_NAME} characters")
        self.put_data(Do.NAME, raw)

    def algorithm(self) -> CardAlgorithm | None:
        """The signature key's algorithm, or None if it is one coldvault does not use."""
        return self.application_data().signature_algorithm

    def pin_status(self) -> PinStatus:
        return parse_pin_status(self.get_data(Do.PW_STATUS))

    def signature_counter(self) -> int:
        data = self.get_data(Do.SECURITY_SUPPORT)
        value = tlv.find(data, Do.SECURITY_SUPPORT, Do.SIG_COUNTER)
        if value is None:
            value = tlv.find(data, Do.SIG_COUNTER)
        if value is None or len(value) != 3:
            raise CardProtocolError("The card's security support template has no counter.")
        return int.from_bytes(value, "big")

    # -- PINs -----------------------------------------------------------------------------
    @staticmethod
    def _pin_bytes(pin: str, pw: Pw) -> bytearray:
        raw = bytearray(pin.encode("utf-8"))
        minimum = MIN_PIN_LENGTH[pw]
        if not minimum <= len(raw) <= MAX_PIN_LENGTH:
            wipe(raw)
            raise PinFormatError(pw, minimum)
        return raw

    def verify_pin(self, pin: str, pw: Pw) -> None:
        """VERIFY; raises :class:`WrongPin` (with tries left) or :class:`PinBlocked`."""
        raw = self._pin_bytes(pin, pw)
        try:
            _, sw = self._send(Ins.VERIFY, 0x00, pw, raw, le=False, pw=pw, check=False)
        finally:
            wipe(raw)
        if sw == Sw.OK:
            return
        if sw == Sw.SECURITY_STATUS:  # some cards (YubiKey) answer a wrong PIN with 6982
            tries = self.pin_status().tries(pw)
            raise PinBlocked(pw) if tries == 0 else WrongPin(pw, tries)
        raise status_error(sw, Ins.VERIFY, pw=pw)

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
            wipe(old_raw)
            wipe(new_raw)
            wipe(data)

    def reset_pin(self, new_pin: str) -> None:
        """RESET RETRY COUNTER: set a new user PIN and unblock it (admin PIN verified)."""
        raw = self._pin_bytes(new_pin, Pw.USER)
        try:
            self._send(Ins.RESET_RETRY_COUNTER, 0x02, Pw.SIGN, raw, le=False)
        finally:
            wipe(raw)

    @staticmethod
    def _reset_code_bytes(code: str) -> bytearray:
        raw = bytearray(code.encode("utf-8"))
        if not MIN_RESET_CODE_LENGTH <= len(raw) <= MAX_PIN_LENGTH:
            wipe(raw)
            raise ResetCodeFormatError()
        return raw

    def set_reset_code(self, code: str) -> None:
        """PUT DATA D3: set the resetting code (admin PIN verified); its counter is 3."""
        raw = self._reset_code_bytes(code)
        try:
            self._send(Ins.PUT_DATA, 0x00, Do.RESETTING_CODE, raw, le=False,
                       pw=Pw.ADMIN, tag=Do.RESETTING_CODE)  # fmt: skip
        finally:
            wipe(raw)

    def reset_pin_with_code(self, code: str, new_pin: str) -> None:
        """RESET RETRY COUNTER with P1=00: the resetting code and a new user PIN in one
        command; raises :class:`WrongResetCode` (tries left) or :class:`ResetCodeUnusable`."""
        raw_code = self._reset_code_bytes(code)
        try:
            raw_pin = self._pin_bytes(new_pin, Pw.USER)
        except BaseException:
            wipe(raw_code)
            raise
        data = raw_code + raw_pin
        try:
            _, sw = self._send(Ins.RESET_RETRY_COUNTER, 0x00, Pw.SIGN, data, le=False,
                               check=False)  # fmt: skip
        finally:
            wipe(raw_code)
            wipe(raw_pin)
            wipe(data)
        if sw == Sw.OK:
            return
        if sw & 0xFFF0 == 0x63C0:
            raise WrongResetCode(sw & 0x0F)
        if sw == Sw.AUTH_BLOCKED:
            raise ResetCodeUnusable()
        raise status_error(sw, Ins.RESET_RETRY_COUNTER)

    # -- keys and signing -----------------------------------------------------------------
    def set_algorithm(self, algorithm: CardAlgorithm) -> None:
        """PUT DATA C1 (admin PIN verified).  Changing it deletes the signature key."""
        self.put_data(Do.ALGO_SIG, algorithm.attributes)

    def public_key(self) -> bytes:
        """The signature public key (Ed25519: 32 bytes; ECDSA: 04||X||Y)."""
        data, _ = self._send(Ins.GENERATE_ASYMMETRIC_KEY_PAIR, 0x81, 0x00, b"\xb6\x00")
        return self._point(data)

    def generate_key(self, algorithm: CardAlgorithm, *, timestamp: int | None = None) -> bytes:
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
        point = tlv.find(data, Do.PUBLIC_KEY, Do.POINT)
        if point is None:
            raise CardProtocolError("The card's public key response has no EC point (86).")
        return point

    def sign(self, data: bytes) -> bytes:
        """PSO: COMPUTE DIGITAL SIGNATURE.  ECDSA: pass the digest, get r||s.  Ed25519:
        pass the message, get R||S.  Needs the user PIN verified as :attr:`Pw.SIGN`.
        :func:`coldvault.cards.signatures.card_input` says which to pass."""
        if not data:
            raise ValueError("nothing to sign")
        signature, _ = self._send(Ins.PSO, 0x9E, 0x9A, data)
        if len(signature) != SIGNATURE_LENGTH:
            raise CardProtocolError(
                f"The card returned a {len(signature)}-byte signature; "
                f"{SIGNATURE_LENGTH} bytes expected."
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
