"""Every error a PSBT request raises: :class:`PsbtError` (malformed, from the pre-parser),
:class:`PsbtRefused` (well-formed, but the appliance will not sign it) and
:class:`BadHsmSignature` (an HSM signature that does not verify)."""

from __future__ import annotations

from coldvault.errors import HardwareError, InputError, Refused

# --------------------------------------------------------------------------- malformed


class PsbtError(InputError):
    """A PSBT is malformed; ``field`` names where and ``offset`` is the byte offset."""

    code = "psbt"

    def __init__(self, message: str, *, field: str = "", offset: int | None = None) -> None:
        where = f" (field {field}" if field else ""
        if offset is not None:
            where += f", byte {offset})" if where else f" (byte {offset})"
        elif where:
            where += ")"
        super().__init__(message.rstrip(".") + where + ".")
        self.detail = message.rstrip(".")
        self.field = field
        self.offset = offset


class PsbtNotPsbt(PsbtError):
    """The data is neither a binary PSBT nor base64 text of one."""

    code = "psbt-not-psbt"


class PsbtTooLarge(PsbtError):
    """A size or count exceeds the configured :class:`Limits`."""

    code = "psbt-too-large"


class PsbtTruncated(PsbtError):
    """The data ends before the structure it announces (or has bytes after it)."""

    code = "psbt-truncated"


class PsbtNonCanonical(PsbtError):
    """A compact size is not minimally encoded."""

    code = "psbt-non-canonical"


class PsbtDuplicateKey(PsbtError):
    """The same key appears twice in one map."""

    code = "psbt-duplicate-key"


class PsbtBadKey(PsbtError):
    """A key of a known type has key data of the wrong form (e.g. a bad pubkey length)."""

    code = "psbt-bad-key"


class PsbtBadValue(PsbtError):
    """A value of a known type is malformed (wrong length, unparsable transaction, ...)."""

    code = "psbt-bad-value"


class PsbtUnsupportedVersion(PsbtError):
    """``PSBT_GLOBAL_VERSION`` is neither 0 nor 2."""

    code = "psbt-unsupported-version"


class PsbtFieldNotAllowed(PsbtError):
    """A field belongs to the other PSBT version (v0 vs v2)."""

    code = "psbt-field-not-allowed"


class PsbtMissingField(PsbtError):
    """A field this PSBT version requires is absent."""

    code = "psbt-missing-field"


class PsbtUnsignedTxNotEmpty(PsbtError):
    """The v0 unsigned transaction has a scriptSig or witness, or witness serialisation."""

    code = "psbt-unsigned-tx-not-empty"


class PsbtBadLocktime(PsbtBadValue):
    """A BIP-370 locktime field is out of its range."""

    code = "psbt-bad-locktime"


# --------------------------------------------------------------------------- refused


class PsbtRefused(Refused):
    """The PSBT is well-formed but the appliance will not sign it; carries the input/output."""

    code = "psbt-refused"

    def __init__(
        self, message: str, *, input_index: int | None = None, output_index: int | None = None
    ) -> None:
        super().__init__(message.rstrip(".") + ".")
        self.input_index = input_index
        self.output_index = output_index


class NothingToSign(PsbtRefused):
    """The PSBT has no inputs."""

    code = "psbt-nothing-to-sign"


class SighashRefused(PsbtRefused):
    """An input asks for a sighash type other than SIGHASH_ALL."""

    code = "psbt-sighash-refused"


class AlreadyFinalized(PsbtRefused):
    """An input already has a final scriptSig or witness."""

    code = "psbt-already-finalized"


class AlreadySigned(PsbtRefused):
    """An input already holds a partial signature by our key."""

    code = "psbt-already-signed"


class UtxoMissing(PsbtRefused):
    """An input's amount is not proven: the previous transaction (or any UTXO) is absent."""

    code = "psbt-utxo-missing"


class UtxoTxidMismatch(PsbtRefused):
    """``PSBT_IN_NON_WITNESS_UTXO`` is not the transaction the input spends."""

    code = "psbt-utxo-txid-mismatch"


class UtxoDisagrees(PsbtRefused):
    """``PSBT_IN_WITNESS_UTXO`` differs from the output in ``PSBT_IN_NON_WITNESS_UTXO``."""

    code = "psbt-utxo-disagrees"


class WitnessUtxoForNonWitness(PsbtRefused):
    """A witness UTXO is given for an input whose script is not segwit (BIP-174 signer check)."""

    code = "psbt-witness-utxo-for-non-witness"


class ScriptMismatch(PsbtRefused):
    """A redeemScript/witnessScript is missing or does not hash to what the input spends."""

    code = "psbt-script-mismatch"


class UnsupportedScript(PsbtRefused):
    """An input spends a script type coldvault does not sign (bare multisig, P2SH legacy...)."""

    code = "psbt-unsupported-script"


class DuplicateInput(PsbtRefused):
    """Two inputs spend the same outpoint."""

    code = "psbt-duplicate-input"


class ForeignInput(PsbtRefused):
    """An input has no key derivation of any registered wallet."""

    code = "psbt-foreign-input"


class MixedWallets(PsbtRefused):
    """Inputs come from more than one registered wallet."""

    code = "psbt-mixed-wallets"


class NotWalletScript(PsbtRefused):
    """An input claims a wallet path, but the wallet's descriptor derives another script."""

    code = "psbt-not-wallet-script"


class IndexOutOfRange(PsbtRefused):
    """An input or change path uses an index beyond the wallet's ``max_index`` (or a bad branch)."""

    code = "psbt-index-out-of-range"


class KeyNotHeld(PsbtRefused):
    """The HSM has no key for the derivation, or its public key differs from the PSBT's."""

    code = "psbt-key-not-held"


class ChangeNotProven(PsbtRefused):
    """An output claims to be change, but re-deriving the wallet script gives another script."""

    code = "psbt-change-not-proven"


class ChangeIndexOutOfRange(IndexOutOfRange):
    """A change output's index is beyond the wallet's ``max_index``."""

    code = "psbt-change-index-out-of-range"


class NegativeFee(PsbtRefused):
    """The outputs spend more than the inputs hold."""

    code = "psbt-negative-fee"


class BadHsmSignature(HardwareError):
    """A signature returned for a job does not verify (or is high-S): never inserted."""

    code = "bad-signature"
