"""Appliance configuration (TOML). Every problem is a ConfigError naming the key.

See docs/appliance.md for the file format. Secrets (PINs) are never read from this file.
The appliance runs from it; the drill commands read it for the appliance's audit trail,
roster chain, genesis pin and policy. It is the top layer of the library: no library
package reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault import schema
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


_SECONDS = schema.Number(positive=True, maximum=7 * 24 * 3600)
_PATH = schema.Text(max_len=4096)

#: The configuration file's declared shape (docs/appliance.md): nothing else is accepted.
CONFIG_SCHEMA = schema.Table(
    {
        "appliance": schema.Table(
            {
                "id": schema.Text(max_len=200),
                "state_dir": _PATH,
                "allow_emulated_hardware": schema.Flag(),
            },
            required=frozenset({"id", "state_dir"}),
        ),
        "hsm": schema.Table(
            {"module": _PATH, "token_label": schema.Text(max_len=32)},
            required=frozenset({"module", "token_label"}),
        ),
        "trust": schema.Table(
            {
                "rosters": schema.Items(_PATH, max_items=1000),
                "policy": _PATH,
                "wallets": _PATH,
                "genesis_roster_sha256": schema.Text(max_len=64),
            },
            required=frozenset({"rosters", "policy", "wallets", "genesis_roster_sha256"}),
        ),
        "input": schema.Table(
            {
                "source": schema.Text(max_len=200),
                "path": _PATH,
                "fps": schema.Number(positive=True, maximum=1000),
                "drop_rate": schema.Number(maximum=1),
                "blur_rate": schema.Number(maximum=1),
                "seed": schema.Number(integer=True, maximum=2**64 - 1),
            },
        ),
        "output": schema.Table(
            {
                "sink": schema.Text(choices=OUTPUT_SINKS),
                "path": _PATH,
                "fragment_len": schema.Number(integer=True, minimum=10, maximum=2000),
                "fps": schema.Number(positive=True, maximum=100),
            },
        ),
        "timeouts": schema.Table({name: _SECONDS for name in Timeouts.__dataclass_fields__}),
        "cards": schema.Table({"reader": schema.Text(max_len=400)}),
    },
    required=frozenset({"appliance", "hsm", "trust"}),
)


def _get(table: dict[str, Any], key: str, default: Any = ...) -> Any:
    """A value already checked against :data:`CONFIG_SCHEMA` (numbers of float fields as
    float)."""
    value = table.get(key, default)
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    return value


def load_config(path: Path) -> ApplianceConfig:
    """Read and validate the appliance TOML file. Relative paths are relative to the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(
            f"configuration file {path} cannot be read ({exc.strerror or type(exc).__name__})"
        ) from exc
    try:
        data = schema.load_toml(raw, CONFIG_SCHEMA)
    except schema.SchemaViolation as exc:
        at = f" [{exc.where}]" if exc.where else ""
        raise ConfigError(f"configuration file {path}:{at} {exc.problem}.") from None
    base = path.resolve().parent

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else base / q

    tables = {name: data.get(name, {}) for name in CONFIG_SCHEMA.fields}
    app, hsm, trust = tables["appliance"], tables["hsm"], tables["trust"]
    inp, out, tmo = tables["input"], tables["output"], tables["timeouts"]
    source = _get(inp, "source", "camera")
    allow_emulated = _get(app, "allow_emulated_hardware", False)
    if source not in BUILT_IN_SOURCES:
        registered = registered_frame_sources()
        if source not in registered:
            choices = ", ".join((*BUILT_IN_SOURCES, *registered))
            raise ConfigError(f"configuration file {path}: [input] source must be one of {choices}")
        if not allow_emulated:
            raise ConfigError(
                f"configuration file {path}: [input] source {source!r} is emulated input (a lab "
                "frame source); production refuses it. A lab run needs "
                "allow_emulated_hardware = true in [appliance] and the --allow-emulated flag."
            )
    sink = _get(out, "sink", "terminal")
    fragment_len = _get(out, "fragment_len", None)
    if not _get(trust, "rosters"):
        raise ConfigError(
            f"configuration file {path}: [trust] rosters must list at least the genesis roster"
        )
    genesis = _get(trust, "genesis_roster_sha256").lower()
    if len(genesis) != 64 or any(c not in "0123456789abcdef" for c in genesis):
        raise ConfigError(
            f"configuration file {path}: [trust] genesis_roster_sha256 must be 64 hex digits"
        )
    timeouts = Timeouts(
        **{k: _get(tmo, k, getattr(Timeouts(), k)) for k in Timeouts.__dataclass_fields__}
    )
    return ApplianceConfig(
        appliance_id=_get(app, "id"),
        state_dir=rel(_get(app, "state_dir")),
        allow_emulated_hardware=allow_emulated,
        hsm_module=rel(_get(hsm, "module")),
        hsm_token_label=_get(hsm, "token_label"),
        roster_files=tuple(rel(str(p)) for p in _get(trust, "rosters")),
        policy_file=rel(_get(trust, "policy")),
        wallets_file=rel(_get(trust, "wallets")),
        genesis_roster_sha256=genesis,
        input_source=source,
        input_path=_get(inp, "path", "/dev/video0"),
        input_fps=_get(inp, "fps", 10.0),
        input_drop_rate=_get(inp, "drop_rate", 0.0),
        input_blur_rate=_get(inp, "blur_rate", 0.0),
        input_seed=_get(inp, "seed", 0),
        output_sink=sink,
        output_path=rel(_get(out, "path", "response")),
        fragment_len=fragment_len,
        output_fps=_get(out, "fps", 5.0),
        reader=tables["cards"].get("reader"),
        timeouts=timeouts,
    )
