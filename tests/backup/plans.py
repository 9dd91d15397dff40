"""Plan documents for the backup tests (custodian ids are the lab cards' roster ids)."""

from __future__ import annotations

#: The lab layout of the backup issue: three sites, 2-of-3 site groups, each site group
#: 1-of-2 of {the site's backup HSM token, its custodian's card}.
LAB_PLAN = """
format = "coldvault-backup-plan/1"
id = "lab-2of3"
description = "2 of 3 sites; each site 1 of {token, custodian card}"

[scheme]
group_threshold = 2

[[scheme.groups]]
name = "site-a"
member_threshold = 1
members = ["a-hsm", "a-card"]

[[scheme.groups]]
name = "site-b"
member_threshold = 1
members = ["b-hsm", "b-card"]

[[scheme.groups]]
name = "site-c"
member_threshold = 1
members = ["c-hsm", "c-card"]

[[sites]]
name = "site-a"
location = "Zurich, vault 3"
custodians = ["FFFFC0DE0001"]

[[sites.targets]]
id = "a-hsm"
kind = "hsm"
label = "backup-site-a"
serial = "{serial_a}"

[[sites.targets]]
id = "a-card"
kind = "card"
card = "FFFFC0DE0001"
curve = "cv25519"

[[sites]]
name = "site-b"
location = "Geneva, vault 1"
custodians = ["FFFFC0DE0002"]

[[sites.targets]]
id = "b-hsm"
kind = "hsm"
label = "backup-site-b"
serial = "{serial_b}"

[[sites.targets]]
id = "b-card"
kind = "card"
card = "FFFFC0DE0002"
curve = "nistp256"

[[sites]]
name = "site-c"
location = "Singapore, vault 7"
custodians = ["FFFFC0DE0003"]

[[sites.targets]]
id = "c-hsm"
kind = "hsm"
label = "backup-site-c"
serial = "{serial_c}"

[[sites.targets]]
id = "c-card"
kind = "card"
card = "FFFFC0DE0003"
"""


def lab_plan(serials: dict[str, str] | None = None) -> str:
    """The lab plan with the tokens' serials filled in (empty when not given)."""
    serials = serials or {}
    text = LAB_PLAN
    for site in ("a", "b", "c"):
        text = text.replace("{serial_" + site + "}", serials.get(f"site-{site}", ""))
    return text


def flat_plan(threshold: int, sites: int = 3) -> str:
    """A flat M-of-N plan: one HSM token per site, custodian ``S<i>`` at site ``s<i>``."""
    members = ", ".join(f'"t{i}"' for i in range(sites))
    out = [
        'format = "coldvault-backup-plan/1"',
        'id = "flat"',
        "[scheme]",
        f"threshold = {threshold}",
        f"members = [{members}]",
    ]
    for i in range(sites):
        out += [
            "[[sites]]",
            f'name = "s{i}"',
            f'location = "place {i}"',
            f'custodians = ["S{i}"]',
            "[[sites.targets]]",
            f'id = "t{i}"',
            'kind = "hsm"',
            f'label = "token-{i}"',
            f'serial = "{i:04d}"',
        ]
    return "\n".join(out) + "\n"
