"""A generator behind any OpenAI-compatible chat completions endpoint (vLLM, TGI, llama.cpp
server, Ollama, ragqa itself): the way to run generation on other machines."""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from generation.generator import (
    AdapterUnavailableError,
    Generation,
    GeneratorLoadError,
    Message,
    PromptTooLongError,
)
from retrieval.model_thread import Emit, ModelThread

logger = logging.getLogger(__name__)

# Without the server's tokenizer, tokens are estimated from characters: English runs about
# four characters per token; three keeps the estimate on the safe side of the window.
CHARS_PER_TOKEN = 3.0
TOKENS_PER_MESSAGE = 6


class RemoteGeneratorError(GeneratorLoadError):
    """The remote endpoint could not be reached or answered with an error."""


class OpenAICompatibleGenerator:
    """Chat completions over HTTP, plain or streamed (server-sent events). Requests go one at
    a time through a ModelThread, so a remote model gets the same bounded wait and busy error
    as a local one (the server gives it a thread of its own, apart from the embedder's)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        context_window: int = 4096,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float = 300.0,
        model_thread: ModelThread | None = None,
    ) -> None:
        # Its own by default: a remote call must not wait behind (or hold up) local models.
        self._model_thread = model_thread or ModelThread(name="ragqa-remote")
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._window = context_window
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._timeout_s = timeout_s

    def warm_up(self) -> None:
        """Nothing to load: the endpoint is asked on the first question."""

    @property
    def context_window(self) -> int:
        """The served model's window, as configured (the API does not say)."""
        return self._window

    @property
    def max_new_tokens(self) -> int:
        """The longest answer, in tokens."""
        return self._max_new_tokens

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """An estimate from characters (the server's tokenizer is not available here)."""
        chars = sum(len(m["content"]) for m in messages)
        return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)

    def _body(
        self, messages: Sequence[Message], max_new_tokens: int | None, stop: Sequence[str],
        stream: bool,
    ) -> bytes:  # fmt: skip
        budget = min(max_new_tokens or self._max_new_tokens, self._max_new_tokens)
        if self.count_tokens(messages) + budget > self._window:
            raise PromptTooLongError(
                f"The prompt takes about {self.count_tokens(messages)} tokens; with {budget} for "
                f"the answer it exceeds the configured {self._window}-token window."
            )
        body: dict[str, Any] = {
            "model": self._model, "messages": [dict(m) for m in messages],
            "max_tokens": budget, "temperature": self._temperature, "stream": stream,
        }  # fmt: skip
        if stop:
            body["stop"] = list(stop)[:4]  # the OpenAI API accepts at most four
        return json.dumps(body).encode("utf-8")

    def _open(self, body: bytes) -> Any:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=self._timeout_s)
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise RemoteGeneratorError(
                f"The generator at {self._url} answered HTTP {error.code}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise RemoteGeneratorError(
                f"Cannot reach the generator at {self._url} ({error}). Check "
                "RAGQA_GENERATOR__BASE_URL and that the server is running."
            ) from None

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
        avoid_opening: str | None = None,
    ) -> Generation:
        """The whole reply in one response (`avoid_opening` is ignored: the API's token ids
        are not known here)."""
        _no_adapter(adapter)
        body = self._body(messages, max_new_tokens, stop, stream=False)
        data = self._model_thread.run(lambda: self._post(body))
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RemoteGeneratorError(
                f"Unexpected reply from {self._url}: {data!r:.300}"
            ) from None
        usage = data.get("usage") or {}
        return Generation(
            text=text.strip(),
            prompt_tokens=int(usage.get("prompt_tokens") or self.count_tokens(messages)),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def _post(self, body: bytes) -> Any:
        with self._open(body) as response:
            return json.loads(response.read())

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
        avoid_opening: str | None = None,
    ) -> Iterator[str]:
        """The reply piece by piece, from the server's event stream (see `generate`)."""
        _no_adapter(adapter)
        body = self._body(messages, max_new_tokens, stop, stream=True)

        def produce(emit: Emit[str], cancelled: threading.Event) -> None:
            with self._open(body) as response:
                for raw in response:
                    if cancelled.is_set() or not self._emit_line(raw, emit):
                        return

        yield from self._model_thread.stream(produce)

    @staticmethod
    def _emit_line(raw: bytes, emit: Emit[str]) -> bool:
        """Emit the text of one event-stream line; False at the end of the stream."""
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            return True
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return False
        chunk = json.loads(payload)
        if "error" in chunk:
            raise RemoteGeneratorError(f"The generator failed: {chunk['error']!r}"[:400])
        for choice in chunk.get("choices", []):
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                emit(piece)
        return True


def _no_adapter(adapter: str | None) -> None:
    if adapter is not None:
        raise AdapterUnavailableError(
            f"Adapter {adapter!r}: a remote generator (RAGQA_GENERATOR__BACKEND=openai) cannot "
            "apply fine-tuned adapters; serve the model here (backend transformers)."
        )
