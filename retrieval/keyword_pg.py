"""The keyword side of hybrid search in PostgreSQL, for several servers sharing one index.

Chroma 1.5.9's sparse (BM25) index is refused by `chroma run` ("Sparse vector indexing is not
enabled in local"), so the shared keyword index lives in PostgreSQL: one table, a row per
chunk with its `english` tsvector (Snowball stemming, stop words dropped). Ranking is Okapi
BM25 with SQLite FTS5's constants (k1 = 1.2, b = 0.75), computed in SQL from each matching
lexeme's positions, over the whole collection whatever the filter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from retrieval.database import Connection, PostgresDatabase, Tables
from retrieval.filters import SearchFilter
from retrieval.keyword import row_chunk
from retrieval.types import Chunk

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ragqa_keyword (collection TEXT NOT NULL, chunk_id TEXT NOT NULL, "
    "text TEXT NOT NULL, source TEXT NOT NULL, version TEXT, page INTEGER, start INTEGER, "
    "section TEXT, metadata JSONB NOT NULL, terms TSVECTOR NOT NULL, length INTEGER NOT NULL, "
    "PRIMARY KEY (collection, chunk_id))",
    "CREATE INDEX IF NOT EXISTS ragqa_keyword_lexemes ON ragqa_keyword "
    "USING GIN (tsvector_to_array(terms))",
)
# A chunk's length in words (BM25's document length), from its tsvector's positions.
_INSERT = (
    "INSERT INTO ragqa_keyword SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, v.terms, "
    "(SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(v.terms) u) "
    "FROM (SELECT to_tsvector('english', ?) AS terms) v"
)
_SEARCH = """
WITH q AS (SELECT coalesce(array_agg(DISTINCT lexeme), '{{}}') AS terms
           FROM unnest(to_tsvector('english', ?))),
stats AS (SELECT count(*)::float8 AS n, coalesce(avg(length), 1)::float8 AS avglen
          FROM ragqa_keyword WHERE collection = ?),
matched AS (SELECT k.chunk_id, k.length, u.lexeme, cardinality(u.positions) AS tf
            FROM ragqa_keyword k CROSS JOIN q CROSS JOIN LATERAL unnest(k.terms) u
            WHERE k.collection = ? AND tsvector_to_array(k.terms) && q.terms
              AND u.lexeme = ANY(q.terms)),
df AS (SELECT lexeme, count(*)::float8 AS df FROM matched GROUP BY lexeme),
scored AS (SELECT m.chunk_id, sum(ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))
                  * m.tf * 2.2 / (m.tf + 1.2 * (0.25 + 0.75 * m.length / s.avglen))) AS score
           FROM matched m JOIN df d USING (lexeme) CROSS JOIN stats s GROUP BY m.chunk_id)
SELECT k.text, k.chunk_id, k.source, k.version, k.page, k.start, k.metadata::text, sc.score
FROM scored sc JOIN ragqa_keyword k ON k.collection = ? AND k.chunk_id = sc.chunk_id
WHERE TRUE {where}
ORDER BY sc.score DESC, k.chunk_id LIMIT ?
"""


class PostgresKeywordIndex:
    """BM25 keyword search per collection in a shared PostgreSQL database."""

    def __init__(self, database: PostgresDatabase) -> None:
        self._db = Tables(database, _SCHEMA)

    def add(self, collection: str, chunks: Sequence[Chunk]) -> None:
        """Insert chunks (replacing any stored with the same id) in one transaction."""
        with self._db.transaction(write=True) as db:
            self._delete(db, collection, [c.id for c in chunks])
            self._insert(db, collection, chunks)

    @staticmethod
    def _delete(db: Connection, collection: str, ids: Sequence[str]) -> None:
        db.execute(
            "DELETE FROM ragqa_keyword WHERE collection = ? AND chunk_id = ANY(?)",
            (collection, list(ids)),
        )

    @staticmethod
    def _insert(db: Connection, collection: str, chunks: Sequence[Chunk]) -> None:
        for c in chunks:
            db.execute(
                _INSERT,
                (collection, c.id, c.text, c.source, c.version, c.page, c.start,
                 c.metadata.get("section"), json.dumps(dict(c.metadata)), c.text),
            )  # fmt: skip

    def delete(self, collection: str, ids: Iterable[str]) -> None:
        """Remove chunks by id."""
        with self._db.transaction(write=True) as db:
            self._delete(db, collection, list(ids))

    def replace(self, collection: str, chunks: Sequence[Chunk]) -> None:
        """Rebuild a collection's index from `chunks`, in one transaction."""
        with self._db.transaction(write=True) as db:
            db.execute("DELETE FROM ragqa_keyword WHERE collection = ?", (collection,))
            self._insert(db, collection, chunks)

    def is_empty(self, collection: str) -> bool:
        """True when nothing is indexed for the collection."""
        with self._db.transaction() as db:
            found = db.execute(
                "SELECT 1 FROM ragqa_keyword WHERE collection = ? LIMIT 1", (collection,)
            ).fetchone()
        return found is None

    def drop(self, collection: str) -> None:
        """Forget a collection."""
        with self._db.transaction(write=True) as db:
            db.execute("DELETE FROM ragqa_keyword WHERE collection = ?", (collection,))

    def count(self, collection: str) -> int:
        """Number of chunks indexed for a collection."""
        with self._db.transaction() as db:
            (n,) = db.execute(
                "SELECT count(*) FROM ragqa_keyword WHERE collection = ?", (collection,)
            ).fetchone()
        return int(n)

    def rows(self, collection: str) -> list[tuple[str, str, str]]:
        """(chunk id, source, version) of every indexed chunk."""
        with self._db.transaction() as db:
            found = db.execute(
                "SELECT chunk_id, source, version FROM ragqa_keyword WHERE collection = ?",
                (collection,),
            ).fetchall()
        return [tuple(row) for row in found]

    def search(
        self, collection: str, question: str, k: int, *, where: SearchFilter | None = None
    ) -> list[tuple[Chunk, float]]:
        """Up to k chunks ranked by BM25 (the score is positive: higher is better)."""
        where_sql, params = where.sql("postgresql") if where else ("", [])
        with self._db.transaction() as db:
            rows = db.execute(
                _SEARCH.format(where=where_sql),
                [question, collection, collection, collection, *params, k],
            ).fetchall()
        return [(row_chunk(row), float(row[7])) for row in rows]
