"""Training records from what users said of answers: a thumbs down with a correction is a
supervised record (and the correction is preferred over the answer it corrects); an answer
rated up and one rated down to the same question are a preference pair."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence

from finetune.feedback import Rated
from finetune.raft import Prompter
from finetune.records import Record, cite
from generation.citations import parse_citations, support
from generation.types import AnswerMode
from retrieval.types import Chunk, ScoredChunk


def _hits(rated: Rated) -> list[ScoredChunk] | None:
    """The sources the answer was given, numbered as it cited them; None: none (no retrieval)."""
    if rated.mode not in (AnswerMode.RAG, AnswerMode.EXTRACTIVE) or not rated.sources:
        return None
    ordered = sorted(rated.sources, key=lambda s: int(s.get("n", 0)))
    return [
        ScoredChunk(Chunk(id=str(s["chunk_id"]), text=str(s["text"]), source=str(s["source"]),
                          page=s.get("page"), start=int(s.get("start") or 0)), 1.0)
        for s in ordered
    ]  # fmt: skip


def _prompt(rated: Rated, prompter: Prompter) -> tuple[str, list[dict[str, str]], list[str]]:
    """(format, the prompt the answer would be given now, the chunk ids numbered in it)."""
    hits = _hits(rated)
    question = rated.standalone_question or rated.question
    mode = AnswerMode.RAG if hits is not None else AnswerMode.CLOSED_BOOK
    packed = prompter.prompt(question, hits, collection=rated.collection or "",
                             mode=mode, template=rated.template or None)  # fmt: skip
    return str(mode), packed.messages, [h.chunk.id for h in packed.hits]


def _cited(text: str, rated: Rated, shown: list[str]) -> str:
    """A correction for a rag prompt keeps its own [n]; without any it cites the shown source
    that supports it best, so training never teaches an uncited answer."""
    if parse_citations(text) or not shown:
        return text
    texts = {str(s["chunk_id"]): str(s["text"]) for s in rated.sources}
    best = max(range(len(shown)), key=lambda i: support(text, texts.get(shown[i], "")))
    return cite(text, best + 1)


def _key(rated: Rated) -> tuple[str, str]:
    question = rated.standalone_question or rated.question
    return rated.collection or "", " ".join(re.findall(r"\w+", question.lower()))


def feedback_records(rated: Sequence[Rated], prompter: Prompter) -> list[Record]:
    """Supervised records and preference pairs from rated answers."""
    records: list[Record] = []
    for item in rated:
        if item.rating != "down" or not item.correction:
            continue
        form, prompt, shown = _prompt(item, prompter)
        target = _cited(item.correction, item, shown) if form == "rag" else item.correction
        source = item.sources[0]["source"] if item.sources else None
        sft = Record(
            kind="sft", format=form, origin="feedback", question=item.question, source=source,
            prompt=prompt, completion=target, extra={"answer_id": item.answer_id},
        )  # fmt: skip
        pair = dataclasses.replace(sft, kind="preference", rejected=item.answer)
        records += [sft, pair]
    groups: dict[tuple[str, str], list[Rated]] = {}
    for item in rated:
        groups.setdefault(_key(item), []).append(item)
    for same in groups.values():
        ups = [r for r in same if r.rating == "up" and not r.refused]
        downs = [r for r in same if r.rating == "down"]
        for up, down in itertools.product(ups, downs):
            form, prompt, _ = _prompt(up, prompter)
            source = up.sources[0]["source"] if up.sources else None
            records.append(Record(
                kind="preference", format=form, origin="feedback", question=up.question,
                source=source, prompt=prompt, completion=up.answer, rejected=down.answer,
                extra={"answer_id": up.answer_id, "rejected_answer_id": down.answer_id},
            ))  # fmt: skip
    return records
