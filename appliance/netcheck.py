"""Air-gap check: the appliance refuses to start while a non-loopback interface is up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
SYS_NET = Path("/sys/class/net")


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool
    loopback: bool


def interfaces(sys_net: Path = SYS_NET) -> list[Interface]:
    """Network interfaces as the kernel reports them in sysfs."""
    found: list[Interface] = []
    if not sys_net.is_dir():
        return found
    for entry in sorted(sys_net.iterdir()):
        try:
            flags = int((entry / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        found.append(
            Interface(entry.name, up=bool(flags & IFF_UP), loopback=bool(flags & IFF_LOOPBACK))
        )
    return found


def live_network_interfaces(sys_net: Path = SYS_NET) -> list[str]:
    """Names of interfaces that are up and not loopback."""
    return [i.name for i in interfaces(sys_net) if i.up and not i.loopback]
