"""Cut pages into overlapping chunks that remember where they came from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath

from ingest.loaders import Page
from retrieval.types import Chunk


def split_pages(pages: Iterable[Page], *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split each page on paragraph, line and word boundaries into chunks of <= chunk_size chars.

    Every chunk keeps its page number and character offset: page.text[start:start+len(text)]
    is the chunk text.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(
            f"chunk_overlap ({chunk_overlap}) must be at least 0 and below "
            f"chunk_size ({chunk_size})"
        )
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
    )
    chunks: list[Chunk] = []
    for page in pages:
        for doc in splitter.create_documents([page.text]):
            text = doc.page_content
            start = int(doc.metadata["start_index"])
            if not text.strip():
                continue
            chunks.append(
                Chunk(
                    id=Chunk.make_id(page.source, page.number, start, text),
                    text=text,
                    source=page.source,
                    page=page.number,
                    start=start,
                    metadata={"filename": PurePath(page.source).name},
                )
            )
    return chunks
