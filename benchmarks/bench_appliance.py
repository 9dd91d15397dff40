"""Appliance compute per Bitcoin PSBT, from a complete request to the response frames, against
the bare cost of the signatures it makes.

What runs is the appliance's own path, :meth:`appliance.session.SigningSession.process`, with
real parts (built in :mod:`benchmarks._appliance_fixtures`): bounded pre-parse and
``prepare_psbt`` (analysis, wallet proofs by re-derivation, BIP-143 sighashes, HSM key
look-ups), the policy, the approval token and two approvals verified by
:class:`~coldvault.quorum.approvals.ApprovalSession` against a real
:class:`~coldvault.quorum.roster.Roster`,
an :class:`~coldvault.records.audit.AuditLog` (every append written and fsync'd, sealed every 20
entries by the HSM audit key), the SQLite ledger (WAL, ``synchronous=FULL``), one
``sign_ecdsa`` per input on a SoftHSM token (``CKM_ECDSA``, low-S, host verification),
``finish`` (each signature verified again and inserted), and the UR reply
(``transport.reply_to``; one full fountain cycle of frame texts is generated).

Excluded, because it is human-bound: operator confirmation and the cards. Two software
Ed25519 keys stand in for the approvers' OpenPGP cards; the time they take to sign is
subtracted (a real card's PSO:CDS plus PIN entry and card handling take seconds), while the
verification of their signatures is included.

For the same number of signatures the benchmark also times ``Pkcs11Keystore.sign_ecdsa`` in
a loop, bare python-pkcs11 ``CKM_ECDSA`` (no low-S, no host verification) on the same key
objects, and libsecp256k1 signing through coincurve.

Inputs come from distinct keys (receive indexes 0..n-1), so the token holds one key pair per
input of the largest request; ``COLDVAULT_BENCH_SIZES=1,10`` runs fewer sizes and
``COLDVAULT_BENCH_DIR`` chooses where the temp dir (SoftHSM, audit log, ledger) lives.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
from pkcs11 import Mechanism

from appliance.daemon import Appliance
from appliance.display import TERMINAL_MASK
from appliance.session import SigningSession
from benchmarks import _appliance_fixtures as fx
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.config import ApplianceConfig
from coldvault.errors import ColdvaultError, QuorumError
from coldvault.keys.keystore import AUDIT_KEY_ID
from coldvault.quorum.approvals import ApprovalSession
from coldvault.records import audit as auditmod
from coldvault.records.audit import verify
from coldvault.records.ledger import Ledger
from coldvault.requests.base import Review, SignJob
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.maps import IN_PARTIAL_SIG
from coldvault.requests.bitcoin.request import prepare_psbt
from coldvault.transport import assemble as t
from coldvault.transport import render as qr_render
from coldvault.transport.formats import Received
from coldvault.transport.reply import FrameStream
from hardware_emulators.softhsm_lab import SoftHsmUnavailable, softhsm_available, softhsm_util

SIZES = (1, 10, 100, 500, 2000)
#: measured runs per size (after one warm-up run)
#: rounds per size (after one warm-up); each round is one request and, right after it, the
#: comparison loops over the same signatures, and a ratio is taken within each round (the
#: median of those is the figure): on a shared machine the speed drifts by 10-50 % within a
#: minute, and a ratio of two medians taken at different moments carries that drift
REPEATS = {1: 30, 10: 30, 100: 10, 500: 9, 2000: 3}
#: the sizes the named figures are taken at (quick mode: tiny stand-ins, not comparable)
BIG, HUGE = 500, 2000
QUICK_SIZES = (1, 3, 5)
QUICK_REPEATS = 2
#: the pool size the import rate is taken at
IMPORT_AT = 1000
SEAL_EVERY = 20  # appliance/daemon.py's default
COLD_PROBE_KEYS = 200
STAGES = (
    ("prepare", "parse/prepare"),
    ("policy", "policy+quorum"),
    ("audit", "audit"),
    ("ledger", "ledger"),
    ("hsm", "HSM signing"),
    ("finish", "finish+encode"),
)


# --------------------------------------------------------------------------- timing plumbing
class Timeline:
    """Spans (kind, start, end) recorded by the proxies during one request."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, float]] = []

    @contextmanager
    def span(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.events.append((kind, start, time.perf_counter()))


class _Timed:
    """Forwards every attribute to ``target``; calls named in ``kinds`` are recorded."""

    def __init__(self, target: Any, timeline: Timeline, kinds: Mapping[str, str]) -> None:
        self._target, self._timeline, self._kinds = target, timeline, kinds

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        kind = self._kinds.get(name) or self._kinds.get("*")
        if kind is None or not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._timeline.span(kind):
                return attr(*args, **kwargs)

        return timed


class _ScriptedUi:
    """The operator, minus the human: sees the review and confirms at once."""

    def show_review(self, review: Review, decision: object) -> None:
        pass

    def confirm(self, question: str) -> bool:
        return True

    def info(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


class _FirstFrameScreen(_ScriptedUi):
    """The appliance's console as the display sees it: notes when the first frame is shown."""

    interactive = False
    shown_at = 0.0

    def show_frame(self, picture: str, caption: str) -> None:
        self.shown_at = time.perf_counter()

    def stop_requested(self, seconds: float) -> bool:
        return False


class _Recorded:
    """A response's frame stream that keeps the texts it hands to the display (to check
    them afterwards, untimed)."""

    def __init__(self, stream: FrameStream) -> None:
        self.stream = stream
        self.texts: list[str] = []
        self.frame_count, self.parts_needed = stream.frame_count, stream.parts_needed

    def cycle(self) -> Iterator[str]:
        for text in self.stream.cycle():
            self.texts.append(text)
            yield text

    def frames(self, limit: int | None = None) -> list[str]:
        return self.stream.frames(limit)


class _SoftwareCards:
    """Approvals from software Ed25519 keys standing in for the cards (signing time excluded)."""

    def __init__(self, cards: list[tuple[str, Any]], timeline: Timeline) -> None:
        self.cards, self.timeline = cards, timeline

    def collect(
        self,
        approvals: ApprovalSession,
        *,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None:
        token = approvals.token_bytes
        for serial, key in self.cards:
            if approvals.satisfied:
                break
            with self.timeline.span("card"):
                signature = key.sign(token).signature
            try:
                approval = approvals.add(serial, signature, signed_token=token)
            except QuorumError as err:
                on_refused(serial, err)
                raise
            on_approved(serial, approval.holder)


@dataclass
class Run:
    stages: dict[str, float]  # seconds, included in the total
    card: float  # excluded stand-in time
    frames: int
    #: seconds from the signed response to the first reply frame on the appliance's screen
    first_frame: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def _split(events: list[tuple[str, float, float]], t0: float, t1: float, encode: float) -> Run:
    """Cut the request's wall time into stages.

    Boundaries: the first ledger call (``record_received``) ends parse/prepare; the first
    HSM signature ends policy+quorum; the last one ends HSM signing. Audit, ledger and card
    spans are taken out of whichever phase they fall in and reported on their own ("audit"
    is ``AuditLog.append``: canonical JSON, hash chain, write, fsync, any seal; building an
    entry's fields is counted in the phase that builds them)."""

    def spent(kind: str, a: float, b: float) -> float:
        return sum(e - s for k, s, e in events if k == kind and s >= a and e <= b)

    def net(a: float, b: float) -> float:
        return (b - a) - sum(spent(k, a, b) for k in ("audit", "ledger", "card"))

    ledger_first = min(s for k, s, _ in events if k == "ledger")
    signs = [(s, e) for k, s, e in events if k == "hsm"]
    hsm_a, hsm_b = signs[0][0], signs[-1][1]
    stages = {
        "prepare": net(t0, ledger_first),
        "policy": net(ledger_first, hsm_a),
        "audit": spent("audit", t0, t1),
        "ledger": spent("ledger", t0, t1),
        "hsm": net(hsm_a, hsm_b),
        "finish": net(hsm_b, t1) + encode,
    }
    return Run(stages, spent("card", t0, t1), 0)


# --------------------------------------------------------------------------- the appliance
class Bench:
    def __init__(self, world: fx.World, keystore: Pkcs11Keystore) -> None:
        self.world, self.keystore = world, keystore
        self.timeline = Timeline()
        state = world.state_dir
        self.ledger = Ledger(state / "ledger.db")
        audit_key = keystore.find_key(AUDIT_KEY_ID)
        self.audit_public_key = audit_key.public_key
        self.audit = auditmod.AuditLog(
            state / "audit.jsonl",
            sealer=lambda digest: keystore.sign_ecdsa(AUDIT_KEY_ID, digest),
            audit_public_key=audit_key.public_key,
            seal_every=SEAL_EVERY,
            on_seal=self.ledger.set_audit_sealed_through,
        )
        timed_ledger = _Timed(self.ledger, self.timeline, {"*": "ledger"})
        self.wallets = {world.wallet.wallet.name: world.wallet.wallet}
        self.screen = _FirstFrameScreen()
        #: only its display is used: the production terminal sink, as `appliance run` shows
        self.display = Appliance(
            ApplianceConfig(
                appliance_id="bench", state_dir=state, hsm_module=Path("unused"),
                hsm_token_label="unused", roster_files=(), policy_file=Path("unused"),  # noqa: S106 - not a secret
                wallets_file=Path("unused"), genesis_roster_sha256="", output_sink="terminal",
            ),
            ui=self.screen, collector=None, hsm_pin="",  # type: ignore[arg-type]  # noqa: S106
        )  # fmt: skip
        self.session = SigningSession(
            keystore=_Timed(keystore, self.timeline, {"sign_all": "hsm"}),
            wallets=self.wallets,
            policy=world.policy,
            roster=world.roster,
            audit=_Timed(self.audit, self.timeline, {"append": "audit"}),
            ledger=timed_ledger,
            replay_guard=timed_ledger,
            collector=_SoftwareCards(world.cards, self.timeline),
            ui=_ScriptedUi(),
            fragment_len=fx.REPLY_FRAGMENT,
        )

    def close(self) -> None:
        self.audit.close()
        self.ledger.close()

    def request(self, received: Received, n: int, *, check: bool = False) -> Run:
        """One request through ``SigningSession.process`` plus the reply's frame texts."""
        self.timeline.events.clear()
        t0 = time.perf_counter()
        result = self.session.process(received)
        t1 = time.perf_counter()
        stream = _Recorded(result.frames)
        # the appliance's own display path (its production terminal sink): lazy rendering
        self.display.show(stream, limit=1, sink="terminal")  # type: ignore[arg-type]
        first_frame = self.screen.shown_at - t1
        first = stream.texts[0]
        rendered = _time(lambda: qr_render.render_terminal(first, mask_pattern=TERMINAL_MASK))
        if stream.frame_count:
            frames = stream.frames(None)
        else:  # the fountain goes on after the first part: the rest of one cycle
            frames = [first, *stream.frames(stream.parts_needed - 1)]
        encode = time.perf_counter() - t1 - rendered
        run = _split(self.timeline.events, t0, t1, encode)
        run.frames = len(frames)
        run.first_frame = first_frame
        if check:
            _check_response(result.response, frames, n)
        self.session.done()  # the operator has seen the response (not timed)
        return run

    def jobs(self, received: Received) -> list[SignJob]:
        prepared = prepare_psbt(
            received.content, wallets=self.wallets, lookup_key=self.keystore.find_key
        )
        return list(prepared.jobs)


def _check_response(response: bytes, frames: list[str], n: int) -> None:
    """Not timed: the reply frames carry the PSBT with one partial signature per input."""
    psbt = pp.parse_psbt(response)
    signed = sum(1 for m in psbt.inputs if m.all(IN_PARTIAL_SIG))
    if signed != n:
        raise RuntimeError(f"{signed} of {n} inputs carry a signature")
    assembler = t.Assembler()
    for text in frames:
        assembler.feed(text)
    if not assembler.is_complete or assembler.result().content != response:
        raise RuntimeError("the reply frames do not reassemble to the response")


# --------------------------------------------------------------------------- comparisons
def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _comparisons(bench: Bench, jobs: list[SignJob]) -> dict[str, float]:
    keystore = bench.keystore
    # the token's key objects as the keystore holds them (already looked up: no HSM call)
    objects = [keystore._load(j.key_id)[0] for j in jobs]  # private: measurement only
    privates = [coincurve.PrivateKey(bench.world.scalars[j.key_id]) for j in jobs]

    def keystore_loop() -> None:
        for job in jobs:
            keystore.sign_ecdsa(job.key_id, job.payload)

    def keystore_batch() -> None:
        keystore.sign_all(jobs)

    def raw_loop() -> None:
        for key, job in zip(objects, jobs, strict=True):
            key.sign(job.payload, mechanism=Mechanism.ECDSA)

    def coincurve_loop() -> None:
        for key, job in zip(privates, jobs, strict=True):
            key.sign(job.payload, hasher=None)

    return {
        "sign_ecdsa": _time(keystore_loop),
        "sign_all": _time(keystore_batch),
        "raw": _time(raw_loop),
        "coincurve": _time(coincurve_loop),
    }


def _cold_lookup(keystore: Pkcs11Keystore, key_ids: list[bytes]) -> tuple[float, float]:
    """A cold start: (seconds of the first ``find_key``, which reads the token's key index
    once for all keys; seconds per ``find_key`` after it) over keys the keystore has not
    looked up since it forgot them."""
    keystore.forget_keys()
    start = time.perf_counter()
    keystore.find_key(key_ids[0])
    first = time.perf_counter() - start
    start = time.perf_counter()
    for key_id in key_ids[1:]:
        keystore.find_key(key_id)
    return first, (time.perf_counter() - start) / max(len(key_ids) - 1, 1)


# --------------------------------------------------------------------------- report
def _sizes() -> tuple[int, ...]:
    text = os.environ.get("COLDVAULT_BENCH_SIZES", "")
    sizes = tuple(int(s) for s in text.split(",") if s.strip()) if text else SIZES
    if not sizes or min(sizes) < 1:
        raise ValueError("COLDVAULT_BENCH_SIZES must list positive input counts")
    return sizes


def _machine(directory: Path) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = "?"
    try:
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, kind, *_ = line.split()
            if str(directory).startswith(mount) and len(mount) >= len(best):
                best, fs = mount, kind
    except OSError:
        pass
    try:
        softhsm = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [softhsm_util(), "--version"], capture_output=True, text=True, timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, SoftHsmUnavailable):
        softhsm = "?"
    return (
        f"machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SoftHSM {softhsm}; temp dir on {fs} ({directory.parent}); {time.strftime('%Y-%m-%d')}"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _measure(
    world: fx.World, keystore: Pkcs11Keystore, sizes: tuple[int, ...], quick: bool
) -> tuple[Results, list[str]]:
    bench = Bench(world, keystore)
    results: dict[int, tuple[list[Run], list[dict[str, float]]]] = {}
    seed = 1000
    try:
        for n in sizes:
            repeats = QUICK_REPEATS if quick else REPEATS.get(n, 3)
            requests = []
            for _ in range(repeats + 1):  # distinct PSBTs: the ledger refuses a signed one again
                seed += 1
                requests.append(fx.received(fx.psbt_request(world, n, seed)))
            jobs = bench.jobs(requests[0])
            bench.request(requests[0], n, check=True)  # warm-up, and the response is checked
            _comparisons(bench, jobs)
            runs, comparisons = [], []
            for received in requests[1:]:
                runs.append(bench.request(received, n))
                comparisons.append(_comparisons(bench, jobs))
            results[n] = (runs, comparisons)
        sealed = bench.ledger.audit_sealed_through()
    finally:
        bench.close()
    report = verify(
        world.state_dir / "audit.jsonl", bench.audit_public_key, expect_sealed_through=sealed
    )
    lines = _tables(results)
    lines.append(
        f"audit trail afterwards: {report.entries} entries, {report.seals} HSM seals, "
        f"verified (coldvault.records.audit.verify); every response checked once (one partial "
        f"signature per input, reply frames reassemble)"
    )
    return results, lines


Results = dict[int, tuple[list[Run], list[dict[str, float]]]]


def _median(values: Iterator[float] | list[float]) -> float:
    return statistics.median(list(values))


def paired(runs: list[Run], comps: list[dict[str, float]], key: str) -> float:
    """Median over the rounds of (appliance time / ``key``'s time in the same round)."""
    return _median(r.total / c[key] for r, c in zip(runs, comps, strict=True))


def _tables(results: Results) -> list[str]:
    lines = [
        "1) appliance compute per request vs the same signatures made bare (ms: medians of "
        "the rounds; x: median of the ratios within each round)",
        f"   {'inputs':>6} {'runs':>4} | {'appliance ms':>12} {'range':>15} {'ms/input':>8} | "
        f"{'sign_ecdsa ms':>13} {'x':>5} | {'sign_all ms':>11} {'x':>5} | "
        f"{'CKM_ECDSA ms':>12} {'x':>5} | {'coincurve ms':>12} {'x':>5}",
    ]
    totals: dict[int, float] = {}
    for n, (runs, comps) in results.items():
        total = totals[n] = _median(r.total for r in runs)
        low, high = min(r.total for r in runs), max(r.total for r in runs)
        cells = [
            f"{_ms(_median(c[key] for c in comps)):>{width}} {paired(runs, comps, key):>5.2f}"
            for key, width in (("sign_ecdsa", 13), ("sign_all", 11), ("raw", 12))
        ]
        cc = _median(c["coincurve"] for c in comps)
        lines.append(
            f"   {n:>6} {len(runs):>4} | {_ms(total):>12} {_ms(low) + '-' + _ms(high):>15} "
            f"{total / n * 1000:>8.2f} | " + " | ".join(cells)
            + f" | {cc * 1000:>12.2f} {paired(runs, comps, 'coincurve'):>5.0f}"
        )
    lines.append(
        "   sign_ecdsa: one call per signature (low-S, host check), the issue's yardstick; "
        "sign_all: the appliance's own batch call (the token signs while a second thread "
        "checks); CKM_ECDSA: python-pkcs11 alone, no checks"
    )
    lines += _flatness(totals, results)
    lines.append(
        "2) where the time goes (ms per request: median of each stage, so the stages add up "
        "to about the total above; card stand-in excluded)"
    )
    lines.append(
        f"   {'inputs':>6} | " + " ".join(f"{label:>14}" for _, label in STAGES)
        + f" | {'sum':>7} | {'excluded: 2 card sigs':>21}"
    )
    for n, (runs, _) in results.items():
        stages = {key: _median(r.stages[key] for r in runs) for key, _ in STAGES}
        whole = sum(stages.values())
        cells = [f"{_ms(v):>7} ({v / whole:>3.0%})" for v in stages.values()]
        lines.append(
            f"   {n:>6} | " + " ".join(f"{c:>14}" for c in cells)
            + f" | {_ms(whole):>7} | {_median(r.card for r in runs) * 1000:>21.2f}"
        )
    lines.append(
        "   per input (ms): "
        + "; ".join(
            f"n={n}: " + ", ".join(
                f"{label} {_median(r.stages[key] for r in runs) / n * 1000:.2f}"
                for key, label in STAGES if key in ("prepare", "hsm", "finish")
            )
            for n, (runs, _) in results.items()
        )
    )
    lines.append(
        f"   reply ({fx.REPLY_FRAGMENT} B fragments, one fountain cycle): "
        + ", ".join(
            f"n={n}: {runs[0].frames} frames ({runs[0].frames / 5:.1f} s at 5 fps)"
            for n, (runs, _) in results.items()
        )
    )
    return lines


def _flatness(totals: dict[int, float], results: Results) -> list[str]:
    sizes = sorted(totals)
    big = sizes[-1]
    small = 10 if 10 in totals and big > 10 else sizes[0]
    if big == small:
        return ["   (one size only: no verdict on time per input)"]
    per_input = {n: totals[n] / n for n in sizes}
    ratio = per_input[big] / per_input[small]
    if ratio < 0.8:
        verdict = "falls: fixed per-request costs (fsyncs) are spread over more inputs"
    elif ratio > 1.25:
        verdict = "grows: some per-input cost rises with the request size"
    else:
        verdict = "stays flat"
    mid = max(n for n in sizes if n < big)
    slope = (totals[big] - totals[mid]) / (big - mid)
    fixed = totals[big] - slope * big
    ks = _median(c["sign_ecdsa"] for c in results[big][1]) / big
    return [
        f"   time per input {verdict}: ms/input at {big} vs {small} inputs = {ratio:.2f}"
        + (f" ({big} vs {mid}: {per_input[big] / per_input[mid]:.2f})" if mid != small else ""),
        f"   linear model from {mid} and {big} inputs: {_ms(fixed)} ms per request + "
        f"{slope * 1000:.2f} ms per input (sign_ecdsa alone: {ks * 1000:.2f} ms per signature)",
    ]


def figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    """The named figures this benchmark measures, and its report."""
    if not softhsm_available():
        return {}, ["skipped: SoftHSM2 is not installed (Debian package softhsm2; make setup)"]
    sizes = QUICK_SIZES if quick else _sizes()
    big, huge = (QUICK_SIZES[-2], QUICK_SIZES[-1]) if quick else (BIG, HUGE)
    started = time.perf_counter()
    with fx.world(max(sizes)) as world:
        setup = time.perf_counter() - started
        lines = [
            "Bitcoin PSBT (P2WPKH testnet wallet, full previous transactions, 1 whitelisted "
            "output + change), n inputs from n distinct HSM keys; SoftHSM token holding "
            f"{max(sizes)} imported keys + the audit key",
            "excluded (human-bound): operator confirmation, card insertion and PIN, and the "
            "card signatures themselves (2 software Ed25519 keys stand in for the OpenPGP "
            "cards; verifying their signatures is included)",
            "included: SigningSession.process (pre-parse, prepare_psbt, policy, approval "
            "token, 2 approvals verified, audit appends with fsync + HSM seal every "
            f"{SEAL_EVERY} entries, SQLite ledger, sign_ecdsa per input, finish) + the UR "
            f"reply's first fountain cycle ({fx.REPLY_FRAGMENT} B fragments)",
            _machine(world.state_dir),
        ]
        imported = min(IMPORT_AT, len(world.import_times))
        import_rate = imported / world.import_times[imported - 1]
        lines.append(
            f"setup: SoftHSM lab + import of {max(sizes)} keys via import_private_key: "
            f"{setup:.1f} s; the first {imported} keys at {import_rate:.1f} keys/s"
            + _import_rates(world.import_times)
        )
        keystore = world.keystore
        assert keystore is not None
        results, measured = _measure(world, keystore, sizes, quick)
        lines += measured
        probe = world.key_ids[-COLD_PROBE_KEYS:]
        index_read, cold = _cold_lookup(keystore, probe)
        first = index_read + cold * (max(sizes) - 1)
        lines.append(
            f"3) cold key look-up (find_key of keys not used since the keystore forgot its "
            f"keys, token of {2 * max(sizes) + 2} objects, {len(probe)} keys): the first "
            f"look-up reads the token's key index (two object listings) in {_ms(index_read)} "
            f"ms, then {cold * 1000:.3f} ms/key; so the first request after start-up needing "
            f"{max(sizes)} keys spends "
            + (f"~{first:.1f} s" if first >= 1 else f"~{first * 1000:.0f} ms")
            + " on look-ups"
        )
    found: dict[str, float] = {
        "import_keys_per_s_1000": import_rate,
        "cold_lookup_ms_per_key": cold * 1000,
    }
    if big in results:
        runs, comps = results[big]
        total = _median(r.total for r in runs)
        found["appliance_vs_sign_ecdsa_500"] = paired(runs, comps, "sign_ecdsa")
        found["appliance_vs_raw_ecdsa_500"] = paired(runs, comps, "raw")
        found["appliance_ms_per_input_500"] = total / big * 1000
        found["first_frame_ms_500_inputs"] = _median(r.first_frame for r in runs) * 1000
        lines.append(
            f"4) first reply frame at {big} inputs: {found['first_frame_ms_500_inputs']:.1f} ms "
            "from the signed response to the first frame on screen, through the appliance's "
            "lazy terminal display (median)"
        )
    if huge in results:
        runs, _ = results[huge]
        found["appliance_ms_per_input_2000"] = _median(r.total for r in runs) / huge * 1000
    return found, lines


def _import_rates(times: list[float]) -> str:
    """Keys/s over each quarter of the import: does the rate hold as the pool grows?"""
    step = max(len(times) // 4, 1)
    cells = []
    for a in range(0, len(times), step):
        b = min(a + step, len(times))
        spent = times[b - 1] - (times[a - 1] if a else 0.0)
        cells.append(f"keys {a + 1}-{b}: {(b - a) / spent:.1f}/s")
    return "; by quarter: " + ", ".join(cells)


def run() -> list[str]:
    return figures(quick=False)[1]
