"""Parse throughput per file format, OCR pages per second, and text fidelity and speed of our
loaders against markitdown on the same files.

The files are made by real tools from real text: pandoc converts the user guide (docs/*.md)
to HTML, Word, OpenDocument, EPUB and PowerPoint; openpyxl writes SciFact abstracts as a
workbook (and the same rows as CSV); the standard library's `email` wraps each guide page as a
message with its Word file attached; LibreOffice, when installed, saves the workbook and the
decks as .ods and .odp; pdftoppm renders pages of the Debian FAQ PDF for OCR.

Fidelity is word overlap with the source text (the Markdown page, or the table's cells):
recall is the share of the source's words a loader keeps, precision the share of its words
that are the source's (our "header: value" rows repeat the header on purpose, so our
precision on tables is lower by design).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ingest.formats import load
from ingest.ocr import unavailable

DOCS = Path(__file__).resolve().parents[1] / "docs"
_WORD = re.compile(r"[A-Za-z0-9]+")
# markitdown runs in its own environment (it pins other versions of shared libraries):
# MARKITDOWN_PYTHON=/path/to/venv/bin/python, with `pip install 'markitdown[docx,pptx,xlsx]'`.
_MARKITDOWN = """
import json, sys, time
from markitdown import MarkItDown
md, out = MarkItDown(), {}
for path in sys.argv[1:]:
    started = time.perf_counter()
    try:
        text = md.convert(path).text_content
    except Exception as error:
        text = ""
    out[path] = {"text": text, "seconds": time.perf_counter() - started}
print(json.dumps(out))
"""


def _words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def _overlap(reference: Counter[str], text: str) -> tuple[float, float]:
    found = _words(text)
    common = sum((reference & found).values())
    return common / max(1, sum(reference.values())), common / max(1, sum(found.values()))


def _pandoc(source: Path, out: Path, *options: str) -> Path:
    subprocess.run(["pandoc", "--quiet", str(source), *options, "-o", str(out)], check=True,
                   timeout=300)  # fmt: skip
    return out


def _soffice(files: list[Path], suffix: str, folder: Path) -> list[Path]:
    if not files or shutil.which("soffice") is None:
        return []
    subprocess.run(["soffice", "--headless", "--convert-to", suffix[1:], "--outdir", str(folder),
                    *map(str, files)], check=True, timeout=600, capture_output=True)  # fmt: skip
    return sorted(folder.glob(f"*{suffix}"))


def make_corpus(
    folder: Path, data: Path, quick: bool
) -> tuple[dict[str, list[Path]], dict[Path, Counter[str]]]:
    """Files per format, and the reference text (Counter of words) of each file."""
    pages = sorted(DOCS.glob("*.md"))[: 3 if quick else None]
    files: dict[str, list[Path]] = {"markdown": pages}
    reference: dict[Path, Counter[str]] = {p: _words(load(p)[0].text) for p in pages}
    for name, suffix, options in (
        ("html", ".html", ()), ("docx", ".docx", ()), ("odt", ".odt", ()), ("epub", ".epub", ()),
        ("pptx", ".pptx", ("--slide-level=2",)),
    ):  # fmt: skip
        out = folder / name
        out.mkdir()
        files[name] = [_pandoc(p, out / f"{p.stem}{suffix}", *options) for p in pages]
        reference |= {f: reference[p] for f, p in zip(files[name], pages, strict=True)}
    mail = folder / "eml"
    mail.mkdir()
    files["eml"] = []
    for page, word in zip(pages, files["docx"], strict=True):
        message = EmailMessage()
        message["From"], message["To"] = "docs@example.com", "team@example.com"
        message["Subject"], message["Date"] = page.stem, "Mon, 02 Nov 2026 10:15:00 +0000"
        message.set_content(page.read_text(encoding="utf-8"))
        message.add_attachment(word.read_bytes(), maintype="application", subtype="vnd.openxml"
                               "formats-officedocument.wordprocessingml.document",
                               filename=word.name)  # fmt: skip
        files["eml"].append(mail / f"{page.stem}.eml")
        files["eml"][-1].write_bytes(bytes(message))
        reference[files["eml"][-1]] = reference[page] + reference[page]  # body and attachment
    files["xlsx"], files["csv"] = _tables(folder, data, reference, 60 if quick else 1000)
    odp = _soffice(files["pptx"], ".odp", folder / "odp")
    ods = _soffice(files["xlsx"], ".ods", folder / "ods")
    files |= {"odp": odp, "ods": ods}
    reference |= {f: reference[p] for f, p in zip(odp, files["pptx"], strict=False)}
    reference |= {f: reference[p] for f, p in zip(ods, files["xlsx"], strict=False)}
    files["pdf"] = [data / "debian_faq" / "debian-faq.en.pdf"]  # its text edition is the source
    reference[files["pdf"][0]] = _words((data / "debian_faq" / "debian-faq.en.txt").read_text())
    return {k: v for k, v in files.items() if v}, reference


def _tables(
    folder: Path, data: Path, reference: dict[Path, Counter[str]], rows: int
) -> tuple[list[Path], list[Path]]:
    import openpyxl

    with zipfile.ZipFile(data / "scifact_hf_csv" / "scifact.zip") as archive:
        text = archive.read("corpus_train.csv").decode("utf-8")
    table = list(csv.reader(io.StringIO(text)))[: rows + 1]
    book = openpyxl.Workbook()
    for row in table:
        book.active.append(row)
    (folder / "tables").mkdir()
    xlsx, plain = folder / "tables" / "abstracts.xlsx", folder / "tables" / "abstracts.csv"
    book.save(xlsx)
    with plain.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(table)
    cells = _words(" ".join(" ".join(row) for row in table))
    reference |= {xlsx: cells, plain: cells}
    return [xlsx], [plain]


def _parse(files: list[Path]) -> tuple[float, int, int, dict[Path, str]]:
    """Seconds to read `files` here (as the isolated worker does), pages, characters."""
    texts: dict[Path, str] = {}
    pages = 0
    started = time.perf_counter()
    for path in files:
        found = load(path)
        pages += len(found)
        texts[path] = "\n".join(p.text for p in found)
    return time.perf_counter() - started, pages, sum(map(len, texts.values())), texts


def _ocr(folder: Path, data: Path, quick: bool) -> dict[str, float]:
    """OCR pages per second on Debian FAQ pages rendered at 300 dpi, as images and as one
    image-only PDF."""
    if unavailable() or shutil.which("pdftoppm") is None:
        return {}
    from PIL import Image

    first, last = 10, 11 if quick else 15
    subprocess.run(["pdftoppm", "-r", "300", "-f", str(first), "-l", str(last), "-png",
                    str(data / "debian_faq" / "debian-faq.en.pdf"), str(folder / "scan")],
                   check=True, timeout=600)  # fmt: skip
    images = sorted(folder.glob("scan*.png"))
    scanned = folder / "scanned.pdf"
    frames = [Image.open(p).convert("RGB") for p in images]
    frames[0].save(scanned, save_all=True, append_images=frames[1:], resolution=300)
    started = time.perf_counter()
    for image in images:
        load(image, ocr_languages="eng")
    image_s = time.perf_counter() - started
    started = time.perf_counter()
    read = load(scanned, ocr_languages="eng")
    pdf_s = time.perf_counter() - started
    return {
        "ocr_pages": len(images),
        "ocr_image_pages_per_s": len(images) / image_s,
        "ocr_pdf_pages_per_s": len(read) / pdf_s,
    }


def _markitdown(files: list[Path]) -> dict[str, dict[str, Any]]:
    python = os.environ.get("MARKITDOWN_PYTHON", sys.executable)
    found = subprocess.run([python, "-c", _MARKITDOWN, *map(str, files)], capture_output=True,
                           text=True, timeout=1800, check=False)  # fmt: skip
    if found.returncode != 0:
        return {}
    return dict(json.loads(found.stdout))


def measure_formats(folder: Path, data: Path, quick: bool) -> tuple[dict[str, float], list[str]]:
    """Metrics, and the markdown table's rows: per format, files, MB, pages, characters, parse
    seconds, MB/s and characters/s; fidelity of ours and of markitdown where it reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    files, reference = make_corpus(folder, data, quick)
    kinds = ("docx", "pptx", "xlsx", "html", "epub", "pdf")
    compared = [f for n in kinds for f in files.get(n, [])]
    theirs = _markitdown(compared)
    metrics: dict[str, float] = {}
    rows = [
        "| format | files | MB | pages | chars | parse s | MB/s | kchars/s | recall | precision "
        "| markitdown recall | markitdown precision | markitdown s |",
        "|---" * 13 + "|",
    ]
    for name, paths in files.items():
        seconds, pages, chars, texts = _parse(paths)
        size = sum(p.stat().st_size for p in paths) / 1e6
        fidelity = [_overlap(reference[p], texts[p]) for p in paths if p in reference]
        recall = sum(r for r, _ in fidelity) / len(fidelity) if fidelity else float("nan")
        precision = sum(q for _, q in fidelity) / len(fidelity) if fidelity else float("nan")
        metrics |= {f"{name}_files": len(paths), f"{name}_mb_per_s": size / seconds,
                    f"{name}_kchars_per_s": chars / seconds / 1e3}  # fmt: skip
        if fidelity:
            metrics |= {f"{name}_recall": recall, f"{name}_precision": precision}
        other = ["", "", ""]
        mine = [theirs[str(p)] for p in paths if str(p) in theirs]
        if mine:
            scores = [_overlap(reference[p], theirs[str(p)]["text"]) for p in paths]
            md_recall = sum(r for r, _ in scores) / len(scores)
            md_precision = sum(q for _, q in scores) / len(scores)
            md_seconds = sum(m["seconds"] for m in mine)
            metrics |= {f"{name}_markitdown_recall": md_recall,
                        f"{name}_markitdown_precision": md_precision,
                        f"{name}_markitdown_speed_ratio": md_seconds / seconds}  # fmt: skip
            other = [f"{md_recall:.3f}", f"{md_precision:.3f}", f"{md_seconds:.2f}"]
        rows.append(f"| {name} | {len(paths)} | {size:.2f} | {pages} | {chars} | {seconds:.2f} | "
                    f"{size / seconds:.2f} | {chars / seconds / 1e3:.0f} | {recall:.3f} | "
                    f"{precision:.3f} | {' | '.join(other)} |")  # fmt: skip
    ocr_folder = folder / "ocr"
    ocr_folder.mkdir()
    metrics |= _ocr(ocr_folder, data, quick)
    return metrics, rows
