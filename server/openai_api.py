"""An OpenAI-compatible API: /v1/models and /v1/chat/completions (plain or streamed).

Model "ragqa" answers from the default collection, "ragqa:<collection>" from another, with
citations in an extra "ragqa" field; model "generator" is the bare generator, so another
ragqa (or any OpenAI client) can use this server's model. "@<adapter>" after either name
answers with that fine-tuned adapter: "ragqa@<adapter>[:<collection>]" in the finetuned_rag
mode, "generator@<adapter>" as a bare generator.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import NotFound

from generation.rag import Request
from server.access import current_key
from server.bodies import CompletionBody, read_body
from server.current import services
from server.errors import BadRequestError
from server.feedback import recorded
from server.sse import format_event, sse_response

openai_api = Blueprint("openai", __name__, url_prefix="/v1")
GENERATOR_MODEL = "generator"
RAG_MODEL = "ragqa"


@openai_api.get("/models")
def models() -> Response:
    """The models a client may name: ragqa, ragqa:<collection> for each one, generator."""
    adapters, key = services().adapters.names(), current_key()
    default = [RAG_MODEL] if key.sees(services().settings.collection) else []
    names = [*default, *(f"{RAG_MODEL}:{c}" for c in services().index.list_collections()
                         if key.sees(c)),
             GENERATOR_MODEL, *(f"{RAG_MODEL}@{a}" for a in adapters),
             *(f"{GENERATOR_MODEL}@{a}" for a in adapters)]  # fmt: skip
    return jsonify({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "ragqa"} for name in names
    ]})  # fmt: skip


@openai_api.post("/chat/completions")
def chat_completions() -> Response:
    """OpenAI's chat completions request and response shapes."""
    body = read_body(CompletionBody, 'Send a JSON object with "model" and "messages".')
    model = body.model or RAG_MODEL
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    max_tokens, stop = body.max_completion_tokens or body.max_tokens, body.stop_texts()
    stream = body.stream
    name, _, adapter = model.partition(":")[0].partition("@")
    if name == GENERATOR_MODEL and ":" not in model:
        return _bare(messages, max_tokens, stop, stream=stream, adapter=adapter or None,
                     model=model)  # fmt: skip
    asked = _rag_request(model, messages)
    if not stream:
        answer = recorded(services(), services().rag.answer(asked), asked.collection)
        usage = {"prompt_tokens": answer.context.prompt_tokens if answer.context else 0,
                 "completion_tokens": answer.completion_tokens}  # fmt: skip
        return jsonify(_completion(model, answer.text, usage, extra=answer.to_dict()))
    events, found = services().rag.stream(asked), services()
    next(events)  # validation and retrieval now: their errors are plain JSON errors

    def pieces() -> Iterator[tuple[str, dict[str, Any] | None]]:
        streamed = False
        for event in events:
            if event.kind == "token":
                streamed = True
                yield event.data, None
            elif event.kind == "answer":  # an extractive answer or a refusal comes whole
                answer = recorded(found, event.data, asked.collection)
                yield "" if streamed else answer.text, answer.to_dict()

    return _streamed(model, pieces())


def _rag_request(model: str, messages: list[dict[str, str]]) -> Request:
    """The last user message is the question; earlier user and assistant turns the history."""
    head, _, collection = model.partition(":")
    name, _, adapter = head.partition("@")
    if name != RAG_MODEL:
        raise NotFound(
            f"Unknown model {model!r}; use {RAG_MODEL}, {RAG_MODEL}:<collection>, "
            f"{GENERATOR_MODEL}, or either with @<adapter> (GET /v1/models lists them)."
        )
    turns = [m for m in messages if m["role"] != "system"]
    if not turns or turns[-1]["role"] != "user":
        raise BadRequestError("The last message must be the user's question.")
    return Request(question=turns[-1]["content"],
                   collection=collection or services().settings.collection,
                   history=turns[:-1], mode="finetuned_rag" if adapter else None,
                   adapter=adapter or None)  # fmt: skip


def _bare(
    messages: list[dict[str, str]], max_tokens: int | None, stop: list[str], *, stream: bool,
    adapter: str | None = None, model: str = GENERATOR_MODEL,
) -> Response:  # fmt: skip
    generator = services().generator
    extra: dict[str, Any] = {"adapter": adapter} if adapter else {}
    if not stream:
        done = generator.generate(messages, max_new_tokens=max_tokens, stop=stop, **extra)
        usage = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens}
        length = done.completion_tokens >= min(max_tokens or generator.max_new_tokens,
                                               generator.max_new_tokens)  # fmt: skip
        return jsonify(_completion(model, done.text, usage,
                                   finish="length" if length else "stop"))  # fmt: skip
    tokens = generator.stream(messages, max_new_tokens=max_tokens, stop=stop, **extra)
    first = next(tokens, "")  # errors before the first token are plain JSON errors

    def pieces() -> Iterator[tuple[str, dict[str, Any] | None]]:
        yield first, None
        for piece in tokens:
            yield piece, None

    return _streamed(model, pieces())


def _completion(
    model: str, text: str, usage: dict[str, int], *, finish: str = "stop",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": usage | {"total_tokens": sum(usage.values())},
    }  # fmt: skip
    if extra is not None:
        body["ragqa"] = extra
    return body


def _streamed(model: str, pieces: Iterator[tuple[str, dict[str, Any] | None]]) -> Response:
    """chat.completion.chunk events, then [DONE]; the RAG answer rides on the last chunk."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}  # fmt: skip

    def events() -> Iterator[str]:
        yield format_event(chunk({"role": "assistant"}))
        extra = None
        for text, final in pieces:
            if text:
                yield format_event(chunk({"content": text}))
            extra = final or extra
        last = chunk({}, "stop")
        if extra is not None:
            last["ragqa"] = extra
        yield format_event(last)
        yield "data: [DONE]\n\n"

    return sse_response(events(), _error_event)


def _error_event(status: int, code: str, message: str) -> str:
    """An error in OpenAI's shape; the stream ends with it (no [DONE])."""
    return format_event({"error": {"message": message, "type": code, "code": status}})
