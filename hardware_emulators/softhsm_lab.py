"""SoftHSM2 provisioning for the lab: a private ``SOFTHSM2_CONF``, token directory and named
tokens with explicit labels and PINs.

SoftHSM2 assigns random slot ids when a token is initialised, so everything selects tokens by
**label**.  :meth:`SoftHsmLab.setup` is idempotent: tokens that already exist (by label) are
kept with their keys.  The lab needs no running process; its state is just files.

Layout under ``state_dir``::

    softhsm2.conf     private configuration (token dir below, file object store)
    tokens/           SoftHSM token directories
    .env              ``SOFTHSM2_CONF=...`` (and ``COLDVAULT_PKCS11_MODULE=...``)
    .module_path      absolute path of the libsofthsm2.so in use
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


class SoftHsmUnavailable(RuntimeError):
    """SoftHSM2 (softhsm2-util or libsofthsm2.so) is not installed."""


@dataclass(frozen=True)
class TokenSpec:
    """One token to create. The PINs here are lab/test PINs, never production ones."""

    label: str
    so_pin: str
    user_pin: str

    def __post_init__(self) -> None:
        if not 0 < len(self.label) <= 32:
            raise ValueError("token label must be 1..32 characters")
        if not 4 <= len(self.user_pin) <= 255 or not 4 <= len(self.so_pin) <= 255:
            raise ValueError("SoftHSM PINs must be 4..255 characters")

    def __repr__(self) -> str:  # keep lab PINs out of logs anyway
        return f"TokenSpec(label={self.label!r})"


@dataclass(frozen=True)
class TokenState:
    """A token as SoftHSM reports it."""

    label: str
    serial: str
    slot: int


def find_module() -> str:
    """Absolute path of the installed libsofthsm2.so (``COLDVAULT_SOFTHSM_MODULE`` wins)."""
    override = os.environ.get("COLDVAULT_SOFTHSM_MODULE")
    candidates = (override,) if override else MODULE_CANDIDATES
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    raise SoftHsmUnavailable(
        "libsofthsm2.so was not found; install the Debian package 'softhsm2' "
        f"(looked in {', '.join(c for c in candidates if c)})."
    )


def softhsm_util() -> str:
    path = shutil.which("softhsm2-util")
    if path is None:
        raise SoftHsmUnavailable("softhsm2-util was not found; install the package 'softhsm2'.")
    return path


def softhsm_available() -> bool:
    try:
        find_module()
        softhsm_util()
    except SoftHsmUnavailable:
        return False
    return True


_SLOT_RE = re.compile(r"^Slot (\d+)\s*$")
_FIELD_RE = re.compile(r"^\s+(Label|Serial number|Initialized):\s*(.*?)\s*$")


class SoftHsmLab:
    """A private SoftHSM2 installation with named tokens."""

    def __init__(self, *, state_dir: Path, tokens: Sequence[TokenSpec]) -> None:
        labels = [t.label for t in tokens]
        if len(set(labels)) != len(labels):
            raise ValueError("token labels must be unique")
        self.state_dir = Path(state_dir).resolve()
        self.tokens = tuple(tokens)
        self.conf_path = self.state_dir / "softhsm2.conf"
        self.token_dir = self.state_dir / "tokens"

    # -- facts
    @property
    def module_path(self) -> str:
        return find_module()

    @property
    def env(self) -> dict[str, str]:
        """Environment a process needs to see this lab's tokens."""
        return {"SOFTHSM2_CONF": str(self.conf_path), "COLDVAULT_PKCS11_MODULE": self.module_path}

    def token(self, label: str) -> TokenSpec:
        for spec in self.tokens:
            if spec.label == label:
                return spec
        raise KeyError(label)

    # -- lifecycle
    def setup(self) -> SoftHsmLab:
        """Create config and any missing tokens; keep existing ones. Returns ``self``."""
        util = softhsm_util()
        module = find_module()
        self.token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conf_path.write_text(
            f"directories.tokendir = {self.token_dir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
            "slots.mechanisms = ALL\n"
        )
        existing = {t.label for t in self.status()}
        for spec in self.tokens:
            if spec.label in existing:
                continue
            self._run(
                util,
                "--init-token",
                "--free",
                "--label",
                spec.label,
                "--so-pin",
                spec.so_pin,
                "--pin",
                spec.user_pin,
            )
        env_lines = [f"{k}={v}" for k, v in self.env.items()]
        (self.state_dir / ".env").write_text("\n".join(env_lines) + "\n")
        (self.state_dir / ".module_path").write_text(module + "\n")
        return self

    def status(self) -> list[TokenState]:
        """Initialised tokens (label, serial, slot) as ``softhsm2-util --show-slots`` sees them."""
        if not self.conf_path.exists():
            return []
        out = self._run(softhsm_util(), "--show-slots")
        tokens: list[TokenState] = []
        slot: int | None = None
        fields: dict[str, str] = {}

        def flush() -> None:
            if slot is not None and fields.get("Initialized") == "yes" and fields.get("Label"):
                tokens.append(TokenState(fields["Label"], fields.get("Serial number", ""), slot))

        for line in out.splitlines():
            m = _SLOT_RE.match(line)
            if m:
                flush()
                slot, fields = int(m.group(1)), {}
                continue
            f = _FIELD_RE.match(line)
            if f:
                fields[f.group(1)] = f.group(2)
        flush()
        return tokens

    def destroy(self) -> None:
        """Delete every token and the configuration of this lab."""
        shutil.rmtree(self.token_dir, ignore_errors=True)
        for name in ("softhsm2.conf", ".env", ".module_path"):
            (self.state_dir / name).unlink(missing_ok=True)

    def _run(self, *argv: str) -> str:
        env = dict(os.environ, SOFTHSM2_CONF=str(self.conf_path))
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(argv), env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            # argv may hold lab PINs: name the command only.
            raise RuntimeError(
                f"{Path(argv[0]).name} {argv[1]} failed ({proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc.stdout
