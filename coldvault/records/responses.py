"""Signed responses kept durably, so that a signature is never lost and never made twice.

The appliance writes each response here *before* the request counts as signed:

1. :meth:`ResponseStore.put_pending` -- ``<digest>.pending`` written and fsync'd (and the
   directory fsync'd) right after the HSM signed;
2. the ``signature`` audit entry (durable) names the request and the response's SHA-256;
3. :meth:`ResponseStore.commit` -- renamed to ``<digest>.response`` (directory fsync'd);
4. the ledger marks the request signed.

A crash leaves one of: a pending file whose ``signature`` entry is in the trail (start-up
commits it), a pending file with no ``signature`` entry (the response never left the box
and was never audited: start-up discards it, and the request is signed afresh with fresh
approvals), or a committed response (a resubmitted request re-shows it; the HSM does not
sign again). A stored response holds only public data (signatures, the signed PSBT).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from coldvault import schema
from coldvault.errors import IntegrityError
from coldvault.records.chain import fsync_dir

__all__ = ["ResponseCorrupt", "ResponseStore", "StoredResponse"]

_NAME = re.compile(r"^[0-9a-f]{64}\.(pending|response)$")
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class ResponseCorrupt(IntegrityError):
    code = "response-corrupt"

    def __init__(self, digest: str, reason: str) -> None:
        super().__init__(f"The stored response of request {digest[:16]} is unusable: {reason}.")
        self.digest = digest
        self.reason = reason


@dataclass(frozen=True)
class StoredResponse:
    digest: str  # hex SHA-256 of the request
    response_type: str
    response: bytes
    audit_seq: int  # the audit entry the response follows (its ``signing`` entry)
    audit_head: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.response).hexdigest()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"digest": self.digest, "response_type": self.response_type,
             "response": self.response.hex(), "audit_seq": self.audit_seq,
             "audit_head": self.audit_head}, sort_keys=True,
        ).encode()  # fmt: skip

    @classmethod
    def from_bytes(cls, digest: str, data: bytes) -> StoredResponse:
        try:
            body = schema.parse_json(data)  # bounded: the file is untrusted
        except schema.SchemaViolation as exc:
            raise ResponseCorrupt(digest, exc.problem) from None
        try:
            stored = cls(str(body["digest"]), str(body["response_type"]),
                         bytes.fromhex(body["response"]), int(body["audit_seq"]),
                         str(body["audit_head"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ResponseCorrupt(digest, type(exc).__name__) from exc
        if stored.digest != digest:
            raise ResponseCorrupt(digest, "it names another request")
        return stored


class ResponseStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)

    def _path(self, digest: str, kind: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("a request digest is 64 lowercase hex digits")
        return self.directory / f"{digest}.{kind}"

    def put_pending(self, stored: StoredResponse) -> None:
        path = self._path(stored.digest, "pending")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, stored.to_bytes())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.directory)

    def commit(self, digest: str) -> None:
        os.replace(self._path(digest, "pending"), self._path(digest, "response"))
        fsync_dir(self.directory)

    def discard(self, digest: str) -> None:
        self._path(digest, "pending").unlink(missing_ok=True)
        fsync_dir(self.directory)

    def get(self, digest: str) -> StoredResponse | None:
        """The committed response of request ``digest``, if any."""
        path = self._path(digest, "response")
        if not path.exists():
            return None
        if path.stat().st_size > MAX_RESPONSE_BYTES:
            raise ResponseCorrupt(digest, "it is too large")
        return StoredResponse.from_bytes(digest, path.read_bytes())

    def pending(self) -> list[str]:
        return sorted(p.name[:64] for p in self.directory.iterdir()
                      if _NAME.match(p.name) and p.name.endswith(".pending"))

    def committed(self) -> list[str]:
        return sorted(p.name[:64] for p in self.directory.iterdir()
                      if _NAME.match(p.name) and p.name.endswith(".response"))
