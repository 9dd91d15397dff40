"""A printable record as one standalone HTML page: the page a ceremony leaves beside its
transcript, and ``coldvault transcript render --html``.  The PDF of the same record is drawn
by the front end (:mod:`ceremony_scripts.printing`) from the same
:class:`~coldvault.records.printable.PrintableRecord` and the helpers here.

QR codes are drawn by the one QR renderer, :func:`coldvault.transport.render.render_png`, at
error-correction level M; every value is also printed whole beside its code.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coldvault.records.printable import Participant, PrintableRecord, transcript_record
from coldvault.transport.render import Ecc, RenderOptions, render_png

#: QR codes on paper: level M, 4 px modules, the standard 4-module quiet zone
QR_OPTIONS = RenderOptions(ecc=Ecc.M, box_size=4, border=4)
#: blank signature lines for people not named in the transcript (extra witnesses)
EXTRA_WITNESS_LINES = 2


def qr_png(value: str) -> bytes:
    return render_png(value, QR_OPTIONS)


def participants(record: PrintableRecord) -> list[Participant]:
    extra = [Participant("", "witness") for _ in range(EXTRA_WITNESS_LINES)]
    return [*record.participants, *extra]


def bags_text(record: PrintableRecord) -> str:
    if record.bags:
        return ", ".join(record.bags)
    return "none recorded in the transcript; write any bag numbers here by hand: ________"


_CSS = (
    "body{font-family:sans-serif;font-size:10pt;margin:2em}table{border-collapse:collapse;"
    "width:100%;margin-bottom:1em}td,th{border:1px solid #888;vertical-align:top;padding:3px;"
    "text-align:left}th{background:#e6e6e6}.v{font-family:monospace;word-break:break-all}"
    ".sig{width:35%;height:3em}.mark{color:#b00;font-size:20pt;font-weight:bold}"
    ".wm{position:fixed;top:45%;left:0;width:100%;text-align:center;font-size:48pt;"
    "font-weight:bold;color:rgba(200,0,0,.3);transform:rotate(-45deg);pointer-events:none}"
    "figure{display:flex;gap:1em;margin:.5em 0;page-break-inside:avoid}"
    "header,footer{font-size:8pt;color:#333}"
    "@page{@bottom-right{content:'Page ' counter(page) ' of ' counter(pages)}}"
    "@media print{header,footer{position:fixed}header{top:0}footer{bottom:0}"
    "tr{page-break-inside:avoid}}"
)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{cls}">{esc(c)}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(record: PrintableRecord) -> str:
    """The record as one standalone HTML page (QR codes as PNG data URIs)."""
    esc = html.escape
    cid = esc(record.ceremony_id)
    parts = [
        "<!DOCTYPE html><html><head><meta charset=utf-8>",
        f"<title>{esc(record.title)} {cid}</title><style>{_CSS}</style></head><body>",
        f"<header>coldvault {esc(record.ceremony)} record &middot; Ceremony id: {cid}</header>",
    ]
    if record.mark:
        parts.append(f'<div class="wm">{esc(record.mark)}</div>')
    parts.append(f"<h1>{esc(record.title)}</h1>")
    if record.mark:
        parts.append(f'<p class="mark">{esc(record.mark)}</p>')
    parts.append(f"<p>Ceremony id: <b>{cid}</b> &middot; Status: <b>{esc(record.status)}</b></p>")
    parts.append("<h2>Summary</h2>" + "".join(f"<p>{esc(s)}</p>" for s in record.summary))
    if record.facts:
        parts.append("<h2>Results</h2>" + _html_table(("item", "value"), record.facts, cls="v"))
    parts.append("<h2>Participants and signatures</h2><p>Each person checks this record "
                 "against what they saw, then signs and dates it.</p>")
    rows = "".join(
        f"<tr><td>{esc(p.name)}</td><td>{esc(p.role)}</td><td>{esc(p.card_serial)}</td>"
        f'<td>{esc(p.site)}</td><td class="sig"></td></tr>'
        for p in participants(record)
    )
    parts.append("<table><tr><th>name</th><th>role</th><th>card</th><th>site</th>"
                 f"<th>signature and date</th></tr>{rows}</table>")
    parts.append("<h2>Equipment</h2>" + _html_table(("kind", "serial"), record.equipment, cls="v"))
    parts.append(f"<h2>Tamper-evident bags</h2><p>{esc(bags_text(record))}</p>")
    for c in (record.custodians, record.shares):
        if c is not None:
            parts.append(f"<h2>{esc(c.title)}</h2>" + _html_table(c.header, c.rows, cls="v"))
    if record.qr_values:
        parts.append("<h2>Public values to re-enter (scan or type)</h2>")
        for qr in record.qr_values:
            uri = "data:image/png;base64," + base64.b64encode(qr_png(qr.value)).decode()
            parts.append(f'<figure><img alt="{esc(qr.label)}" src="{uri}"><figcaption><b>'
                         f'{esc(qr.label)}</b><br><span class="v">{esc(qr.value)}</span>'
                         "</figcaption></figure>")
    parts.append("<h2>Verification</h2>"
                 + _html_table(("check", "result"), record.verification, cls="v"))
    s = record.steps
    parts.append(f"<h2>{esc(s.title)}</h2>" + _html_table(s.header, s.rows))
    parts.append(f"<footer>Ceremony id: {cid}</footer></body></html>\n")
    return "".join(parts)


def render_transcript_html(path: Path, *, roster: Any = None) -> str:
    """The printable page of the transcript at ``path`` (verified against ``roster`` when
    given); a transcript that does not verify is marked so on the page."""
    return render_html(transcript_record(path, roster=roster))


__all__ = [
    "EXTRA_WITNESS_LINES",
    "QR_OPTIONS",
    "bags_text",
    "participants",
    "qr_png",
    "render_html",
    "render_transcript_html",
]
