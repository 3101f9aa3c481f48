"""JSON request bodies as pydantic models: read within the size limit, validated strictly (no
"yes" for true, no 3 for a string), and any mismatch a 400 that names the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from generation.types import USES_ADAPTER, AnswerMode
from retrieval.filters import SearchFilter
from retrieval.types import SearchMode
from server.current import services
from server.errors import BadRequestError

B = TypeVar("B", bound="Body")


class Body(BaseModel):
    """A request body: types as declared, unknown fields ignored (clients send extras)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _documented(description: str, **schema: Any) -> Any:
    """An optional field whose allowed values the contract states (JSON schema `schema`), while
    the code that uses it checks them, with its own error code and message."""
    return Field(default=None, description=description, json_schema_extra=schema)


# What the contract tells clients; retrieval.chroma, Rag and the retriever enforce it.
_COLLECTION = _documented(
    "The collection (default: RAGQA_COLLECTION).",
    pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,498}[A-Za-z0-9]$",
)
_ANSWER_MODES: list[JsonValue] = [m.value for m in AnswerMode]
_SEARCH_MODES: list[JsonValue] = [*(m.value for m in SearchMode), None]


class ExampleBody(Body):
    """A few-shot example."""

    question: str
    answer: str
    context: str = ""


class SearchBody(Body):
    """POST /api/search."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "install"}]})

    query: str = Field(description="What to look for.")
    collection: str | None = _COLLECTION
    k: int | None = _documented("How many passages (default: RAGQA_RETRIEVAL__K).",
                                minimum=1, maximum=100)  # fmt: skip
    retrieval_mode: str | None = _documented("Default: RAGQA_RETRIEVAL__MODE.", enum=_SEARCH_MODES)
    filters: dict[str, Any] | None = None  # checked by retrieval.filters (invalid_filter)


class ChatBody(Body):
    """POST /api/chat."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": "How do I install ragqa?", "mode": "rag"}]}
    )

    question: str = Field(description="The question (at most RAGQA_SERVER__MAX_QUESTION_CHARS).")
    collection: str | None = _COLLECTION
    mode: str | None = _documented("Default: RAGQA_ANSWERS__MODE.", enum=[*_ANSWER_MODES, None])
    template: str | None = None
    history: Any = None  # checked by generation.conversation (invalid_history)
    examples: list[ExampleBody] | None = Field(default=None, max_length=20)
    strict: bool | None = None
    retrieval_mode: str | None = _documented("Default: RAGQA_RETRIEVAL__MODE.", enum=_SEARCH_MODES)
    filters: dict[str, Any] | None = None
    stream: bool = Field(default=False, description="Answer as server-sent events.")
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


DEFAULT_MODES = [m.value for m in AnswerMode if m not in USES_ADAPTER]


class CompareBody(Body):
    """POST /api/compare."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"question": "What is ragqa?"}]})

    question: str
    collection: str | None = _COLLECTION
    modes: list[str] = Field(default_factory=lambda: list(DEFAULT_MODES), min_length=1,
                             max_length=len(AnswerMode),
                             json_schema_extra={"items": {"enum": _ANSWER_MODES}})  # fmt: skip
    adapter: str | None = None  # for the finetuned modes


class FeedbackBody(Body):
    """POST /api/feedback."""

    answer_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    correction: str | None = None
    comment: str | None = None


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
        raise BadRequestError(hint + _why_not_json())
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequestError(_explain(error)) from None


def _why_not_json() -> str:
    """Why the body is not JSON, as a sentence to add to the hint ("" if it is)."""
    try:
        current_app.json.loads(request.get_data(cache=True))
    except ValueError as error:  # JSONDecodeError, and BoundedJSONProvider's own
        return f" The body is not valid JSON: {error}"
    return ""


def search_options(mode: str | None, filters: dict[str, Any] | None) -> dict[str, Any]:
    """Retrieval options of a request: its retrieval mode and parsed filters."""
    where = SearchFilter.parse(filters)
    return {"mode": mode, "where": None if where.empty else where}
