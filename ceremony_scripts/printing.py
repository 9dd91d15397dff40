"""Printable records as PDF (ReportLab): the renderer of
:class:`coldvault.records.printable.PrintableRecord` (its HTML page is
:func:`coldvault.records.page.render_html`).

Every page carries the ceremony id and "page N of M" in its header and footer; a record
that is not a completed, verified ceremony carries its mark (``ABORTED — INCOMPLETE``, ...)
diagonally across every page and again at the top. QR codes are drawn by the one QR
renderer, :func:`coldvault.transport.render.render_png`, at error-correction level M; every
value is also printed whole beside its code.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from coldvault.records.page import bags_text, participants, qr_png
from coldvault.records.printable import PrintableRecord, Table


# -- PDF --------------------------------------------------------------------------------------
def _canvas_class(record: PrintableRecord) -> type[Canvas]:
    """A canvas that draws the header, footer and mark once the page count is known."""

    class RecordCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._decorate(number, total)
                super().showPage()
            super().save()

        def _decorate(self, number: int, total: int) -> None:
            width, height = A4
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.black)
            self.drawString(15 * mm, height - 10 * mm, f"coldvault {record.ceremony} record")
            self.drawRightString(
                width - 15 * mm, height - 10 * mm, f"Ceremony id: {record.ceremony_id}"
            )
            self.drawString(15 * mm, 8 * mm, f"Ceremony id: {record.ceremony_id}")
            self.drawRightString(width - 15 * mm, 8 * mm, f"Page {number} of {total}")
            if record.mark:
                self.setFont("Helvetica-Bold", 9)
                self.setFillColor(colors.Color(0.75, 0, 0))
                self.drawCentredString(width / 2, 8 * mm, record.mark)
                self.saveState()
                self.setFillColor(colors.Color(0.8, 0, 0, alpha=0.35))
                self.setFont("Helvetica-Bold", 40)
                self.translate(width / 2, height / 2)
                self.rotate(45)
                self.drawCentredString(0, 0, record.mark)
                self.restoreState()

    return RecordCanvas


def _pdf_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], style: ParagraphStyle,
    widths: Sequence[float] | None = None,
) -> PdfTable:  # fmt: skip
    cells = [[Paragraph(html.escape(h), style) for h in header]]
    cells += [[Paragraph(html.escape(c), style) for c in row] for row in rows]
    table = PdfTable(cells, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))  # fmt: skip
    return table


def render_pdf(record: PrintableRecord) -> bytes:
    """The record as a PDF document (A4)."""
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], ParagraphStyle("small", fontSize=7.5, leading=9)
    mono = ParagraphStyle("mono", fontName="Courier", fontSize=7, leading=8.5, wordWrap="CJK")
    h1, h2 = styles["Heading1"], styles["Heading2"]
    alert = ParagraphStyle("alert", parent=h1, textColor=colors.Color(0.7, 0, 0))
    width = A4[0] - 30 * mm
    story: list[Any] = [Paragraph(html.escape(record.title), h1)]
    if record.mark:
        story.append(Paragraph(html.escape(record.mark), alert))
    story.append(Paragraph(f"Ceremony id: <b>{html.escape(record.ceremony_id)}</b> &nbsp; "
                           f"Status: <b>{html.escape(record.status)}</b>", body))
    story.append(Paragraph("Summary", h2))
    story += [Paragraph(html.escape(line), body) for line in record.summary]
    if record.facts:
        story.append(Paragraph("Results", h2))
        story.append(_pdf_table(("item", "value"), record.facts, mono, [45 * mm, width - 45 * mm]))
    story.append(Paragraph("Participants and signatures", h2))
    story.append(Paragraph(
        "Each person checks this record against what they saw, then signs and dates it.", body))
    rows = [
        (p.name or "name: ", p.role, p.card_serial, p.site, "\n\n________________________")
        for p in participants(record)
    ]
    # a card serial (12 characters) fits its column whole: witnesses compare it on paper
    story.append(_pdf_table(("name", "role", "card", "site", "signature and date"), rows, body,
                            [38 * mm, 34 * mm, 34 * mm, 20 * mm, width - 126 * mm]))
    story.append(Paragraph("Equipment", h2))
    story.append(_pdf_table(("kind", "serial"), record.equipment or [("", "")], mono,
                            [30 * mm, width - 30 * mm]))
    story.append(Paragraph("Tamper-evident bags", h2))
    story.append(Paragraph(html.escape(bags_text(record)), body))
    for table in (record.custodians, record.shares):
        if table is not None:
            story += _pdf_section_table(table, h2, mono, width)
    if record.qr_values:
        story.append(Paragraph("Public values to re-enter (scan or type)", h2))
        for qr in record.qr_values:
            image = Image(io.BytesIO(qr_png(qr.value)))
            side = min(60 * mm, max(28 * mm, image.imageWidth * 0.5))
            image.drawWidth = image.drawHeight = side
            text = [Paragraph(f"<b>{html.escape(qr.label)}</b>", body),
                    Paragraph(html.escape(qr.value), mono)]
            row = PdfTable([[image, text]], colWidths=[side + 4 * mm, width - side - 4 * mm])
            row.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story.append(KeepTogether([row, Spacer(1, 2 * mm)]))
    story.append(Paragraph("Verification", h2))
    story.append(_pdf_table(("check", "result"), record.verification, mono,
                            [45 * mm, width - 45 * mm]))
    story += _pdf_section_table(record.steps, h2, small, width)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=16 * mm,
        bottomMargin=15 * mm, title=record.title, subject=f"ceremony {record.ceremony_id}",
        author="coldvault",
    )  # fmt: skip
    doc.build(story, canvasmaker=_canvas_class(record))
    return buffer.getvalue()


def _column_widths(table: Table, style: ParagraphStyle, width: float) -> list[float]:
    """Column widths for ``table`` within ``width``, shared out like water: every column whose
    longest value fits its share keeps its natural width (so short values such as serials,
    sites and labels are never broken), and the long columns share the rest equally."""
    char, padding = style.fontSize * 0.62, 13.0  # at least a Courier/Helvetica glyph's width
    lines = [table.header, *table.rows]
    natural = [
        max(len(part) for row in lines for part in str(row[i]).split("\n")) * char + padding
        for i in range(len(table.header))
    ]
    widths: list[float] = [0.0] * len(natural)
    left, room = set(range(len(natural))), width
    while left:
        share = room / len(left)
        fits = {i for i in left if natural[i] <= share}
        if not fits:
            for i in left:
                widths[i] = share
            break
        for i in fits:
            widths[i] = natural[i]
        room -= sum(natural[i] for i in fits)
        left -= fits
    spare = width - sum(widths)  # everything fitted: the spare width goes to the last column
    widths[-1] += max(spare, 0.0)
    return widths


def _pdf_section_table(
    table: Table, heading: ParagraphStyle, style: ParagraphStyle, width: float
) -> list[Any]:
    return [Paragraph(html.escape(table.title), heading),
            _pdf_table(table.header, table.rows, style, _column_widths(table, style, width))]


# -- HTML -------------------------------------------------------------------------------------
__all__ = ["render_pdf"]
