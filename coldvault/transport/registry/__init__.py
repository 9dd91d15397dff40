"""Typed UR registry values: decode and encode, dispatched on the UR *type string*.

Supported (see docs/ur.md): ``crypto-psbt``/``psbt``, ``bytes``, ``crypto-seed``/``seed``,
``crypto-hdkey``/``hdkey``, ``crypto-eckey``/``eckey``, ``crypto-address``/``address``,
``crypto-keypath``/``keypath``, ``crypto-output``, ``crypto-account``, and Keystone's
``eth-sign-request``, ``eth-signature``, ``sol-sign-request``, ``sol-signature``,
``crypto-multi-accounts``.

Dispatch never looks at CBOR tags: Keystone's tags collide with BC's (401 is both
``eth-sign-request`` and the ``wsh`` script expression).  ``crypto-*`` types use the BC
v1 tags (303 hdkey, 304 keypath, ...); the newer names (``hdkey``, ``address``...) use the
40000-range tags.  Decoding accepts either tag family for nested items; encoding emits the
family of the value's ``ur_type``.

Untrusted CBOR is bounded before cbor2 sees it: size, nesting depth, definite lengths
only, integer/text map keys, an allow-list of tags, no trailing bytes.  Every structural
problem is a :class:`RegistryError` naming the field.
"""

from coldvault.transport.registry.cbor import RegistryError
from coldvault.transport.registry.codec import (
    RegistryValue,
    UnsupportedType,
    decode_registry,
    encode_account,
    encode_eth_signature,
    encode_output,
    encode_psbt,
    encode_sol_signature,
)
from coldvault.transport.registry.keys import Keypath
from coldvault.transport.registry.keystone import (
    EthDataType,
    EthSignature,
    EthSignRequest,
    SolSignature,
    SolSignRequest,
    SolSignType,
)

__all__ = [
    "EthDataType",
    "EthSignRequest",
    "EthSignature",
    "Keypath",
    "RegistryError",
    "RegistryValue",
    "SolSignRequest",
    "SolSignType",
    "SolSignature",
    "UnsupportedType",
    "decode_registry",
    "encode_account",
    "encode_eth_signature",
    "encode_output",
    "encode_psbt",
    "encode_sol_signature",
]
