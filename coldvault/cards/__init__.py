"""OpenPGP smart cards, without any card library: the protocol, never the reader.

Modules, one concept each:

* :mod:`~coldvault.cards.iso7816` -- ISO 7816-4 framing over the one-method
  :class:`CardConnection`: command APDUs, status words, chaining, GET RESPONSE (pure).
* :mod:`~coldvault.cards.tlv` -- BER-TLV of card responses (pure, bounded).
* :mod:`~coldvault.cards.openpgp` -- :class:`OpenPgpSession`, the OpenPGP card application:
  identity, PINs, key generation, PSO:CDS; status words -> exceptions in one place.
* :mod:`~coldvault.cards.algorithms` -- :class:`CardAlgorithm` (Ed25519, NIST P-256,
  secp256k1) and their OpenPGP attribute encodings.
* :mod:`~coldvault.cards.fingerprints` -- OpenPGP v4 key fingerprints, as gpg computes them.
* :mod:`~coldvault.cards.signatures` -- the one card-signature check
  (:func:`verify_card_signature`) and what a card is given to sign (:func:`card_input`).
* :mod:`~coldvault.cards.errors` -- transport and status-word errors (all HardwareError).
* :mod:`~coldvault.cards.access` -- :class:`CardAccess`, the seam a card backend implements:
  wait for a card, open it as an :class:`OpenPgpSession`, wait for its removal.

The PC/SC connection and reader discovery live in ``coldvault.backends.pcsc``; who may
approve with which card, and the approval loop, in :mod:`coldvault.quorum`.
"""

from __future__ import annotations

from coldvault.cards.access import CardAccess
from coldvault.cards.algorithms import CardAlgorithm
from coldvault.cards.errors import (
    ApduError,
    CardRemoved,
    CardTransportError,
    EmulatedCardRefused,
)
from coldvault.cards.fingerprints import openpgp_v4_fingerprint
from coldvault.cards.iso7816 import CardConnection
from coldvault.cards.openpgp import OpenPgpSession, PinBlocked, Pw, WrongPin
from coldvault.cards.signatures import CARD_ALGORITHMS, card_input, verify_card_signature

__all__ = [
    "CARD_ALGORITHMS",
    "ApduError",
    "CardAccess",
    "CardAlgorithm",
    "CardConnection",
    "CardRemoved",
    "CardTransportError",
    "EmulatedCardRefused",
    "OpenPgpSession",
    "PinBlocked",
    "Pw",
    "WrongPin",
    "card_input",
    "openpgp_v4_fingerprint",
    "verify_card_signature",
]
