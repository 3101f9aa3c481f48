"""Fakes for fast tests of ragqa's own logic, and the chunks the index tests share."""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from generation.generator import Generation
from retrieval.types import Chunk, DocumentRecord

if TYPE_CHECKING:
    from retrieval.index import ChromaIndex
    from retrieval.model_thread import ModelThread


class FakeEmbedder:
    """Bag-of-words hashed into a small vector: texts sharing words are close."""

    def __init__(self, dim: int = 64, model_name: str = "fake-embedder") -> None:
        self.dim = dim
        self._model_name = model_name
        self.calls: list[int] = []

    @property
    def model_name(self) -> str:
        return self._model_name

    def warm_up(self) -> None:
        self.warmed = True

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            slot = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim
            vector[slot] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    @property
    def max_seq_length(self) -> int:
        return 10_000

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class FakeReranker:
    """Scores a text by how many of the question's words it holds."""

    def __init__(self) -> None:
        self.warmed = False

    def warm_up(self) -> None:
        self.warmed = True

    def rerank(self, question: str, texts: Sequence[str]) -> list[float]:
        words = set(question.lower().split())
        return [float(len(words & set(t.lower().split()))) for t in texts]


class FakeGenerator:
    """Replies from a queue (then a default); records every prompt it was given."""

    def __init__(
        self, *replies: str, default: str = "It is in the documents [1].", window: int = 100_000,
        max_new_tokens: int = 64,
    ) -> None:  # fmt: skip
        self.replies: deque[str] = deque(replies)
        self.default = default
        self.context_window = window
        self.max_new_tokens = max_new_tokens
        self.prompts: list[list[Mapping[str, str]]] = []
        self.stops: list[tuple[str, ...]] = []
        self.avoided: list[str | None] = []  # each call's avoid_opening

    def warm_up(self) -> None:
        self.warmed = True

    def enqueue(self, *replies: str) -> None:
        self.replies.extend(replies)

    def generate(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        avoid_opening: str | None = None,
    ) -> Generation:
        """The next reply; one that opens with `avoid_opening` loses that opening, as a model
        whose first token is suppressed writes what it would have said next."""
        self.prompts.append(list(messages))
        self.stops.append(tuple(stop))
        self.avoided.append(avoid_opening)
        text = self.replies.popleft() if self.replies else self.default
        if avoid_opening and text.startswith(avoid_opening):
            text = text[len(avoid_opening) :].strip()
        return Generation(text=text, prompt_tokens=self.count_tokens(messages),
                          completion_tokens=len(text.split()))  # fmt: skip

    def count_tokens(self, messages: Sequence[Mapping[str, str]]) -> int:
        """Whitespace words plus a few tokens per message for the chat format."""
        return sum(4 + len(m["content"].split()) for m in messages)

    def stream(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        avoid_opening: str | None = None,
    ) -> Iterator[str]:
        """The reply, word by word (with its spaces)."""
        text = self.generate(messages, max_new_tokens=max_new_tokens, stop=stop,
                             avoid_opening=avoid_opening).text  # fmt: skip
        yield from re.findall(r"\S+\s*", text)


# ---------------------------------------------------------------- chunks for index tests

TEXTS = [
    "Debian is a free operating system built by volunteers.",
    "The kernel schedules processes and manages memory.",
    "Packages are installed with apt and dpkg.",
    "Chroma stores vectors for similarity search.",
    "Flask serves the HTTP API of the application.",
    "A chunk is a piece of a page of a document.",
    "Gunicorn runs WSGI applications in production.",
    "Embeddings map text to points in a vector space.",
]


def make_chunks(texts: list[str], source: str = "/docs/a.txt", version: str = "v1") -> list[Chunk]:
    return [
        Chunk(
            id=Chunk.make_id(source, version, None, i, t),
            text=t,
            source=source,
            start=i,
            version=version,
            metadata={"filename": "a.txt"},
        )
        for i, t in enumerate(texts)
    ]


def record(source: str, version: str = "v1", chunks: int = 1) -> DocumentRecord:
    return DocumentRecord(source, version, pages=1, chunks=chunks, ingested_at="2026-01-01")


def store(index: ChromaIndex, collection: str, chunks: list[Chunk]) -> None:
    """Publish chunks as their documents' visible versions, as the ingest pipeline does."""
    records = [
        record(source, version) for source, version in {(c.source, c.version) for c in chunks}
    ]
    index.publish(
        collection, records, chunks, FakeEmbedder().embed_documents([c.text for c in chunks])
    )


def occupy(model_thread: ModelThread) -> tuple[threading.Event, threading.Thread]:
    """Hold the model thread with a running call until the returned event is set."""
    release, running = threading.Event(), threading.Event()

    def work() -> None:
        running.set()
        release.wait(10)

    caller = threading.Thread(target=lambda: model_thread.run(work))
    caller.start()
    if not running.wait(5):
        raise RuntimeError("the model thread did not start the call")
    return release, caller
