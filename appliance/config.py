"""Appliance configuration (TOML). Every problem is a ConfigError naming the key.

See docs/appliance.md for the file format. Secrets (PINs) are never read from this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault.errors import ConfigError
from coldvault.transport.frames import registered_frame_sources

#: the input sources the appliance itself provides; any other name must be a registered
#: frame source (``coldvault.frame_sources``, e.g. the lab's ``virtual-camera``): emulated
BUILT_IN_SOURCES = ("camera", "scanner", "files")
OUTPUT_SINKS = ("png-dir", "gif", "terminal")


@dataclass(frozen=True)
class Timeouts:
    receiving: float = 600.0
    review: float = 600.0
    approvals: float = 900.0
    response: float = 600.0
    card_insert: float = 120.0


@dataclass(frozen=True)
class ApplianceConfig:
    appliance_id: str
    state_dir: Path
    hsm_module: Path
    hsm_token_label: str
    roster_files: tuple[Path, ...]
    policy_file: Path
    wallets_file: Path
    genesis_roster_sha256: str
    allow_emulated_hardware: bool = False
    input_source: str = "camera"
    input_path: str = "/dev/video0"
    input_fps: float = 10.0
    #: registered (lab) sources only: simulated frame loss / blur (fractions) and their seed
    input_drop_rate: float = 0.0
    input_blur_rate: float = 0.0
    input_seed: int = 0
    output_sink: str = "terminal"
    output_path: Path = Path("response")
    #: message bytes per response frame; None: the density the request came in
    fragment_len: int | None = None
    output_fps: float = 5.0
    reader: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.jsonl"

    @property
    def ledger_db(self) -> Path:
        return self.state_dir / "ledger.sqlite3"


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"configuration: [{where}] is missing the required key {key!r}")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"configuration: [{where}] {key} must be a {kind.__name__}, not {type(value).__name__}"
        )
    return value


def load_config(path: Path) -> ApplianceConfig:
    """Read and validate the appliance TOML file. Relative paths are relative to the file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    base = path.resolve().parent

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else base / q

    tables = {}
    for name in ("appliance", "hsm", "trust", "input", "output", "timeouts", "cards"):
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"configuration: [{name}] must be a table")
        tables[name] = value
    unknown = set(data) - set(tables)
    if unknown:
        raise ConfigError(f"configuration: unknown table(s) {sorted(unknown)}")

    app, hsm, trust = tables["appliance"], tables["hsm"], tables["trust"]
    inp, out, tmo = tables["input"], tables["output"], tables["timeouts"]
    source = _get(inp, "source", str, "input", "camera")
    allow_emulated = _get(app, "allow_emulated_hardware", bool, "appliance", False)
    if source not in BUILT_IN_SOURCES:
        registered = registered_frame_sources()
        if source not in registered:
            choices = ", ".join((*BUILT_IN_SOURCES, *registered))
            raise ConfigError(f"configuration: [input] source must be one of {choices}")
        if not allow_emulated:
            raise ConfigError(
                f"configuration: [input] source {source!r} is emulated input (a lab frame "
                "source); production refuses it. A lab run needs allow_emulated_hardware = true "
                "in [appliance] and the --allow-emulated flag."
            )
    sink = _get(out, "sink", str, "output", "terminal")
    if sink not in OUTPUT_SINKS:
        raise ConfigError(f"configuration: [output] sink must be one of {', '.join(OUTPUT_SINKS)}")
    fragment_len = _get(out, "fragment_len", int, "output", None)
    if fragment_len is not None and not 10 <= fragment_len <= 2000:
        raise ConfigError("configuration: [output] fragment_len must be between 10 and 2000 bytes")
    if not _get(trust, "rosters", list, "trust"):
        raise ConfigError("configuration: [trust] rosters must list at least the genesis roster")
    genesis = _get(trust, "genesis_roster_sha256", str, "trust").lower()
    if len(genesis) != 64 or any(c not in "0123456789abcdef" for c in genesis):
        raise ConfigError("configuration: [trust] genesis_roster_sha256 must be 64 hex digits")
    timeouts = Timeouts(
        **{
            k: _get(tmo, k, float, "timeouts", getattr(Timeouts(), k))
            for k in Timeouts.__dataclass_fields__
        }
    )
    return ApplianceConfig(
        appliance_id=_get(app, "id", str, "appliance"),
        state_dir=rel(_get(app, "state_dir", str, "appliance")),
        allow_emulated_hardware=allow_emulated,
        hsm_module=rel(_get(hsm, "module", str, "hsm")),
        hsm_token_label=_get(hsm, "token_label", str, "hsm"),
        roster_files=tuple(rel(str(p)) for p in _get(trust, "rosters", list, "trust")),
        policy_file=rel(_get(trust, "policy", str, "trust")),
        wallets_file=rel(_get(trust, "wallets", str, "trust")),
        genesis_roster_sha256=genesis,
        input_source=source,
        input_path=_get(inp, "path", str, "input", "/dev/video0"),
        input_fps=_get(inp, "fps", float, "input", 10.0),
        input_drop_rate=_get(inp, "drop_rate", float, "input", 0.0),
        input_blur_rate=_get(inp, "blur_rate", float, "input", 0.0),
        input_seed=_get(inp, "seed", int, "input", 0),
        output_sink=sink,
        output_path=rel(_get(out, "path", str, "output", "response")),
        fragment_len=fragment_len,
        output_fps=_get(out, "fps", float, "output", 5.0),
        reader=tables["cards"].get("reader"),
        timeouts=timeouts,
    )
