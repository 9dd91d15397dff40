"""The error family of :mod:`coldvault.crypto`: bad key material, paths, mnemonics, signatures."""

from __future__ import annotations

from coldvault.errors import InputError


class CryptoInputError(InputError):
    """Key material, a path or a mnemonic supplied by an operator or a file is invalid."""

    code = "crypto-input"
