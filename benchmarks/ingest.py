"""Ingestion on the path a user runs: `musicindex worker` (defaults) and `musicindex ingest FOLDER --wait`.

    python benchmarks/ingest.py [--files DIR] [--n 72] [--copies 1] [--mp3 N] [--reference N]

What it does, in one run, the way the README tells a user to:

1. Picks ``--n`` real full-length tracks (2-7 min, 44.1 kHz stereo) from ``--files`` (default: the development set
   of benchmarks/devset.py, ``~/.cache/musicindex-devset/set/audio``), turns ``--mp3`` of them into MP3 (cached
   transcodes) so both decoders are measured, and hard-links them into a fresh library folder, ``--copies`` times
   (each copy a folder of its own: a library that grows, its files distinct paths).
2. Starts ``musicindex worker`` as a subprocess with no option at all (every queue, one process per core, default
   settings) and waits until it answers.
3. Runs ``musicindex ingest LIBRARY --wait --json`` as a subprocess and stops the clock when it exits: that is
   when ``--wait`` says the batch is answerable (indexed and embedded in the musicnn space). Then checks that
   ``similar()`` in the default space answers for every track (a figure that does not hold is not printed).
4. Prints tracks/s end to end, the per-stage breakdown of the workers' CPU time (from each ingest job's result:
   open and hash, the one decode, each analysis stage: tags, features, spectrogram, the musicnn inputs (log-mel
   patches) and its network over a batch, the descriptors, and the database write; another stage or model's too),
   the network's GFLOP per track and the GFLOP/s it reached, the workers' peak RSS per process, and the CPU model.
5. Runs the plain per-feature librosa script (one librosa call per feature over the same 30 s window, only the
   43 features: ``musicindex.audio.reference.reference_features``) over ``--reference`` of the same files (default:
   all of one copy) in one process, as a plain script runs, and prints the ratio (per track, both sides).

Runs on the embedded servers under a temporary MUSICINDEX_HOME unless URLs are set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import bench_environment
from musicindex.localworker import settings_env

DEVSET_AUDIO = Path("~/.cache/musicindex-devset/set/audio").expanduser()
MP3_CACHE = Path("~/.cache/musicindex-bench/mp3").expanduser()
REPO = Path(__file__).resolve().parents[1]
STAGES = (
    "open_hash",
    "decode",
    "tags",
    "features",
    "spectrogram",
    "fingerprint",
    "embedding.musicnn",
    "embedding.musicnn:batch",
    "descriptors",
    "write",
)
"""The workers' CPU timings of the ingest pass: open and hash, the one decode, each analysis stage (``ingest.stages``;
an embedding model's ``:batch`` is its network over a batch), the database write."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or 'unknown CPU'} ({os.cpu_count()} cores)"


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


def build_library(files: list[Path], n_mp3: int, lib: Path, copies: int) -> list[Path]:
    out = []
    sources = [as_mp3(f) if i < n_mp3 else f for i, f in enumerate(files)]
    for c in range(copies):
        folder = lib / f"copy{c:03d}"
        folder.mkdir(parents=True)
        for i, src in enumerate(sources):
            dst = folder / f"{i:03d}-{src.name}"
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
        cwd=str(REPO),
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the user's path
def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`musicindex worker` exactly as the README says: no option (every queue, one process per core)."""
    fh = open(log, "w")  # noqa: SIM115 - the worker writes to it until it stops
    return subprocess.Popen(
        [sys.executable, "-m", "musicindex", "worker"],
        env=env,
        cwd=str(REPO),
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def worker_pool(main_pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(main_pid).children(recursive=True)]


def memory_mb(pid: int) -> dict[str, float] | None:
    """What a process holds, in MB: peak and current RSS (``VmHWM``, ``VmRSS``), PSS (shared pages split among the
    processes that share them) and the resident size of its largest parts (the malloc heap, anonymous mappings, the
    shared libraries by package), from ``/proc/PID/smaps``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        smaps = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return None
    out = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status if line.startswith(("VmHWM", "VmRSS"))}
    parts: dict[str, float] = {}
    pss = 0.0
    where = "[anon]"
    for line in smaps:
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            where = fields[5] if len(fields) > 5 else "[anon]"
            if "site-packages/" in where:
                where = where.split("site-packages/", 1)[1].split("/", 1)[0]
            elif where.startswith("/"):
                where = os.path.basename(where)
        elif fields[:1] == ["Rss:"]:
            parts[where] = parts.get(where, 0.0) + int(fields[1]) / 1024
        elif fields[:1] == ["Pss:"]:
            pss += int(fields[1]) / 1024
    out["PSS"] = pss
    out["parts"] = dict(sorted(parts.items(), key=lambda kv: -kv[1])[:6])  # type: ignore[assignment]
    return out


def peak_rss_mb(pids: list[int]) -> dict[int, float]:
    return {pid: m["VmHWM"] for pid in pids if (m := memory_mb(pid)) is not None}


def job_results(broker_url: str) -> list[dict]:
    """The results of the ingest jobs the worker ran (the result backend: the broker's Redis)."""
    import redis

    from musicindex.config import redis_client_url

    client = redis.Redis.from_url(redis_client_url(broker_url))
    out = []
    for key in client.scan_iter("celery-task-meta-*", count=1000):
        raw = client.get(key)
        if not raw:
            continue
        meta = json.loads(raw)
        result = meta.get("result")
        if meta.get("status") == "SUCCESS" and isinstance(result, dict) and "timings" in result:
            out.append(result)
    client.close()
    return out


def check_answerable(settings, expected: int) -> int:
    """``similar()`` in the default space answers for every indexed track; returns how many were checked."""
    from musicindex import MusicIndex

    with MusicIndex.connect(settings=settings) as index:
        with index.db.engine.connect() as conn:
            ids = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM tracks WHERE status = 'indexed'")]
        if len(ids) != expected:
            raise SystemExit(f"{len(ids)} tracks indexed, expected {expected}: no figure")
        for tid in ids:
            res = index.similar(tid, k=1, explain=False)
            if res.space != "musicnn":
                raise SystemExit(f"track {tid} answered in the {res.space} space, not musicnn: no figure")
    return len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=Path, default=DEVSET_AUDIO, help="folder of real music")
    ap.add_argument("--n", type=int, default=72, help="distinct real tracks")
    ap.add_argument("--copies", type=int, default=1, help="times the tracks are linked into the library")
    ap.add_argument("--mp3", type=int, default=None, help="how many of the tracks as MP3 (default: half)")
    ap.add_argument("--reference", type=int, default=None, help="tracks the plain script runs over (default: --n)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    with bench_environment("mi-bench-ingest", keep=args.keep) as (settings, db, tmp):
        db.dispose()
        run(args, settings, tmp)


def run(args, settings, tmp: Path) -> None:
    picked = pick_tracks(args.files, args.n)
    if not picked:
        raise SystemExit(f"no full-length 44.1 kHz stereo track in {args.files}: build the dev set first")
    n_mp3 = len(picked) // 2 if args.mp3 is None else min(args.mp3, len(picked))
    files = build_library(picked, n_mp3, tmp / "library", max(1, args.copies))
    hours = sum(_duration(p) for p in picked) * max(1, args.copies) / 3600
    print(f"CPU: {cpu_model()}")
    print(
        f"library: {len(files)} files ({len(picked)} real tracks x {max(1, args.copies)}: {n_mp3} MP3, "
        f"{len(picked) - n_mp3} OGG as shipped), {hours:.1f} h of music"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MUSICINDEX_")}, **settings_env(settings)}
    env.pop("MUSICINDEX_WORKER_CONCURRENCY", None)  # the default: one process per core
    worker = start_worker(env, tmp / "worker.log")
    try:
        _wait_for_worker(settings, worker)
        pool = worker_pool(worker.pid)
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "musicindex", "ingest", str(tmp / "library"), "--wait", "--json"],
            env=env,
            cwd=str(REPO),
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"ingest --wait failed ({res.returncode}): {res.stderr[-2000:]}")
        summary = json.loads(res.stdout)
        final = summary.get("final") or {}
        checked = check_answerable(settings, len(files))
        memory = {pid: m for pid in [worker.pid, *(worker_pool(worker.pid) or pool)] if (m := memory_mb(pid))}
        rss = {pid: m["VmHWM"] for pid, m in memory.items() if pid != worker.pid}
        jobs = job_results(settings.broker_url)
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
    _report(files, seconds, final, checked, rss, jobs)
    _report_memory(worker.pid, memory)
    ref_n = min(len(picked), args.reference or len(picked))
    if ref_n:
        ref = run_reference(files[:ref_n])
        per_ref = ref["wall"] / ref["n"]
        per_ours = seconds / len(files)
        print(
            f"plain per-feature librosa script (43 features only, one process): {per_ref * 1000:.0f} ms per track "
            f"({ref['n']} tracks, {ref['wall']:.1f} s); the user's path (features + spectrogram + musicnn, every "
            f"core): {per_ours * 1000:.0f} ms per track: {per_ref / per_ours:.1f}x"
        )


def _duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _wait_for_worker(settings, worker: subprocess.Popen, timeout: float = 180) -> None:
    from musicindex.dispatch import Dispatcher

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit("the worker exited while starting: see its log")
        if Dispatcher(settings).ping_workers(timeout=1.0):
            time.sleep(3)  # its pool processes finish their warm-up
            return
    raise SystemExit("the worker did not answer within 180 s")


def _report(files, seconds, final, checked, rss, jobs) -> None:
    from musicindex.pretrained import runtime

    n = len(files)
    print(
        f"\nmusicindex ingest --wait (default worker, every queue): {n} tracks in {seconds:.1f} s = "
        f"{n / seconds:.2f} tracks/s; final {final}; similar() in the default space answered for {checked} tracks"
    )
    totals = dict.fromkeys(STAGES, 0.0)
    analysed = 0
    for j in jobs:
        analysed += int(j.get("analysed", 0))
        for k, v in (j.get("timings") or {}).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    cpu = sum(totals.values())
    print(f"\nworker CPU per track by stage ({analysed} tracks analysed in {len(jobs)} jobs):")
    for stage in totals:
        share = totals[stage] / cpu if cpu else 0.0
        print(f"  {stage:<24} {1000 * totals[stage] / max(analysed, 1):7.1f} ms  {share:6.1%}")
    print(f"  {'total':<24} {1000 * cpu / max(analysed, 1):7.1f} ms")
    rt = runtime.get_runtime()
    patches = rt.placement.count or 10  # a 30 s window holds 10 non-overlapping 3 s patches
    gflop = patches * rt.gflop_per_patch
    net = totals["embedding.musicnn:batch"] / max(analysed, 1)
    if net > 0:
        print(
            f"musicnn ({rt.variant}): {gflop:.1f} GFLOP per track, {1000 * net:.0f} ms CPU: "
            f"{gflop / net:.1f} GFLOP/s on one thread"
        )
    if rss:
        print(f"worker peak RSS per process: {', '.join(f'{v:.0f} MB' for v in sorted(rss.values()))}")


def _report_memory(main_pid: int, memory: dict[int, dict]) -> None:
    """Each worker process's memory: the main process (every pool process is forked from it and counts its pages in
    its own RSS too), then the pool processes."""
    for pid, m in memory.items():
        role = "main process" if pid == main_pid else "pool process"
        parts = ", ".join(f"{k} {v:.0f}" for k, v in m["parts"].items())
        print(
            f"  {role} {pid}: peak RSS {m['VmHWM']:.0f} MB, RSS {m['VmRSS']:.0f} MB, PSS {m['PSS']:.0f} MB "
            f"(resident MB: {parts})"
        )


if __name__ == "__main__":
    main()
