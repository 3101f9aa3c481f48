"""Hostile input, property-based (hypothesis): the chunker, the filter parser and the prompt
renderer hold their promises for any input, not only the examples we thought of."""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generation.cleanup import without_references
from generation.prompts import TemplateLibrary, build_messages
from ingest.chunking import split_pages
from ingest.formats import FORMATS
from ingest.loaders import LoadError, Page
from retrieval.filters import InvalidFilterError, SearchFilter
from retrieval.types import Chunk, ScoredChunk

# Text with the characters that break naive splitters and formatters: blank lines, unicode
# spaces, braces, brackets, quotes, NUL, combining marks, emoji.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \n\n\t.,;:!?{}[]()'\"\\%$#\u00a0\u2028\u200b\x00é́漢😀")),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=1500,
)
SCALAR = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
JSON = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FILTER_KEYS = st.sampled_from(["source", "page", "section", "metadata", "other", ""])
# The same examples on every run, so CI cannot fail by chance; drop derandomize locally to
# explore new ones: that found the CSV, NUL and surrogate bugs, and one still open
# in the chunker's offsets on repetitive text ("0000000\r0", chunk size 8).
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@PROPERTY
@given(text=TEXT, size=st.integers(8, 300), overlap_share=st.floats(0, 0.9))
def test_chunk_offsets_always_rebuild_the_page(text: str, size: int, overlap_share: float) -> None:
    overlap = int(size * overlap_share)
    page = Page(source="/docs/a.md", number=None, text=text)
    chunks = split_pages([page], chunk_size=size, chunk_overlap=overlap)
    covered = [False] * len(text)
    for chunk in chunks:
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert chunk.text.strip()
        for i in range(chunk.start, chunk.start + len(chunk.text)):
            covered[i] = True
    # Nothing but whitespace is ever left out.
    assert all(c or text[i].isspace() for i, c in enumerate(covered)), text


@PROPERTY
@given(data=st.dictionaries(FILTER_KEYS, JSON, max_size=4))
def test_any_filter_is_refused_cleanly_or_is_safe_sql_and_a_valid_chroma_where(
    data: dict[str, Any],
) -> None:
    from chromadb.api.types import validate_where

    try:
        parsed = SearchFilter.parse(data)
    except InvalidFilterError as error:
        assert str(error)  # says what is allowed
        return
    clause, params = parsed.sql()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (source, page, section, metadata)")
    db.execute(f"SELECT count(*) FROM t WHERE 1 = 1{clause}", params).fetchone()
    where = parsed.chroma_where()
    if where is not None:
        validate_where(where)


@PROPERTY
@given(question=TEXT.filter(str.strip), documents=st.lists(TEXT, min_size=1, max_size=3),
       name=st.sampled_from(["docs", "support", "extract"]))  # fmt: skip
def test_prompts_carry_questions_and_documents_verbatim(
    question: str, documents: list[str], name: str
) -> None:
    template = TemplateLibrary().get(name)
    hits = [ScoredChunk(Chunk(id=f"c{i}", text=text, source=f"/d/{i}.md"), 0.5)
            for i, text in enumerate(documents)]  # fmt: skip
    messages = build_messages(template, question, hits)
    asked = messages[-1]["content"]
    assert question.strip() in asked  # placeholders in it are text, not formatting
    for text in documents:
        assert without_references(text.strip()) in asked
    assert messages[0]["role"] == "system"


WELL_FORMED = st.fixed_dictionaries(
    {},
    optional={
        "source": st.text(max_size=30) | st.lists(st.text(max_size=30), min_size=1, max_size=3),
        "page": st.integers(1, 500),
        "section": st.text(min_size=1, max_size=30),
        "metadata": st.dictionaries(
            st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(
                lambda k: k not in {"version", "start", "source", "page", "section"}),
            st.text(st.characters(exclude_characters="\x00"), max_size=20)
            | st.integers(-1000, 1000) | st.booleans(), max_size=3),
    },
)  # fmt: skip


@PROPERTY
@given(data=WELL_FORMED)
def test_a_well_formed_filter_finds_exactly_the_row_it_describes(data: dict[str, Any]) -> None:
    import json

    parsed = SearchFilter.parse(data)
    sources = [data["source"]] if isinstance(data.get("source"), str) else data.get("source", [])
    row = (sources[0] if sources else "/any.md", data.get("page", 7),
           data.get("section", "Any"), json.dumps(data.get("metadata", {})))  # fmt: skip
    other = ("/other\x00.md" if sources else row[0], -1 if "page" in data else row[1],
             row[2], row[3])  # fmt: skip
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (source, page, section, metadata)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [row, other])
    clause, params = parsed.sql()
    found = db.execute(f"SELECT source, page FROM t WHERE 1 = 1{clause}", params).fetchall()
    assert (row[0], row[1]) in found
    if "source" in data or "page" in data:
        assert (other[0], other[1]) not in found


# Random bytes, and random bytes behind each binary format's magic, so parsers get past
# their first check.
MAGIC = [b"", b"%PDF-1.7\n", b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
         b"II*\x00", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"From: a@b\nSubject: x\n\n"]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(suffix=st.sampled_from(sorted(FORMATS)), magic=st.sampled_from(MAGIC),
       body=st.binary(max_size=2000))  # fmt: skip
def test_loaders_read_any_bytes_or_say_the_file_is_unreadable(
    tmp_path_factory: Any, suffix: str, magic: bytes, body: bytes
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"random{suffix}"
    path.write_bytes(magic + body)
    fmt = FORMATS[suffix]
    try:
        pages = fmt.load(path, source=str(path), **fmt.options({"ocr_languages": None,
                                                                "footnotes": True,
                                                                "comments": True}))  # fmt: skip
    except LoadError as error:
        assert str(error)
        return
    assert all(isinstance(p, Page) and isinstance(p.text, str) for p in pages)
