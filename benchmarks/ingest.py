"""Ingestion end to end on real full-length music, with a per-stage breakdown, against a plain librosa script.

    python benchmarks/ingest.py [--files DIR] [--n 72] [--mp3 36] [--concurrency N] [--reference N]

What it does, in one run:

1. Picks ``--n`` real tracks of 2-7 min (44.1 kHz stereo) from ``--files`` (default: the
   development set of benchmarks/devset.py, ``~/.cache/musicindex-devset/set/audio``;
   any folder of music works) in a deterministic order, and turns ``--mp3`` of them into
   MP3 (transcoded once with libsndfile, cached under ``~/.cache/musicindex-bench``), so
   both decoders are measured. The tracks are hard-linked into a fresh library folder.
2. Starts one real worker (``--concurrency`` processes, default one per core) whose
   processes carry stage timers (a ``sitecustomize`` hook of this script wraps the audio
   functions, counts SQL statements, commits and connections, and records each job's start
   and end), waits until its processes are warm, then runs ``MusicIndex.ingest(wait=True)``
   -- what ``musicindex ingest --wait`` does -- and times it from the first ``stat`` of
   the scan to the return.
3. Prints tracks/s end to end and where the time went: scan, register and queue (in this
   process), then per worker process hash, decode, features, spectrogram, tags, database
   (SQL statements and commits), other work inside jobs, and idle (a process without a
   job while the batch ran); and the round trips per track.
4. Runs the plain per-feature librosa script (``librosa.load`` of the same 30 s window and
   one librosa call per feature, ``musicindex.audio.features.reference_features``) over
   the same files in a subprocess, one process as a plain script is, and prints the ratio.

Runs on the embedded servers under a temporary MUSICINDEX_HOME unless URLs are set. The
figures of issue 16: >= 8 tracks/s end to end on 2 cores and >= 10x the plain script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEVSET_AUDIO = Path("~/.cache/musicindex-devset/set/audio").expanduser()
MP3_CACHE = Path("~/.cache/musicindex-bench/mp3").expanduser()
STAGES = ("hash", "decode", "features", "spectrogram", "tags", "database")
_ENV_STATS = "MUSICINDEX_BENCH_STAGE_DIR"


# --------------------------------------------------------------------------- worker-side timers
def install_stage_timers(out_dir: str) -> None:
    """Wrap the audio functions and hook SQLAlchemy and Celery in this (worker) process.

    Each pool process writes its totals to ``out_dir/<pid>.json`` after every job.
    """
    import threading
    import time as _time

    totals: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    counts = {"statements": 0, "commits": 0, "connects": 0, "checkouts": 0, "jobs": 0, "files": 0}
    jobs: list[tuple[float, float, int]] = []
    local = threading.local()

    in_job = {"on": False}  # only time spent inside ingest jobs counts (not the processes' warm-up)

    def timed(stage: str, fn):
        def wrapper(*args, **kwargs):
            if getattr(local, "depth", 0) or not in_job["on"]:  # nested: counted by the outer call
                return fn(*args, **kwargs)
            local.depth = 1
            t = _time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[stage] += _time.perf_counter() - t
                local.depth = 0

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    from musicindex import audio
    from musicindex.audio import analysis

    for name, stage in (("file_sha256", "hash"), ("read_window", "decode"), ("read_tags", "tags")):
        if hasattr(audio, name):
            setattr(audio, name, timed(stage, getattr(audio, name)))
    for name, stage in (
        ("compute_spectra", "features"),
        ("features_from_spectra", "features"),
        ("logmel_from_power", "spectrogram"),
        ("compute_logmel", "spectrogram"),
    ):
        if hasattr(analysis, name):
            setattr(analysis, name, timed(stage, getattr(analysis, name)))
    if hasattr(audio, "encode_spectrogram"):
        audio.encode_spectrogram = timed("spectrogram", audio.encode_spectrogram)
    try:  # newer code may hash through its own helper
        from musicindex.ingest import process

        for name, stage in (("content_hash", "hash"), ("quick_hash", "hash")):
            if hasattr(process, name):
                setattr(process, name, timed(stage, getattr(process, name)))
    except ImportError:
        pass

    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.pool import Pool

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):
        if not in_job["on"]:
            return
        conn.info["_bench_t"] = _time.perf_counter()
        counts["statements"] += 1

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):
        t = conn.info.pop("_bench_t", None)
        if t is not None:
            totals["database"] += _time.perf_counter() - t

    @event.listens_for(Pool, "connect")
    def _connect(dbapi_conn, record):
        counts["connects"] += in_job["on"]

    @event.listens_for(Pool, "checkout")
    def _checkout(dbapi_conn, record, proxy):
        counts["checkouts"] += in_job["on"]

    original_commit = Connection._commit_impl

    def _commit_impl(self):
        if not in_job["on"]:
            return original_commit(self)
        counts["commits"] += 1
        t = _time.perf_counter()
        try:
            return original_commit(self)
        finally:
            totals["database"] += _time.perf_counter() - t

    Connection._commit_impl = _commit_impl  # type: ignore[method-assign]

    from celery.signals import task_postrun, task_prerun

    started: dict[str, float] = {}

    @task_prerun.connect(weak=False)
    def _prerun(task_id=None, task=None, args=None, kwargs=None, **_):
        started[task_id] = _time.time()
        in_job["on"] = str(getattr(task, "name", "")).endswith("ingest_files")

    @task_postrun.connect(weak=False)
    def _postrun(task_id=None, task=None, args=None, kwargs=None, **_):
        t0 = started.pop(task_id, None)
        in_job["on"] = False
        if t0 is None or not str(getattr(task, "name", "")).endswith("ingest_files"):
            return
        n = len(args[0]) if args and isinstance(args[0], list) else 0
        jobs.append((t0, _time.time(), n))
        counts["jobs"] += 1
        counts["files"] += n
        out = Path(out_dir) / f"{os.getpid()}.json"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"totals": totals, "counts": counts, "jobs": jobs}))
        tmp.replace(out)


def install_cli_timers(out_dir: str) -> None:
    """In the `musicindex ingest` process: time registration (scan included), queueing and waiting."""
    import atexit
    import time as _time

    marks: dict[str, float] = {"start": _time.time(), "register": 0.0, "scan": 0.0, "queue": 0.0, "wait": 0.0}
    import musicindex.ingest.service as service_mod
    from musicindex.dispatch import Dispatcher

    def timed(key: str, fn, first: str | None = None, after=None):
        def wrapper(*args, **kwargs):
            if first and first not in marks:
                marks[first] = _time.time()
            t = _time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                marks[key] += _time.perf_counter() - t
            if after is not None:
                after(result)
            return result

        return wrapper

    def scan_time(result) -> None:
        timings = getattr(result, "timings", None) or {}
        marks["scan"] += float(timings.get("scan", 0.0))

    service_mod.register = timed("register", service_mod.register, "register_start", scan_time)  # type: ignore
    if hasattr(service_mod.IngestService, "send"):  # the jobs of a batch are sent together
        service_mod.IngestService.send = timed("queue", service_mod.IngestService.send)  # type: ignore
    else:
        Dispatcher.send = timed("queue", Dispatcher.send)  # type: ignore[method-assign]
    service_mod.IngestService.wait_for = timed("wait", service_mod.IngestService.wait_for)  # type: ignore
    try:
        import musicindex.ingest.register as register_mod

        if hasattr(register_mod, "scan"):
            register_mod.scan = timed("scan", register_mod.scan)  # type: ignore[assignment]
    except ImportError:
        pass

    def write() -> None:
        marks["end"] = _time.time()
        (Path(out_dir) / "cli.json").write_text(json.dumps(marks))

    atexit.register(write)


def _write_sitecustomize(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve()
    (folder / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"if os.environ.get({_ENV_STATS!r}) and sys.argv[1:2] in (['worker'], ['ingest']):\n"
        f"    sys.path.insert(0, {str(here.parent)!r})\n"
        "    import ingest as _bench\n"
        "    hook = _bench.install_stage_timers if sys.argv[1] == 'worker' else _bench.install_cli_timers\n"
        f"    hook(os.environ[{_ENV_STATS!r}])\n"
    )


# --------------------------------------------------------------------------- the library
def pick_tracks(folder: Path, n: int) -> list[Path]:
    """``n`` full-length tracks (2-7 min, 44.1 kHz stereo) of ``folder``, in a deterministic mixed order."""
    import soundfile as sf

    found = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in {".ogg", ".mp3", ".flac", ".wav", ".oga"}:
            continue
        try:
            info = sf.info(str(p))
        except (RuntimeError, sf.LibsndfileError):
            continue
        if info.samplerate == 44100 and info.channels == 2 and 120 <= info.frames / info.samplerate <= 420:
            found.append(p)
    found.sort(key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    return found[:n]


def as_mp3(src: Path) -> Path:
    """An MP3 transcode of ``src`` (libsndfile, cached)."""
    import soundfile as sf

    MP3_CACHE.mkdir(parents=True, exist_ok=True)
    out = MP3_CACHE / (hashlib.sha256(str(src).encode()).hexdigest()[:12] + "-" + src.stem + ".mp3")
    if not out.exists():
        data, sr = sf.read(str(src), dtype="float32")
        tmp = out.with_suffix(".part")
        sf.write(str(tmp), data, sr, format="MP3")
        tmp.replace(out)
    return out


def build_library(files: list[Path], n_mp3: int, lib: Path) -> list[Path]:
    lib.mkdir(parents=True)
    out = []
    for i, original in enumerate(files):
        src = as_mp3(original) if i < n_mp3 else original
        dst = lib / f"{i:03d}-{src.name}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        out.append(dst)
    return out


# --------------------------------------------------------------------------- the plain script
REFERENCE_SCRIPT = """
import sys, time, json
from musicindex.audio.reference import reference_features
paths = sys.argv[1:]
reference_features(paths[0])  # imports and numba compilation, not timed
t = time.perf_counter(); c = time.process_time()
for p in paths:
    reference_features(p)
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "n": len(paths)}))
"""


def run_reference(paths: list[Path]) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def wait_warm(pids: list[int], quiet: float = 1.5, timeout: float = 120) -> None:
    """Until the worker's pool processes stop using CPU (their warm-up is done)."""
    import psutil

    procs = [psutil.Process(p) for p in pids]
    last, still_since = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
        if last is not None and cpu - last > 0.05:
            still_since = time.monotonic()
        last = cpu
        if time.monotonic() - still_since >= quiet:
            return
        time.sleep(0.25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=Path, default=DEVSET_AUDIO, help="folder of real music")
    ap.add_argument("--n", type=int, default=72, help="tracks to ingest")
    ap.add_argument("--mp3", type=int, default=None, help="how many of them as MP3 (default: half)")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reference", type=int, default=None, help="tracks for the plain script (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    if not args.files.is_dir():
        sys.exit(
            f"no music folder at {args.files}: build the development set (python benchmarks/devset.py) "
            "or pass --files DIR (real full-length tracks)"
        )
    from benchmarks._common import bench_environment

    with bench_environment("mi-bench-ingest", keep=args.keep) as (settings, db, tmp):
        run(args, settings, db, tmp)


def run(args, settings, db, tmp: Path) -> None:
    import psutil
    from sqlalchemy import text

    from musicindex.localworker import LocalWorker, settings_env

    picked = pick_tracks(args.files, args.n)
    n_mp3 = len(picked) // 2 if args.mp3 is None else min(args.mp3, len(picked))
    t = time.monotonic()
    files = build_library(picked, n_mp3, tmp / "library")
    n = len(files)
    print(
        f"library: {n} real tracks from {args.files} ({n_mp3} as MP3, {n - n_mp3} as shipped), "
        f"{sum(f.stat().st_size for f in files) / 2**20:.0f} MiB (prepared in {time.monotonic() - t:.1f} s)"
    )

    stage_dir = tmp / "stages"
    stage_dir.mkdir()
    site_dir = tmp / "site"
    _write_sitecustomize(site_dir)
    os.environ[_ENV_STATS] = str(stage_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site_dir), os.environ.get("PYTHONPATH")]))
    procs = args.concurrency
    worker = LocalWorker(settings, "ingest", procs, f"bench-{uuid.uuid4().hex[:6]}", log_path=tmp / "worker.log")
    try:
        worker.wait_ready()
        wait_warm(worker.children())
        load_before = os.getloadavg()
        cpu0 = psutil.cpu_times()
        t0_wall = time.time()
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "musicindex", "ingest", str(tmp / "library"), "--wait"],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **settings_env(settings)},
        )
        wall = time.perf_counter() - t0
        cpu1 = psutil.cpu_times()
        load_after = os.getloadavg()
        time.sleep(0.5)  # the last job's stats file
    finally:
        worker.stop()
    if res.returncode != 0:
        sys.exit(f"musicindex ingest failed ({res.returncode}):\n{res.stderr[-3000:]}")
    with db.engine.connect() as c:
        final = dict(c.execute(text("SELECT status, count(*) FROM tracks GROUP BY status")).all())
    ok = final == {"indexed": n}

    stats = [json.loads(p.read_text()) for p in stage_dir.glob("*.json") if p.name != "cli.json"]
    cli = json.loads((stage_dir / "cli.json").read_text())
    busy = {k: sum(s["totals"][k] for s in stats) for k in STAGES}
    counts = {k: sum(s["counts"][k] for s in stats) for k in ("statements", "commits", "connects", "checkouts", "jobs")}
    jobs = sorted(j for s in stats for j in s["jobs"])
    job_time = sum(e - s for s, e, _ in jobs)
    last_end = max((e for _, e, _ in jobs), default=t0_wall)
    first_start = min((s for s, _, _ in jobs), default=t0_wall)
    idle = procs * wall - job_time
    other = job_time - sum(busy.values())
    machine_cpu = 100 * (1 - (cpu1.idle - cpu0.idle) / max(sum(cpu1) - sum(cpu0), 1e-9))
    startup = cli.get("register_start", cli["start"]) - t0_wall
    scan_s = cli["scan"]

    print(
        f"\nload average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} "
        f"{load_after[1]:.2f} ({os.cpu_count()} cores); machine CPU while ingesting {machine_cpu:.0f} %"
    )
    print(f"`musicindex ingest --wait` of {n} real tracks, one worker with {procs} processes")
    print(
        f"  end to end                 {wall:8.2f} s   {n / wall:6.2f} tracks/s   RESULT {'ok' if ok else 'MISMATCH'}"
    )
    sizes = ", ".join(str(k) for *_, k in jobs)
    print(f"  jobs                       {counts['jobs']:8d}     (sizes {sizes})")
    print(
        f"  first job started {first_start - t0_wall:.2f} s after the command, the last ended "
        f"{t0_wall + wall - last_end:.2f} s before it returned"
    )
    total = procs * wall
    print(f"\n  {'stage':34s} {'seconds':>8s} {'share':>7s} {'ms/track':>9s}   (share of {procs} x wall)")

    def row(name: str, seconds: float, where: str = "") -> None:
        print(f"  {name:34s} {seconds:8.2f} {100 * seconds / total:6.1f}% {1000 * seconds / n:9.1f}   {where}")

    print("  in the `musicindex ingest` process:")
    row("start-up (imports, servers, connect)", startup)
    row("scan", scan_s)
    row("register", cli["register"] - scan_s, "(database included)")
    row("queue", cli["queue"])
    row("waiting for the workers", cli["wait"], "(until every file is done)")
    print("  in the worker processes:")
    for k in STAGES:
        row(
            k if k != "database" else "database writes",
            busy[k],
            "(SQL statements and commits)" if k == "database" else "",
        )
    row("other work in jobs", other, "(Celery, Python, file checks)")
    row("idle", idle, "(a process without a job while the command ran)")
    print(
        f"  per track: {counts['statements'] / n:.1f} SQL statements, {counts['commits'] / n:.2f} commits, "
        f"{counts['checkouts'] / n:.2f} connection checkouts; {counts['connects']} new connections in all"
    )

    ref_paths = files[: args.reference] if args.reference else files
    ref = run_reference(ref_paths)
    ref_rate = ref["n"] / ref["wall"]
    print(
        f"\nplain per-feature librosa script, one process, {ref['n']} of the same files: {ref['wall']:.1f} s, "
        f"{1000 * ref['wall'] / ref['n']:.0f} ms/track, {ref_rate:.2f} tracks/s"
    )
    print(
        f"  ingest end to end: {n / wall / ref_rate:.1f}x the plain script "
        f"({n / wall / ref_rate / procs:.1f}x per process)"
    )
    print(f"SUMMARY tracks/s {n / wall:.2f}  ratio {n / wall / ref_rate:.1f}x  load {load_before[0]:.2f}")
    print("RESULT:", "ok" if ok else "MISMATCH")


if __name__ == "__main__":
    main()
