"""Printable records: the PDF is rasterised with pdftoppm and read back as an image.

The QR codes are decoded from the PNG pages by zxing-cpp (an independent decoder), the text
of every page comes from pdftotext, and the aborted mark is found both as text and as red
pixels across the page.
"""

from __future__ import annotations

import html
import json
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from click.testing import CliRunner
from nacl.signing import SigningKey
from PIL import Image

from ceremony_scripts.cli import ceremony
from ceremony_scripts.ui import ConsoleOperator
from coldvault.errors import EXIT_REFUSED
from coldvault.records.printable import (
    ABORTED_MARK,
    BAGS_STEP,
    UNVERIFIED_MARK,
    parse_bags,
    transcript_record,
)
from coldvault.records.transcript import Device, TranscriptWriter, WitnessSignature

# Public values of the BIP-84 test vector account (mnemonic "abandon ... about").
XPUB = (
    "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4"
    "ZeZXYVUhLv1VMrjPC7PW6V"
)
ORIGIN = f"[73c5da0a/84h/0h/0h]{XPUB}"
DESCRIPTOR = f"wpkh({ORIGIN}/<0;1>/*)"
ADDRESSES = [
    "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
]
GENESIS = "51109725241987fd17cbca58eaee209bd98ed79fbbc5e0af375480ed880d3ae6"
BLOB = "05daeef6428bf25548ed14b438e6ae6d7880ffac0e0fa1b857d4a925ebd7a52a"
BAGS = ["TEB-000417", "TEB-000418"]


def witness(message: bytes) -> WitnessSignature:
    key = SigningKey(bytes([7]) * 32)
    return WitnessSignature(
        "FFFFC0DE0003", "Carol Witness", "approver", "ed25519", bytes(key.verify_key),
        key.sign(message).signature,
    )  # fmt: skip


def backup_transcript(path: Path, *, abort: bool = False) -> tuple[TranscriptWriter, str]:
    w = TranscriptWriter.create(
        path, "backup", actor="Olga Operator", devices=[Device("host", "vault-host-7")],
        data={"parameters": {"plan": "plan-1"}},
    )  # fmt: skip
    w.append("card-enrolled", actor="Olga Operator", devices=[Device("card", "FFFFC0DE0001")],
             data={"card_serial": "FFFFC0DE0001", "holder": "Alice Custodian",
                   "role": "backup-custodian", "site": "site-b"})
    w.append("roster-written", actor="Olga Operator",
             data={"roster_sha256": GENESIS, "genesis_sha256": GENESIS})
    w.append("target-enrolled", actor="Olga Operator",
             data={"target": "site-a-hsm", "site": "site-a", "kind": "hsm",
                   "label": "backup-a", "serial": "5a1e0001"})
    w.append("target-enrolled", actor="Olga Operator",
             data={"target": "alice-card", "site": "site-b", "kind": "card",
                   "card": "FFFFC0DE0001"})
    w.append("share-written", actor="Olga Operator",
             data={"target": "site-a-hsm", "site": "site-a", "blob_sha256": BLOB})
    w.append("share-read-back", actor="Olga Operator",
             data={"target": "site-a-hsm", "site": "site-a"})
    w.append("exports-written", actor="Olga Operator",
             data={"accounts": [{"name": "house-bip84-main-0", "descriptor": DESCRIPTOR,
                                 "key_origin": ORIGIN, "xpub": XPUB,
                                 "first_addresses": ADDRESSES}]})  # fmt: skip
    if abort:
        w.abort("cancelled", actor="Olga Operator")
        return w, ""
    w.append(BAGS_STEP, actor="Olga Operator", data={"bags": BAGS})
    final = w.close(actor="Olga Operator")
    w.add_witness(witness)
    return w, final


def render(*args: str):
    return CliRunner().invoke(ceremony, ["transcript", "render", *args], catch_exceptions=False)


def rasterise(pdf: Path) -> list[Path]:
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(prefix)], check=True)
    return sorted(pdf.parent.glob(f"{prefix.name}-*.png"))


def page_texts(pdf: Path, pages: int) -> list[str]:
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
            check=True, capture_output=True, text=True,
        ).stdout
        for n in range(1, pages + 1)
    ]  # fmt: skip


def qr_texts(pngs: list[Path]) -> set[str]:
    found: set[str] = set()
    for png in pngs:
        found |= {b.text for b in zxingcpp.read_barcodes(Image.open(png))}
    return found


def red_pixels(png: Path) -> int:
    image = Image.open(png).convert("RGB")
    return sum(1 for r, g, b in image.get_flattened_data() if r > 200 and g < 190 and b < 190)


def test_completed_record_as_pdf_pages(tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    writer, final = backup_transcript(path)
    pdf = tmp_path / "record.pdf"
    result = render(str(path), "--pdf", str(pdf), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mark"] == ""
    pngs = rasterise(pdf)
    texts = page_texts(pdf, len(pngs))
    assert len(pngs) >= 2
    for number, text in enumerate(texts, start=1):
        assert writer.ceremony_id in text, f"page {number} lacks the ceremony id"
        assert f"Page {number} of {len(pngs)}" in text
        assert "ABORTED" not in text and "NOT VERIFIED" not in text
    whole = "\n".join(texts)
    for needed in ("Olga Operator", "Alice Custodian", "Carol Witness", "signature and date",
                   "vault-host-7", "FFFFC0DE0001", "backup-a:5a1e0001", *BAGS, "site-a-hsm",
                   "alice-card", "VERIFIED: 11 entries", "1 checked"):
        assert needed in whole, needed
    # a witness compares serials on paper: each stays whole, on its holder's line
    lines = whole.splitlines()
    assert any("Carol Witness" in line and "FFFFC0DE0003" in line for line in lines)
    assert any("Alice Custodian" in line and "FFFFC0DE0001" in line for line in lines)
    assert qr_texts(pngs) == {DESCRIPTOR, ORIGIN, XPUB, *ADDRESSES, GENESIS, final}
    assert red_pixels(pngs[0]) < 500  # no mark on a completed record


def test_aborted_record_is_marked_on_every_page(tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl"
    backup_transcript(path, abort=True)
    pdf, html_file = tmp_path / "aborted.pdf", tmp_path / "aborted.html"
    result = render(str(path), "--pdf", str(pdf), "--html", str(html_file))
    assert result.exit_code == 0, result.output
    assert "marked ABORTED" in result.stdout
    pngs = rasterise(pdf)
    for png, text in zip(pngs, page_texts(pdf, len(pngs)), strict=True):
        assert ABORTED_MARK in text
        assert red_pixels(png) > 20_000  # the diagonal mark across the page
    assert "none recorded" in page_texts(pdf, 1)[0]  # no bags were recorded
    page = html_file.read_text()
    assert page.count(ABORTED_MARK) >= 2 and "THE CEREMONY WAS ABORTED" in page


def test_tampered_transcript_is_marked_not_verified(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    backup_transcript(path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("site-a", "site-x")
    path.write_text("\n".join(lines) + "\n")
    record = transcript_record(path)
    assert record.mark == UNVERIFIED_MARK and not record.complete
    assert record.verification[-1][1].startswith("NOT VERIFIED: Transcript entry 3")


def test_render_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    backup_transcript(path)
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(b"the signed paper copy's scan")
    result = render(str(path), "--pdf", str(pdf))
    assert result.exit_code == EXIT_REFUSED
    assert "already exists" in result.output and "Traceback" not in result.output
    assert pdf.read_bytes() == b"the signed paper copy's scan"


def test_bags_prompt_is_recorded(tmp_path: Path) -> None:
    assert parse_bags("TEB-1, TEB-2 TEB-1") == ("TEB-1", "TEB-2")
    assert parse_bags("none") == ()
    with CliRunner().isolation(input="TEB-9, TEB-10\n"):
        assert ConsoleOperator(ask_bags=True).tamper_bags() == ("TEB-9", "TEB-10")
    assert ConsoleOperator(ask_bags=False).tamper_bags() is None


@pytest.mark.parametrize("args", [("--html",), ("-o",)])
def test_html_record(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = tmp_path / "t.jsonl"
    writer, final = backup_transcript(path)
    out = tmp_path / "record.html"
    assert render(str(path), *args, str(out)).exit_code == 0
    page = out.read_text()
    assert writer.ceremony_id in page and final in page and html.escape(DESCRIPTOR) in page
    assert page.count("data:image/png;base64,") == 7 and ABORTED_MARK not in page


def test_policy_approval_record_names_the_admins_and_the_document(tmp_path: Path) -> None:
    path = tmp_path / "approve.jsonl"
    digest = "ab" * 32
    w = TranscriptWriter.create(path, "approve-document", actor="Olga Operator")
    w.append("document-reviewed", actor="Olga Operator",
             data={"kind": "policy", "file": "policy.toml", "sha256": digest,
                   "changes": ["acme-bip84-main-0: destination bc1qtreasury added"]})
    for serial, holder in (("FFFFC0DE0004", "Dave Admin"), ("FFFFC0DE0005", "Erin Admin")):
        w.append("admin-approval", actor="Olga Operator", devices=[Device("card", serial)],
                 data={"card_serial": serial, "holder": holder, "site": "site-a"})
    w.close(actor="Olga Operator", data={"kind": "policy", "sha256": digest, "version": 3})
    record = transcript_record(path)
    assert record.complete and record.status == "completed"
    assert [(p.name, p.role) for p in record.participants] == [
        ("Olga Operator", "operator"), ("Dave Admin", "admin approver"),
        ("Erin Admin", "admin approver"),
    ]  # fmt: skip
    assert ("policy SHA-256", digest) in [(q.label, q.value) for q in record.qr_values]
    assert "Change: acme-bip84-main-0: destination bc1qtreasury added" in record.summary
    assert ("version", "3") in record.facts
