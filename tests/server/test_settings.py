"""Settings come from RAGQA_* variables, nested with __, validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.settings import BUILTIN_EMBEDDER, BUILTIN_GENERATOR, Settings
from tests.conftest import MakeSettings


def test_defaults(make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGQA_GENERATOR__CACHE_DIR")  # the tests' shared cache
    settings = make_settings()
    assert settings.home == Path(".ragqa")
    assert settings.chroma_path == Path(".ragqa/chroma")
    assert settings.model_cache_dir == Path(".ragqa/models")
    assert settings.embedder.model == BUILTIN_EMBEDDER
    assert settings.generator.model == BUILTIN_GENERATOR
    assert settings.server.port == 8000
    assert settings.server.host == "127.0.0.1"
    assert settings.generator.temperature == 0.0


def test_environment_nested_with_double_underscore(
    monkeypatch: pytest.MonkeyPatch, make_settings: MakeSettings
) -> None:
    monkeypatch.setenv("RAGQA_HOME", "/srv/ragqa")
    monkeypatch.setenv("RAGQA_SERVER__PORT", "9001")
    monkeypatch.setenv("RAGQA_GENERATOR__MODEL", "HuggingFaceTB/SmolLM2-360M-Instruct")
    monkeypatch.setenv("RAGQA_GENERATOR__CACHE_DIR", "/cache")
    monkeypatch.setenv("RAGQA_SERVER__API_KEY", "s3cret")
    settings = make_settings()
    assert settings.home == Path("/srv/ragqa")
    assert settings.server.port == 9001
    assert settings.generator.model == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert settings.model_cache_dir == Path("/cache")
    assert settings.server.api_key is not None
    assert "s3cret" not in repr(settings)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RAGQA_COLLECTION=handbook\n")
    assert Settings().collection == "handbook"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAGQA_SERVER__PORT", "0"),
        ("RAGQA_GENERATOR__MAX_NEW_TOKENS", "100000"),
        ("RAGQA_CHUNKING__CHUNK_OVERLAP", "900"),
        ("RAGQA_RETRIEVAL__TOP_K", "zero"),
    ],
)
def test_bad_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, make_settings: MakeSettings
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        make_settings()


def test_int8_with_half_precision_weights_is_refused(
    monkeypatch: pytest.MonkeyPatch, make_settings: MakeSettings
) -> None:
    monkeypatch.setenv("RAGQA_GENERATOR__QUANTIZE", "int8")
    monkeypatch.setenv("RAGQA_GENERATOR__DTYPE", "bfloat16")
    with pytest.raises(ValidationError, match="starts from float32"):
        make_settings()
    monkeypatch.setenv("RAGQA_GENERATOR__DTYPE", "float32")
    assert make_settings().generator.quantize == "int8"


def test_ctranslate2_by_default_and_transformers_where_it_cannot_go(
    monkeypatch: pytest.MonkeyPatch, make_settings: MakeSettings
) -> None:
    from generation.generator import GeneratorBackend

    assert make_settings().generator.backend == GeneratorBackend.CTRANSLATE2
    for name, value in (
        ("RAGQA_GENERATOR__DTYPE", "bfloat16"),
        ("RAGQA_GENERATOR__DEVICE", "cuda"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert make_settings().generator.backend == GeneratorBackend.TRANSFORMERS
            env.setenv("RAGQA_GENERATOR__BACKEND", "ctranslate2")  # asked for: a clear refusal
            with pytest.raises(ValidationError, match="BACKEND=transformers"):
                make_settings()


def test_the_backend_setting_builds_that_generator(tmp_path: Path) -> None:
    from generation.ctranslate import CT2Generator
    from generation.local import HFGenerator
    from retrieval.model_thread import ModelThread
    from server.generators import build_generator

    def build(**generator: str) -> object:
        settings = Settings(home=tmp_path, generator=generator, _env_file=None)
        return build_generator(settings, model_thread=ModelThread, remote_thread=ModelThread,
                               adapters=lambda name: tmp_path)  # fmt: skip

    assert isinstance(build(), CT2Generator)
    assert isinstance(build(backend="transformers"), HFGenerator)
    assert isinstance(build(dtype="bfloat16"), HFGenerator)


def test_each_extension_point_has_one_source() -> None:
    """Settings, the domain code and the CLI take their choices from the same enums."""
    from generation.generator import GeneratorBackend
    from generation.rag import MODES as ANSWER_MODES
    from generation.types import AnswerMode
    from retrieval.retriever import MODES as SEARCH_MODES
    from retrieval.types import SearchMode
    from server.cli import main

    retrieval = Settings.model_fields["retrieval"].annotation
    generator = Settings.model_fields["generator"].annotation
    assert retrieval.model_fields["mode"].annotation is SearchMode
    assert generator.model_fields["backend"].annotation is GeneratorBackend
    assert tuple(SearchMode) == SEARCH_MODES and tuple(AnswerMode) == ANSWER_MODES
    options = {p.name: p for p in main.commands["ask"].params}
    assert list(options["mode"].type.choices) == [m.value for m in AnswerMode]
    assert list(options["retrieval_mode"].type.choices) == [m.value for m in SearchMode]
    search = {p.name: p for p in main.commands["search"].params}
    assert list(search["retrieval_mode"].type.choices) == [m.value for m in SearchMode]
