"""Find the section headings of markdown, reStructuredText and HTML, with their offsets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser

from ingest.cleaning import normalize_text

Sections = tuple[tuple[int, str], ...]

_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SETEXT = re.compile(r"^(=+|-+)[ \t]*$")
_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}[ \t]*$")


def heading_paths(headings: list[tuple[int, int, str]]) -> Sections:
    """Turn (offset, level, title) into (offset, "Title > Subtitle") heading paths."""
    stack: list[tuple[int, str]] = []
    result = []
    for offset, level, title in headings:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        result.append((offset, " > ".join(t for _, t in stack)))
    return tuple(result)


def join_blocks(blocks: Iterable[tuple[int | None, str]]) -> tuple[str, Sections]:
    """Blocks of a document (heading level or None, text), normalised and joined by blank
    lines, with the headings' paths at their offsets; empty blocks left out."""
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for level, raw in blocks:
        text = normalize_text(raw).strip()
        if not text:
            continue
        if level is not None:
            headings.append((offset, level, " ".join(text.split())))
        parts.append(text)
        offset += len(text) + 2  # the blank line that joins blocks
    return "\n\n".join(parts), heading_paths(headings)


def markdown_sections(text: str) -> Sections:
    """ATX (# Title) and setext (Title / ===) headings outside code fences."""
    headings: list[tuple[int, int, str]] = []
    offset, fenced, previous = 0, False, (0, "")
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            atx = _ATX.match(line)
            setext = _SETEXT.match(line)
            if atx:
                headings.append((offset, len(atx.group(1)), atx.group(2).strip()))
            elif setext and previous[1].strip() and not previous[1].startswith(("#", " ", "-")):
                level = 1 if setext.group(1)[0] == "=" else 2
                headings.append((previous[0], level, previous[1].strip()))
        previous = (offset, line)
        offset += len(line) + 1
    return heading_paths(headings)


def rst_sections(text: str) -> Sections:
    """reStructuredText titles: a line underlined (optionally overlined) with punctuation.

    Levels follow the order in which adornment styles first appear, as docutils does.
    """
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    styles: list[tuple[str, bool]] = []
    headings: list[tuple[int, int, str]] = []
    for i in range(1, len(lines)):
        under, title = lines[i], lines[i - 1]
        match = _RST_ADORNMENT.match(under)
        if not match or not title.strip() or _RST_ADORNMENT.match(title):
            continue
        if len(under.rstrip()) < len(title.rstrip()) or title.startswith((" ", "\t")):
            continue
        overline = i >= 2 and lines[i - 2].rstrip() == under.rstrip()
        style = (match.group(1), overline)
        if style not in styles:
            styles.append(style)
        headings.append((starts[i - 1], styles.index(style) + 1, title.strip()))
    return heading_paths(headings)


_BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "br",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "main",
    "aside",
    "figure",
    "figcaption",
    "title",
}
_SKIPPED = {"script", "style", "noscript", "template", "svg", "head"}


class _HtmlText(HTMLParser):
    """Collect an HTML page's visible text, with block breaks and heading offsets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.skip_depth = 0
        self.headings: list[tuple[int, int, str]] = []
        self.heading: tuple[int, int, list[str]] | None = None
        # A table is collected cell by cell and written as "header: value" rows at its end
        # (a table inside a cell is read as that cell's text).
        self.tables = 0
        self.rows: list[list[str]] = []
        self.in_cell = False
        self.caption = ""

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def _newline(self) -> None:
        tail = "".join(self.parts[-2:])
        if tail and not tail.endswith("\n\n"):
            self._emit("\n\n" if not tail.endswith("\n") else "\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip_depth += 1
            return
        if tag == "table":
            self.tables += 1
            if self.tables == 1:
                self.rows, self.in_cell, self.caption = [], False, ""
        elif self.tables == 1 and tag == "tr":
            self.rows.append([])
            self.in_cell = False
        elif self.tables == 1 and tag in {"td", "th"}:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append("")
            self.in_cell = True
        if self.tables:
            if self.in_cell and tag in _BLOCKS | {"br"}:
                self.rows[-1][-1] += " "
            return
        if tag in _BLOCKS:
            self._newline()
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"} and not self.skip_depth:
            self.heading = (self.length, int(tag[1]), [])

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag == "table" and self.tables:
            self.tables -= 1
            if not self.tables:
                cells = [[" ".join(cell.split()) for cell in row] for row in self.rows]
                self._newline()
                caption = " ".join(self.caption.split())
                self._emit("\n".join(part for part in (caption, table_text(cells)) if part))
                self._newline()
            return
        if self.tables:
            if self.in_cell and tag in {"td", "th"} and self.tables == 1:
                self.in_cell = False
            return
        if tag in _BLOCKS:
            self._newline()
        if self.heading and tag == f"h{self.heading[1]}":
            title = " ".join("".join(self.heading[2]).split())
            if title:
                self.headings.append((self.heading[0], self.heading[1], title))
            self.heading = None

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.tables:
            if self.in_cell:
                self.rows[-1][-1] += data
            elif data.strip():  # a caption: kept, before the rows
                self.caption += data
            return
        text = re.sub(r"\s+", " ", data)
        if self.parts and self.parts[-1].endswith(("\n", " ")):
            text = text.lstrip(" ")
        if text:
            self._emit(text)
            if self.heading:
                self.heading[2].append(text)


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """A table as lines a reader (and a retriever) understands alone: each row after the
    header as "header: value; header: value"; a one-row table as its cells."""
    rows = [row for row in rows if any(cell for cell in row)]
    if len(rows) < 2:
        return " | ".join(cell for row in rows for cell in row if cell)
    header, *body = rows
    return "\n".join(row_text(header, row) for row in body)


def row_text(header: Sequence[str], row: Sequence[str]) -> str:
    """One row as "header: value; ..." (empty cells left out; a value under no header bare)."""
    pairs = [f"{name}: {value}" if name else value
             for name, value in zip(header, row, strict=False) if value]  # fmt: skip
    return "; ".join(pairs)


def html_text(markup: str) -> tuple[str, Sections]:
    """The visible text of an HTML page and its heading paths (offsets into that text)."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    stripped = len(text) - len(text.lstrip())
    headings = [(max(0, o - stripped), level, t) for o, level, t in parser.headings]
    return text.strip(), heading_paths(headings)
