"""The embedding models: what a pretrained network is to musicindex, and the registry of those the index uses.

An :class:`EmbeddingModel` turns audio into one vector per track (and, when it has a tag vocabulary, one probability
per tag). Each model of the registry is, under its :attr:`~EmbeddingModel.name`:

* a similarity space (``similar(space=name)``; the first model that can answer for a track is the default space);
* a kind of ``model_versions`` row, one per extractor version (``ml.pretrained``: a new extractor version is a
  candidate, backfilled by ``musicindex embed`` and promoted once it covers the library);
* an analysis stage ``embedding.<name>`` of the ingest pass (``ingest.stages.embedding``), which asks the shared
  decode for the audio the model reads (:attr:`~EmbeddingModel.sample_rate`, :attr:`~EmbeddingModel.span`);
* per-track tag probabilities (``track_tags``) when :attr:`~EmbeddingModel.tags` is not empty: the first such model
  answers tag search, tag filters and the tags of "why".

The registry lists the models of ``MUSICINDEX_EMBEDDING_MODELS`` (best first; default ``musicnn``): a built-in name
(:data:`BUILTIN`) or ``name=module:attribute`` naming an ``EmbeddingModel`` of one's own, then the models
:func:`register`\\ ed in this process (tests, notebooks). Adding a model is one module holding an
``EmbeddingModel`` plus one entry here or in the setting: nothing else names it.

Importing this module imports no model (and neither numpy nor a runtime): entries are resolved on first use, so the
read-only query layer may ask for :func:`names` and :func:`space_names`.
"""

from __future__ import annotations

import importlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from musicindex.errors import ConfigError, InvalidArgumentError
from musicindex.vocab import MODEL_NAME_PATTERN, MUSICNN, SPAN_WINDOW, SPANS, TRAINED_KINDS, TRAINED_SPACES

if TYPE_CHECKING:
    import numpy as np


class EmbeddingModel(ABC):
    """A pretrained network as the index uses it. Subclasses set the attributes and implement
    :meth:`embed_inputs`; :meth:`inputs` (per track, in the ingest pass) and :meth:`warm` are optional.

    The ingest pass calls :meth:`inputs` on each track's audio while the decode is in hand, then
    :meth:`embed_inputs` once over the inputs of several tracks (one batched network run); the backfill and a query
    by example call :meth:`embed` on signals.
    """

    name: str
    """The model's kind, space and stage name (:data:`~musicindex.vocab.MODEL_NAME_PATTERN`)."""
    sample_rate: int
    """The rate (Hz) of the mono signal the model reads."""
    span: str = SPAN_WINDOW
    """Which audio: ``vocab.SPAN_WINDOW`` (the analysis window) or ``vocab.SPAN_TRACK`` (the whole track, e.g.
    for a summary over several windows)."""
    dimension: int
    """Length of the vectors (the space's dimension)."""
    tags: tuple[str, ...] = ()
    """The tag vocabulary, in the order of the probabilities :meth:`embed_inputs` returns (empty: no tags)."""
    extractor_version: int = 1
    """Version of the stored values: bump it whenever the vectors or tags would change (a new model version is
    made, backfilled and promoted; ``ingest --reanalyse-outdated`` re-runs the stage)."""

    def params(self) -> dict[str, Any]:
        """What identifies this extractor (stored as its versions' ``params``; ``model`` and ``extractor_version``
        decide whether a stored version is this code's)."""
        return {
            "model": self.name,
            "extractor_version": self.extractor_version,
            "sample_rate": self.sample_rate,
            "span": self.span,
        }

    @property
    def weights_sha256(self) -> str | None:
        """sha256 of the weights (stored with the version), if the model has a file of them."""
        return None

    def warm(self, threads: int = 1) -> None:  # noqa: B027 - optional hook
        """Load the weights once in this process (workers call it at start); ``threads``: its thread pool."""

    def inputs(self, y: np.ndarray) -> Any:
        """What the network reads of one track's mono signal at :attr:`sample_rate` (e.g. log-mel patches); by
        default the signal itself. Raises :class:`~musicindex.errors.AudioError` for a signal it cannot use."""
        return y

    @abstractmethod
    def embed_inputs(self, batch: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors ``(n, dimension)`` and tag probabilities ``(n, len(tags))`` of ``n`` tracks' :meth:`inputs`."""

    def embed(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and tag probabilities of mono signals at :attr:`sample_rate`."""
        return self.embed_inputs([self.inputs(y) for y in signals])


BUILTIN: Final[dict[str, str]] = {MUSICNN: "musicindex.pretrained.musicnn_embedder:MSD_MUSICNN"}
"""The models that ship with musicindex: name -> ``module:attribute``. The models issue adds the other networks
of the musicnn wheel here (e.g. ``"musicnn_mtt": "musicindex.pretrained.musicnn_embedder:MTT_MUSICNN"``)."""

_registered: dict[str, tuple[EmbeddingModel, bool]] = {}
_loaded: dict[str, EmbeddingModel] = {}
_lock = threading.Lock()


def check_name(name: Any) -> str:
    """A valid model name (InvalidArgumentError saying what a name looks like)."""
    if not isinstance(name, str) or not re.fullmatch(MODEL_NAME_PATTERN, name) or name in (*TRAINED_KINDS,
                                                                                          *TRAINED_SPACES):  # fmt: skip
        raise InvalidArgumentError(
            f"{name!r} cannot name an embedding model: lower-case letters, digits and _ (at most 16, starting with a "
            f"letter), and none of {', '.join(dict.fromkeys((*TRAINED_SPACES, *TRAINED_KINDS)))}"
        )
    return name


def _configured() -> list[tuple[str, str | None]]:
    from musicindex.config import get_settings

    return get_settings().embedding_model_entries


def names() -> tuple[str, ...]:
    """The embedding models in order of preference (the setting's, then those registered here; ``register(...,
    first=True)`` goes before the setting's). Imports nothing."""
    first = [n for n, (_, f) in _registered.items() if f]
    configured = [n for n, _ in _configured() if n not in _registered]
    last = [n for n, (_, f) in _registered.items() if not f]
    return tuple(dict.fromkeys((*first, *configured, *last)))


def space_names() -> tuple[str, ...]:
    """Every similarity space: the trained ones (``features``, ``ann``, ``cnn``), then one per embedding model."""
    return (*TRAINED_SPACES, *names())


def _resolve(name: str, target: str | None) -> EmbeddingModel:
    if name in _registered:
        return _registered[name][0]
    spec = target or BUILTIN.get(name)
    if spec is None:
        raise ConfigError(
            f"MUSICINDEX_EMBEDDING_MODELS: no built-in embedding model {name!r} (built in: {', '.join(BUILTIN)}); "
            "name one of your own as name=module:attribute"
        )
    key = f"{name}={spec}"
    with _lock:
        if key not in _loaded:
            module, _, attribute = spec.partition(":")
            try:
                model = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"MUSICINDEX_EMBEDDING_MODELS: cannot load {key} ({exc})") from exc
            if not isinstance(model, EmbeddingModel) or model.name != name:
                raise ConfigError(
                    f"MUSICINDEX_EMBEDDING_MODELS: {spec} is not an EmbeddingModel named {name!r} "
                    f"(got {type(model).__name__} {getattr(model, 'name', None)!r})"
                )
            _loaded[key] = model
        return _loaded[key]


def get(name: str) -> EmbeddingModel:
    """The embedding model ``name`` (InvalidArgumentError listing the known ones)."""
    targets = dict(_configured())
    if name in _registered or name in targets:
        return _resolve(name, targets.get(name))
    known = ", ".join(names()) or "none"
    raise InvalidArgumentError(f"no embedding model {name!r}; the index uses: {known} (MUSICINDEX_EMBEDDING_MODELS)")


def models() -> tuple[EmbeddingModel, ...]:
    """The embedding models, in order of preference (each imported on first use)."""
    return tuple(get(n) for n in names())


def default() -> EmbeddingModel | None:
    """The preferred embedding model (None when the index uses none)."""
    found = names()
    return get(found[0]) if found else None


def register(model: EmbeddingModel, *, first: bool = False) -> None:
    """Use ``model`` in this process (beside the setting's models; ``first``: before them). Other processes (the
    workers) learn of a model through ``MUSICINDEX_EMBEDDING_MODELS``."""
    if not isinstance(model, EmbeddingModel):
        raise InvalidArgumentError(f"expected an EmbeddingModel, got {type(model).__name__}")
    check_name(model.name)
    if model.span not in SPANS:
        raise InvalidArgumentError(f"model {model.name!r}: span must be one of {', '.join(SPANS)}, got {model.span!r}")
    if int(model.sample_rate) <= 0 or int(model.dimension) <= 0:
        raise InvalidArgumentError(f"model {model.name!r}: sample_rate and dimension must be positive")
    _registered[model.name] = (model, first)


def unregister(name: str) -> None:
    """Forget a model :func:`register` added (the setting's stay)."""
    _registered.pop(name, None)


__all__ = [
    "BUILTIN",
    "SPANS",
    "EmbeddingModel",
    "check_name",
    "default",
    "get",
    "models",
    "names",
    "register",
    "space_names",
    "unregister",
]
