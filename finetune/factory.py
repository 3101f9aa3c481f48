"""`ragqa dataset build`: training records from question/answer files, feedback and an indexed
collection (RAFT), split by document, rendered with the inference prompt, written as a new
dataset version."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from finetune.datasets import SPLITS, Dataset, DatasetStore, SplitRule
from finetune.feedback import FeedbackStore
from finetune.from_feedback import feedback_records
from finetune.questions import generate_pairs
from finetune.raft import Prompter, RaftBuilder, resolve_source
from finetune.records import DatasetError, QAPair, Record, read_qa_file
from generation.generator import Generator
from generation.requests import Searcher
from generation.types import AnswerMode
from retrieval.types import Chunk


@dataclass
class BuildPlan:
    """What a dataset is built from, and how."""

    name: str
    qa_files: Sequence[Path] = ()
    collection: str | None = None  # RAFT records over this collection
    feedback: bool = False
    closed_book: bool = True  # Q&A pairs also as records without sources (`finetuned` mode)
    template: str | None = None
    distractors: int = 3
    refusal_share: float = 0.2
    split: SplitRule = field(default_factory=SplitRule)
    limit: int | None = None  # Q&A pairs read, in file order (a quick build)
    generate: int = 0  # questions generated from chunks of the collection by the generator


@dataclass
class Sources:
    """The collaborators a build reads from."""

    prompter: Prompter
    searcher: Searcher
    documents: Collection[str]  # the collection's document sources
    refusal: str  # the template's refusal sentence
    template: str  # the template's name
    feedback: FeedbackStore | None = None
    generator: Generator | None = None  # for --generate
    chunks_of: Callable[[str], list[Chunk]] | None = None  # a document's chunks, for --generate


def build_dataset(
    plan: BuildPlan, sources: Sources, store: DatasetStore, *, fingerprint: dict[str, Any]
) -> Dataset:
    """Build and write the dataset `plan` describes; `fingerprint` (base model, context) goes
    into the manifest, so training can refuse a dataset built for another model."""
    if not (plan.qa_files or plan.feedback or plan.generate):
        raise DatasetError("Nothing to build from: give --qa FILE (with --collection for RAFT "
                           "records), --feedback, or --generate N with --collection.")  # fmt: skip
    if plan.generate and not (plan.collection and sources.generator and sources.chunks_of):
        raise DatasetError("--generate needs --collection: questions are asked of its chunks.")
    if plan.qa_files and not (plan.closed_book or plan.collection):
        raise DatasetError("--no-closed-book needs --collection: the Q&A pairs would make no "
                           "records.")  # fmt: skip
    inputs: list[dict[str, Any]] = []
    pairs: list[QAPair] = []
    for path in plan.qa_files:
        read = read_qa_file(path)
        inputs.append({"kind": "qa", "path": str(path), "pairs": len(read),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})  # fmt: skip
        pairs += read
    pairs = pairs[: plan.limit] if plan.limit else pairs
    if plan.generate and sources.generator and sources.chunks_of:
        chunks = [c for d in sorted(sources.documents) for c in sources.chunks_of(d)]
        generated, dropped = generate_pairs(sources.generator, chunks, plan.generate,
                                            seed=plan.split.seed)  # fmt: skip
        inputs.append({"kind": "generated", "asked": min(plan.generate, len(chunks)),
                       "made": len(generated), "dropped": dropped})  # fmt: skip
        pairs += generated
    collection = plan.collection or ""

    def key(source: str | None, question: str) -> str:
        return resolve_source(source, sources.documents) or source or question

    records: list[Record] = []
    for pair in tqdm(pairs if plan.closed_book else [], desc="closed-book records", leave=False):
        packed = sources.prompter.prompt(
            pair.question, None, collection=collection, mode=AnswerMode.CLOSED_BOOK,
            template=plan.template,
        )  # fmt: skip
        records.append(Record(
            kind="sft", format="closed_book", origin=pair.origin, question=pair.question,
            source=key(pair.source, pair.question), prompt=packed.messages,
            completion=pair.answer, split=plan.split.of(key(pair.source, pair.question)),
        ))  # fmt: skip
    skipped: dict[str, int] = {}
    if plan.collection:
        raft = RaftBuilder(
            prompter=sources.prompter, searcher=sources.searcher, collection=plan.collection,
            sources=sources.documents, refusal=sources.refusal, template=plan.template,
            distractors=plan.distractors, refusal_share=plan.refusal_share, seed=plan.split.seed,
        )  # fmt: skip
        for pair in tqdm(pairs, desc="RAFT records", leave=False):
            record = raft.record(pair, plan.split.of)
            records += [record] if record else []
        skipped = dict(raft.skipped)
        inputs.append({"kind": "collection", "name": plan.collection,
                       "documents": len(sources.documents)})  # fmt: skip
    if plan.feedback:
        if sources.feedback is None:
            raise DatasetError("No feedback store to read.")
        rated = sources.feedback.rated()
        inputs.append({"kind": "feedback", "path": sources.feedback.where,
                       "rated": len(rated)})  # fmt: skip
        for record in feedback_records(rated, sources.prompter):
            record.split = plan.split.of(key(record.source, record.question))
            records.append(record)
    if not records:
        raise DatasetError(
            "The inputs made no records: "
            + (f"no chunk of {plan.collection!r} holds the answers ({skipped}). " if skipped
               else "")
            + "Check the Q&A files, the collection, or rate some answers first."
        )  # fmt: skip
    counts = {s: dict(Counter(f"{r.kind}/{r.format}" for r in records if r.split == s))
              for s in SPLITS}  # fmt: skip
    documents = {s: sorted({r.source or "" for r in records if r.split == s} - {""})
                 for s in SPLITS}  # fmt: skip
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fingerprint, "template": sources.template, "inputs": inputs,
        "split_rule": plan.split.describe(),
        "options": {"closed_book": plan.closed_book, "distractors": plan.distractors,
                    "refusal_share": plan.refusal_share, "validation": plan.split.validation,
                    "test": plan.split.test, "seed": plan.split.seed, "limit": plan.limit},
        "counts": counts, "skipped": skipped, "documents": documents,
    }  # fmt: skip
    return store.write(plan.name, records, manifest)
