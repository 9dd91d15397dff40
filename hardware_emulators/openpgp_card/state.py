"""Persistent state of one virtual OpenPGP card (a JSON file, rewritten atomically).

EMULATOR ONLY: the state file holds the card's private signature key in clear.  That is
acceptable for a lab card and never for real funds; the file says so in its ``WARNING``
field.  PINs are stored as salted PBKDF2-SHA256 hashes (with their length, which the card
needs to split CHANGE REFERENCE DATA input), never in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .keys import CV25519, ED25519

FORMAT = "coldvault-virtual-openpgp-card/1"
WARNING = (
    "EMULATOR ONLY: this virtual smart card stores its private key in clear in this file. "
    "Never use it for real keys or funds."
)
#: Manufacturer id 0xFFFF is reserved for test cards by the OpenPGP card spec; gpg shows
#: "test card" and coldvault treats it as emulated hardware.
EMULATED_MANUFACTURER = 0xFFFF
DEFAULT_PW1 = "123456"
DEFAULT_PW3 = "12345678"
MAX_TRIES = 3
_PBKDF2_ROUNDS = 20_000


@dataclass
class Pin:
    salt: bytes
    digest: bytes
    length: int
    tries: int = MAX_TRIES

    @classmethod
    def create(cls, pin: bytes) -> Pin:
        salt = secrets.token_bytes(16)
        return cls(salt, _hash(pin, salt), len(pin), MAX_TRIES)

    def matches(self, pin: bytes) -> bool:
        return hmac.compare_digest(self.digest, _hash(pin, self.salt))

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": self.salt.hex(),
            "pbkdf2_sha256": self.digest.hex(),
            "length": self.length,
            "tries": self.tries,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Pin:
        return cls(
            bytes.fromhex(d["salt"]), bytes.fromhex(d["pbkdf2_sha256"]), d["length"], d["tries"]
        )


def _hash(pin: bytes, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin, salt, _PBKDF2_ROUNDS)


@dataclass
class CardState:
    serial: int
    manufacturer: int = EMULATED_MANUFACTURER
    pw1: Pin = field(default_factory=lambda: Pin.create(DEFAULT_PW1.encode()))
    pw3: Pin = field(default_factory=lambda: Pin.create(DEFAULT_PW3.encode()))
    pw1_single_use: bool = True
    #: algorithm attributes per key slot: "sig" (C1), "dec" (C2), "aut" (C3)
    attributes: dict[str, bytes] = field(
        default_factory=lambda: {
            "sig": ED25519.attributes,
            "dec": CV25519.attributes,
            "aut": ED25519.attributes,
        }
    )
    #: private keys per slot, raw bytes (EMULATOR ONLY, in clear)
    private_keys: dict[str, bytes] = field(default_factory=dict)
    fingerprints: dict[str, bytes] = field(default_factory=dict)
    ca_fingerprints: dict[str, bytes] = field(default_factory=dict)
    generation_times: dict[str, int] = field(default_factory=dict)
    signature_counter: int = 0
    name: bytes = b""
    lang: bytes = b""
    sex: bytes = b"9"
    url: bytes = b""
    login: bytes = b""
    private_dos: dict[int, bytes] = field(default_factory=dict)
    #: the resetting code (DO D3), None while none is set; its retry counter is ``rc.tries``
    rc: Pin | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "WARNING": WARNING,
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "pw1": self.pw1.to_json(),
            "pw3": self.pw3.to_json(),
            "pw1_single_use": self.pw1_single_use,
            "attributes": {k: v.hex() for k, v in self.attributes.items()},
            "private_keys_EMULATOR_ONLY": {k: v.hex() for k, v in self.private_keys.items()},
            "fingerprints": {k: v.hex() for k, v in self.fingerprints.items()},
            "ca_fingerprints": {k: v.hex() for k, v in self.ca_fingerprints.items()},
            "generation_times": dict(self.generation_times),
            "signature_counter": self.signature_counter,
            "cardholder": {"name": self.name.hex(), "lang": self.lang.hex(), "sex": self.sex.hex()},
            "url": self.url.hex(),
            "login": self.login.hex(),
            "private_dos": {f"{k:04X}": v.hex() for k, v in self.private_dos.items()},
            "rc": self.rc.to_json() if self.rc is not None else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CardState:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} state file")

        def hexmap(m: dict[str, str]) -> dict[str, bytes]:
            return {k: bytes.fromhex(v) for k, v in m.items()}

        holder = d.get("cardholder", {})
        return cls(
            serial=int(d["serial"]),
            manufacturer=int(d.get("manufacturer", EMULATED_MANUFACTURER)),
            pw1=Pin.from_json(d["pw1"]),
            pw3=Pin.from_json(d["pw3"]),
            pw1_single_use=bool(d.get("pw1_single_use", True)),
            attributes=hexmap(d["attributes"]),
            private_keys=hexmap(d.get("private_keys_EMULATOR_ONLY", {})),
            fingerprints=hexmap(d.get("fingerprints", {})),
            ca_fingerprints=hexmap(d.get("ca_fingerprints", {})),
            generation_times={k: int(v) for k, v in d.get("generation_times", {}).items()},
            signature_counter=int(d.get("signature_counter", 0)),
            name=bytes.fromhex(holder.get("name", "")),
            lang=bytes.fromhex(holder.get("lang", "")),
            sex=bytes.fromhex(holder.get("sex", "39")),
            url=bytes.fromhex(d.get("url", "")),
            login=bytes.fromhex(d.get("login", "")),
            private_dos={int(k, 16): bytes.fromhex(v) for k, v in d.get("private_dos", {}).items()},
            rc=Pin.from_json(d["rc"]) if d.get("rc") else None,
        )


def save(state: CardState, path: Path) -> None:
    """Write the state atomically (temp file in the same dir, fsync, rename, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create(
    path: Path, *, serial: int | None, pw1: str | None = None, pw3: str | None = None
) -> CardState:
    """Load the card at ``path``; create it (with ``serial`` and PINs) if it does not exist."""
    path = Path(path)
    if path.exists():
        state = CardState.from_json(json.loads(path.read_text()))
        if serial is not None and state.serial != serial:
            raise ValueError(
                f"state file {path} belongs to card serial {state.serial}, not {serial}"
            )
        return state
    if serial is None:
        raise ValueError("a new card needs a serial number")
    if not 0 < serial < 2**32:
        raise ValueError("serial must fit in 4 bytes and be non-zero")
    state = CardState(serial=serial)
    if pw1 is not None:
        state.pw1 = Pin.create(pw1.encode())
    if pw3 is not None:
        state.pw3 = Pin.create(pw3.encode())
    save(state, path)
    return state
