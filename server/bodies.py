"""JSON request bodies as pydantic models: read within the size limit, validated strictly (no
"yes" for true, no 3 for a string), and any mismatch a 400 that names the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from retrieval.filters import SearchFilter
from server.current import services
from server.errors import BadRequestError

B = TypeVar("B", bound="Body")


class Body(BaseModel):
    """A request body: types as declared, unknown fields ignored (clients send extras)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ExampleBody(Body):
    """A few-shot example."""

    question: str
    answer: str
    context: str = ""


class SearchBody(Body):
    """POST /api/search."""

    query: str
    collection: str | None = None
    k: int | None = None  # its range is retrieval's to check (invalid_search)
    retrieval_mode: str | None = None  # checked by retrieval (invalid_search)
    filters: dict[str, Any] | None = None  # checked by retrieval.filters (invalid_filter)


class ChatBody(Body):
    """POST /api/chat."""

    question: str
    collection: str | None = None
    mode: str | None = None  # checked by Rag (invalid_question)
    template: str | None = None
    history: Any = None  # checked by generation.conversation (invalid_history)
    examples: list[ExampleBody] | None = Field(default=None, max_length=20)
    strict: bool | None = None
    retrieval_mode: str | None = None
    filters: dict[str, Any] | None = None
    stream: bool = False
    adapter: str | None = None  # finetuned modes (checked by Rag and the adapter store)


class MessageBody(Body):
    """One chat message of the OpenAI API; content is text or a list of content parts."""

    role: Literal["system", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def text(self) -> str:
        """The message's text (the text parts of a list, joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content)


class CompletionBody(Body):
    """POST /v1/chat/completions (the fields ragqa uses; others are ignored)."""

    model: str | None = None
    messages: list[MessageBody] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None  # the OpenAI API's limit
    stream: bool = False

    def stop_texts(self) -> list[str]:
        """The stop texts as a list."""
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


_TYPE_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _field(loc: tuple[int | str, ...]) -> str:
    """'messages.0.content' from pydantic's location, without the union members' type names
    ('str', 'list[dict[str,any]]')."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p.lower() in _TYPE_NAMES or
                                                                  "[" in p))]  # fmt: skip
    return ".".join(parts) or "body"


def _explain(error: ValidationError) -> str:
    """One clause per field at fault: 'question: Field required'."""
    problems: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        problems.setdefault(_field(item["loc"]), []).append(item["msg"])
    return "Invalid request body: " + "; ".join(
        f"{where}: {' or '.join(dict.fromkeys(messages))}" for where, messages in problems.items()
    )


def read_body(model: type[B], hint: str) -> B:
    """The request's JSON body as `model`; 413 over the size limit, 400 (with `hint` when it
    is not a JSON object at all) when it does not match."""
    limit = services().settings.server.max_request_bytes
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request is larger than {limit} bytes.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequestError(hint)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequestError(_explain(error)) from None


def search_options(mode: str | None, filters: dict[str, Any] | None) -> dict[str, Any]:
    """Retrieval options of a request: its retrieval mode and parsed filters."""
    where = SearchFilter.parse(filters)
    return {"mode": mode, "where": None if where.empty else where}
