"""HSM access for ceremonies: common click options and logging in with a hidden PIN prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ceremony_scripts.ui import Operator
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.records.transcript import Device


@dataclass(frozen=True)
class HsmOptions:
    module: str
    token: str
    allow_emulated: bool


def hsm_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--module``, ``--token``, ``--allow-emulated`` (stacked onto a command)."""
    func = click.option(
        "--allow-emulated",
        is_flag=True,
        help="Accept an emulated HSM (SoftHSM). Lab and CI only; refused otherwise.",
    )(func)
    func = click.option(
        "--token",
        default="coldvault-appliance",
        show_default=True,
        help="PKCS#11 token label of the appliance HSM.",
    )(func)
    func = click.option(
        "--module",
        envvar="COLDVAULT_PKCS11_MODULE",
        required=True,
        help="Path of the PKCS#11 module (env COLDVAULT_PKCS11_MODULE).",
    )(func)
    return func


def open_keystore(operator: Operator, opts: HsmOptions, *, purpose: str) -> Pkcs11Keystore:
    """Ask for the user PIN (hidden) and log in; emulated tokens only with the flag."""
    pin = operator.secret(f"HSM user PIN for token {opts.token} ({purpose})")
    keystore = Pkcs11Keystore.open(opts.module, opts.token, pin, allow_emulated=opts.allow_emulated)
    del pin
    if keystore.is_emulated:
        operator.warn(
            f"Token {opts.token} is EMULATED (SoftHSM). Keys made here are for the lab only."
        )
    operator.ok(f"Logged in to token {opts.token} (serial {keystore.token_info.serial}).")
    return keystore


def hsm_device(keystore: Pkcs11Keystore) -> Device:
    info = keystore.token_info
    return Device("hsm", f"{info.label}:{info.serial}")


__all__ = ["HsmOptions", "hsm_device", "hsm_options", "open_keystore"]
