"""Filter parsing and translation."""

from __future__ import annotations

import pytest

from retrieval.filters import InvalidFilterError, SearchFilter


def test_parse_and_translate() -> None:
    f = SearchFilter.parse({"source": "/a.pdf", "page": {"gte": 2, "lte": 4}, "section": "S",
                            "metadata": {"lang": "en"}})  # fmt: skip
    assert f.chroma_where() == {"$and": [
        {"source": {"$in": ["/a.pdf"]}}, {"page": {"$gte": 2}}, {"page": {"$lte": 4}},
        {"section": {"$eq": "S"}}, {"lang": {"$eq": "en"}}]}  # fmt: skip
    sql, params = f.sql()
    assert params == ["/a.pdf", 2, 4, "S", "en"]
    assert sql.count(" AND ") == 5
    assert SearchFilter.parse({"page": 7}).chroma_where() == {"$and": [
        {"page": {"$gte": 7}}, {"page": {"$lte": 7}}]}  # fmt: skip
    assert SearchFilter.parse(None).empty
    assert SearchFilter.parse({"source": ["/a", "/b"]}).chroma_where() == {
        "source": {"$in": ["/a", "/b"]}}  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [{"colour": "red"}, {"source": 3}, {"page": "3"}, {"page": {"from": 1}}, {"section": 1},
     {"metadata": {"bad key": 1}}, {"metadata": {"version": "x"}}, {"metadata": {"k": [1]}},
     {"metadata": []}, {"metadata": {"k": "a\x00b"}}],
)  # fmt: skip
def test_bad_filters_say_what_is_allowed(data: dict[str, object]) -> None:
    with pytest.raises(InvalidFilterError):
        SearchFilter.parse(data)
