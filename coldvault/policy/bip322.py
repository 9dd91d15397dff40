"""BIP-322 generic signed messages: the "simple" and "full" variants, verified offline.

A BIP-322 signature is a spend of a virtual output paying the address's script. We build the
virtual ``to_spend`` transaction from the message and the script, take (``full``) or build
(``simple``) the ``to_sign`` transaction that spends it, and run its first input's scripts
under BIP-322's required rules: SIGHASH_ALL (or SIGHASH_DEFAULT for taproot) only, strict DER,
low S, NULLFAIL, NULLDUMMY, minimal pushes and IFs, a clean stack. No CODESEPARATOR.

The interpreter here runs the standard scripts an address is paid to, not all of Bitcoin
Script: P2PKH, P2SH (any redeem script below), P2WPKH, P2SH-P2WPKH, P2WSH and P2SH-P2WSH
(multisig, single key, hash and time locks), and P2TR by key path or by a tapscript
(``CHECKSIG``/``CHECKSIGADD`` with time locks). A script using another opcode is
``unsupported`` (BIP-322's "inconclusive"), never accepted. Signature hashes come from embit;
ECDSA and BIP-340 Schnorr are checked with libsecp256k1 (coincurve).

Signatures are base64, prefixed ``smp`` (simple) or ``ful`` (full); without a prefix a
witness stack is read as simple, as before BIP-322 was final. Proof-of-funds (``pof``) is
not an ownership proof and is refused. A simple signature for a P2SH-wrapped segwit address
(which has no room for the scriptSig) is completed with the one push the wrapped program
needs, as common wallets sign it; the script still has to hash to the address.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import coincurve
from embit.script import Script
from embit.transaction import Transaction

from coldvault.crypto.hashes import hash160, sha256, sha256d
from coldvault.errors import ColdvaultError
from coldvault.requests.bitcoin.tx import Reader, compact_size, parse_tx

TAG = b"BIP0322-signed-message"
SIMPLE, FULL, PROOF_OF_FUNDS = "smp", "ful", "pof"
OP_RETURN_SCRIPT = b"\x6a"
MAX_STACK = 1000
MAX_ELEMENT = 520
MAX_SCRIPT = 10_000
TAPROOT_LEAF = 0xC0
SIGHASH_DEFAULT, SIGHASH_ALL = 0x00, 0x01

#: ``fail(reason, text)`` builds the caller's error (``OwnershipProofInvalid``).
Fail = Callable[[str, str], ColdvaultError]


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    t = sha256(tag)
    return sha256(t + t + data)


def message_hash(message: bytes) -> bytes:
    return tagged_hash(TAG, message)


def to_spend_txid(spk: bytes, message: bytes) -> bytes:
    """txid (internal byte order) of BIP-322's virtual ``to_spend`` transaction."""
    script_sig = b"\x00\x20" + message_hash(message)
    tx = (
        (0).to_bytes(4, "little")
        + b"\x01" + bytes(32) + b"\xff\xff\xff\xff"
        + compact_size(len(script_sig)) + script_sig + (0).to_bytes(4, "little")
        + b"\x01" + (0).to_bytes(8, "little") + compact_size(len(spk)) + spk
        + (0).to_bytes(4, "little")
    )  # fmt: skip
    return sha256d(tx)


def split_prefix(text: str) -> tuple[str | None, str]:
    """(variant or None, base64 body) of a BIP-322 signature text."""
    for variant in (SIMPLE, FULL, PROOF_OF_FUNDS):
        if text.startswith(variant):
            return variant, text[len(variant) :]
    return None, text


def verify_bip322(spk: bytes, message: bytes, variant: str | None, raw: bytes, fail: Fail) -> None:
    """Raise ``fail(...)`` unless ``raw`` (decoded base64) is a valid BIP-322 ``variant``
    signature of ``message`` for the output script ``spk``."""
    if variant == PROOF_OF_FUNDS:
        raise fail(
            "unsupported",
            "A BIP-322 proof of funds proves UTXOs, not an address; sign a simple or full proof.",
        )
    prev = to_spend_txid(spk, message)
    if variant == FULL:
        tx = _full_to_sign(raw, prev, fail)
    else:
        tx = _simple_to_sign(spk, raw, prev, fail)
    _Verifier(tx, spk, fail).input_zero()


def _simple_to_sign(spk: bytes, raw: bytes, prev: bytes, fail: Fail) -> Transaction:
    items = witness_stack(raw, fail)
    script_sig = b""
    if _is_p2sh(spk) and items:
        # a wrapped segwit program: P2SH-P2WPKH when the last item is a key, else P2SH-P2WSH
        last = items[-1]
        if len(items) == 2 and len(last) == 33:
            program = b"\x00\x14" + hash160(last)
        else:
            program = b"\x00\x20" + sha256(last)
        script_sig = _push(program)
    tx = Transaction.parse(
        (0).to_bytes(4, "little") + b"\x00\x01\x01" + prev + bytes(4)
        + compact_size(len(script_sig)) + script_sig + bytes(4)
        + b"\x01" + bytes(8) + b"\x01" + OP_RETURN_SCRIPT
        + raw + bytes(4)
    )  # fmt: skip
    return tx


def _full_to_sign(raw: bytes, prev: bytes, fail: Fail) -> Transaction:
    try:
        parsed = parse_tx(raw, what="to_sign", allow_witness=True)
    except ColdvaultError as exc:
        raise fail("malformed-signature", f"The full BIP-322 signature is not a transaction: "
                   f"{exc.message.rstrip('.')}.") from exc  # fmt: skip
    if len(parsed.inputs) != 1:
        raise fail("malformed-signature", "A full BIP-322 signature spends exactly one input.")
    if parsed.inputs[0].txid != prev or parsed.inputs[0].vout != 0:
        raise fail(
            "bad-signature",
            "The full BIP-322 signature does not spend this message and address's to_spend.",
        )
    if (
        len(parsed.outputs) != 1
        or parsed.outputs[0].amount != 0
        or (parsed.outputs[0].script != OP_RETURN_SCRIPT)
    ):
        raise fail("malformed-signature", "A BIP-322 to_sign has one OP_RETURN output of 0.")
    if parsed.version not in (0, 2):
        raise fail("unsupported", f"to_sign version {parsed.version} is not 0 or 2.")
    return Transaction.read_from(io.BytesIO(raw))


def witness_stack(raw: bytes, fail: Fail) -> list[bytes]:
    """A consensus-encoded witness stack that uses every byte of ``raw``."""
    r = Reader(raw, what="witness")
    try:
        count = r.compact("witness item count")
        if not 0 < count <= MAX_STACK or count > r.remaining():
            raise fail("malformed-signature", "The BIP-322 witness has an invalid item count.")
        items = [r.read(r.compact("witness item length"), "witness item") for _ in range(count)]
    except ColdvaultError as exc:
        if exc.code == "ownership-proof":
            raise
        raise fail("malformed-signature", "The BIP-322 witness is truncated or oversized.") from exc
    if r.remaining():
        raise fail("malformed-signature", "The BIP-322 witness has trailing bytes.")
    return items


def _push(data: bytes) -> bytes:
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return b"\x4c" + bytes([len(data)]) + data
    return b"\x4d" + len(data).to_bytes(2, "little") + data


def _is_p2sh(spk: bytes) -> bool:
    return len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[-1] == 0x87


def _witness_program(spk: bytes) -> tuple[int, bytes] | None:
    if 4 <= len(spk) <= 42 and spk[1] == len(spk) - 2 and (spk[0] == 0 or 0x51 <= spk[0] <= 0x60):
        return (0 if spk[0] == 0 else spk[0] - 0x50), spk[2:]
    return None


# --- script execution ------------------------------------------------------------------------

LEGACY, SEGWIT_V0, TAPSCRIPT = "legacy", "segwit-v0", "tapscript"


@dataclass(frozen=True)
class _Frame:
    """What a signature check in the running script commits to."""

    sigversion: str
    script_code: bytes
    leaf_version: int = TAPROOT_LEAF


class _Verifier:
    def __init__(self, tx: Transaction, spk: bytes, fail: Fail) -> None:
        self.tx = tx
        self.spk = spk
        self.fail = fail
        self.inp = tx.vin[0]
        self.annex: bytes | None = None

    # the standard spending paths

    def input_zero(self) -> None:
        script_sig = self.inp.script_sig.data
        witness = [bytes(item) for item in self.inp.witness.items]
        stack = self._push_only(script_sig)
        wp = _witness_program(self.spk)
        if wp is not None:
            if script_sig:
                raise self.fail("bad-signature", "A native segwit spend has an empty scriptSig.")
            self._segwit(wp[0], wp[1], witness)
            return
        if _is_p2sh(self.spk):
            if not stack:
                raise self.fail("bad-signature", "The P2SH spend has no redeem script.")
            redeem = stack.pop()
            if hash160(redeem) != self.spk[2:22]:
                raise self.fail(
                    "address-mismatch", "The redeem script does not hash to the address."
                )
            nested = _witness_program(redeem)
            if nested is not None:
                if script_sig != _push(redeem):
                    raise self.fail("bad-signature", "A wrapped segwit scriptSig is one push.")
                self._segwit(nested[0], nested[1], witness)
                return
            self._no_witness(witness)
            self._finish(self._run(redeem, stack, _Frame(LEGACY, redeem)))
            return
        self._no_witness(witness)
        self._finish(self._run(self.spk, stack, _Frame(LEGACY, self.spk)))

    def _no_witness(self, witness: Sequence[bytes]) -> None:
        if witness:
            raise self.fail("bad-signature", "A legacy spend carries no witness.")

    def _segwit(self, version: int, program: bytes, witness: list[bytes]) -> None:
        if version == 0 and len(program) == 20:
            if len(witness) != 2:
                raise self.fail(
                    "malformed-signature", "A P2WPKH witness must be [signature, public key]."
                )
            if hash160(witness[1]) != program:
                raise self.fail(
                    "address-mismatch", "The witness public key does not control the address."
                )
            code = b"\x76\xa9\x14" + program + b"\x88\xac"
            self._finish(self._run(code, witness, _Frame(SEGWIT_V0, code)))
        elif version == 0 and len(program) == 32:
            if not witness:
                raise self.fail("malformed-signature", "A P2WSH witness needs its script.")
            ws = witness[-1]
            if sha256(ws) != program:
                raise self.fail(
                    "address-mismatch", "The witness script does not hash to the address."
                )
            self._finish(self._run(ws, witness[:-1], _Frame(SEGWIT_V0, ws)))
        elif version == 1 and len(program) == 32 and not _is_p2sh(self.spk):
            self._taproot(program, witness)
        else:
            raise self.fail(
                "unsupported", f"Witness version {version} programs cannot be verified here."
            )

    def _taproot(self, output_key: bytes, witness: list[bytes]) -> None:
        if len(witness) >= 2 and witness[-1][:1] == b"\x50":
            self.annex = witness[-1]
            witness = witness[:-1]
        if len(witness) == 1:  # key path
            if not self._schnorr(witness[0], output_key, None):
                raise self.fail("bad-signature", "The taproot key-path signature does not verify.")
            return
        if not witness:
            raise self.fail("malformed-signature", "The taproot witness is empty.")
        control, script = witness[-1], witness[-2]
        if len(control) < 33 or (len(control) - 33) % 32 or len(control) > 33 + 128 * 32:
            raise self.fail("malformed-signature", "The taproot control block is malformed.")
        leaf_version = control[0] & 0xFE
        node = tagged_hash(b"TapLeaf", bytes([leaf_version]) + compact_size(len(script)) + script)
        for i in range(33, len(control), 32):
            step = control[i : i + 32]
            node = tagged_hash(b"TapBranch", min(node, step) + max(node, step))
        internal = control[1:33]
        try:
            tweaked = coincurve.PublicKey(b"\x02" + internal).add(
                tagged_hash(b"TapTweak", internal + node)
            )
        except ValueError as exc:
            raise self.fail("malformed-signature", "The taproot internal key is invalid.") from exc
        sec = tweaked.format()
        if sec[1:] != output_key or (sec[0] & 1) != (control[0] & 1):
            raise self.fail(
                "address-mismatch", "The taproot script is not committed to by the address."
            )
        if leaf_version != TAPROOT_LEAF:
            raise self.fail("unsupported", f"Tapleaf version {leaf_version:#x} is unknown.")
        frame = _Frame(TAPSCRIPT, script, leaf_version)
        self._finish(self._run(script, witness[:-2], frame))

    def _finish(self, stack: list[bytes]) -> None:
        if len(stack) != 1 or not _truthy(stack[0]):
            raise self.fail(
                "bad-signature", "The BIP-322 signature does not satisfy the address's script."
            )

    # signature checks

    def _ecdsa(self, sig: bytes, pub: bytes, frame: _Frame) -> bool:
        if not sig:
            return False
        if sig[-1] != SIGHASH_ALL:
            raise self.fail("bad-signature", "BIP-322 signatures must use SIGHASH_ALL.")
        if frame.sigversion == SEGWIT_V0 and (len(pub) != 33 or pub[0] not in (2, 3)):
            raise self.fail("bad-signature", "Segwit keys must be compressed.")
        if not ((len(pub) == 33 and pub[0] in (2, 3)) or (len(pub) == 65 and pub[0] == 4)):
            raise self.fail("bad-signature", "A public key is not strictly encoded.")
        if frame.sigversion == LEGACY:
            digest = self.tx.sighash_legacy(0, Script(frame.script_code), SIGHASH_ALL)
        else:
            digest = self.tx.sighash_segwit(0, Script(frame.script_code), 0, SIGHASH_ALL)
        try:
            ok = coincurve.PublicKey(pub).verify(sig[:-1], digest, hasher=None)
        except ValueError as exc:
            raise self.fail("bad-signature", "A signature or key is not strictly encoded.") from exc
        if not ok:  # NULLFAIL: a failing signature must be empty
            raise self.fail("bad-signature", "The BIP-322 signature does not verify.")
        return True

    def _schnorr(self, sig: bytes, key: bytes, frame: _Frame | None) -> bool:
        if not sig:
            return False
        hashtype = SIGHASH_DEFAULT
        if len(sig) == 65 and sig[64] == SIGHASH_ALL:
            hashtype = SIGHASH_ALL
        elif len(sig) != 64:
            raise self.fail("bad-signature", "BIP-322 taproot signatures use SIGHASH_DEFAULT/ALL.")
        if len(key) != 32:
            raise self.fail("unsupported", "Tapscript keys other than 32 bytes are not known.")
        digest = self.tx.sighash_taproot(
            0, [Script(self.spk)], [0], sighash=hashtype,
            ext_flag=0 if frame is None else 1, annex=self.annex,
            script=None if frame is None else Script(frame.script_code),
            leaf_version=TAPROOT_LEAF if frame is None else frame.leaf_version,
        )  # fmt: skip
        try:
            ok = coincurve.PublicKeyXOnly(key).verify(sig[:64], digest)
        except ValueError as exc:
            raise self.fail("bad-signature", "A taproot key is not on the curve.") from exc
        if not ok:
            raise self.fail("bad-signature", "The BIP-322 Schnorr signature does not verify.")
        return True

    # the interpreter

    def _push_only(self, script: bytes) -> list[bytes]:
        stack: list[bytes] = []
        pos = 0
        while pos < len(script):
            op, data, pos = self._next(script, pos)
            if data is None:
                if op > 0x60 or op == 0x50:
                    raise self.fail("bad-signature", "A scriptSig may only push data.")
                data = _small_int(op)
            stack.append(data)
        return stack

    def _next(self, script: bytes, pos: int) -> tuple[int, bytes | None, int]:
        op = script[pos]
        pos += 1
        if op > 0x4E:
            return op, None, pos
        if op < 0x4C:
            size, width = op, 0
        else:
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            size = int.from_bytes(script[pos : pos + width], "little")
        if pos + width + size > len(script) or size > MAX_ELEMENT:
            raise self.fail("bad-signature", "A script push runs past the script's end.")
        data = script[pos + width : pos + width + size]
        if op != _minimal_push_opcode(data):
            raise self.fail("bad-signature", "A script push is not minimally encoded.")
        return op, data, pos + width + size

    def _run(self, script: bytes, initial: Sequence[bytes], frame: _Frame) -> list[bytes]:
        if len(script) > MAX_SCRIPT:
            raise self.fail("unsupported", "The script is too large to verify here.")
        stack = list(initial)
        if any(len(x) > MAX_ELEMENT for x in stack) and frame.sigversion != TAPSCRIPT:
            raise self.fail("bad-signature", "A stack element is over 520 bytes.")
        conds: list[bool] = []
        pos = 0
        while pos < len(script):
            op, data, pos = self._next(script, pos)
            running = all(conds)
            if data is not None:
                if running:
                    stack.append(data)
            elif 0x63 <= op <= 0x68:
                self._flow(op, stack, conds, running, frame)
            elif running:
                self._op(op, stack, frame)
            if len(stack) > MAX_STACK:
                raise self.fail("bad-signature", "The script stack grows too large.")
        if conds:
            raise self.fail("bad-signature", "The script has an unbalanced IF.")
        return stack

    def _flow(
        self, op: int, stack: list[bytes], conds: list[bool], running: bool, frame: _Frame
    ) -> None:
        if op in (0x63, 0x64):  # IF, NOTIF
            value = False
            if running:
                top = self._pop(stack)
                if top not in (b"", b"\x01"):  # MINIMALIF
                    raise self.fail("bad-signature", "An IF argument must be empty or 1.")
                value = (top == b"\x01") == (op == 0x63)
            conds.append(value)
        elif op == 0x67 and conds:  # ELSE
            conds[-1] = not conds[-1]
        elif op == 0x68 and conds:  # ENDIF
            conds.pop()
        elif op in (0x67, 0x68):
            raise self.fail("bad-signature", "The script has an unbalanced ELSE or ENDIF.")
        else:
            raise self.fail("unsupported", f"Opcode {op:#04x} is not supported in a proof.")

    def _pop(self, stack: list[bytes]) -> bytes:
        if not stack:
            raise self.fail("bad-signature", "The script pops an empty stack.")
        return stack.pop()

    def _op(self, op: int, stack: list[bytes], frame: _Frame) -> None:  # noqa: C901, PLR0912
        pop = self._pop
        if op == 0x4F or 0x51 <= op <= 0x60:
            stack.append(_small_int(op))
        elif op == 0x69:  # VERIFY
            self._verify(_truthy(pop(stack)))
        elif op == 0x75:  # DROP
            pop(stack)
        elif op == 0x76:  # DUP
            top = pop(stack)
            stack += [top, top]
        elif op in (0x87, 0x88):  # EQUAL, EQUALVERIFY
            equal = pop(stack) == pop(stack)
            self._result(op == 0x88, equal, stack)
        elif op in (0x9C, 0x9D):  # NUMEQUAL, NUMEQUALVERIFY
            equal = self._num(pop(stack)) == self._num(pop(stack))
            self._result(op == 0x9D, equal, stack)
        elif op == 0xA8:  # SHA256
            stack.append(sha256(pop(stack)))
        elif op == 0xA9:  # HASH160
            stack.append(hash160(pop(stack)))
        elif op in (0xAC, 0xAD):  # CHECKSIG, CHECKSIGVERIFY
            pub, sig = pop(stack), pop(stack)
            ok = self._schnorr(sig, pub, frame) if frame.sigversion == TAPSCRIPT else (
                self._ecdsa(sig, pub, frame))  # fmt: skip
            self._result(op == 0xAD, ok, stack)
        elif op in (0xAE, 0xAF) and frame.sigversion != TAPSCRIPT:
            self._result(op == 0xAF, self._multisig(stack, frame), stack)
        elif op == 0xBA and frame.sigversion == TAPSCRIPT:  # CHECKSIGADD
            pub, n, sig = pop(stack), self._num(pop(stack)), pop(stack)
            stack.append(_script_num(n + int(self._schnorr(sig, pub, frame))))
        elif op == 0xB1:  # CHECKLOCKTIMEVERIFY
            self._locktime(stack)
        elif op == 0xB2:  # CHECKSEQUENCEVERIFY
            self._sequence(stack)
        else:
            raise self.fail("unsupported", f"Opcode {op:#04x} is not supported in a proof.")

    def _verify(self, ok: bool) -> None:
        if not ok:
            raise self.fail(
                "bad-signature", "The BIP-322 signature does not satisfy the address's script."
            )

    def _result(self, verify: bool, ok: bool, stack: list[bytes]) -> None:
        if verify:
            self._verify(ok)
        else:
            stack.append(b"\x01" if ok else b"")

    def _num(self, data: bytes, size: int = 4) -> int:
        if len(data) > size or (data and data[-1] & 0x7F == 0 and (
                len(data) == 1 or not data[-2] & 0x80)):  # fmt: skip
            raise self.fail("bad-signature", "A script number is not minimally encoded.")
        if not data:
            return 0
        value = int.from_bytes(data, "little") & ~(0x80 << 8 * (len(data) - 1))
        return -value if data[-1] & 0x80 else value

    def _multisig(self, stack: list[bytes], frame: _Frame) -> bool:
        n = self._num(self._pop(stack))
        if not 0 <= n <= 20 or len(stack) < n:
            raise self.fail("bad-signature", "CHECKMULTISIG has a bad key count.")
        keys = [self._pop(stack) for _ in range(n)]
        m = self._num(self._pop(stack))
        if not 0 <= m <= n or len(stack) < m:
            raise self.fail("bad-signature", "CHECKMULTISIG has a bad signature count.")
        sigs = [self._pop(stack) for _ in range(m)]
        if self._pop(stack):
            raise self.fail("bad-signature", "CHECKMULTISIG's dummy element must be empty.")
        ki = 0
        for sig in sigs:
            while ki < len(keys):
                ki += 1
                if sig and self._ecdsa_quiet(sig, keys[ki - 1], frame):
                    break
            else:
                if any(sigs):
                    raise self.fail(
                        "bad-signature", "The multisig signatures do not verify for its keys."
                    )
                return False
        return True

    def _ecdsa_quiet(self, sig: bytes, pub: bytes, frame: _Frame) -> bool:
        try:
            return self._ecdsa(sig, pub, frame)
        except ColdvaultError as exc:
            if getattr(exc, "reason", "") == "bad-signature" and sig[-1:] == bytes([SIGHASH_ALL]):
                return False
            raise

    def _locktime(self, stack: list[bytes]) -> None:
        if not stack:
            raise self.fail("bad-signature", "CHECKLOCKTIMEVERIFY pops an empty stack.")
        n = self._num(stack[-1], 5)
        lock = self.tx.locktime
        same_kind = (n < 500_000_000) == (lock < 500_000_000)
        if n < 0 or not same_kind or n > lock or self.inp.sequence == 0xFFFFFFFF:
            raise self.fail("bad-signature", "The proof's lock time does not satisfy the script.")

    def _sequence(self, stack: list[bytes]) -> None:
        if not stack:
            raise self.fail("bad-signature", "CHECKSEQUENCEVERIFY pops an empty stack.")
        n = self._num(stack[-1], 5)
        if n < 0:
            raise self.fail("bad-signature", "CHECKSEQUENCEVERIFY needs a non-negative age.")
        if n & (1 << 31):
            return
        seq = self.inp.sequence
        mask = (1 << 22) | 0xFFFF
        if (
            self.tx.version < 2
            or seq & (1 << 31)
            or (n & (1 << 22)) != (seq & (1 << 22))
            or (n & mask) > (seq & mask)
        ):
            raise self.fail("bad-signature", "The proof's sequence does not satisfy the script.")


def _truthy(data: bytes) -> bool:
    return any(data[:-1]) or (bool(data) and data[-1] & 0x7F != 0)


def _minimal_push_opcode(data: bytes) -> int:
    """The one opcode MINIMALDATA allows for pushing ``data``."""
    size = len(data)
    if size == 0:
        return 0x00
    if size == 1 and (1 <= data[0] <= 16 or data[0] == 0x81):
        return 0x50 + data[0] if data[0] != 0x81 else 0x4F
    if size < 0x4C:
        return size
    return 0x4C if size <= 0xFF else 0x4D if size <= 0xFFFF else 0x4E


def _small_int(op: int) -> bytes:
    if op == 0x00:
        return b""
    if op == 0x4F:
        return b"\x81"
    return bytes([op - 0x50])


def _script_num(n: int) -> bytes:
    if n == 0:
        return b""
    out = bytearray(abs(n).to_bytes((abs(n).bit_length() + 8) // 8, "little").rstrip(b"\x00"))
    if out[-1] & 0x80:
        out.append(0x80 if n < 0 else 0)
    elif n < 0:
        out[-1] |= 0x80
    return bytes(out)


def decode_base64(body: str, fail: Fail) -> bytes:
    try:
        return base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise fail("malformed-signature", "The signature is not valid base64.") from exc
