"""Child process for the kill -9 test: `ingest HOME CORPUS` or `verify HOME CORPUS`.

`ingest` prints one line per document as soon as the pipeline reports it done (the
acknowledgement); `verify` prints the store's state as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ingest.discovery import source_id
from ingest.pipeline import Ingestor
from ingest.report import FileResult
from retrieval.chroma import open_chroma_client
from retrieval.index import ChromaIndex
from tests.fakes import FakeEmbedder


class Acknowledge:
    def start(self, total_files: int) -> None:
        print(f"START {total_files}", flush=True)

    def file_done(self, result: FileResult) -> None:
        if result.error is None:
            print(f"DONE {source_id(Path(result.path))}", flush=True)


def main(mode: str, home: Path, corpus: Path) -> None:
    embedder = FakeEmbedder()  # opened as ragqa opens a store: able to repair its vectors
    index = ChromaIndex(client=open_chroma_client(path=home), embedder_name="fake",
                        embed=embedder.embed_documents)  # fmt: skip
    if mode == "ingest":
        ingestor = Ingestor(index=index, embedder=embedder, chunk_size=60, chunk_overlap=10)
        ingestor.ingest([corpus], collection="crash", progress=Acknowledge())
        print("FINISHED", flush=True)
        return
    documents = index.documents("crash") if "crash" in index.list_collections() else {}
    state = {
        source: {
            "status": record.status,
            "hash": record.content_hash,
            "chunks": record.chunks,
            "current": len(index.chunk_ids("crash", source, record.content_hash)),
            "all": len(index.chunk_ids("crash", source)),
        }
        for source, record in documents.items()
    }
    total = index.count("crash") if documents else 0
    print(json.dumps({"documents": state, "total": total, "repaired": index.repaired}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
