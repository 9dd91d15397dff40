"""Print coldvault's Keystone-style multi-account export for the public BIP-39 test seed
("abandon" x 11 + "about", no passphrase) as JSON: the input ``generate.mjs`` decodes with
Keystone's own packages.  Run from the repository root:

    .venv/bin/python tests/vectors/interop/our_export.py > tests/vectors/interop/our_export.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from coldvault.keys.pool import (  # noqa: E402
    AccountSpec,
    Template,
    derive_pool,
    ur_multi_accounts,
    ur_wallet_account,
)

#: BIP-39 seed of "abandon abandon ... about" with an empty passphrase (a public test seed).
TEST_SEED = bytes.fromhex(
    "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1"
    "9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4"
)
SPECS = (
    AccountSpec(Template.BIP84, client="acme", name="acme-btc"),
    AccountSpec(Template.ETH, client="globex", name="globex-eth"),
    AccountSpec(Template.SOL, client="initech", name="initech-sol"),
)
POOL_SIZE = 3


def export() -> dict[str, object]:
    exports, _ = derive_pool(TEST_SEED, SPECS, POOL_SIZE)
    eth = next(e for e in exports if e.spec.template is Template.ETH)
    sol = next(e for e in exports if e.spec.template is Template.SOL)
    return {
        "seed": "BIP-39 'abandon' x 11 + 'about', empty passphrase",
        "pool_size": POOL_SIZE,
        "master_fingerprint": exports[0].master_fingerprint.hex(),
        "ethereum": {"account_path": eth.account_path, "xpub": eth.key_origin.xpub
                     if eth.key_origin else None, "first_addresses": list(eth.first_addresses)},
        "solana": {"paths": list(sol.address_paths), "addresses": list(sol.first_addresses),
                   "public_keys": [k.hex() for k in sol.preview_keys]},
        "ur": ur_multi_accounts(exports),
        "ethereum_account_ur": ur_wallet_account(eth),
        "solana_account_ur": ur_wallet_account(sol),
    }


if __name__ == "__main__":
    json.dump(export(), sys.stdout, indent=2)
    sys.stdout.write("\n")
