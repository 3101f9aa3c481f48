"""Metadata filters, applied inside both searches (Chroma `where` and SQL), never after them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrieval.types import MetadataValue

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RESERVED = {"version", "start"}


class InvalidFilterError(ValueError):
    """A filter that cannot be applied; the message says what is allowed."""


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search: sources, a page range, a section, and exact metadata values."""

    sources: tuple[str, ...] = ()
    page_min: int | None = None
    page_max: int | None = None
    section: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the filter lets everything through."""
        return not (
            self.sources or self.page_min is not None or self.page_max is not None
            or self.section or self.metadata
        )  # fmt: skip

    @staticmethod
    def parse(data: Mapping[str, Any] | None) -> SearchFilter:
        """From JSON: {"source": str | [str], "page": int | {"gte", "lte"}, "section": str,
        "metadata": {key: value}}."""
        if not data:
            return SearchFilter()
        unknown = set(data) - {"source", "page", "section", "metadata"}
        if unknown:
            raise InvalidFilterError(
                f"Unknown filter keys {sorted(unknown)}; use source, page, section, metadata."
            )
        raw = data.get("source", ())
        sources = (raw,) if isinstance(raw, str) else raw
        if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
            raise InvalidFilterError("filter 'source' must be a string or a list of strings")
        page_min, page_max = _page_range(data.get("page"))
        section = data.get("section")
        if section is not None and not isinstance(section, str):
            raise InvalidFilterError("filter 'section' must be a string")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, Mapping):
            raise InvalidFilterError("filter 'metadata' must be an object of key: value")
        for key, value in metadata.items():
            if not _KEY.match(str(key)) or key in _RESERVED:
                raise InvalidFilterError(f"filter metadata key {key!r} is not allowed")
            if not isinstance(value, str | int | float | bool):
                raise InvalidFilterError(f"filter metadata {key!r} must be a plain value")
            if isinstance(value, str) and "\x00" in value:  # SQLite's JSON functions stop at NUL
                raise InvalidFilterError(f"filter metadata {key!r} cannot hold a NUL character")
        return SearchFilter(tuple(sources), page_min, page_max, section, dict(metadata))

    def chroma_where(self) -> dict[str, Any] | None:
        """The same conditions as a Chroma `where` clause."""
        conditions: list[dict[str, Any]] = []
        if self.sources:
            conditions.append({"source": {"$in": list(self.sources)}})
        if self.page_min is not None:
            conditions.append({"page": {"$gte": self.page_min}})
        if self.page_max is not None:
            conditions.append({"page": {"$lte": self.page_max}})
        if self.section:
            conditions.append({"section": {"$eq": self.section}})
        conditions += [{key: {"$eq": value}} for key, value in self.metadata.items()]
        if not conditions:
            return None
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}

    def sql(self, dialect: str = "sqlite") -> tuple[str, list[Any]]:
        """The same conditions as SQL (to follow `WHERE ... MATCH ?`) and their parameters,
        in SQLite's dialect or PostgreSQL's (whose metadata column is jsonb)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.sources:
            clauses.append(f"source IN ({', '.join('?' * len(self.sources))})")
            params += self.sources
        if self.page_min is not None:
            clauses.append("page >= ?")
            params.append(self.page_min)
        if self.page_max is not None:
            clauses.append("page <= ?")
            params.append(self.page_max)
        if self.section:
            clauses.append("section = ?")
            params.append(self.section)
        for key, value in self.metadata.items():
            if dialect == "postgresql":
                clauses.append("metadata -> ? = ?::jsonb")
                params += [key, json.dumps(value)]
            else:
                clauses.append(f"json_extract(metadata, '$.\"{key}\"') = ?")
                params.append(value)
        return "".join(f" AND {c}" for c in clauses), params


def _page_range(page: Any) -> tuple[int | None, int | None]:
    if page is None:
        return None, None
    if isinstance(page, int) and not isinstance(page, bool):
        return page, page
    if isinstance(page, Mapping) and set(page) <= {"gte", "lte"}:
        low, high = page.get("gte"), page.get("lte")
        if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (low, high)):
            return low, high
    raise InvalidFilterError('filter "page" must be a number or {"gte": n, "lte": m}')
