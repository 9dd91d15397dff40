"""Running one ceremony: transcript lifecycle, secret wiping, abort handling, exit codes.

``with CeremonyRun(...) as run:`` creates the transcript (``open`` entry), collects the
secret buffers the ceremony registers with :meth:`CeremonyRun.secret`, and on *any* exit
wipes them.  Ctrl-C, a refused input or a hardware error writes an ``aborted`` close entry
with the reason (an error's class and sentence, never a secret) before the error reaches
the operator; a normal exit leaves the transcript open for :meth:`finish`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from ceremony_scripts.ui import Operator
from coldvault.crypto import wipe
from coldvault.errors import ColdvaultError
from coldvault.records.transcript import Device, Signer, TranscriptWriter, render_html, verify


def default_transcript_path(directory: Path, ceremony: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{ceremony}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"


class CeremonyRun:
    """Context manager around one ceremony run."""

    def __init__(
        self,
        operator: Operator,
        ceremony: str,
        transcript_path: Path,
        *,
        actor: str,
        parameters: dict[str, Any],
    ) -> None:
        self.operator = operator
        self.ceremony = ceremony
        self.transcript_path = transcript_path
        self.actor = actor
        self.parameters = parameters
        self._secrets: list[bytearray] = []
        self.transcript: TranscriptWriter | None = None
        #: set while words are on screen, so an abort clears the screen first
        self.secret_on_screen = False

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> CeremonyRun:
        self.transcript_path.parent.mkdir(parents=True, exist_ok=True)
        self.transcript = TranscriptWriter.create(
            self.transcript_path,
            self.ceremony,
            actor=self.actor,
            devices=[Device("host", platform.node() or "unknown")],
            data={"parameters": self.parameters, "pid": os.getpid()},
        )
        self.operator.title(f"coldvault ceremony: {self.ceremony}")
        self.operator.info(f"Transcript: {self.transcript_path}")
        self.operator.info(f"Ceremony id: {self.transcript.ceremony_id}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.secret_on_screen:
                self.operator.clear()
                self.secret_on_screen = False
            if exc is not None and self.transcript is not None and not self.transcript.closed:
                self.transcript.abort(_reason(exc), actor=self.actor)
                self.operator.warn(f"The ceremony was aborted: {_reason(exc)}")
                self.operator.info(f"The transcript records the abort: {self.transcript_path}")
        finally:
            self.wipe_secrets()

    # -- secrets --------------------------------------------------------------------------
    def secret(self, buf: bytearray) -> bytearray:
        """Register a secret buffer to be wiped however the ceremony ends."""
        self._secrets.append(buf)
        return buf

    def wipe_secrets(self) -> None:
        for buf in self._secrets:
            wipe(buf)
        self._secrets.clear()

    # -- transcript helpers ---------------------------------------------------------------
    @property
    def log(self) -> TranscriptWriter:
        if self.transcript is None:
            raise RuntimeError("the ceremony has not started")
        return self.transcript

    def record(
        self, step: str, data: dict[str, Any] | None = None, devices: Iterable[Device] = ()
    ) -> None:
        self.log.append(step, actor=self.actor, devices=devices, data=data or {})

    def finish(self, data: dict[str, Any] | None = None, signers: Iterable[Signer] = ()) -> str:
        """Close the transcript as completed, collect witness signatures, render HTML."""
        final_hash = self.log.close("completed", actor=self.actor, data=data or {})
        self.operator.info(f"Final transcript hash: {final_hash}")
        for signer in signers:
            sig = self.log.add_witness(signer)
            self.operator.ok(f"Witness {sig.holder} (card {sig.card_serial}) signed.")
        result = verify(self.transcript_path)
        html_path = self.transcript_path.with_suffix(".html")
        html_path.write_text(render_html(self.transcript_path))
        self.operator.ok(
            f"Transcript verified ({result.entries} entries); printable copy: {html_path}"
        )
        return final_hash


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return "interrupted by the operator"
    if isinstance(exc, ColdvaultError):
        return f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, click.ClickException):
        return f"{type(exc).__name__}: {exc.format_message()}"
    # Unexpected errors: name the type only (their text might quote a value).
    return f"unexpected {type(exc).__name__}"


__all__ = ["CeremonyRun", "default_transcript_path"]
