"""The import graph of the library and the workers has no cycles, and the layers lean the way the README's
"Architecture" section says: every rule stated there is checked here."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("musicindex", "workers")


@functools.cache
def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Project modules imported anywhere in ``tree``: function bodies and ``if TYPE_CHECKING:`` blocks too (a
    type-only import is an edge of the graph like any other)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        raw = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
        targets = set()
        for imp in raw:
            # `from pkg import sub` names the submodule; `from mod import func` names the module
            if imp in modules:
                targets.add(imp)
            elif imp.rsplit(".", 1)[0] in modules and imp not in modules:
                continue  # a name inside a module: the module itself was added from the same statement
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_import_graph_has_no_cycles():
    assert _cycles(_graph()) == []


def _deps_of(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    return {m: d for m, d in graph.items() if m == package or m.startswith(package + ".")}


def _breaking(graph: dict[str, set[str]], package: str, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    """Modules of ``package`` that import a module of one of the ``forbidden`` packages, and what they import."""
    out = {}
    for m, deps in _deps_of(graph, package).items():
        bad = {d for d in deps if any(d == f or d.startswith(f + ".") for f in forbidden)}
        if bad:
            out[m] = bad
    return out


def test_the_library_never_imports_the_workers():
    graph = _graph()
    # the `worker` and `scheduler` commands start the worker package: the CLI is an entry point
    lib = {m: deps for m, deps in graph.items() if m.startswith("musicindex") and not m.startswith("musicindex.cli")}
    assert not {m: d for m, d in lib.items() if any(x.startswith("workers") for x in d)}


def test_audio_never_imports_the_database_and_the_database_never_audio():
    graph = _graph()
    above = ("musicindex.db", "musicindex.ingest", "musicindex.ml", "musicindex.query", "musicindex.web",
             "musicindex.cli", "musicindex.servers", "musicindex.dispatch", "musicindex.index")  # fmt: skip
    assert _breaking(graph, "musicindex.audio", above) == {}
    below = ("musicindex.audio", "musicindex.ingest", "musicindex.ml", "musicindex.query", "musicindex.web",
             "musicindex.cli")  # fmt: skip
    assert _breaking(graph, "musicindex.db", below) == {}


def test_the_query_layer_reads_only_and_never_imports_the_models():
    forbidden = ("musicindex.ml", "musicindex.ingest", "musicindex.dispatch", "musicindex.web", "musicindex.cli",
                 "musicindex.servers", "musicindex.pretrained", "musicindex.index")  # fmt: skip
    # the names of the embedding models (the spaces) come from their registry, which loads no model
    registry = {"musicindex.pretrained", "musicindex.pretrained.registry"}
    breaking = _breaking(_graph(), "musicindex.query", forbidden)
    assert {m: bad - registry for m, bad in breaking.items() if bad - registry} == {}


def test_the_registry_of_embedding_models_loads_no_model():
    """The query layer reads the registry: importing it imports no network, no runtime, not even numpy."""
    code = (
        "import sys; import musicindex.pretrained.registry as r; r.names(); r.space_names(); "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'tensorflow', 'musicindex.pretrained.musicnn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_embedding_models_and_analysis_stages_stay_in_their_layers():
    """The embedding models (``pretrained/``) know no database and no layer above them; the analysis stages
    (``ingest/stages/``) never import the query layer or an entry point."""
    graph = _graph()
    above = ("musicindex.db", "musicindex.ingest", "musicindex.ml", "musicindex.query", "musicindex.web",
             "musicindex.cli", "musicindex.servers", "musicindex.dispatch", "musicindex.index",
             "musicindex.users")  # fmt: skip
    assert _breaking(graph, "musicindex.pretrained", above) == {}
    entry = ("musicindex.web", "musicindex.cli", "musicindex.query", "musicindex.index", "musicindex.ml",
             "musicindex.sample", "musicindex.dispatch")  # fmt: skip
    assert _breaking(graph, "musicindex.ingest.stages", entry) == {}


def test_models_and_ingestion_stay_below_the_entry_points():
    graph = _graph()
    entry = ("musicindex.web", "musicindex.cli", "musicindex.index", "musicindex.sample")
    for package in ("musicindex.ml", "musicindex.ingest", "musicindex.db", "musicindex.pretrained"):
        assert _breaking(graph, package, entry) == {}, package
    assert _breaking(graph, "musicindex.ingest", ("musicindex.ml",)) == {}  # the models come after ingestion


def test_the_descriptors_are_pure_audio_functions():
    """``musicindex.audio.descriptors`` (tempo, key, loudness, mood) reads arrays and returns values: it imports
    nothing of the project but the errors, the domain words and the rest of ``musicindex.audio``."""
    allowed = ("musicindex.errors", "musicindex.vocab", "musicindex.audio")
    graph = _graph()
    bad = {m: {d for d in deps if d.startswith("musicindex") and not d.startswith(allowed)}
           for m, deps in _deps_of(graph, "musicindex.audio.descriptors").items()}  # fmt: skip
    assert {m: d for m, d in bad.items() if d} == {}


def test_media_stays_below_the_web_layer():
    """``musicindex.media`` opens and serves the library's files for every router (JSON API, Subsonic): it never
    imports a router's package."""
    assert _breaking(_graph(), "musicindex.media", ("musicindex.web", "musicindex.cli")) == {}


def test_users_and_the_subsonic_api_stay_in_their_layers():
    """``musicindex.users`` (accounts, a listener's writes) sits below the entry points and beside the query layer,
    which never imports it (the catalog only reads); the Subsonic routers reach the library through the index."""
    graph = _graph()
    below = ("musicindex.web", "musicindex.cli", "musicindex.index", "musicindex.ml", "musicindex.ingest",
             "musicindex.servers", "musicindex.sample")  # fmt: skip
    assert _breaking(graph, "musicindex.users", below) == {}
    assert _breaking(graph, "musicindex.query", ("musicindex.users",)) == {}
    assert _breaking(graph, "musicindex.web.subsonic", ("musicindex.ml", "musicindex.ingest", "musicindex.db")) == {}


def test_only_the_transcoder_loads_ffmpeg():
    """FFmpeg's libraries (PyAV, ``av``) are loaded only by ``musicindex/media/transcode.py``: nothing else in the
    library (ingest decodes with libsndfile/audioread) pays for them or depends on them."""
    offenders = []
    for name, path in _modules().items():
        if name == "musicindex.media.transcode":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(i == "av" or i.startswith("av.") for i in imported):
                offenders.append(f"{name} imports {imported}")
    assert offenders == []


def test_every_proof_of_a_password_or_key_goes_through_the_users_service():
    """Issue 28: one attempt limiter for every way to prove who one is. It lives in the users service
    (``UserService.authenticate_*``), so nothing above it may reach the accounts or the limiter's tables directly:
    outside ``musicindex.users`` only the service itself (the package), the request's address (``limiter``) and the
    session store's constants (``sessions``) are imported."""
    graph = _graph()
    allowed = {"musicindex.users", "musicindex.users.limiter", "musicindex.users.sessions", "musicindex.users.state"}
    reaching = {
        (m, d) for m, deps in graph.items() if not m.startswith("musicindex.users")
        for d in deps if d.startswith("musicindex.users") and d not in allowed
    }  # fmt: skip
    assert reaching == set()


def test_only_dispatch_talks_to_celery():
    """Only ``musicindex/dispatch.py`` (and the worker package) imports Celery or sends a task."""
    offenders = []
    for name, path in _modules().items():
        if name == "musicindex.dispatch" or name.startswith("workers"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            imported = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if any(i == "celery" or i.startswith(("celery.", "kombu")) for i in imported):
                offenders.append(f"{name} imports {imported}")
            if isinstance(node, ast.Attribute) and node.attr in ("send_task", "apply_async", "delay"):
                offenders.append(f"{name} calls .{node.attr}")
    assert offenders == []


def test_servers_are_started_only_by_entry_points():
    """Connecting or importing starts nothing: only the entry points import the embedded servers."""
    allowed = ("musicindex.servers", "musicindex.cli", "musicindex.index")
    users = {m for m, deps in _graph().items() if any(d == "musicindex.servers" or d.startswith("musicindex.servers.")
                                                      for d in deps)}  # fmt: skip
    assert {m for m in users if not m.startswith(allowed)} == set()


def test_the_similarity_engine_is_the_only_caller_of_vector_search():
    """``query/search.py`` holds the vector search (and ``query/spaces.py`` the distance expression it orders by):
    only the similarity engine (``query/engine.py``) imports it, so every "sounds like" answer goes through one
    module; no other module spells pgvector's distance operators."""
    graph = _graph()
    users = {m for m, deps in graph.items() if "musicindex.query.search" in deps}
    assert users == {"musicindex.query.engine"}
    spelled = set()
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"<=>|<->|<#>", node.value):
                spelled.add(name)
    assert spelled <= {"musicindex.query.spaces", "musicindex.query.search"}, spelled


def test_the_demo_and_the_cli_lean_one_way():
    """The CLI (the ``demo`` command included) uses the sample library; ``musicindex.sample`` never imports the
    CLI (nor the index: it only makes files)."""
    graph = _graph()
    assert _breaking(graph, "musicindex.sample", ("musicindex.cli", "musicindex.index", "musicindex.web")) == {}


def test_the_web_routes_lean_on_presenters_and_dependencies_not_on_each_other():
    """One router per resource (``web/routes``): a route module never imports another one (pages do not import the
    JSON API to shape data: both use ``web/presenters``), and presenters never import routes."""
    graph = _graph()
    routes = {m for m in graph if m.startswith("musicindex.web.routes.")}
    assert routes, "no route modules found"
    for m in routes:
        assert not {d for d in graph[m] if d in routes}, m
    assert _breaking(graph, "musicindex.web.presenters", ("musicindex.web.routes",)) == {}


def _writes(path: Path, table: str, orm_class: str, column: str) -> list[str]:
    """Places in one file that change ``table.column``: ``update(OrmClass).values(column=...)``, ``OrmClass(...,
    column=...)`` and SQL text ``UPDATE table ... SET ... column = ...``."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    update_sql = re.compile(rf"UPDATE\s+{table}\b.*?\bSET\b(.*?)(?:\bFROM\b|\bWHERE\b|\bRETURNING\b|$)", re.I | re.S)
    assigns = re.compile(rf"(?<![\w.]){column}\s*=")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f, sets = node.func, any(k.arg == column for k in node.keywords)
            if sets and isinstance(f, ast.Name) and f.id == orm_class:
                found.add(f"{path.name}:{node.lineno} {orm_class}({column}=...)")
            if sets and isinstance(f, ast.Attribute) and f.attr == "values" and orm_class in ast.unparse(f.value):
                found.add(f"{path.name}:{node.lineno} update({orm_class}).values({column}=...)")
        text = None
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        if text and any(assigns.search(m.group(1)) for m in update_sql.finditer(text)):
            found.add(f"{path.name}:{node.lineno} UPDATE {table} SET {column}")
    return sorted(found)


def test_one_writer_of_track_status_and_of_model_state():
    """``ingest/lifecycle.py`` is the only writer of ``tracks.status``, ``ml/registry.py`` of
    ``model_versions.state`` (training runs' own ``status`` column is ``ml/runs.py``'s)."""
    track, model = [], []
    for name, path in _modules().items():
        if name != "musicindex.ingest.lifecycle":
            track += _writes(path, "tracks", "Track", "status")
        if name != "musicindex.ml.registry":
            model += _writes(path, "model_versions", "ModelVersion", "state")
    assert (track, model) == ([], [])


def test_the_write_detector_finds_planted_writes(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        "s.execute(update(Track).where(Track.id == 1).values(status='failed'))\n"
        "v = ModelVersion(kind='knn', state='active')\n"
        "s.execute(text(f\"UPDATE tracks SET error = NULL, status = '{FAILED}' WHERE id = 1\"))\n"
    )
    assert len(_writes(planted, "tracks", "Track", "status")) == 2
    assert len(_writes(planted, "model_versions", "ModelVersion", "state")) == 1


def test_cycle_detector_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_duplicates_stay_below_the_entry_points_and_audio_never_imports_them():
    """``musicindex.dupes`` (the fingerprint index, the same-recording and same-song rules) joins the audio
    fingerprint and the database like ingestion does: it never imports an entry point, the models, ingestion or the
    servers, and ``audio`` never imports it."""
    graph = _graph()
    forbidden = ("musicindex.web", "musicindex.cli", "musicindex.index", "musicindex.sample", "musicindex.ml",
                 "musicindex.ingest", "musicindex.servers", "musicindex.dispatch", "musicindex.query")  # fmt: skip
    assert _breaking(graph, "musicindex.dupes", forbidden) == {}
    assert _breaking(graph, "musicindex.audio", ("musicindex.dupes",)) == {}
