from __future__ import annotations

import pytest

from coldvault.quorum.roster import Role, Roster

from .cards import SoftCard

APPLIANCE = "cv-hk-01"


class Cards:
    """A small enrolled population: 3 admins, 4 approvers (one with two cards), 1 custodian."""

    def __init__(self) -> None:
        algs = ["ed25519", "nistp256", "secp256k1"]
        self.admins = [SoftCard(f"ADM-{i}", algs[i % 3], b"admin") for i in range(3)]
        self.approvers = [SoftCard(f"APR-{i}", algs[i % 3], b"approver") for i in range(4)]
        self.spare = SoftCard("APR-0B", "ed25519", b"approver")  # second card of approver 0
        self.custodian = SoftCard("BKP-0", "secp256k1", b"custodian")
        self.outsider = SoftCard("OUT-0", "ed25519", b"outsider")

    def roster(self, version: int = 1, threshold: int = 2) -> Roster:
        holders = [c.holder(f"Admin {i}", Role.ADMIN) for i, c in enumerate(self.admins)]
        holders += [c.holder(f"Approver {i}", Role.APPROVER) for i, c in enumerate(self.approvers)]
        holders.append(self.spare.holder("approver 0", Role.APPROVER, site="sg"))
        holders.append(self.custodian.holder("Custodian", Role.BACKUP_CUSTODIAN, site="zrh"))
        return Roster(version, APPLIANCE, tuple(holders), threshold)


@pytest.fixture(scope="session")
def cards() -> Cards:
    return Cards()


def make_review(**overrides: object):
    """A Bitcoin review paying 0.5 BTC to a whitelisted address, with change."""
    import hashlib

    from coldvault.requests.base import Chain, Movement, MovementKind, Review

    fields: dict[str, object] = dict(
        chain=Chain.BITCOIN,
        network="main",
        kind="psbt",
        wallet="acme-btc-cold",
        client="acme",
        movements=(
            Movement(MovementKind.EXTERNAL, "BTC", 50_000_000, "bc1qtreasury"),
            Movement(MovementKind.CHANGE, "BTC", 1_000_000, "bc1qchange"),
        ),
        fee=5_000,
        fee_rate=12.5,
        request_digest=hashlib.sha256(b"psbt bytes").digest(),
    )
    fields.update(overrides)
    return Review(**fields)  # type: ignore[arg-type]
