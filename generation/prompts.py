"""Prompt templates: instruction, context, input data and output indicator, with few-shot
examples, kept in TOML files users can edit; rendered as chat messages."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from generation.cleanup import without_references
from retrieval.types import ScoredChunk

Message = Mapping[str, str]


class TemplateError(ValueError):
    """A template file that cannot be used, or a template name that does not exist."""


@dataclass(frozen=True)
class Example:
    """One worked example: a question, optionally the source it was answered from, the answer."""

    question: str
    answer: str
    context: str = ""


@dataclass(frozen=True)
class PromptTemplate:
    """The four named parts of a prompt, for answers with and without sources.

    `instruction` becomes the system message. The user message holds the numbered sources
    (`context`, each one rendered with `source`), the question (`input`) and the
    `output_indicator`, which tells the model what to write next. The `closed_book_*` parts
    replace them when no sources are given (closed_book and few_shot modes). `strict`
    templates refuse when retrieval or the answer's support is too weak.
    """

    name: str
    description: str
    strict: bool
    refusal: str
    instruction: str
    closed_book_instruction: str
    context: str
    source: str
    input: str
    output_indicator: str
    closed_book_output_indicator: str
    examples: tuple[Example, ...] = ()
    rag_examples: bool = False  # also show the examples (with their context) in rag mode

    def system(self, *, with_sources: bool) -> str:
        """The system message."""
        text = self.instruction if with_sources else self.closed_book_instruction
        return text.format(refusal=self.refusal)


def source_title(hit: ScoredChunk) -> str:
    """How a source is named to the model: its file name and page."""
    chunk = hit.chunk
    title = PurePath(chunk.source).name
    return title if chunk.page is None else f"{title}, page {chunk.page}"


def format_source(template: PromptTemplate, n: int, hit: ScoredChunk) -> str:
    """One numbered source block as the model sees it."""
    text = without_references(hit.chunk.text.strip())  # the model would copy them as its own
    return template.source.format(n=n, title=source_title(hit), text=text)


def _user_turn(
    template: PromptTemplate, question: str, sources: Sequence[str] | None
) -> dict[str, str]:
    asked = template.input.format(question=question.strip())
    if sources is None:
        return {"role": "user", "content": f"{asked}\n\n{template.closed_book_output_indicator}"}
    context = template.context.format(sources="\n\n".join(sources))
    return {"role": "user", "content": f"{context}\n\n{asked}\n\n{template.output_indicator}"}


def build_messages(
    template: PromptTemplate,
    question: str,
    hits: Sequence[ScoredChunk] | None,
    *,
    examples: Sequence[Example] = (),
    history: Sequence[Message] = (),
) -> list[dict[str, str]]:
    """Chat messages: system, worked examples, earlier turns, then the question.

    `hits` None means no retrieval (closed book); sources are numbered from 1. Examples are
    shown as earlier exchanges, with their own context as source [1] when sources are used.
    """
    with_sources = hits is not None
    messages = [{"role": "system", "content": template.system(with_sources=with_sources)}]
    for example in examples:
        shown = None
        if with_sources:
            shown = [template.source.format(n=1, title="example", text=example.context.strip())]
        messages.append(_user_turn(template, example.question, shown))
        messages.append({"role": "assistant", "content": example.answer})
    messages += [{"role": m["role"], "content": m["content"]} for m in history]
    numbered = None if hits is None else [
        format_source(template, n, hit) for n, hit in enumerate(hits, start=1)
    ]  # fmt: skip
    messages.append(_user_turn(template, question, numbered))
    return messages


_TEXT_FIELDS = {f.name for f in fields(PromptTemplate)} - {"name", "examples", "strict",
                                                           "rag_examples"}  # fmt: skip


def parse_template(name: str, data: Mapping[str, Any], *, origin: str) -> PromptTemplate:
    """A template from the parsed TOML of `origin`, checked so a bad file fails at load time."""
    known = _TEXT_FIELDS | {"examples", "strict", "rag_examples"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TemplateError(f"{origin}: unknown keys {unknown}; the keys are {sorted(known)}")
    missing = sorted(k for k in _TEXT_FIELDS if not isinstance(data.get(k), str))
    if missing:
        raise TemplateError(f"{origin}: missing or non-text keys {missing}")
    examples = []
    for i, raw in enumerate(data.get("examples", [])):
        if not isinstance(raw, dict) or not {"question", "answer"} <= set(raw) or not set(raw) <= {
            "question", "answer", "context"
        }:  # fmt: skip
            raise TemplateError(f"{origin}: example {i + 1} needs question, answer, and context")
        examples.append(Example(str(raw["question"]), str(raw["answer"]),
                                str(raw.get("context", ""))))  # fmt: skip
    template = PromptTemplate(
        name=name, strict=bool(data.get("strict", True)), examples=tuple(examples),
        rag_examples=bool(data.get("rag_examples", False)),
        **{k: str(data[k]) for k in _TEXT_FIELDS},
    )  # fmt: skip
    _check_placeholders(template, origin)
    return template


def _check_placeholders(template: PromptTemplate, origin: str) -> None:
    """Render every part once, so a misspelt placeholder is an error now, not per question."""
    checks: dict[str, Callable[[], str]] = {
        "instruction": lambda: template.system(with_sources=True),
        "closed_book_instruction": lambda: template.system(with_sources=False),
        "source": lambda: template.source.format(n=1, title="t", text="x"),
        "context": lambda: template.context.format(sources="x"),
        "input": lambda: template.input.format(question="x"),
    }
    for key, render in checks.items():
        try:
            render()
        except (KeyError, IndexError, ValueError) as error:
            raise TemplateError(
                f"{origin}: {key} uses an unknown placeholder or a lone brace ({error}); "
                "write literal braces as {{ and }}"
            ) from None
    for key, needed in (("context", "{sources}"), ("input", "{question}")):
        if needed not in getattr(template, key):
            raise TemplateError(f"{origin}: {key} must contain {needed}")


def load_template(path: Path) -> PromptTemplate:
    """A template from a TOML file; its name is the file name without .toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise TemplateError(f"{path}: cannot read the template: {error}") from None
    return parse_template(path.stem, data, origin=str(path))


class TemplateLibrary:
    """The built-in templates (docs, support, extract), plus and overridden by the TOML files
    in `directory`."""

    def __init__(self, directory: Path | None = None) -> None:
        self._templates: dict[str, PromptTemplate] = {}
        builtin = resources.files("generation").joinpath("templates")
        for item in sorted(builtin.iterdir(), key=lambda i: i.name):
            if item.name.endswith(".toml"):
                name = item.name.removesuffix(".toml")
                data = tomllib.loads(item.read_text(encoding="utf-8"))
                self._templates[name] = parse_template(name, data, origin=f"built-in {item.name}")
        if directory is not None:
            if not directory.is_dir():
                raise TemplateError(f"The templates folder {directory} does not exist.")
            for path in sorted(directory.glob("*.toml")):
                self._templates[path.stem] = load_template(path)

    def names(self) -> list[str]:
        """Every template name, sorted."""
        return sorted(self._templates)

    def get(self, name: str) -> PromptTemplate:
        """The template called `name`."""
        try:
            return self._templates[name]
        except KeyError:
            raise TemplateError(
                f"Unknown template {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
