"""Cut pages into overlapping chunks, sized in embedder tokens, that know where they came from."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from pathlib import PurePath

from ingest.loaders import Page
from retrieval.types import Chunk, MetadataValue

TokenCounter = Callable[[str], int]


def _section_at(page: Page, offset: int) -> str | None:
    """The heading path in force at `offset` of the page."""
    if not page.sections:
        return None
    index = bisect.bisect_right([o for o, _ in page.sections], offset) - 1
    return page.sections[index][1] if index >= 0 else None


def split_pages(
    pages: Iterable[Page],
    *,
    chunk_size: int,
    chunk_overlap: int,
    version: str = "",
    count_tokens: TokenCounter | None = None,
) -> list[Chunk]:
    """Split pages on paragraph, line and word boundaries into chunks of <= chunk_size.

    Sizes are in tokens when `count_tokens` is given (the embedder's tokenizer), else in
    characters. Every chunk keeps its page, section and character offset:
    page.text[start:start+len(text)] is the chunk text.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(
            f"chunk_overlap ({chunk_overlap}) must be at least 0 and below "
            f"chunk_size ({chunk_size})"
        )
    length = count_tokens or len
    # Offsets are found here rather than by add_start_index, which mixes token and
    # character counts when sizes are in tokens and then finds the wrong occurrence.
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, length_function=length
    )
    chunks: list[Chunk] = []
    for page in pages:
        if page.whole and page.text.strip() and length(page.text) <= chunk_size:
            pieces = [(page.text, 0)]
        else:
            pieces = _locate(page.text, splitter.split_text(page.text))
        for text, start in pieces:
            if text.strip():
                chunks.append(_chunk(page, text, start, version))
    return chunks


def _locate(text: str, parts: list[str]) -> list[tuple[str, int]]:
    """Each part with its offset: parts come in order, each starting after the previous start."""
    located, start = [], -1
    for part in parts:
        start = text.find(part, start + 1)
        if start < 0:  # cannot happen for a splitter that only cuts and strips; be safe
            raise ValueError("a chunk is not a substring of its page")
        located.append((part, start))
    return located


def _chunk(page: Page, text: str, start: int, version: str) -> Chunk:
    metadata: dict[str, MetadataValue] = {"filename": PurePath(page.source).name}
    metadata.update(page.metadata)
    section = _section_at(page, start)
    if section:
        metadata["section"] = section
    return Chunk(
        id=Chunk.make_id(page.source, version, page.number, start, text),
        text=text,
        source=page.source,
        page=page.number,
        start=start,
        version=version,
        metadata=metadata,
    )
