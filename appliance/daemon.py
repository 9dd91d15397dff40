"""The appliance: start-up checks, then receive -> review -> approve -> sign -> show.

:meth:`Appliance.start` refuses to run, saying why, when a non-loopback interface is up
(unless ``dev_allow_network``), the HSM token is missing or the PIN is wrong, the roster chain
does not verify against the genesis pinned in the configuration, the policy or wallet
registry lacks its admin quorum, the audit trail does not verify, or emulated hardware is
found without both ``allow_emulated_hardware = true`` in the configuration and the
``--allow-emulated`` flag. It also refuses a state directory behind the state anchored in
the HSM (:mod:`coldvault.records.anchor`: a trail deleted, cut or replaced, an older roster,
policy or wallet registry) and a ledger that disagrees with the verified trail
(:mod:`coldvault.records.reconcile`); then it settles what a crash left (pending responses,
interrupted requests; :mod:`coldvault.records.responses`), each settlement audited.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from appliance.display import FrameScreen, show_on_screen, write_gif, write_png_dir
from appliance.netcheck import live_network_interfaces
from appliance.session import (
    ApprovalCollector,
    SessionResult,
    SignedNotShown,
    SigningSession,
    Ui,
)
from appliance.states import InputEnded, State, TimedOut
from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backup.history import trail_history
from coldvault.config import ApplianceConfig
from coldvault.errors import ColdvaultError, Refused
from coldvault.keys.keystore import AUDIT_KEY_ID, KeyAlgorithm
from coldvault.policy import Policy, load_policy
from coldvault.quorum.documents import (
    ConfigVersion,
    SignedDocument,
    load_signed_document,
    verify_admin_quorum,
    verify_roster_chain,
)
from coldvault.quorum.roster import Roster
from coldvault.records import audit as auditmod
from coldvault.records.anchor import Anchor, check_configs, check_roster_chain, check_trail
from coldvault.records.audit import verify
from coldvault.records.ledger import Ledger
from coldvault.records.reconcile import TrailTotals, check_ledger
from coldvault.records.responses import ResponseStore
from coldvault.requests.base import request_fingerprint
from coldvault.requests.wallets import Wallet, parse_wallets
from coldvault.transport.assemble import (
    Assembler,
    MixedFormatError,
    MixedMessageError,
    Progress,
)
from coldvault.transport.formats import Received
from coldvault.transport.frames import SILENT_SECONDS
from coldvault.transport.reply import FrameStream


class NetworkUp(Refused):
    code = "network-up"

    def __init__(self, interfaces: list[str]) -> None:
        super().__init__(
            "The appliance must be air-gapped, but these network interfaces are up: "
            f"{', '.join(interfaces)}. Bring them down (or, on a development machine only, "
            "pass --dev-allow-network)."
        )
        self.interfaces = ",".join(interfaces)


class EmulationNotAllowed(Refused):
    code = "emulated-hardware"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is emulated hardware. Production refuses emulators; a lab run needs both "
            "allow_emulated_hardware = true in the configuration and the --allow-emulated flag."
        )


class ConfigMismatch(Refused):
    code = "config-mismatch"


@dataclass(frozen=True)
class StartupReport:
    appliance_id: str
    token_label: str
    token_serial: str
    emulated: bool
    roster_version: int
    policy_version: int
    wallets: tuple[str, ...]
    audit_entries: int
    audit_unsealed: int
    network_override: bool

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__, wallets=list(self.wallets))


@dataclass(frozen=True)
class Trust:
    """The signed documents in force (:func:`load_trust`)."""

    roster: Roster
    policy: Policy
    wallets_doc: SignedDocument
    wallets: dict[str, Wallet]
    #: every roster from the pinned genesis on, as the HSM anchor names one of them
    roster_chain: tuple[ConfigVersion, ...] = ()

    @property
    def configs(self) -> tuple[ConfigVersion, ...]:
        """Their versions and hashes, as the ledger and the HSM anchor keep them."""
        return (
            ConfigVersion("roster", self.roster.version, self.roster.sha256),
            ConfigVersion("policy", self.policy.version, self.policy.sha256),
            ConfigVersion("wallets", self.wallets_doc.version, self.wallets_doc.sha256),
        )


def load_trust(cfg: ApplianceConfig) -> Trust:
    """The signed documents in force: the roster chain from the pinned genesis, the policy
    and the wallet registry with the admin quorum of that roster."""
    docs = [load_signed_document(p, "roster") for p in cfg.roster_files]
    roster = verify_roster_chain(docs, bytes.fromhex(cfg.genesis_roster_sha256))
    if roster.appliance_id != cfg.appliance_id:
        raise ConfigMismatch(
            f"The roster is for appliance {roster.appliance_id}, "
            f"but this appliance is {cfg.appliance_id}."
        )
    policy = load_policy(cfg.policy_file, roster=roster)
    wallets_doc = load_signed_document(cfg.wallets_file, "wallets")
    verify_admin_quorum(wallets_doc, roster)
    wallets = parse_wallets(wallets_doc.content, where=str(cfg.wallets_file))
    chain = tuple(
        ConfigVersion("roster", r.version, r.sha256)
        for r in (Roster.from_bytes(d.content) for d in docs)
    )
    return Trust(roster, policy, wallets_doc, wallets, chain)


def read_anchor(config: ApplianceConfig, hsm_pin: str, *, allow_emulated: bool) -> Anchor | None:
    """The state anchor on the appliance's token (an auditor's check; needs the user PIN)."""
    emulated_ok = allow_emulated and config.allow_emulated_hardware
    with Pkcs11Keystore.open(str(config.hsm_module), config.hsm_token_label, hsm_pin,
                             allow_emulated=emulated_ok) as keystore:
        raw = TokenAnchorStore(keystore).load()
    return None if raw is None else Anchor.from_bytes(raw)


class _Intake:
    """What :meth:`Appliance.receive` does with each text from the source: assemble it,
    and say when a request is complete.

    * A garbled frame never aborts a transfer; it is reported and skipped.
    * A frame of another transfer is skipped too -- unless the transfer under way has made
      no progress for :data:`~coldvault.transport.frames.SILENT_SECONDS` (the coordinator
      moved on to another request) or is the request just handled cycling on: then the new
      transfer is followed.
    * ``just_handled`` (the SHA-256 of the request a running appliance handled last) is not
      taken again until the source has seen no code at all for ``SILENT_SECONDS``: one frame
      that decodes to nothing is a blurred frame, not an empty view.
    """

    def __init__(self, ui: Ui, just_handled: bytes | None, *, progress: bool) -> None:
        self.ui, self.held, self.progress = ui, just_handled, progress
        self.assembler = Assembler()
        self.last: Progress | None = None
        self.told = False
        #: the transfer under way began after the held request completed (it cycles on)
        self.replaying = False
        self.progressed_at = time.monotonic()
        #: since when the source has seen no code at all
        self.empty_since: float | None = None

    def take(self, text: str | None) -> Received | None:
        now = time.monotonic()
        if not text:
            if text is None:  # a code in view, nothing new: the view is not empty
                self.empty_since = None
            elif self.empty_since is None:
                self.empty_since = now
            elif now - self.empty_since >= SILENT_SECONDS:
                self.held = None  # nothing in view for a while: a request shown now is new
            return None
        self.empty_since = None
        p = self._feed(text, now)
        if p is None:
            return None
        moved = self.last is None or p.parts_received != self.last.parts_received
        if p.accepted and moved:
            self.progressed_at = now
            show = getattr(self.ui, "progress", None)
            if self.progress and not self.replaying and show is not None:
                show(p)
        self.last = p
        if not p.complete:
            return None
        result = self.assembler.result()
        if self.held is None or hashlib.sha256(result.payload).digest() != self.held:
            return result
        if not self.told:
            self.told = True
            self.ui.info(
                f"Request {request_fingerprint(self.held)} was just handled and is still in "
                "view: it is not taken again. Take it away; show it again to present it again."
            )
        self._restart(replaying=True, now=now)
        return None

    def _feed(self, text: str, now: float) -> Progress | None:
        try:
            return self.assembler.feed(text)
        except (MixedFormatError, MixedMessageError) as err:
            if not (self.replaying or now - self.progressed_at >= SILENT_SECONDS):
                self.ui.warn(f"ignored a frame: {err.message}")
                return None
            if not self.replaying:
                self.ui.warn(
                    "the transfer under way stopped (no new part for a second); following the "
                    "new one"
                )
            self._restart(replaying=False, now=now)
            return self._feed(text, now)
        except ColdvaultError as err:
            self.ui.warn(f"ignored a frame: {err.message}")
            return None

    def _restart(self, *, replaying: bool, now: float) -> None:
        self.assembler.reset()
        self.last, self.replaying, self.progressed_at = None, replaying, now


class Appliance:
    def __init__(
        self,
        config: ApplianceConfig,
        *,
        ui: Ui,
        collector: ApprovalCollector,
        hsm_pin: str,
        allow_emulated: bool = False,
        dev_allow_network: bool = False,
        seal_every: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.ui, self.collector = config, ui, collector
        self._clock = clock
        self._hsm_pin = hsm_pin
        self.allow_emulated = allow_emulated
        self.dev_allow_network = dev_allow_network
        self.seal_every = seal_every
        self.keystore: Pkcs11Keystore | None = None
        self.audit: auditmod.AuditLog | None = None
        self.ledger: Ledger | None = None
        self.roster: Roster | None = None
        self.policy: Policy | None = None
        self.wallets: dict[str, Wallet] = {}
        self.session: SigningSession | None = None
        self.anchor: Anchor | None = None
        self._last_fingerprint = "(unknown)"

    # ------------------------------------------------------------------ start-up
    def _check_emulation_flags(self) -> bool:
        if self.allow_emulated and not self.config.allow_emulated_hardware:
            raise EmulationNotAllowed(
                "--allow-emulated was given but the configuration does not allow it; the lab"
            )
        return self.allow_emulated and self.config.allow_emulated_hardware

    def start(self) -> StartupReport:
        """Run every start-up check; on success the appliance is idle and ready.

        Once the trail has verified against the HSM anchor, a refused start is recorded in
        it (``refusal`` with the error's code and sentence): the air gap, the roster,
        policy and wallet documents, the ledger.  Earlier failures (the HSM missing or
        locked, the trail tampered with, cut or torn) are not appended to a trail that
        could not be checked; the console reports them (docs/audit.md)."""
        cfg = self.config
        emulated_ok = self._check_emulation_flags()
        keystore = Pkcs11Keystore.open(
            str(cfg.hsm_module), cfg.hsm_token_label, self._hsm_pin, allow_emulated=emulated_ok
        )
        self._hsm_pin = ""
        self.keystore = keystore
        if keystore.is_emulated:
            self.ui.warn(
                "EMULATED HARDWARE: the HSM is SoftHSM. This appliance must not hold real funds."
            )
        audit_key = keystore.find_key(AUDIT_KEY_ID)
        if audit_key.algorithm is not KeyAlgorithm.SECP256K1:
            raise ConfigMismatch("The HSM's audit key is not a secp256k1 key.")

        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(cfg.ledger_db)
        self.ledger = ledger
        anchors = TokenAnchorStore(keystore)
        raw = anchors.load()
        anchor = Anchor.from_bytes(raw) if raw is not None else None
        report = None
        if cfg.audit_log.exists():
            report = verify(
                cfg.audit_log, audit_key.public_key,
                expect_sealed_through=ledger.audit_sealed_through(),
            )
        if anchor is not None:
            # the HSM's high-water marks: nothing on disk may be older
            check_trail(
                anchor, cfg.audit_log, entries=report.entries if report else 0,
                sealed_through=report.sealed_through if report else None,
            )
        try:
            live = live_network_interfaces()
            if live and not self.dev_allow_network:
                raise NetworkUp(live)
            if live:
                self.ui.warn(
                    f"DEVELOPMENT MODE: network interfaces are up ({', '.join(live)}); "
                    "a production appliance refuses to start like this."
                )
            trust = load_trust(cfg)
            roster, policy, wallets, configs = (
                trust.roster, trust.policy, trust.wallets, trust.configs
            )
            if anchor is not None:
                check_configs(anchor, configs)
                check_roster_chain(anchor, trust.roster_chain)
            # a configuration older than the one last in force is a rollback: refused
            for active in configs:
                ledger.set_active_config(active)
            totals = TrailTotals.from_trail(cfg.audit_log)
            repaired = check_ledger(ledger, totals)
            responses = ResponseStore(cfg.state_dir / "responses")
            settled = self._settle_interrupted(ledger, responses, totals)
        except ColdvaultError as err:
            self._audit_startup_refusal(err, audit_key.public_key)
            raise
        state = (anchor or Anchor()).with_configs(configs)
        if report is not None and report.entries:
            state = state.with_entry(report.entries - 1, report.head)
            if report.sealed_through is not None:
                state = replace(state, sealed_through=max(state.sealed_through,
                                                          report.sealed_through))
        anchors.save(state.to_bytes())
        self.anchor = state

        def anchor_entry(entry: auditmod.AuditEntry) -> None:
            state = (self.anchor or Anchor()).with_entry(entry.seq, entry.hash,
                                                         sealed=entry.event == "seal")
            anchors.save(state.to_bytes())
            self.anchor = state
            totals.observe(entry.__dict__)

        self.audit = auditmod.AuditLog(
            cfg.audit_log,
            sealer=lambda digest: keystore.sign_ecdsa(AUDIT_KEY_ID, digest),
            audit_public_key=audit_key.public_key,
            seal_every=self.seal_every,
            on_seal=ledger.set_audit_sealed_through,
            on_append=anchor_entry,
        )
        for digest in repaired:
            self.audit.append("reconciled", {"sha256": digest, "ledger": "signed",
                                             "reason": "signed in the trail, not in the ledger"})
        for digest, outcome in settled:
            self.audit.append("reconciled", {"sha256": digest, **outcome})
        self.roster, self.policy, self.wallets = roster, policy, wallets
        self.session = SigningSession(
            keystore=keystore,
            wallets=wallets,
            policy=policy,
            roster=roster,
            audit=self.audit,
            ledger=ledger,
            replay_guard=ledger,
            day_totals=totals.day_totals,
            responses=responses,
            collector=self.collector,
            ui=self.ui,
            approval_ttl=int(cfg.timeouts.approvals),
            fragment_len=cfg.fragment_len,
        )
        info = keystore.token_info
        startup = StartupReport(
            appliance_id=cfg.appliance_id,
            token_label=info.label,
            token_serial=info.serial,
            emulated=keystore.is_emulated,
            roster_version=roster.version,
            policy_version=policy.version,
            wallets=tuple(sorted(wallets)),
            audit_entries=report.entries if report else 0,
            audit_unsealed=report.unsealed if report else 0,
            network_override=bool(live),
        )
        self.audit.append("startup", startup.to_dict())
        self._warn_if_drill_overdue(policy)
        return startup

    def _warn_if_drill_overdue(self, policy: Policy) -> None:
        """The last passing restore drill recorded in the (verified) trail is older than
        the policy's interval, or there is none: say so (the appliance still runs)."""
        history = trail_history(self.config.audit_log, interval_days=policy.drill_interval_days,
                                now=int(self._clock()))  # fmt: skip
        if history.warning:
            self.ui.warn(f"RESTORE DRILL OVERDUE: {history.warning}")

    @staticmethod
    def _settle_interrupted(
        ledger: Ledger, responses: ResponseStore, totals: TrailTotals
    ) -> list[tuple[str, dict[str, str]]]:
        """After a crash: commit a pending response whose ``signature`` entry is durable,
        discard one without it (it never left the appliance), and refuse every request left
        received or approved but not signed. Returns what was done, for the audit trail."""
        done: list[tuple[str, dict[str, str]]] = []
        for digest in responses.pending():
            if digest in totals.signed:
                responses.commit(digest)
                done.append((digest, {"response": "committed",
                                      "reason": "signed in the trail; response kept"}))
            else:
                responses.discard(digest)
                done.append((digest, {"response": "discarded",
                                      "reason": "no signature entry; it never left the appliance"}))
        for digest in sorted(ledger.unfinished() - set(totals.signed)):
            ledger.mark_refused(bytes.fromhex(digest),
                                "interrupted: the appliance stopped before it was signed")
            done.append((digest, {"ledger": "refused",
                                  "reason": "interrupted before it was signed"}))
        return done

    def _audit_startup_refusal(self, err: ColdvaultError, public_key: bytes) -> None:
        """Record a refused start in the (verified) trail; the anchor is left as it was."""
        with auditmod.AuditLog(self.config.audit_log, audit_public_key=public_key) as log:
            log.append("refusal", {"state": "startup", "error": err.code, "reason": err.message})

    def stop(self) -> None:
        if self.audit is not None:
            try:
                self.audit.append("shutdown", {})
                self.audit.seal()
            finally:
                self.audit.close()
                self.audit = None
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if self.keystore is not None:
            self.keystore.close()
            self.keystore = None

    def __enter__(self) -> Appliance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the job
    def receive(self, texts: Iterable[str | None], *, progress: bool = True,
                just_handled: bytes | None = None) -> Received:
        """Feed QR texts into an assembler until a request is complete.

        ``None`` in ``texts`` is a tick (a frame with nothing new) and ``""``
        (:data:`~coldvault.transport.frames.NOTHING_IN_VIEW`) a frame without any code: the
        receiving timeout is checked on every item, so it holds while a camera shows the
        same code for ever. ``just_handled`` is the SHA-256 of the request handled last (a
        running appliance's loop): that request, still in front of the camera, is not taken
        again until the view has been empty for
        :data:`~coldvault.transport.frames.SILENT_SECONDS` (one frame that decodes to
        nothing is a blurred frame, not an empty view) -- taking it away and showing it
        again re-presents it. Raises :class:`TimedOut` when the time runs out and
        :class:`InputEnded` when the input ends first."""
        if self.session is None:
            raise ValueError("start() the appliance first")
        machine = self.session.machine
        if machine.state is State.IDLE:
            machine.to(State.RECEIVING)
        intake = _Intake(self.ui, just_handled, progress=progress)
        deadline = time.monotonic() + self.config.timeouts.receiving
        try:
            for text in texts:
                if time.monotonic() > deadline:
                    break
                received = intake.take(text)
                if received is not None:
                    return received
        except ColdvaultError:
            machine.reset()  # the input itself failed: a scanner gone, an over-long line
            raise
        machine.reset()
        last = intake.last
        if time.monotonic() <= deadline:
            raise InputEnded(last.parts_received if last else 0,
                             last.parts_expected if last else 0)
        raise TimedOut(State.RECEIVING, self.config.timeouts.receiving)

    def handle(self, received: Received) -> SessionResult:
        if self.session is None:
            raise ValueError("start() the appliance first")
        result = self.session.process(received)
        self._last_fingerprint = result.review.fingerprint
        return result

    def show(self, frames: FrameStream, *, out: Path | None = None, limit: int | None = None,
             sink: str | None = None) -> list[Path]:
        """Show the response frames on the configured sink (or ``sink``); returns the files
        written (none for the terminal).  Frames are rendered as they are shown
        (:mod:`appliance.display`).

        The request is already signed: a failing sink is :class:`SignedNotShown` (audited),
        never "nothing was signed"."""
        try:
            written = self._write_frames(frames, out=out, limit=limit, sink=sink)
        except Exception as exc:
            kind = exc.code if isinstance(exc, ColdvaultError) else type(exc).__name__
            if self.audit is not None:
                self.audit.append("response", {"shown": False, "error": kind})
            if self.session is not None:
                self.session.machine.reset()
            raise SignedNotShown(self._last_fingerprint, kind) from exc
        if self.session is not None:
            self.session.done()
        return written

    def _write_frames(self, frames: FrameStream, *, out: Path | None, limit: int | None,
                      sink: str | None) -> list[Path]:
        cfg = self.config
        target = out or cfg.output_path
        count = frames.frame_count or limit or max(2 * frames.parts_needed, 10)
        sink = sink or cfg.output_sink
        if sink == "terminal":
            if not isinstance(self.ui, FrameScreen):
                raise TypeError("the terminal sink needs a console that can show frames")
            # an operator ends a looping display with Enter; a script sees one cycle
            cap = limit if limit is not None or self.ui.interactive else count
            show_on_screen(frames.cycle(), self.ui, fps=cfg.output_fps, limit=cap,
                           timeout=cfg.timeouts.response)  # fmt: skip
            return []
        texts = itertools.islice(frames.cycle(), count)
        if sink == "gif":
            return write_gif(texts, target, fps=cfg.output_fps)
        return write_png_dir(texts, target)
