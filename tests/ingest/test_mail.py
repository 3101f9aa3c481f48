"""E-mail: .eml messages built with the standard library's `email` package, real Outlook .msg
files (tests/ingest/mail/README.md says where they come from), attachments as documents."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from ingest.formats import load
from ingest.loaders import LoadError
from ingest.pipeline import Ingestor
from retrieval.chroma import open_chroma_client
from retrieval.filters import SearchFilter
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

DOCS = Path(__file__).resolve().parents[2] / "docs"
MSG = Path(__file__).resolve().parent / "mail"
SUBJECT = "Release checklist for 2.4"


def forwarded() -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "Priya Raman <priya@example.com>"
    inner["To"] = "ana.lima@example.com"
    inner["Subject"] = "Changelog owners"
    inner["Date"] = "Fri, 30 Oct 2026 08:00:00 +0000"
    inner.set_content("Who owns the changelog this cycle? See the notes.")
    inner.add_attachment(b"The changelog is owned by the docs guild; Priya reviews the wording.",
                         maintype="text", subtype="plain", filename="notes.txt")  # fmt: skip
    return inner


def message(*, with_zip: bool = True, body: str = "") -> bytes:
    """A message as a mail client saves it: a plain and an HTML body, a Markdown page of our
    docs attached, a zip, a logo inside the HTML, and a forwarded message with its own file."""
    mail = EmailMessage()
    mail["From"] = "Ana Lima <Ana.Lima@example.com>"
    mail["To"] = "support@example.com, Bo Chen <bo@example.com>"
    mail["Subject"] = SUBJECT
    mail["Date"] = "Mon, 02 Nov 2026 10:15:00 +0100"
    text = body or "The release freeze starts on Thursday at 17:00; Priya signs off the changelog."
    mail.set_content(text)
    mail.add_alternative(f"<html><body><p>{text}</p><img src='cid:logo'></body></html>",
                         subtype="html")  # fmt: skip
    logo = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(logo, "PNG")
    mail.get_payload()[1].add_related(logo.getvalue(), "image", "png", cid="<logo>")
    mail.add_attachment((DOCS / "ingesting.md").read_bytes(), maintype="text",
                        subtype="markdown", filename="ingesting.md")  # fmt: skip
    if with_zip:
        mail.add_attachment(b"PK\x05\x06" + bytes(18), maintype="application", subtype="zip",
                            filename="logs.zip")  # fmt: skip
    mail.add_attachment(forwarded())
    return bytes(mail)


@pytest.fixture
def index(tmp_path: Path) -> ChromaIndex:
    return ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")


def ingest(index: ChromaIndex, folder: Path) -> object:
    return Ingestor(index=index, embedder=FakeEmbedder()).ingest([folder], collection="mail")


def test_a_message_and_each_attachment_are_documents(tmp_path: Path, index: ChromaIndex) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "release.eml").write_bytes(message())
    report = ingest(index, folder)
    documents = index.documents("mail")
    eml = (folder / "release.eml").resolve().as_posix()
    sources = {s for s in documents if s.startswith(eml)}
    assert sources == {
        eml,
        f"{eml}/ingesting.md",
        f"{eml}/logs.zip",
        f"{eml}/Changelog owners.eml",
        f"{eml}/Changelog owners.eml/notes.txt",
    }
    assert documents[f"{eml}/ingesting.md"].parent == eml
    forwarded_eml = f"{eml}/Changelog owners.eml"
    assert documents[f"{forwarded_eml}/notes.txt"].parent == forwarded_eml
    assert documents[f"{eml}/logs.zip"].status == "failed"  # unsupported: said, not hidden
    assert "unsupported file type '.zip'" in documents[f"{eml}/logs.zip"].error
    assert report.files_ok == 1 and len(report.attachments) == 3  # type: ignore[attr-defined]
    assert [e.path for e in report.attachment_errors] == [f"{eml}/logs.zip"]  # type: ignore[attr-defined]

    [(body, _)] = index.keyword_query("mail", "When does the release freeze start?", 1)
    assert body.source == eml and "Thursday at 17:00" in body.text
    assert body.location == f"e-mail “{SUBJECT}”, 2026-11-02"
    assert "From: Ana Lima <Ana.Lima@example.com>" in body.text
    assert (body.metadata["from"], body.metadata["sent"]) == (
        "ana.lima@example.com",
        "2026-11-02T10:15:00+01:00",
    )
    [(page, _)] = index.keyword_query("mail", "Does pypdf keep page numbers?", 1)
    assert page.source == f"{eml}/ingesting.md"
    assert page.location.endswith(f"attached to “{SUBJECT}”, 2026-11-02")
    [(note, _)] = index.keyword_query("mail", "who owns the changelog docs guild", 1)
    assert note.source.endswith("notes.txt")
    assert note.location == "attached to “Changelog owners”, 2026-10-30"
    # The sender, the day and the message are filters.
    by_sender = SearchFilter(metadata={"from": "priya@example.com"})
    hits = index.keyword_query("mail", "changelog", 5, where=by_sender)
    assert {c.source for c, _ in hits} == {f"{eml}/Changelog owners.eml"}
    attached = SearchFilter(metadata={"attached_to": eml})
    hits = index.keyword_query("mail", "changelog pypdf", 10, where=attached)
    assert hits and {c.source for c, _ in hits} <= {f"{eml}/ingesting.md", forwarded_eml}


def test_a_changed_message_drops_old_attachments_and_delete_takes_them_all(
    tmp_path: Path, index: ChromaIndex
) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    path = folder / "release.eml"
    path.write_bytes(message())
    ingest(index, folder)
    path.write_bytes(message(with_zip=False, body="The freeze moved to Friday."))
    ingest(index, folder)
    documents = index.documents("mail")
    eml = path.resolve().as_posix()
    assert f"{eml}/logs.zip" not in documents
    assert f"{eml}/ingesting.md" in documents
    assert index.count("mail") == sum(r.chunks for r in documents.values())  # nothing stale
    ingestor = Ingestor(index=index, embedder=FakeEmbedder())
    assert ingestor.delete("mail", eml) == sum(r.chunks for r in documents.values())
    assert index.documents("mail") == {} and index.count("mail") == 0


def test_outlook_messages_with_attached_messages_and_a_pdf(
    tmp_path: Path, index: ChromaIndex
) -> None:
    folder = tmp_path / "outlook"
    folder.mkdir()
    for name in ("outer.msg", "other.msg"):
        (folder / name).write_bytes((MSG / name).read_bytes())
    report = ingest(index, folder)
    assert (report.files_ok, report.files_failed) == (2, 0)  # type: ignore[attr-defined]
    documents = index.documents("mail")
    outer, other = ((folder / n).resolve().as_posix() for n in ("outer.msg", "other.msg"))
    assert documents[f"{outer}/test.msg"].parent == outer
    [(bounce, _)] = index.keyword_query("mail", "failure notice permanent error recipient", 1)
    assert bounce.source == other
    assert bounce.location == "e-mail “投递状态通知 (Failure Notice)”, 2017-11-27"
    assert bounce.metadata["from"] == "mailer-daemon@tjdpf.org.cn"
    # The returned message's PDF, two levels down, keeps its page numbers.
    [(pdf, _)] = index.keyword_query("mail", "Watsons Water", 1)
    assert pdf.source.startswith(f"{other}/default_attachment.eml/") and pdf.source.endswith(".pdf")
    assert pdf.page == 4 and pdf.location.startswith("page 4 · attached to “回复")


def test_the_debian_faq_attached_keeps_its_pages(shared_data: Path, tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["Subject"] = "FAQ"
    mail.set_content("The FAQ, attached.")
    mail.add_attachment((shared_data / "debian_faq" / "debian-faq.en.pdf").read_bytes(),
                        maintype="application", subtype="pdf", filename="faq.pdf")  # fmt: skip
    (tmp_path / "faq.eml").write_bytes(bytes(mail))
    pages = load(tmp_path / "faq.eml", source="faq.eml")
    pdf = [p for p in pages if p.source == "faq.eml/faq.pdf"]
    assert len(pdf) > 20 and [p.number for p in pdf[:3]] == [1, 2, 3]


def test_bad_messages_fail_alone(tmp_path: Path, index: ChromaIndex) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "empty.eml").write_bytes(b"")
    (folder / "fake.msg").write_bytes(b"this is not an Outlook file at all" * 10)
    (folder / "good.eml").write_bytes(message())
    with pytest.raises(LoadError, match="not an Outlook message"):
        load(folder / "fake.msg")
    report = ingest(index, folder)
    assert report.files_ok == 1  # type: ignore[attr-defined]
    assert sorted(Path(e.path).name for e in report.errors) == ["empty.eml", "fake.msg"]  # type: ignore[attr-defined]


def test_a_zip_bomb_attached_costs_that_attachment_only(tmp_path: Path) -> None:
    from ingest.formats import load_mail
    from ingest.isolation import run_isolated
    from tests.ingest.test_office import converted, zip_bomb

    bomb = zip_bomb(converted(DOCS / "ingesting.md", tmp_path, ".docx"), tmp_path / "bomb.docx")
    mail = EmailMessage()
    mail["Subject"] = "Quarterly report"
    mail.set_content("The body survives.")
    mail.add_attachment(bomb.read_bytes(), maintype="application", subtype="octet-stream",
                        filename="report.docx")  # fmt: skip
    mail.add_attachment(b"The notes survive too.", maintype="text", subtype="plain",
                        filename="notes.txt")  # fmt: skip
    (tmp_path / "bomb.eml").write_bytes(bytes(mail))
    pages = run_isolated(load_mail, tmp_path / "bomb.eml", source="m", timeout_s=120,
                         memory_mb=256)  # fmt: skip
    assert [(p.source, p.text) for p in pages][1:] == [
        ("m/report.docx", ""),
        ("m/notes.txt", "The notes survive too."),
    ]
    assert "more memory than the limit" in str(pages[1].metadata["error"])
    assert "The body survives." in pages[0].text
