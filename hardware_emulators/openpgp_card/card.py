"""The virtual OpenPGP card's APDU state machine (OpenPGP card spec v3.4 subset).

``OpenPgpCard.process(apdu) -> response`` is pure apart from the ``persist`` callback that
is called after every change of persistent state; the vpcd socket loop lives in
:mod:`.vpcd`.  Short APDUs only, with command chaining (CLA bit 0x10) for long commands and
``61xx`` + GET RESPONSE for long responses.  See docs/cards.md for the supported commands.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import keys
from .state import CardState, Pin
from .tlv import parse, tlv

RID_PIX = bytes.fromhex("D27600012401")
VERSION = bytes([3, 4])
MAX_CHAIN = 4096
MAX_DO = 255
MIN_PIN = {0x81: 6, 0x82: 6, 0x83: 8}
#: The resetting code's minimum length (spec 3.4, DO D3: 8 bytes or empty to delete it).
MIN_RC = 8
MAX_PIN = 127
#: Historical bytes: category 00, card service data (31 C0: select by full/partial DF
#: name), card capabilities (73 C0 01 80: command chaining, no extended Lc/Le),
#: status 05 90 00 (operational).
HISTORICAL = bytes.fromhex("0031C073C00180059000")
#: ATR: TS=3B, T0=8A (TD1, 10 historical bytes), TD1=80 (T=0, TD2), TD2=01 (T=1), hist, TCK.
_ATR_BODY = bytes([0x8A, 0x80, 0x01]) + HISTORICAL


def _atr() -> bytes:
    tck = 0
    for b in _ATR_BODY:
        tck ^= b
    return bytes([0x3B]) + _ATR_BODY + bytes([tck])


ATR = _atr()


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
    CHAINING_UNSUPPORTED = 0x6884
    WRONG_DATA = 0x6A80
    FUNC_UNSUPPORTED = 0x6A81
    NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88
    INS_UNSUPPORTED = 0x6D00
    CLA_UNSUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


class Tag(enum.IntEnum):
    AID = 0x4F
    NAME = 0x5B
    LOGIN = 0x5E
    LANG = 0x5F2D
    SEX = 0x5F35
    URL = 0x5F50
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
    CA_FINGERPRINTS = 0xC6
    FP_SIG = 0xC7
    FP_DEC = 0xC8
    FP_AUT = 0xC9
    CA_FP_1 = 0xCA
    CA_FP_2 = 0xCB
    CA_FP_3 = 0xCC
    GEN_TIMES = 0xCD
    TIME_SIG = 0xCE
    TIME_DEC = 0xCF
    TIME_AUT = 0xD0
    RESETTING_CODE = 0xD3
    KEY_INFO = 0xDE
    ALGO_INFO = 0xFA
    CERT = 0x7F21
    PUBLIC_KEY = 0x7F49
    POINT = 0x86
    PRIVATE_1 = 0x0101
    PRIVATE_2 = 0x0102
    PRIVATE_3 = 0x0103
    PRIVATE_4 = 0x0104


SLOTS = ("sig", "dec", "aut")
_CRT: dict[int, str] = {0xB6: "sig", 0xB8: "dec", 0xA4: "aut"}
_ALGO_TAG: dict[int, str] = {Tag.ALGO_SIG: "sig", Tag.ALGO_DEC: "dec", Tag.ALGO_AUT: "aut"}
_FP_TAG: dict[int, str] = {Tag.FP_SIG: "sig", Tag.FP_DEC: "dec", Tag.FP_AUT: "aut"}
_CA_FP_TAG: dict[int, str] = {Tag.CA_FP_1: "sig", Tag.CA_FP_2: "dec", Tag.CA_FP_3: "aut"}
_TIME_TAG: dict[int, str] = {Tag.TIME_SIG: "sig", Tag.TIME_DEC: "dec", Tag.TIME_AUT: "aut"}
#: private-use DOs: (read access, write access); None = always, else the PW reference
_PRIVATE_ACCESS: dict[int, tuple[int | None, int]] = {
    Tag.PRIVATE_1: (None, 0x82),
    Tag.PRIVATE_2: (None, 0x83),
    Tag.PRIVATE_3: (0x82, 0x82),
    Tag.PRIVATE_4: (0x83, 0x83),
}


class CardStatus(Exception):
    """Internal: abort the command with this status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass(frozen=True)
class Apdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int  # expected response length; 256 when absent or 00

    @classmethod
    def parse(cls, raw: bytes) -> Apdu:
        if len(raw) < 4:
            raise CardStatus(Sw.WRONG_LENGTH)
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2, b"", 256)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        lc = body[0]
        if lc == 0:  # extended length is not supported
            raise CardStatus(Sw.WRONG_LENGTH)
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, body[1:], 256)
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
        raise CardStatus(Sw.WRONG_LENGTH)


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class OpenPgpCard:
    """One card: persistent :class:`CardState` plus volatile session state."""

    def __init__(
        self, state: CardState, persist: Callable[[CardState], None] | None = None
    ) -> None:
        self.state = state
        self._persist = persist or (lambda _s: None)
        self.power_off()

    # -- power / session ------------------------------------------------------------------
    def power_off(self) -> None:
        self.selected = False
        self.verified: set[int] = set()
        self._chain: tuple[tuple[int, int, int], bytearray] | None = None
        self._pending = b""

    def reset(self) -> None:
        self.power_off()

    @property
    def aid(self) -> bytes:
        s = self.state
        return (
            RID_PIX
            + VERSION
            + s.manufacturer.to_bytes(2, "big")
            + s.serial.to_bytes(4, "big")
            + b"\x00\x00"
        )

    def _save(self) -> None:
        self._persist(self.state)

    # -- entry point ----------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        """Handle one command APDU and return response data followed by SW1 SW2."""
        try:
            apdu = Apdu.parse(raw)
            if apdu.ins == Ins.GET_RESPONSE and apdu.cla & 0xEF == 0:
                return self._get_response(apdu.le)
            self._pending = b""
            complete = self._chaining(apdu)
            if complete is None:
                return _sw(Sw.OK)
            data = self._dispatch(complete)
        except CardStatus as status:
            return _sw(status.sw)
        return self._respond(data, complete.le)

    def _chaining(self, apdu: Apdu) -> Apdu | None:
        if apdu.cla & ~0x10 & 0xFF:
            self._chain = None
            raise CardStatus(Sw.CLA_UNSUPPORTED)
        header = (apdu.ins, apdu.p1, apdu.p2)
        if self._chain is not None and self._chain[0] != header:
            self._chain = None
            raise CardStatus(Sw.CONDITIONS)
        if apdu.cla & 0x10:
            if self._chain is None:
                self._chain = (header, bytearray())
            self._chain[1].extend(apdu.data)
            if len(self._chain[1]) > MAX_CHAIN:
                self._chain = None
                raise CardStatus(Sw.WRONG_LENGTH)
            return None
        if self._chain is not None:
            data = bytes(self._chain[1]) + apdu.data
            self._chain = None
            return Apdu(0, apdu.ins, apdu.p1, apdu.p2, data, apdu.le)
        return apdu

    def _respond(self, data: bytes, le: int) -> bytes:
        if len(data) <= le:
            return data + _sw(Sw.OK)
        self._pending = data[le:]
        return data[:le] + bytes([0x61, min(len(self._pending), 256) & 0xFF])

    def _get_response(self, le: int) -> bytes:
        if not self._pending:
            raise CardStatus(Sw.CONDITIONS)
        data, self._pending = self._pending, b""
        return self._respond(data, le)

    def _dispatch(self, apdu: Apdu) -> bytes:
        if apdu.ins == Ins.SELECT:
            return self._select(apdu)
        if not self.selected:
            raise CardStatus(Sw.CONDITIONS)
        handlers: dict[int, Callable[[Apdu], bytes]] = {
            Ins.GET_DATA: self._get_data,
            Ins.VERIFY: self._verify,
            Ins.CHANGE_REFERENCE_DATA: self._change_reference_data,
            Ins.RESET_RETRY_COUNTER: self._reset_retry_counter,
            Ins.PUT_DATA: self._put_data,
            Ins.GENERATE_ASYMMETRIC_KEY_PAIR: self._generate,
            Ins.PSO: self._pso,
        }
        handler = handlers.get(apdu.ins)
        if handler is None:
            raise CardStatus(Sw.INS_UNSUPPORTED)
        return handler(apdu)

    # -- SELECT ---------------------------------------------------------------------------
    def _select(self, apdu: Apdu) -> bytes:
        if apdu.p1 != 0x04:
            raise CardStatus(Sw.WRONG_P1P2)
        if len(apdu.data) < 6 or not self.aid.startswith(apdu.data):
            self.selected = False
            raise CardStatus(Sw.NOT_FOUND)
        self.selected = True
        return b""

    # -- GET DATA -------------------------------------------------------------------------
    def _pw_status(self) -> bytes:
        s = self.state
        return bytes(
            [
                0x00 if s.pw1_single_use else 0x01,
                MAX_PIN,
                MAX_PIN,
                MAX_PIN,
                s.pw1.tries,
                s.rc.tries if s.rc is not None else 0,  # 0: no resetting code set
                s.pw3.tries,
            ]
        )

    def _ext_caps(self) -> bytes:
        # private DOs (0x08), algorithm attributes changeable (0x04), PW status changeable
        # (0x10); no SM, no GET CHALLENGE, no key import, no KDF.
        return bytes([0x1C, 0x00, 0, 0, 0, 0, 0, MAX_DO, 0x00, 0x00])

    def _fingerprints(self, table: dict[str, bytes]) -> bytes:
        return b"".join(table.get(slot, bytes(20)) for slot in SLOTS)

    def _gen_times(self) -> bytes:
        times = self.state.generation_times
        return b"".join(times.get(slot, 0).to_bytes(4, "big") for slot in SLOTS)

    def _key_info(self) -> bytes:
        out = b""
        for ref, slot in enumerate(SLOTS, start=1):
            out += bytes([ref, 0x01 if slot in self.state.private_keys else 0x00])
        return out

    def _discretionary(self) -> bytes:
        s = self.state
        return (
            tlv(Tag.EXT_CAPS, self._ext_caps())
            + tlv(Tag.ALGO_SIG, s.attributes["sig"])
            + tlv(Tag.ALGO_DEC, s.attributes["dec"])
            + tlv(Tag.ALGO_AUT, s.attributes["aut"])
            + tlv(Tag.PW_STATUS, self._pw_status())
            + tlv(Tag.FINGERPRINTS, self._fingerprints(s.fingerprints))
            + tlv(Tag.CA_FINGERPRINTS, self._fingerprints(s.ca_fingerprints))
            + tlv(Tag.GEN_TIMES, self._gen_times())
            + tlv(Tag.KEY_INFO, self._key_info())
        )

    def _application_data(self) -> bytes:
        return (
            tlv(Tag.AID, self.aid)
            + tlv(Tag.HISTORICAL, HISTORICAL)
            + tlv(Tag.DISCRETIONARY, self._discretionary())
        )

    def _algo_info(self) -> bytes:
        out = b""
        for algo in keys.SIGNING.values():
            out += tlv(Tag.ALGO_SIG, algo.attributes)
        for algo in keys.DECRYPTION.values():
            out += tlv(Tag.ALGO_DEC, algo.attributes)
        for algo in keys.SIGNING.values():
            out += tlv(Tag.ALGO_AUT, algo.attributes)
        return out

    def _get_data(self, apdu: Apdu) -> bytes:
        tag = (apdu.p1 << 8) | apdu.p2
        s = self.state
        simple: dict[int, Callable[[], bytes]] = {
            Tag.AID: lambda: self.aid,
            Tag.HISTORICAL: lambda: HISTORICAL,
            Tag.APPLICATION: self._application_data,
            Tag.DISCRETIONARY: self._discretionary,
            Tag.EXT_CAPS: self._ext_caps,
            Tag.PW_STATUS: self._pw_status,
            Tag.FINGERPRINTS: lambda: self._fingerprints(s.fingerprints),
            Tag.CA_FINGERPRINTS: lambda: self._fingerprints(s.ca_fingerprints),
            Tag.GEN_TIMES: self._gen_times,
            Tag.KEY_INFO: self._key_info,
            Tag.ALGO_INFO: self._algo_info,
            Tag.CARDHOLDER: lambda: (
                tlv(Tag.NAME, s.name) + tlv(Tag.LANG, s.lang) + tlv(Tag.SEX, s.sex)
            ),
            Tag.NAME: lambda: s.name,
            Tag.LANG: lambda: s.lang,
            Tag.SEX: lambda: s.sex,
            Tag.URL: lambda: s.url,
            Tag.LOGIN: lambda: s.login,
            Tag.SECURITY_SUPPORT: lambda: tlv(
                Tag.SIG_COUNTER, s.signature_counter.to_bytes(3, "big")
            ),
            Tag.SIG_COUNTER: lambda: s.signature_counter.to_bytes(3, "big"),
            Tag.CERT: lambda: b"",
        }
        if tag in simple:
            return simple[tag]()
        if tag in _ALGO_TAG:
            return s.attributes[_ALGO_TAG[tag]]
        if tag in _PRIVATE_ACCESS:
            read, _write = _PRIVATE_ACCESS[tag]
            if read is not None and read not in self.verified:
                raise CardStatus(Sw.SECURITY_STATUS)
            return s.private_dos.get(tag, b"")
        raise CardStatus(Sw.DATA_NOT_FOUND)

    # -- PINs -----------------------------------------------------------------------------
    def _pin(self, ref: int) -> Pin:
        if ref in (0x81, 0x82):
            return self.state.pw1
        if ref == 0x83:
            return self.state.pw3
        raise CardStatus(Sw.WRONG_P1P2)

    def _check_pin(self, ref: int, candidate: bytes) -> None:
        """Compare ``candidate`` with PIN ``ref``; counts down and raises on mismatch."""
        pin = self._pin(ref)
        if pin.tries == 0:
            raise CardStatus(Sw.AUTH_BLOCKED)
        if pin.matches(candidate):
            if pin.tries != 3:
                pin.tries = 3
                self._save()
            return
        pin.tries -= 1
        self._save()
        if ref in (0x81, 0x82):
            self.verified -= {0x81, 0x82}
        else:
            self.verified.discard(0x83)
        raise CardStatus(0x63C0 | pin.tries)

    def _verify(self, apdu: Apdu) -> bytes:
        ref = apdu.p2
        if apdu.p1 == 0xFF and not apdu.data:  # v3: reset the verification status
            self._pin(ref)
            self.verified.discard(ref)
            return b""
        if apdu.p1 != 0x00:
            raise CardStatus(Sw.WRONG_P1P2)
        pin = self._pin(ref)
        if not apdu.data:
            if ref in self.verified:
                return b""
            if pin.tries == 0:
                raise CardStatus(Sw.AUTH_BLOCKED)
            raise CardStatus(0x63C0 | pin.tries)
        self._check_pin(ref, apdu.data)
        self.verified.add(ref)
        return b""

    def _change_reference_data(self, apdu: Apdu) -> bytes:
        ref = apdu.p2
        if apdu.p1 != 0x00 or ref not in (0x81, 0x83):
            raise CardStatus(Sw.WRONG_P1P2)
        pin = self._pin(ref)
        old, new = apdu.data[: pin.length], apdu.data[pin.length :]
        self._check_pin(ref, old)
        if not MIN_PIN[ref] <= len(new) <= MAX_PIN:
            raise CardStatus(Sw.WRONG_DATA)
        replacement = Pin.create(new)
        if ref == 0x81:
            self.state.pw1 = replacement
            self.verified -= {0x81, 0x82}
        else:
            self.state.pw3 = replacement
            self.verified.discard(0x83)
        self._save()
        return b""

    def _reset_retry_counter(self, apdu: Apdu) -> bytes:
        """Spec 3.4 §7.2.4: P1=00 -- data is the resetting code followed by the new PW1, the
        code checked against its own retry counter (3 tries, then blocked: 6983); P1=02 --
        data is the new PW1, PW3 verified.  Either way PW1 is set with full tries."""
        if apdu.p2 != 0x81:
            raise CardStatus(Sw.WRONG_P1P2)
        if apdu.p1 == 0x00:
            rc = self.state.rc
            if rc is None or rc.tries == 0:  # not set, or blocked
                raise CardStatus(Sw.AUTH_BLOCKED)
            code, new = apdu.data[: rc.length], apdu.data[rc.length :]
            if not rc.matches(code):
                rc.tries -= 1
                self._save()
                raise CardStatus(0x63C0 | rc.tries)
            rc.tries = 3
        elif apdu.p1 == 0x02:
            if 0x83 not in self.verified:
                raise CardStatus(Sw.SECURITY_STATUS)
            new = apdu.data
        else:
            raise CardStatus(Sw.WRONG_P1P2)
        if not MIN_PIN[0x81] <= len(new) <= MAX_PIN:
            self._save()
            raise CardStatus(Sw.WRONG_DATA)
        self.state.pw1 = Pin.create(new)
        self.verified -= {0x81, 0x82}
        self._save()
        return b""

    # -- PUT DATA -------------------------------------------------------------------------
    def _put_data(self, apdu: Apdu) -> bytes:
        tag = (apdu.p1 << 8) | apdu.p2
        data = apdu.data
        s = self.state
        if tag in _PRIVATE_ACCESS:
            _read, write = _PRIVATE_ACCESS[tag]
            if write not in self.verified:
                raise CardStatus(Sw.SECURITY_STATUS)
            if len(data) > MAX_DO:
                raise CardStatus(Sw.WRONG_LENGTH)
            s.private_dos[tag] = data
            self._save()
            return b""
        if 0x83 not in self.verified:
            raise CardStatus(Sw.SECURITY_STATUS)
        if tag == Tag.RESETTING_CODE:  # write only; empty data deletes the code
            if data and not MIN_RC <= len(data) <= MAX_PIN:
                raise CardStatus(Sw.WRONG_DATA)
            s.rc = Pin.create(data) if data else None
        elif tag in _ALGO_TAG:
            slot = _ALGO_TAG[tag]
            table = keys.DECRYPTION if slot == "dec" else keys.SIGNING
            attrs = keys.normalise(data)
            if attrs not in table:
                raise CardStatus(Sw.WRONG_DATA)
            if s.attributes[slot] != attrs:
                s.attributes[slot] = attrs
                s.private_keys.pop(slot, None)
                s.fingerprints.pop(slot, None)
                s.generation_times.pop(slot, None)
        elif tag in _FP_TAG or tag in _CA_FP_TAG:
            if len(data) != 20:
                raise CardStatus(Sw.WRONG_LENGTH)
            if tag in _FP_TAG:
                s.fingerprints[_FP_TAG[tag]] = data
            else:
                s.ca_fingerprints[_CA_FP_TAG[tag]] = data
        elif tag in _TIME_TAG:
            if len(data) != 4:
                raise CardStatus(Sw.WRONG_LENGTH)
            s.generation_times[_TIME_TAG[tag]] = int.from_bytes(data, "big")
        elif tag == Tag.PW_STATUS:
            if len(data) not in (1, 4) or data[0] not in (0, 1):
                raise CardStatus(Sw.WRONG_DATA)
            s.pw1_single_use = data[0] == 0
        elif tag in (Tag.NAME, Tag.LANG, Tag.SEX, Tag.URL, Tag.LOGIN):
            limit = {Tag.NAME: 39, Tag.LANG: 8, Tag.SEX: 1}.get(Tag(tag), MAX_DO)
            if len(data) > limit:
                raise CardStatus(Sw.WRONG_LENGTH)
            attr = {
                Tag.NAME: "name",
                Tag.LANG: "lang",
                Tag.SEX: "sex",
                Tag.URL: "url",
                Tag.LOGIN: "login",
            }[Tag(tag)]
            setattr(s, attr, data)
        else:
            raise CardStatus(Sw.DATA_NOT_FOUND)
        self._save()
        return b""

    # -- keys -----------------------------------------------------------------------------
    def _algorithm(self, slot: str) -> keys.Algorithm:
        attrs = self.state.attributes[slot]
        table = keys.DECRYPTION if slot == "dec" else keys.SIGNING
        algo = table.get(attrs)
        if algo is None:
            raise CardStatus(Sw.FUNC_UNSUPPORTED)
        return algo

    def _generate(self, apdu: Apdu) -> bytes:
        if apdu.p2 != 0x00 or len(apdu.data) != 2 or apdu.data[1] != 0x00:
            raise CardStatus(Sw.WRONG_DATA if apdu.p2 == 0 else Sw.WRONG_P1P2)
        slot = _CRT.get(apdu.data[0])
        if slot is None:
            raise CardStatus(Sw.WRONG_DATA)
        s = self.state
        if apdu.p1 == 0x80:
            if 0x83 not in self.verified:
                raise CardStatus(Sw.SECURITY_STATUS)
            algo = self._algorithm(slot)
            s.private_keys[slot] = keys.generate(algo)
            s.fingerprints.pop(slot, None)
            s.generation_times[slot] = int(time.time())
            if slot == "sig":
                s.signature_counter = 0
            self._save()
        elif apdu.p1 != 0x81:
            raise CardStatus(Sw.WRONG_P1P2)
        private = s.private_keys.get(slot)
        if private is None:
            raise CardStatus(Sw.DATA_NOT_FOUND)
        point = keys.public_point(self._algorithm(slot), private)
        return tlv(Tag.PUBLIC_KEY, tlv(Tag.POINT, point))

    def _pso(self, apdu: Apdu) -> bytes:
        if (apdu.p1, apdu.p2) == (0x80, 0x86):
            return self._decipher(apdu)
        if (apdu.p1, apdu.p2) != (0x9E, 0x9A):
            raise CardStatus(Sw.WRONG_P1P2)
        if 0x81 not in self.verified:
            raise CardStatus(Sw.SECURITY_STATUS)
        s = self.state
        private = s.private_keys.get("sig")
        if private is None:
            raise CardStatus(Sw.DATA_NOT_FOUND)
        if not apdu.data:
            raise CardStatus(Sw.WRONG_LENGTH)
        try:
            signature = keys.sign(self._algorithm("sig"), private, apdu.data)
        except keys.BadInput as err:
            raise CardStatus(Sw.WRONG_LENGTH) from err
        if s.pw1_single_use:
            self.verified.discard(0x81)
        s.signature_counter = min(s.signature_counter + 1, 0xFFFFFF)
        self._save()
        return signature

    def _decipher(self, apdu: Apdu) -> bytes:
        """PSO:DECIPHER for ECDH keys (spec 3.4 §7.2.11): the data is the cipher DO
        ``A6 { 7F49 { 86 <ephemeral public point> } }``; the response is the shared secret.
        Needs PW1 verified in mode 82 (which stays verified, unlike 81)."""
        if 0x82 not in self.verified:
            raise CardStatus(Sw.SECURITY_STATUS)
        private = self.state.private_keys.get("dec")
        if private is None:
            raise CardStatus(Sw.DATA_NOT_FOUND)
        algorithm = self._algorithm("dec")
        point = _cipher_point(apdu.data)
        try:
            return keys.ecdh(algorithm, private, point)
        except keys.BadInput as err:
            raise CardStatus(Sw.WRONG_DATA) from err


def _only(data: bytes, tag: int) -> bytes:
    """The value of ``data`` when it is exactly one TLV with ``tag``, else ``6A80``."""
    try:
        items = parse(data)
    except ValueError as err:
        raise CardStatus(Sw.WRONG_DATA) from err
    if len(items) != 1 or items[0][0] != tag:
        raise CardStatus(Sw.WRONG_DATA)
    return items[0][1]


def _cipher_point(data: bytes) -> bytes:
    """The ephemeral point of an ECDH cipher DO ``A6 { 7F49 { 86 point } }``."""
    return _only(_only(_only(data, 0xA6), Tag.PUBLIC_KEY), Tag.POINT)
