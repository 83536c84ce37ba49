"""The pure parts of the two seams: the embedding-model registry and its setting, the stage plan and versions."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from musicindex.config import Settings, get_settings, set_settings
from musicindex.errors import ConfigError, InvalidArgumentError
from musicindex.ingest import stages
from musicindex.ingest.stages import Audio, Needs, Stage
from musicindex.pretrained import registry
from musicindex.pretrained.registry import EmbeddingModel


class Tiny(EmbeddingModel):
    name, sample_rate, dimension, tags = "tiny", 8000, 2, ("a",)

    def embed_inputs(self, batch):
        x = np.array([[float(np.mean(b)), float(np.std(b))] for b in batch], dtype=np.float32)
        return x, np.full((len(batch), 1), 0.5, np.float32)


@pytest.fixture
def settings() -> Iterator[None]:
    before = get_settings()
    yield
    set_settings(before)
    registry.unregister("tiny")


def test_the_setting_lists_models_by_name_or_module(settings):
    env = {"MUSICINDEX_EMBEDDING_MODELS": " musicnn , mine=pkg.models:MODEL ,"}
    assert Settings.from_env(env).embedding_model_entries == [("musicnn", None), ("mine", "pkg.models:MODEL")]
    assert Settings.from_env({}).embedding_model_entries == [("musicnn", None)]
    for bad, says in (("ann", "not a model name"), ("Mine", "not a model name"), ("x=nomodule", "module:attribute"),
                      ("musicnn,musicnn", "listed twice")):  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            Settings.from_env({"MUSICINDEX_EMBEDDING_MODELS": bad})


def test_the_registry_follows_the_setting_and_run_time_registrations(settings):
    set_settings(Settings.from_env({"MUSICINDEX_EMBEDDING_MODELS": "musicnn"}))
    assert registry.names() == ("musicnn",) and registry.space_names() == ("features", "ann", "cnn", "lda", "musicnn")
    registry.register(Tiny())
    assert registry.names() == ("musicnn", "tiny")
    registry.register(Tiny(), first=True)
    assert registry.names() == ("tiny", "musicnn") and registry.default().name == "tiny"
    vectors, tags = registry.get("tiny").embed([np.ones(100, np.float32)])
    assert vectors.shape == (1, 2) and tags.shape == (1, 1)
    with pytest.raises(InvalidArgumentError, match="the index uses: tiny, musicnn"):
        registry.get("nope")
    registry.unregister("tiny")
    set_settings(Settings.from_env({"MUSICINDEX_EMBEDDING_MODELS": "mine=musicindex.vocab:MUSICNN"}))
    with pytest.raises(ConfigError, match="is not an EmbeddingModel named 'mine'"):
        registry.models()
    set_settings(Settings.from_env({"MUSICINDEX_EMBEDDING_MODELS": "other"}))
    with pytest.raises(ConfigError, match="no built-in embedding model 'other'"):
        registry.models()
    bad = Tiny()
    bad.name = "features"
    with pytest.raises(InvalidArgumentError, match="cannot name an embedding model"):
        registry.register(bad)


def _stage(name: str, version: int = 1, *, reads: tuple[str, ...] = (), required: bool = True) -> Stage:
    s = Stage()
    s.name, s.version, s.needs, s.required = name, version, Needs(audio=(Audio(22050),), stages=reads), required
    return s


def test_the_plan_runs_outdated_stages_with_what_they_read():
    a, b, c = _stage("a"), _stage("b", 2), _stage("c", reads=("a",))
    emb = _stage("embedding.x", 3, required=False)
    line = [a, b, c, emb]
    assert stages.plan(line, None) == line  # a new or changed content: everything
    assert stages.plan(line, {"a": 1, "b": 2, "c": 1, "embedding.x": 3}) == []
    assert stages.plan(line, {"a": 1, "b": 1, "c": 1, "embedding.x": 3}) == [b]
    assert stages.plan(line, {"a": 1, "b": 2, "c": 0, "embedding.x": 3}) == [a, c]  # c reads a: both, in order
    assert stages.plan(line, {"a": 1, "b": 2, "c": 1}) == [emb]  # in a worker, a missing one runs too
    # what `register` queues: a stale record, or a missing one of a required stage (not of an embedding model)
    assert not stages.outdated(line, {"a": 1, "b": 2, "c": 1})
    assert stages.outdated(line, {"a": 1, "b": 2, "c": 1, "embedding.x": 2})
    assert stages.outdated(line, {"b": 2, "c": 1})


def test_the_declared_stages_are_the_list_with_one_per_embedding_model(settings):
    set_settings(Settings.from_env({"MUSICINDEX_EMBEDDING_MODELS": "musicnn"}))
    registry.register(Tiny())
    names = [s.name for s in stages.declared()]
    assert names == [
        "tags",
        "decode",
        "features",
        "spectrogram",
        "embedding.musicnn",
        "embedding.tiny",
        "descriptors",
        "fingerprint",
    ]
    # a worker binds the models it can run
    assert [s.name for s in stages.pipeline()] == [*names[:4], "descriptors", "fingerprint"]
    sql, params = stages.recorded_outdated_sql("t")
    assert sql.count("t.stage_versions ->>") == len(names) and params["stage_5"] == "embedding.tiny"
