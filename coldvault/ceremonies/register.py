"""``register-wallet``: a multisig wallet from a coordinator, proposed for the registry.

1. The coordinator's wallet is read from a file (BIP-380 descriptor, Coldcard multisig file,
   BSMS record) or from images of its QR code (``crypto-output`` UR, or any of those texts
   in BBQr or plain QR): :func:`coldvault.requests.bitcoin.coordinator.read_multisig`.
2. The operator and the admins see the policy, every cosigner's fingerprint, path and xpub,
   and the first receive addresses, to compare with the coordinator's screen.
3. The HSM proves that one cosigner is this appliance at the expected BIP-48 path
   (:func:`~coldvault.requests.bitcoin.coordinator.check_own_key`, after the HSM user PIN).
4. The registry with the new wallet is written to ``out``; it becomes active only when the
   admin quorum approves it: ``coldvault ceremony approve-document --kind wallets
   --version N OUT``, which shows the same cosigners and addresses again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.ceremonies.hardware import HsmToken, hsm_device, log_in
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import CeremonyParams, ParameterError, check_int, check_type
from coldvault.ceremonies.proposals import previous_approval
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.crypto.paths import path_to_str
from coldvault.errors import InputError
from coldvault.quorum.documents import MAX_DOCUMENT_BYTES
from coldvault.requests.base import Chain
from coldvault.requests.bitcoin.coordinator import (
    MAX_TEXT,
    MultisigSetup,
    check_own_key,
    read_multisig,
    registry_with,
)
from coldvault.requests.wallets import parse_wallets
from coldvault.transport.assemble import Assembler
from coldvault.transport.frames import ImageFileSource, QrDecoder, frame_texts

IMAGE_SUFFIXES = (".png", ".gif")


class WalletQrIncomplete(InputError):
    """The QR images of a coordinator's wallet did not assemble into one payload."""

    code = "wallet-qr-incomplete"

    def __init__(self, source: Path) -> None:
        super().__init__(
            f"The QR images in {source} do not hold a complete wallet (some parts are "
            "missing or unreadable); show every frame of the coordinator's QR again."
        )
        self.source = str(source)


@dataclass(frozen=True, kw_only=True)
class RegisterWallet(CeremonyParams):
    """``source``: a wallet file, a QR image, or a directory of QR images (PNG/GIF, read in
    name order); ``registry``: the active wallet registry; ``out``: where the proposed
    registry goes; ``account``: this appliance's BIP-48 account in the wallet."""

    source: Path
    registry: Path
    out: Path
    name: str
    client: str
    account: int = 0
    max_index: int = 99

    def __post_init__(self) -> None:
        super().__post_init__()
        for field_name in ("source", "registry", "out"):
            check_type(field_name, getattr(self, field_name), Path)
        check_int("account", self.account, 0, 2**31 - 1)
        check_int("max-index", self.max_index, 0, 9_999)
        if not self.name.strip() or not self.client.strip():
            raise ParameterError("name", "--name and --client must not be empty.")
        if self.out.resolve() == self.registry.resolve():
            raise ParameterError(
                "out", "--out must not be the active registry; the admins approve a new file."
            )

    def to_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "registry": str(self.registry), "out": str(self.out),
                "name": self.name, "client": self.client, "account": self.account,
                "max_index": self.max_index}  # fmt: skip


@dataclass(frozen=True)
class WalletProposed:
    closed: Closed
    name: str
    out: Path
    version: int
    descriptor: str
    cosigners: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **self.closed.to_dict(), "wallet": self.name, "out": str(self.out),
                "version": self.version, "descriptor": self.descriptor,
                "cosigners": list(self.cosigners)}  # fmt: skip


def _images(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [source] if source.suffix.lower() in IMAGE_SUFFIXES else []


def read_source(source: Path, decoder: QrDecoder | None) -> MultisigSetup:
    """The wallet in ``source``: QR images through ``decoder``, or a text file."""
    images = _images(source)
    if images:
        if decoder is None:
            raise ValueError("QR images need a decoder")
        assembler = Assembler()
        for text in frame_texts(ImageFileSource(images).frames(), decoder):
            if assembler.feed(text).complete:
                received = assembler.result()
                if received.is_cbor and received.ur_type in ("crypto-output", "output"):
                    return read_multisig(received.cbor, ur_type=received.ur_type)
                return read_multisig(received.content)
        raise WalletQrIncomplete(source)
    try:
        with source.open("rb") as fh:
            return read_multisig(fh.read(MAX_TEXT + 1))
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ParameterError("source", f"{source} is not a wallet file or QR image.") from exc


def _our_fingerprint(registry: bytes) -> bytes:
    fps = {w.master_fingerprint for w in parse_wallets(registry).values()
           if w.chain is Chain.BITCOIN}  # fmt: skip
    if len(fps) != 1:
        raise ParameterError(
            "registry",
            "the registry must hold this appliance's Bitcoin wallets of one seed "
            f"(found {len(fps)} master fingerprints)",
        )
    return bytes.fromhex(fps.pop())


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def register_wallet(
    op: Operator, params: RegisterWallet, token: HsmToken, decoder: QrDecoder | None = None
) -> WalletProposed:
    """Run ``register-wallet`` (see the module docstring)."""
    with CeremonyRun(op, "register-wallet", params, parameters=params.to_dict()) as run:
        op.step("Read the coordinator's wallet", [
            "the coordinator shows the same policy, cosigners and first addresses",
        ])  # fmt: skip
        setup = read_source(params.source, decoder)
        op.table(f"Wallet {params.name} ({setup.source})", setup.rows())
        op.info(f"Descriptor: {setup.descriptor}")
        with params.registry.open("rb") as fh:
            registry = fh.read(MAX_DOCUMENT_BYTES + 1)
        fingerprint = _our_fingerprint(registry)
        run.record("wallet-read", {
            "source": str(setup.source), "policy": setup.policy, "descriptor": setup.descriptor,
            "cosigners": [f"{c.fingerprint.hex()}/{path_to_str(c.path)}" for c in
                          setup.cosigners],
        })  # fmt: skip

        op.step("The HSM proves this appliance is a cosigner")
        session = log_in(op, token, purpose="check this appliance's cosigner key")
        try:
            held = {k.key_id: k for k in session.list_keys()}
            ours = check_own_key(setup, master_fingerprint=fingerprint, lookup_key=held.get,
                                 account=params.account)
            device = hsm_device(session)
        finally:
            session.close()
        op.ok(f"Cosigner {ours.fingerprint.hex()} at {path_to_str(ours.path)} is this "
              "appliance's key (the HSM holds the key its xpub derives at 0/0).")
        run.record("own-key-proven", {"fingerprint": ours.fingerprint.hex(),
                                      "path": path_to_str(ours.path)}, devices=[device])
        confirm_or_cancel(
            op, "Do the policy, every cosigner and the first addresses match the coordinator?"
        )

        op.step("Write the proposed registry for the admins")
        proposed = registry_with(registry, setup, name=params.name, client=params.client,
                                 master_fingerprint=fingerprint, account=params.account,
                                 max_index=params.max_index)
        _write(params.out, proposed)
        previous = previous_approval(params.registry, "wallets")
        version = (previous.version if previous else 0) + 1
        op.info(f"Proposed registry: {params.out}. Have the admins approve it: coldvault "
                f"ceremony approve-document --kind wallets --version {version} {params.out}")
        run.record("registry-proposed", {"out": str(params.out), "version": version})
        closed = run.finish({"wallet": params.name, "version": version})
    return WalletProposed(
        closed, params.name, params.out, version, setup.descriptor,
        tuple(f"[{c.fingerprint.hex()}/{path_to_str(c.path, prefix='')}]{c.xpub}"
              for c in setup.cosigners),
    )


__all__ = ["RegisterWallet", "WalletProposed", "WalletQrIncomplete", "register_wallet"]
