"""OCR with Debian's Tesseract on scans made by real tools: real PDF pages rendered to images by
pdftoppm, and to image-only PDFs by Pillow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.formats import load
from ingest.loaders import LoadError, load_pdf
from ingest.ocr import MAX_PIXELS
from ingest.pipeline import Ingestor
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder

PROSE_PAGE = 10  # of the Debian FAQ: a page of running text


def tools() -> None:
    for tool, package in (("tesseract", "tesseract-ocr"), ("pdftoppm", "poppler-utils")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: `make setup` installs Debian's {package} "
                        "when run as root")  # fmt: skip


@pytest.fixture(scope="module")
def faq_pdf(shared_data: Path) -> Path:
    return shared_data / "debian_faq" / "debian-faq.en.pdf"


def rendered(pdf: Path, page: int, folder: Path) -> Path:
    """Page `page` of `pdf` as a 300 dpi PNG, by pdftoppm."""
    tools()
    subprocess.run(["pdftoppm", "-r", "300", "-f", str(page), "-l", str(page), "-png",
                    "-singlefile", str(pdf), str(folder / f"page-{page}")],
                   check=True, timeout=120)  # fmt: skip
    return folder / f"page-{page}.png"


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char != other)))  # fmt: skip
        previous = current
    return previous[-1]


def test_ocr_reads_a_rendered_page_as_its_text_layer_says(faq_pdf: Path, tmp_path: Path) -> None:
    image = rendered(faq_pdf, PROSE_PAGE, tmp_path)
    [page] = load(image, source="scan", ocr_languages="eng")
    assert page.metadata == {"ocr": True} and page.number == 1
    truth = " ".join(load_pdf(faq_pdf, source="f")[PROSE_PAGE - 1].text.split())
    read = " ".join(page.text.split())
    accuracy = 1 - edit_distance(truth, read) / len(truth)
    assert len(truth) > 2000 and accuracy >= 0.95, accuracy


def test_a_pdf_with_text_and_scanned_pages_gets_both(faq_pdf: Path, tmp_path: Path) -> None:
    from PIL import Image
    from pypdf import PdfReader, PdfWriter

    scan = tmp_path / "scan.pdf"  # the prose page as an image-only PDF
    with Image.open(rendered(faq_pdf, PROSE_PAGE, tmp_path)) as image:
        image.convert("L").save(scan, resolution=300)
    mixed = tmp_path / "docs" / "mixed.pdf"
    mixed.parent.mkdir()
    writer = PdfWriter()
    writer.add_page(PdfReader(faq_pdf).pages[1])  # a page with a text layer
    writer.add_page(PdfReader(scan).pages[0])
    writer.write(mixed)
    with pytest.raises(LoadError, match=r"no text layer.*OCR is off"):
        load(scan)  # without OCR the scan says what it needs
    pages = load(mixed, ocr_languages="eng")
    assert [p.number for p in pages] == [1, 2]
    assert not pages[0].metadata and pages[1].metadata == {"ocr": True}
    assert "Free software means that you have the freedom" in " ".join(pages[1].text.split())
    index = ChromaIndex(client=open_chroma_client(path=tmp_path / "chroma"), embedder_name="fake")
    ingest = Ingestor(index=index, embedder=FakeEmbedder(), ocr_languages="eng")
    report = ingest.ingest([mixed.parent], collection="scans")
    assert report.to_dict()["ocr_pages"] == {str(mixed): [2]}
    [(chunk, _)] = index.keyword_query("scans", "freedom to distribute copies of free software", 1)
    assert chunk.page == 2 and chunk.location.startswith("page 2")


def test_images_too_large_or_unreadable_fail_alone(tmp_path: Path) -> None:
    from PIL import Image

    tools()
    huge = tmp_path / "huge.png"
    Image.new("1", (20_000, 20_000)).save(huge)  # 400 million pixels, a small file
    assert MAX_PIXELS < 20_000 * 20_000
    with pytest.raises(LoadError, match="20000 x 20000 pixels"):
        load(huge, ocr_languages="eng")
    (tmp_path / "fake.jpg").write_bytes(b"not a JPEG at all")
    with pytest.raises(LoadError, match="not a readable image"):
        load(tmp_path / "fake.jpg", ocr_languages="eng")
    with pytest.raises(LoadError, match="OCR is off"):
        load(huge)
