"""An insider with write access to the configuration and the state directory replaces the
pinned genesis and the whole roster chain with one of their own (a higher version, their own
"admins" and approvers), re-signing the unchanged policy and wallet registry with them. The
HSM anchor knows which roster was in force, so the appliance refuses to start."""

from __future__ import annotations

import hashlib
import json

import pytest

from appliance.daemon import Appliance
from coldvault.config import load_config
from coldvault.quorum.documents import (
    SignedDocument,
    load_signed_document,
    write_signed_document,
)
from coldvault.quorum.roster import Role, Roster
from coldvault.records.anchor import StateRollback
from tests.domain.cards import SoftCard

from .conftest import APPLIANCE_ID, SoftCollector, Ui, World

pytestmark = pytest.mark.lab


def _resign(doc: SignedDocument, admins: list[SoftCard]) -> SignedDocument:
    fresh = SignedDocument(doc.kind, doc.version, doc.appliance_id, doc.content)
    for card in admins[:2]:
        fresh = fresh.with_approval(card.serial, card.sign(fresh.token))
    return fresh


def test_a_replaced_genesis_and_roster_chain_is_refused(world: World) -> None:
    with world.appliance() as app:
        app.start()  # roster v2 in force and anchored in the HSM
    admins = [SoftCard(f"EVL-{i}", "ed25519", b"insider-admin") for i in range(3)]
    approvers = [SoftCard(f"EVA-{i}", "ed25519", b"insider-approver") for i in range(3)]
    holders = tuple(
        [c.holder(f"Insider admin {i}", Role.ADMIN) for i, c in enumerate(admins)]
        + [c.holder(f"Insider approver {i}", Role.APPROVER) for i, c in enumerate(approvers)]
    )
    files = []
    for version in (1, 2, 3):
        roster = Roster(version, APPLIANCE_ID, holders, 2)
        path = world.root / f"insider-roster-{version}.json"
        doc = _resign(SignedDocument("roster", version, APPLIANCE_ID, roster.to_bytes()), admins)
        write_signed_document(path, doc)
        files.append(path)
    for name, kind in (("policy.toml", "policy"), ("wallets.toml", "wallets")):
        path = world.root / name
        write_signed_document(path, _resign(load_signed_document(path, kind), admins))
    genesis = hashlib.sha256(files[0].read_bytes()).hexdigest()
    config = world.config().read_text()
    start = config.index("rosters = [")
    end = config.index("\n", config.index("genesis_roster_sha256"))
    swapped = world.root / "appliance-insider.toml"
    swapped.write_text(
        config[:start] + f"rosters = {json.dumps([str(p) for p in files])}\n"
        f'genesis_roster_sha256 = "{genesis}"' + config[end:]
    )
    app = Appliance(load_config(swapped), ui=Ui(), collector=SoftCollector(approvers),
                    hsm_pin=world.user_pin, allow_emulated=True, dev_allow_network=True,
                    seal_every=5)  # fmt: skip
    with app, pytest.raises(StateRollback) as info:
        app.start()
    assert info.value.what == "roster chain"
    assert "does not contain roster version 2" in info.value.message
    events = [json.loads(line)["event"] for line in world.trail.read_text().splitlines()]
    assert events[-1] == "refusal"


def test_check_roster_chain_needs_the_anchored_roster_in_the_chain() -> None:
    from coldvault.quorum.documents import ConfigVersion
    from coldvault.records.anchor import Anchor, check_roster_chain

    v1, v2 = ConfigVersion("roster", 1, b"\x01" * 32), ConfigVersion("roster", 2, b"\x02" * 32)
    anchor = Anchor().with_configs((v2,))
    check_roster_chain(anchor, (v1, v2))  # the chain in force
    check_roster_chain(anchor, (v1, v2, ConfigVersion("roster", 3, b"\x03" * 32)))  # an update
    check_roster_chain(Anchor(), (v1,))  # nothing anchored yet: the first start
    other1 = ConfigVersion("roster", 1, b"\x11" * 32)
    other3 = ConfigVersion("roster", 3, b"\x33" * 32)
    for chain in ((v1,), (v1, ConfigVersion("roster", 2, b"\x22" * 32)), (other1, other3)):
        with pytest.raises(StateRollback, match="does not contain roster version 2"):
            check_roster_chain(anchor, chain)
