"""Settings: defaults, then RAG_* variables, then flags; bad values name the setting; the index fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.settings import Settings, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert settings.index_dir == Path(".rag")
    assert settings.corpus == (Path("seeds"),)
    assert (settings.chunk_size, settings.chunk_overlap, settings.top_k, settings.candidates) == (160, 32, 5, 40)
    assert settings.query_encoder == "auto"
    assert settings.model_path.is_dir()
    assert (settings.model_path / "config.json").is_file()


def test_environment_overrides_defaults_and_is_converted() -> None:
    environ = {
        "RAG_INDEX_DIR": "/tmp/some-index",
        "RAG_TOP_K": "7",
        "RAG_REFUSAL_THRESHOLD": "1.25",
        "RAG_CORPUS": os.pathsep.join(["a", "b/c"]),
        "RAG_QUERY_ENCODER": "numpy",
        "UNRELATED": "x",
        "TOP_K": "99",
    }
    settings = load_settings({}, environ=environ)
    assert settings.index_dir == Path("/tmp/some-index")
    assert settings.top_k == 7
    assert settings.refusal_threshold == 1.25
    assert settings.corpus == (Path("a"), Path("b/c"))
    assert settings.query_encoder == "numpy"
    assert settings.chunk_size == 160


def test_flags_override_environment_and_none_means_unset() -> None:
    environ = {"RAG_TOP_K": "7", "RAG_INDEX_DIR": "/tmp/from-env"}
    settings = load_settings({"top_k": 3, "index_dir": None}, environ=environ)
    assert settings.top_k == 3
    assert settings.index_dir == Path("/tmp/from-env")
    assert load_settings({"top_k": "9"}, environ={}).top_k == 9
    assert load_settings({"corpus": ["x", Path("y")]}, environ={}).corpus == (Path("x"), Path("y"))


def test_a_flag_can_fix_what_the_environment_alone_makes_invalid() -> None:
    settings = load_settings({"candidates": 60}, environ={"RAG_TOP_K": "50"})
    assert (settings.top_k, settings.candidates) == (50, 60)
    # And a flag replaces a bad environment value outright.
    assert load_settings({"top_k": 4}, environ={"RAG_TOP_K": "many"}).top_k == 4


def test_reads_os_environ_only_when_no_environ_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "8")
    assert load_settings({}).top_k == 8
    assert load_settings({}, environ={}).top_k == 5


@pytest.mark.parametrize(
    "flags,environ,name",
    [
        ({"top_k": 0}, {}, "top_k"),
        ({"top_k": 101}, {}, "top_k"),
        ({}, {"RAG_TOP_K": "abc"}, "top_k"),
        ({}, {"RAG_TOP_K": "2.5"}, "top_k"),
        ({"chunk_size": 8}, {}, "chunk_size"),
        ({}, {"RAG_CHUNK_SIZE": "300"}, "chunk_size"),
        ({"chunk_overlap": 80}, {}, "chunk_overlap"),
        ({"chunk_overlap": -1}, {}, "chunk_overlap"),
        ({"candidates": 3}, {}, "candidates"),
        ({}, {"RAG_QUERY_ENCODER": "tensorflow"}, "query_encoder"),
        ({}, {"RAG_REFUSAL_THRESHOLD": "high"}, "refusal_threshold"),
        ({}, {"RAG_EMBED_MODEL": "/no/such/model"}, "embed_model"),
        ({}, {"RAG_RRF_K": "-5"}, "rrf_k"),
        ({"embed_batch_size": 0}, {}, "embed_batch_size"),
        ({"colour": "blue"}, {}, "colour"),
    ],
)
def test_bad_values_raise_settings_error_naming_the_setting(
    flags: dict[str, object], environ: dict[str, str], name: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(flags, environ=environ)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_fingerprint_depends_on_what_shapes_the_stored_passages() -> None:
    base = load_settings({}, environ={})
    assert base.fingerprint == load_settings({}, environ={}).fingerprint
    assert len(base.fingerprint) == 12
    assert load_settings({"chunk_size": 100}, environ={}).fingerprint != base.fingerprint
    assert load_settings({"chunk_overlap": 16}, environ={}).fingerprint != base.fingerprint
    # Retrieval and answering settings do not change what is stored: they must not split the index.
    same = load_settings({"top_k": 9, "candidates": 50, "rrf_k": 10, "refusal_threshold": 2.0,
                          "index_dir": "/elsewhere", "query_encoder": "numpy"}, environ={})
    assert same.fingerprint == base.fingerprint


def test_fingerprint_follows_the_model_directory(tmp_path: Path) -> None:
    base = load_settings({}, environ={})
    copy = tmp_path / base.model_path.name
    copy.mkdir()
    config = (base.model_path / "config.json").read_text()
    (copy / "config.json").write_text(config)
    for weights in base.model_path.glob("*.safetensors"):
        (copy / weights.name).symlink_to(weights)
    same_model = load_settings({"embed_model": str(copy)}, environ={})
    assert same_model.fingerprint == base.fingerprint
    (copy / "config.json").write_text(config.replace("}", ', "edited": true}', 1))
    assert load_settings({"embed_model": str(copy)}, environ={}).fingerprint != base.fingerprint


def test_the_answerer_is_chosen_by_setting_and_checked() -> None:
    assert load_settings({}, environ={}).answerer == "hybrid"
    assert load_settings({}, environ={"RAG_ANSWERER": "rules"}).answerer == "rules"
    assert load_settings({}, environ={"RAG_ANSWERER": "reader"}).answerer == "reader"
    assert load_settings({"answerer": "rules"}, environ={"RAG_ANSWERER": "reader"}).answerer == "rules"
    with pytest.raises(SettingsError, match="answerer"):
        load_settings({}, environ={"RAG_ANSWERER": "llm"})
