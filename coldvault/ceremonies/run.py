"""One ceremony run: transcript lifecycle, secret wiping, abort handling.

``with CeremonyRun(op, "generate-seed", params, parameters={...}) as run:`` creates the
transcript (``open`` entry) under a new ceremony id -- the id shown in the banner and, by
default, part of the file name -- collects the secret buffers the ceremony registers with
:meth:`CeremonyRun.secret`, and wipes them however the run ends.

Any exception leaving the block writes an ``aborted`` close entry with the reason before
the error reaches the front end: ``cancelled`` for :class:`~coldvault.errors.Cancelled`
and for :class:`KeyboardInterrupt` (which leaves the block as ``Cancelled``), the error's
class and sentence for a :class:`~coldvault.errors.ColdvaultError`, and only the class
name for anything unexpected (its text might quote a value).  A normal exit leaves the
transcript to :meth:`CeremonyRun.finish`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.outputs import refuse_existing, write_new
from coldvault.ceremonies.params import CeremonyParams
from coldvault.crypto import wipe
from coldvault.errors import Cancelled, ColdvaultError
from coldvault.records.page import render_transcript_html
from coldvault.records.printable import BAGS_STEP
from coldvault.records.transcript import Device, Signer, TranscriptWriter, verify

#: The reason an operator's "no" or Ctrl-C leaves in the transcript.
CANCELLED = "cancelled"
#: What an operator does instead of overwriting the printable copy of a transcript.
HTML_INSTEAD = "choose another --transcript (the printable copy is written beside it)."


def transcript_name(ceremony: str, ceremony_id: str, now: dt.datetime | None = None) -> str:
    """``<ceremony>-<UTC time>-<ceremony id>.jsonl``."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{ceremony}-{stamp}-{ceremony_id}.jsonl"


@dataclass(frozen=True)
class Closed:
    """How a completed run ended: its transcript and the hash witnesses signed."""

    ceremony: str
    ceremony_id: str
    transcript: Path
    final_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ceremony": self.ceremony,
            "ceremony_id": self.ceremony_id,
            "transcript": str(self.transcript),
            "final_hash": self.final_hash,
        }


class CeremonyRun:
    """Context manager around one ceremony run (see the module docstring)."""

    def __init__(
        self,
        operator: Operator,
        ceremony: str,
        params: CeremonyParams,
        *,
        parameters: dict[str, Any],
    ) -> None:
        self.operator = operator
        self.ceremony = ceremony
        self.actor = params.actor
        self.parameters = parameters
        self.ceremony_id = str(uuid.uuid4())
        self.transcript_path = params.transcript or params.transcript_dir / transcript_name(
            ceremony, self.ceremony_id
        )
        self._secrets: list[bytearray] = []
        self.transcript: TranscriptWriter | None = None
        #: set while words are on screen, so that an abort clears the screen first
        self.secret_on_screen = False

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> CeremonyRun:
        refuse_existing([self.transcript_path.with_suffix(".html")], HTML_INSTEAD)
        self.transcript_path.parent.mkdir(parents=True, exist_ok=True)
        self.transcript = TranscriptWriter.create(
            self.transcript_path,
            self.ceremony,
            actor=self.actor,
            devices=[Device("host", platform.node() or "unknown")],
            data={"parameters": self.parameters, "pid": os.getpid()},
            ceremony_id=self.ceremony_id,
        )
        self.operator.title(f"coldvault ceremony: {self.ceremony}")
        self.operator.info(f"Transcript: {self.transcript_path}")
        self.operator.info(f"Ceremony id: {self.ceremony_id}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.secret_on_screen:
                self.secret_on_screen = False
                self.operator.clear()
            if exc is not None and self.transcript is not None and not self.transcript.closed:
                reason = abort_reason(exc)
                self.transcript.abort(reason, actor=self.actor)
                what = "cancelled" if reason == CANCELLED else "aborted"
                self.operator.warn(
                    f"The ceremony was {what}; the transcript records it: {self.transcript_path}"
                )
        finally:
            self.wipe_secrets()
        if isinstance(exc, KeyboardInterrupt):
            raise Cancelled("The operator interrupted the ceremony.") from None

    # -- secrets --------------------------------------------------------------------------
    def secret(self, buf: bytearray) -> bytearray:
        """Register a secret buffer to be wiped however the ceremony ends."""
        self._secrets.append(buf)
        return buf

    def wipe_secrets(self) -> None:
        for buf in self._secrets:
            wipe(buf)
        self._secrets.clear()

    # -- transcript -----------------------------------------------------------------------
    @property
    def log(self) -> TranscriptWriter:
        if self.transcript is None:
            raise RuntimeError("the ceremony has not started")
        return self.transcript

    def record(
        self, step: str, data: dict[str, Any] | None = None, devices: Iterable[Device] = ()
    ) -> None:
        """Append one public entry to the transcript."""
        self.log.append(step, actor=self.actor, devices=devices, data=data or {})

    def finish(self, data: dict[str, Any] | None = None, signers: Iterable[Signer] = ()) -> Closed:
        """Record the tamper-evident bags the operator names (if the console asks), close the
        transcript as completed, collect witness signatures, verify it and write the
        printable ``.html`` copy beside it."""
        bags = self.operator.tamper_bags()
        if bags is not None:
            self.record(BAGS_STEP, {"bags": list(bags)})
        final_hash = self.log.close("completed", actor=self.actor, data=data or {})
        self.operator.info(f"Final transcript hash: {final_hash}")
        for signer in signers:
            sig = self.log.add_witness(signer)
            self.operator.ok(
                f"Witness signature of {sig.holder} (card {sig.card_serial}) added to the "
                "transcript."
            )
        result = verify(self.transcript_path)
        html_path = self.transcript_path.with_suffix(".html")
        write_new(html_path, render_transcript_html(self.transcript_path).encode(), HTML_INSTEAD)
        self.operator.ok(
            f"Transcript verified ({result.entries} entries); printable copy: {html_path}"
        )
        return Closed(self.ceremony, self.ceremony_id, self.transcript_path, final_hash)


def abort_reason(exc: BaseException) -> str:
    """The transcript's reason for an abort; never a value an error might quote."""
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        return CANCELLED
    if isinstance(exc, ColdvaultError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"unexpected {type(exc).__name__}"


__all__ = ["CANCELLED", "CeremonyRun", "Closed", "abort_reason", "transcript_name"]
