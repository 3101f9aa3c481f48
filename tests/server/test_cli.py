"""The ragqa command, through click's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from server.wiring import Services
from tests.conftest import MakeSettings
from tests.fakes import FakeEmbedder, FakeGenerator


def run(services: Services, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), obj=services)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_json_report_then_ask_json(
    services: Services, docs: Path, generator: FakeGenerator
) -> None:
    code, out, _ = run(services, "ingest", str(docs), "--collection", "guide", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["files_ok"] == 2 and report["files_failed"] == 0 and report["chunks_added"] >= 2
    assert report["errors"] == []
    generator.enqueue("The embedder is MiniLM [1].")
    code, out, _ = run(services, "ask", "Which embedder is used?", "-c", "guide", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["answer"] == "The embedder is MiniLM [1]."
    assert answer["mode"] == "rag" and answer["refused"] is False
    assert answer["citations"][0]["source"].endswith("models.md")
    assert {"retrieval", "generation", "total"} <= set(answer["timings_ms"])


def test_ask_plain_text_lists_sources(
    services: Services, docs: Path, generator: FakeGenerator
) -> None:
    run(services, "ingest", str(docs))
    generator.enqueue("Run make run [1].")
    code, out, _ = run(services, "ask", "How do I install?")
    assert code == 0
    assert out.startswith("Run make run [1].")
    assert "Sources:" in out and "install.md" in out


@pytest.mark.parametrize("mode", ["closed_book", "few_shot", "rag"])
def test_ask_in_every_mode_with_a_template(
    services: Services, docs: Path, generator: FakeGenerator, mode: str
) -> None:
    run(services, "ingest", str(docs))
    generator.enqueue("make run [1]")
    code, out, err = run(services, "ask", "How do I install?", "--mode", mode, "-t", "extract",
                         "--json")  # fmt: skip
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["mode"], answer["template"], answer["answer"]) == (
        mode,
        "extract",
        "make run [1]",
    )
    assert "Shortest answer:" in generator.prompts[-1][-1]["content"]
    assert ("<sources>" in generator.prompts[-1][-1]["content"]) is (mode == "rag")


def test_ask_unknown_template_is_one_clear_line(services: Services, docs: Path) -> None:
    run(services, "ingest", str(docs))
    code, _, err = run(services, "ask", "q?", "--template", "poetry")
    assert code == 1 and "Unknown template 'poetry'" in err and "Traceback" not in err


def test_ask_missing_collection_is_one_clear_line(services: Services) -> None:
    code, _, err = run(services, "ask", "anything", "--collection", "nothing")
    assert code == 1
    assert "ragqa ingest PATH --collection nothing" in err
    assert "Traceback" not in err


def test_ingest_of_only_bad_files_exits_nonzero(services: Services, tmp_path: Path) -> None:
    (tmp_path / "a.docx").write_bytes(b"PK")
    code, out, _ = run(services, "ingest", str(tmp_path / "a.docx"), "--json")
    assert code == 1
    assert json.loads(out)["files_failed"] == 1


def test_collections_documents_and_delete(services: Services, docs: Path) -> None:
    run(services, "ingest", str(docs), "-c", "first")
    run(services, "ingest", str(docs / "install.md"), "-c", "second")
    code, out, _ = run(services, "collections", "--json")
    assert code == 0
    rows = json.loads(out)["collections"]
    assert [(r["name"], r["documents"]) for r in rows] == [("first", 2), ("second", 1)]
    code, out, _ = run(services, "documents", "-c", "first", "--json")
    listed = json.loads(out)["documents"]
    assert [Path(d["source"]).name for d in listed] == ["install.md", "models.md"]
    assert {"source", "content_hash", "pages", "chunks", "ingested_at", "status"} <= set(listed[0])
    code, out, _ = run(services, "delete", str(docs / "install.md"), "-c", "first")
    assert code == 0 and "Deleted" in out
    _, out, _ = run(services, "documents", "-c", "first")
    assert "install.md" not in out and "models.md" in out
    code, _, err = run(services, "delete", str(docs / "install.md"), "-c", "first")
    assert code == 1 and "ragqa documents" in err
    code, out, _ = run(services, "delete", "-c", "second", "--all", "--yes")
    assert code == 0
    assert services.index.list_collections() == ["first"]
    code, _, err = run(services, "delete", "-c", "first")
    assert code == 2 and "--all" in err


def test_serve_refuses_public_address_without_api_key(services: Services) -> None:
    code, _, err = run(services, "serve", "--host", "0.0.0.0")
    assert code == 1
    assert "RAGQA_SERVER__API_KEY" in err


def test_invalid_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGQA_SERVER__PORT", "not-a-port")
    result = CliRunner().invoke(main, ["collections"])
    assert result.exit_code == 1
    assert "Invalid RAGQA_* setting" in result.stderr


def test_importing_the_server_loads_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys, server.cli, server.app\n"
        "from server.app import create_app\n"
        "app = create_app()\n"
        "app.test_client().get('/healthz')\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'chromadb',"
        " 'pypdf', 'langchain_text_splitters', 'peft') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "", "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert out.stdout.strip() == "[]"


def test_settings_object_is_used_for_defaults(
    tmp_path: Path, docs: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(home=tmp_path / "h", collection="handbook")
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    code, _, _ = run(services, "ingest", str(docs), "--json")
    assert code == 0
    assert services.index.list_collections() == ["handbook"]
    assert (tmp_path / "h" / "chroma").is_dir()


def test_ingest_options_globs_and_passwords(services: Services, docs: Path, tmp_path: Path,
                                            shared_data: Path) -> None:  # fmt: skip
    code, out, _ = run(services, "ingest", str(docs), "--include", "models*", "--json")
    assert code == 0 and json.loads(out)["files_ok"] == 1
    folder = shared_data / "pdf_torture"
    name = "pypdf/encryption/r4-user-password.pdf"
    secrets = tmp_path / "passwords.json"
    secrets.write_text(json.dumps({name: "asdfzxcv"}))
    code, out, _ = run(services, "ingest", str(folder / name), "--json")
    assert code == 1 and "needs a password" in json.loads(out)["errors"][0]["error"]
    code, out, _ = run(services, "ingest", str(folder / name), "--passwords-file", str(secrets))
    assert code == 0, out
    code, out, _ = run(services, "ingest", str(folder / name), "-c", "other", "--password",
                       "asdfzxcv", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["files_ok"] == 1
    secrets.write_text("[1, 2]")
    code, _, err = run(services, "ingest", str(docs), "--passwords-file", str(secrets))
    assert code == 1 and "JSON object" in err


def test_ask_stream_prints_the_answer_then_its_sources(
    services: Services, docs: Path, generator: FakeGenerator
) -> None:
    run(services, "ingest", str(docs))
    generator.enqueue("Run make run to install ragqa [1].")
    code, out, _ = run(services, "ask", "How do I install?", "--stream")
    assert code == 0
    assert out.startswith("Run make run to install ragqa [1].\n")
    assert "Sources:" in out and "install.md" in out
