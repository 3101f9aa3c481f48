"""OCR with Tesseract (Debian's `tesseract-ocr`, through pytesseract): scanned PDF pages, rendered
with PDFium, and images. Runs inside the isolated worker with the file's time and memory limits.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import NO_TEXT_LAYER, LoadError, Page
from ingest.loaders import load_pdf as load_text_layer

# 300 dpi: Tesseract's recommended resolution; PDF user space is 72 units per inch.
PDF_SCALE = 300 / 72
# An image larger than this many pixels is refused before it is decoded (a decompression bomb,
# or a poster no page of text needs): 20,000 x 20,000 is 400 million.
MAX_PIXELS = 120_000_000
NOT_INSTALLED = (
    "Tesseract is not installed, so OCR is off: install Debian's tesseract-ocr (`make setup` "
    "does as root), or set RAGQA_INGEST__OCR=off to silence this"
)


def unavailable() -> str | None:
    """Why OCR cannot run here, or None when it can."""
    return None if shutil.which("tesseract") else NOT_INSTALLED


def ocr_image(image: Any, languages: str) -> str:
    """The text Tesseract reads in a PIL image, normalised."""
    import pytesseract

    # Tesseract's OpenMP threads fight over the cores: one thread per page read 10 times
    # faster here (2.3 s against 22 s a page on 2 cores), and each parse worker reads its own.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")

    try:
        return normalize_text(pytesseract.image_to_string(image, lang=languages)).strip()
    except pytesseract.TesseractNotFoundError as error:
        raise LoadError(NOT_INSTALLED) from error
    except pytesseract.TesseractError as error:  # e.g. a language whose data is not installed
        raise LoadError(f"OCR failed: {error.message.strip() or error}") from error


def ocr_pdf_pages(path: Path, numbers: list[int], languages: str, password: str | None) -> dict[
    int, str
]:  # fmt: skip
    """The OCR text of the given PDF pages (numbered from 1), each rendered at 300 dpi."""
    import pypdfium2

    document = pypdfium2.PdfDocument(path, password=password)
    try:
        found = {}
        for number in numbers:
            image = document[number - 1].render(scale=PDF_SCALE, grayscale=True).to_pil()
            found[number] = ocr_image(image, languages)
        return found
    finally:
        document.close()


def load_pdf(
    path: Path, *, source: str, password: str | None = None, ocr_languages: str | None = None
) -> list[Page]:
    """A PDF's text layer, and for each page without one, the text OCR reads in it (with
    `ocr_languages`, Tesseract's language codes like "eng+deu"; None: no OCR)."""
    pages = load_text_layer(path, source=source, password=password, require_text=False)
    scanned = [p.number for p in pages if p.number is not None and not p.text.strip()]
    if scanned and ocr_languages is not None:
        read = ocr_pdf_pages(path, scanned, ocr_languages, password)
        pages = [Page(source=source, number=p.number, text=read[p.number], metadata={"ocr": True})
                 if p.number in read else p for p in pages]  # fmt: skip
    if not any(p.text.strip() for p in pages):
        why = unavailable() if ocr_languages is None else "OCR found no text either"
        raise LoadError(f"{NO_TEXT_LAYER}; {why or 'OCR is off (RAGQA_INGEST__OCR=off)'}")
    return pages


def load_image(
    path: Path, *, source: str, password: str | None = None, ocr_languages: str | None = None
) -> list[Page]:
    """An image's text read by OCR, one page per frame (a multi-page TIFF has several)."""
    if ocr_languages is None:
        raise LoadError(unavailable() or "OCR is off (RAGQA_INGEST__OCR): images are not read")
    pages = []
    for number, frame in enumerate(_frames(path), start=1):
        text = ocr_image(frame, ocr_languages)
        if text:
            pages.append(Page(source=source, number=number, text=text, metadata={"ocr": True}))
    return pages


def _frames(path: Path) -> Iterator[Any]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    # The size is checked below from the header, before any pixel is decoded; PIL's own
    # check would only warn between one and two times its limit.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise LoadError(f"the image is {width} x {height} pixels, over the "
                                f"{MAX_PIXELS:,}-pixel limit for OCR: scale it down")  # fmt: skip
            for frame in ImageSequence.Iterator(image):
                yield frame.convert("L")
    except (UnidentifiedImageError, OSError) as error:
        raise LoadError(f"not a readable image: {error}") from error
