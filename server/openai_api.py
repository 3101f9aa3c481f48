"""An OpenAI-compatible API: /v1/models and /v1/chat/completions (plain or streamed).

Model "ragqa" answers from the default collection, "ragqa:<collection>" from another, with
citations in an extra "ragqa" field; model "generator" is the bare generator, so another
ragqa (or any OpenAI client) can use this server's model.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, stream_with_context
from werkzeug.exceptions import NotFound

from generation.rag import Request
from server.chat import json_body, services
from server.errors import BadRequestError, classify

logger = logging.getLogger(__name__)
openai_api = Blueprint("openai", __name__, url_prefix="/v1")
GENERATOR_MODEL = "generator"
RAG_MODEL = "ragqa"


@openai_api.get("/models")
def models() -> Response:
    """The models a client may name: ragqa, ragqa:<collection> for each one, generator."""
    names = [RAG_MODEL, *(f"{RAG_MODEL}:{c}" for c in services().index.list_collections()),
             GENERATOR_MODEL]  # fmt: skip
    return jsonify({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "ragqa"} for name in names
    ]})  # fmt: skip


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequestError('"messages" must be a non-empty list of {"role", "content"}.')
    messages = []
    for m in raw:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(content, str):
            raise BadRequestError('Each message needs a role (system, user, assistant) and '
                                  'text content.')  # fmt: skip
        messages.append({"role": m["role"], "content": content})
    return messages


def _options(body: dict[str, Any]) -> tuple[int | None, list[str]]:
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BadRequestError('"max_tokens" must be a positive whole number.')
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
        raise BadRequestError('"stop" must be a string or a list of up to 4 strings.')
    return limit, stop


@openai_api.post("/chat/completions")
def chat_completions() -> Response:
    """OpenAI's chat completions request and response shapes."""
    body = json_body('Send a JSON object with "model" and "messages".')
    model = body.get("model") or RAG_MODEL
    if not isinstance(model, str):
        raise BadRequestError('"model" must be a string.')
    messages = _messages(body)
    max_tokens, stop = _options(body)
    stream = body.get("stream") is True
    if model == GENERATOR_MODEL:
        return _bare(messages, max_tokens, stop, stream=stream)
    asked = _rag_request(model, messages)
    if not stream:
        answer = services().rag.answer(asked)
        usage = {"prompt_tokens": answer.context.prompt_tokens if answer.context else 0,
                 "completion_tokens": answer.completion_tokens}  # fmt: skip
        return jsonify(_completion(model, answer.text, usage, extra=answer.to_dict()))
    events = services().rag.stream(asked)
    next(events)  # validation and retrieval now: their errors are plain JSON errors

    def pieces() -> Iterator[tuple[str, dict[str, Any] | None]]:
        for event in events:
            if event.kind == "token":
                yield event.data, None
            elif event.kind == "answer":
                yield "", event.data.to_dict()

    return _streamed(model, pieces())


def _rag_request(model: str, messages: list[dict[str, str]]) -> Request:
    """The last user message is the question; earlier user and assistant turns the history."""
    name, _, collection = model.partition(":")
    if name != RAG_MODEL:
        raise NotFound(
            f"Unknown model {model!r}; use {RAG_MODEL}, {RAG_MODEL}:<collection> or "
            f"{GENERATOR_MODEL} (GET /v1/models lists them)."
        )
    turns = [m for m in messages if m["role"] != "system"]
    if not turns or turns[-1]["role"] != "user":
        raise BadRequestError("The last message must be the user's question.")
    return Request(question=turns[-1]["content"],
                   collection=collection or services().settings.collection,
                   history=turns[:-1])  # fmt: skip


def _bare(
    messages: list[dict[str, str]], max_tokens: int | None, stop: list[str], *, stream: bool
) -> Response:
    generator = services().generator
    if not stream:
        done = generator.generate(messages, max_new_tokens=max_tokens, stop=stop)
        usage = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens}
        length = done.completion_tokens >= min(max_tokens or generator.max_new_tokens,
                                               generator.max_new_tokens)  # fmt: skip
        return jsonify(_completion(GENERATOR_MODEL, done.text, usage,
                                   finish="length" if length else "stop"))  # fmt: skip
    tokens = generator.stream(messages, max_new_tokens=max_tokens, stop=stop)
    first = next(tokens, "")  # errors before the first token are plain JSON errors

    def pieces() -> Iterator[tuple[str, dict[str, Any] | None]]:
        yield first, None
        for piece in tokens:
            yield piece, None

    return _streamed(GENERATOR_MODEL, pieces())


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

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}  # fmt: skip
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant"})
        extra = None
        try:
            for text, final in pieces:
                if text:
                    yield chunk({"content": text})
                extra = final or extra
        except Exception as error:  # the stream has started: report it in the stream
            known = classify(error)
            if known is None:
                logger.exception("error while streaming a completion")
            message = str(error) if known else "Internal error; see the server log."
            yield f"data: {json.dumps({'error': {'message': message}})}\n\n"
            return
        last = json.loads(chunk({}, "stop")[len("data: ") :])
        if extra is not None:
            last["ragqa"] = extra
        yield f"data: {json.dumps(last, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
