"""EIP-712 hashing against eth-account's encode_typed_data (independent), plus bounds."""

from __future__ import annotations

import copy
import json

import pytest
from eth_account.messages import encode_typed_data

from coldvault.crypto.hashes import keccak256
from coldvault.errors import InputError
from coldvault.requests.ethereum.eip712 import (
    MAX_ARRAY,
    Eip712Error,
    hash_typed_data,
    parse_typed_data,
)

DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

MAIL = {
    "types": {
        "EIP712Domain": DOMAIN_TYPE,
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}

# nested structs, dynamic and fixed-size arrays (also of structs and arrays), every atomic kind
NESTED = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "salt", "type": "bytes32"},
        ],
        "Person": [
            {"name": "name", "type": "string"},
            {"name": "wallets", "type": "address[]"},
        ],
        "Group": [
            {"name": "members", "type": "Person[]"},
            {"name": "leads", "type": "Person[2]"},
            {"name": "grid", "type": "uint256[2][]"},
            {"name": "tags", "type": "bytes4[3]"},
        ],
        "Order": [
            {"name": "group", "type": "Group"},
            {"name": "delta", "type": "int64"},
            {"name": "active", "type": "bool"},
            {"name": "blob", "type": "bytes"},
            {"name": "amount", "type": "uint128"},
            {"name": "flags", "type": "uint8"},
            {"name": "notes", "type": "string[]"},
        ],
    },
    "primaryType": "Order",
    "domain": {"name": "Nested", "chainId": 10, "salt": "0x" + "ab" * 32},
    "message": {
        "group": {
            "members": [
                {"name": "Ann", "wallets": ["0x" + "11" * 20, "0x" + "22" * 20]},
                {"name": "Ben", "wallets": []},
            ],
            "leads": [
                {"name": "Cy", "wallets": ["0x" + "33" * 20]},
                {"name": "Di", "wallets": []},
            ],
            "grid": [[1, 2], [3, 4], [5, 6]],
            "tags": ["0xdeadbeef", "0x00000000", "0xffffffff"],
        },
        "delta": -42,
        "active": True,
        "blob": "0x0102030405",
        "amount": "340282366920938463463374607431768211455",
        "flags": "0x7f",
        "notes": ["first", "", "third"],
    },
}


@pytest.mark.parametrize("data", [MAIL, NESTED], ids=["mail", "nested"])
def test_hashes_match_eth_account(data: dict) -> None:  # type: ignore[type-arg]
    ours = parse_typed_data(json.dumps(data).encode())
    ref = encode_typed_data(full_message=copy.deepcopy(data))
    assert ours.domain_separator == ref.header
    assert ours.message_hash == ref.body
    assert ours.digest == keccak256(b"\x19\x01" + ref.header + ref.body)


def test_mail_spec_values_and_display() -> None:
    ours = hash_typed_data(MAIL)
    # values published with the EIP-712 reference example
    assert ours.domain_separator.hex() == (
        "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
    )
    assert ours.message_hash.hex() == (  # type: ignore[union-attr]
        "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
    )
    assert ours.chain_id == 1
    assert ours.verifying_contract == "0x" + "cc" * 20
    assert dict(ours.lines)["Mail.from.name"] == "Cow"


def test_nested_display_lists_every_value() -> None:
    lines = dict(hash_typed_data(NESTED).lines)
    assert lines["Order.group.members[0].wallets[1]"] == "0x" + "22" * 20
    assert lines["Order.group.members[1].wallets"] == "[] (empty)"
    assert lines["Order.group.grid[2][1]"] == "6"
    assert lines["Order.delta"] == "-42" and lines["Order.active"] == "true"
    assert lines["Order.amount"] == str(2**128 - 1)


def test_unprintable_strings_are_shown_escaped() -> None:
    data = mutated(["message", "contents"], "pay\u202eBob\nline2", MAIL)
    ours = hash_typed_data(data)
    assert dict(ours.lines)["Mail.contents"] == '"pay\\u202eBob\\nline2"'
    assert ours.message_hash == encode_typed_data(full_message=copy.deepcopy(data)).body


def test_typed_data_without_its_domain_type_is_refused() -> None:
    data = copy.deepcopy(MAIL)
    del data["types"]["EIP712Domain"]
    with pytest.raises(Eip712Error, match="must declare EIP712Domain"):
        hash_typed_data(data)


def test_recursive_type_is_hashed_within_bounds() -> None:
    data = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Node": [{"name": "value", "type": "uint8"}, {"name": "kids", "type": "Node[]"}],
        },
        "primaryType": "Node",
        "domain": {"name": "tree"},
        "message": {"value": 1, "kids": [{"value": 2, "kids": []}]},
    }
    ref = encode_typed_data(full_message=copy.deepcopy(data))
    assert hash_typed_data(data).message_hash == ref.body
    node: dict = {"value": 0, "kids": []}  # type: ignore[type-arg]
    for _ in range(20):
        node = {"value": 0, "kids": [node]}
    data["message"] = node
    with pytest.raises(Eip712Error, match="nested deeper"):
        hash_typed_data(data)


def mutated(path: list[str | int], value: object, base: dict = NESTED) -> dict:  # type: ignore[type-arg]
    data = copy.deepcopy(base)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (mutated(["message", "group", "leads"], []), "Order.group.leads"),  # fixed size 2
        (mutated(["message", "group", "tags", 0], "0xdead"), "Order.group.tags[0]"),
        (mutated(["message", "flags"], 256), "Order.flags"),
        (mutated(["message", "delta"], 2**63), "Order.delta"),
        (mutated(["message", "amount"], -1), "Order.amount"),
        (mutated(["message", "amount"], "1_000"), "Order.amount"),
        (mutated(["message", "amount"], 1.5), "Order.amount"),
        (mutated(["message", "active"], "true"), "Order.active"),
        (mutated(["message", "blob"], "0102"), "Order.blob"),
        (mutated(["message", "blob"], "0xzz"), "Order.blob"),
        (mutated(["message", "notes"], "not a list"), "Order.notes"),
        (mutated(["message", "notes"], ["x"] * (MAX_ARRAY + 1)), "Order.notes"),
        (mutated(["message", "group", "members", 0, "wallets", 0], "0x12"), ""),
        (mutated(["message", "surprise"], 1), "Order"),
        (mutated(["types", "Order", 0], {"name": "group", "type": "Missing"}), "Order.group"),
        (mutated(["types", "Order", 1], {"name": "delta", "type": "int7"}), "Order.delta"),
        (mutated(["types", "Order", 1], {"name": "delta", "type": "bytes33"}), "Order.delta"),
        (mutated(["primaryType"], "Nope"), "primaryType"),
        (mutated(["types", "uint256"], []), "types"),  # a struct may not shadow an atomic type
        (mutated(["domain"], []), "domain"),
    ],
)
def test_malformed_typed_data_is_refused(data: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(Eip712Error) as info:
        hash_typed_data(data)
    if field:
        assert info.value.field == field
    assert str(info.value).endswith(".")


def test_raw_input_bounds() -> None:
    assert issubclass(Eip712Error, InputError)
    with pytest.raises(Eip712Error, match="limit"):
        parse_typed_data(b" " * (64 * 1024 + 1))
    with pytest.raises(Eip712Error, match="UTF-8"):
        parse_typed_data(b"\xff{}")
    with pytest.raises(Eip712Error, match="nested too deeply"):
        parse_typed_data(b"[" * 60_000)
    with pytest.raises(Eip712Error, match="JSON object"):
        parse_typed_data(b"[1]")
    many = {f"T{i}": [] for i in range(70)}
    with pytest.raises(Eip712Error, match="more than 64 types"):
        hash_typed_data(mutated(["types"], many, MAIL))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["types", "primaryType", "domain", "message"]), JSON_VALUES)
def test_arbitrary_json_values_fail_cleanly(key: str, value: object) -> None:
    data = copy.deepcopy(NESTED)
    data[key] = value
    try:
        hash_typed_data(data)
    except Eip712Error:
        pass
