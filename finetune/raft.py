"""RAFT records (retrieval-augmented fine-tuning, Zhang et al. 2024): a question, the chunk of an
indexed collection that holds its answer and retrieved distractor chunks, rendered with the rag
prompt, with an answer that cites the gold chunk's [n]; a share of records has distractors
only, and the template's refusal as the target."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import PurePath
from typing import Protocol

from finetune.records import QAPair, Record, cite
from generation.citations import content_words
from generation.context import PackedPrompt
from generation.requests import Searcher
from retrieval.filters import SearchFilter
from retrieval.types import ScoredChunk


class Prompter(Protocol):
    """What records are rendered with (generation.rag.Rag has it)."""

    def prompt(
        self, question: str, hits: Sequence[ScoredChunk] | None, *, collection: str,
        mode: str = "rag", template: str | None = None,
    ) -> PackedPrompt:  # fmt: skip
        """The prompt inference would use for `question` with these sources."""
        ...


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def answer_recall(answer: str, text: str) -> float:
    """How much of the answer a chunk holds: 1.0 when it holds the whole answer as written,
    else the share of the answer's content words it has."""
    if _plain(answer) and _plain(answer) in _plain(text):
        return 1.0
    words = content_words(answer)
    return len(words & content_words(text)) / len(words) if words else 0.0


def resolve_source(given: str | None, sources: Collection[str]) -> str | None:
    """The collection's source a Q&A row names: the same id, the path it ends with, or the
    same file name."""
    if not given:
        return None
    if given in sources:
        return given
    tail = "/" + given.lstrip("./")
    for source in sources:
        if source.endswith(tail):
            return source
    name = PurePath(given).name
    found = [s for s in sources if PurePath(s).name == name]
    return found[0] if len(found) == 1 else None


class RaftBuilder:
    """Builds RAFT records over one collection."""

    def __init__(
        self, *, prompter: Prompter, searcher: Searcher, collection: str,
        sources: Collection[str], refusal: str, template: str | None = None,
        distractors: int = 3, refusal_share: float = 0.2, min_recall: float = 0.6,
        seed: int = 0,
    ) -> None:  # fmt: skip
        self._prompter, self._searcher = prompter, searcher
        self._collection, self._sources = collection, sources
        self._refusal, self._template = refusal, template
        self._distractors, self._refusal_share = distractors, refusal_share
        self._min_recall, self._seed = min_recall, seed
        self.skipped: dict[str, int] = {"no_gold_chunk": 0, "gold_not_shown": 0}

    def gold(self, pair: QAPair) -> ScoredChunk | None:
        """The chunk that holds the pair's answer: of its own document when the row names one
        the collection has, the best of the question's retrieved chunks otherwise."""
        source = resolve_source(pair.source, self._sources)
        where = SearchFilter(sources=(source,)) if source else None
        found = self._searcher.search(pair.question, collection=self._collection, k=20,
                                      where=where)  # fmt: skip
        scored = [(answer_recall(pair.answer, h.chunk.text), i) for i, h in enumerate(found)]
        best = max(scored, default=(0.0, 0))
        return found[best[1]] if best[0] >= self._min_recall else None

    def record(self, pair: QAPair, split_of: Callable[[str], str]) -> Record | None:
        """The RAFT record of one pair (None, counted in `skipped`, when no chunk holds the
        answer or the prompt would not show it); distractors come from documents of the same
        split only, so no test document is seen in training."""
        gold = self.gold(pair)
        if gold is None:
            self.skipped["no_gold_chunk"] += 1
            return None
        split = split_of(gold.chunk.source)
        pool = self._searcher.search(pair.question, collection=self._collection,
                                     k=self._distractors * 4 + 8)  # fmt: skip
        distractors = [
            h for h in pool
            if h.chunk.id != gold.chunk.id and answer_recall(pair.answer, h.chunk.text) < 0.5
            and split_of(h.chunk.source) == split
        ]  # fmt: skip
        rng = random.Random(f"{self._seed}:{pair.question}")
        refusal = rng.random() < self._refusal_share
        if refusal:
            hits = distractors[: self._distractors + 1]
        else:
            hits = distractors[: self._distractors]
            hits.insert(rng.randint(0, len(hits)), gold)  # anywhere: no position to learn
        if not hits:
            self.skipped["no_gold_chunk"] += 1
            return None
        packed = self._prompter.prompt(pair.question, hits, collection=self._collection,
                                       mode="rag", template=self._template)  # fmt: skip
        shown = [h.chunk.id for h in packed.hits]
        if refusal:
            target, n = self._refusal, None
        elif gold.chunk.id in shown:
            n = shown.index(gold.chunk.id) + 1
            target = cite(pair.answer, n)
        else:
            self.skipped["gold_not_shown"] += 1
            return None
        # A refusal record's question is still answerable from the collection: keep its answer
        # so an evaluation that retrieves for itself scores it as the answerable question it is.
        return Record(
            kind="sft", format="rag", origin="raft", question=pair.question,
            source=gold.chunk.source, prompt=packed.messages, completion=target, gold=n,
            refusal=refusal, split=split, extra={"answer": pair.answer} if refusal else {},
        )  # fmt: skip
