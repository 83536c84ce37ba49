"""Duplicates on real music: the fingerprint's recall and false merges, its cost, and the time to find a new file's
group at 100 000 tracks.

    python benchmarks/devset.py                    # once: ~/.cache/musicindex-devset/set
    python benchmarks/duplicates.py [--set DIR] [--tracks N] [--copies K] [--scale 100000] [--json OUT]

Protocol:

1. the dev set's full-length tracks (distinct recordings; the tracks of one soundtrack are hard negatives of each
   other) each get ``--copies`` altered copies, the alterations taken in turn (``ALTERATIONS``): lossy re-encodes
   (MP3 192 kbps, AAC 128 kbps, Opus 96 kbps), MP3 96 kbps mono at 22 050 Hz, the first 6 s cut, -6 dB, FLAC,
   and the same file with its tags changed; made with FFmpeg's libraries through PyAV, cached under ``--cache``;
2. hard negatives made from the same real music: a track whose first 75 s are another track of its soundtrack
   (a shared long intro, same duration), a track with 8 s of another inside it (a shared sample), and the dev
   set's dropped variants of a kept tune (``_fast``, ``_old``, ``_remix``: same song, another recording);
3. every file is fingerprinted as the one pass would (``musicindex.audio.fingerprint``; the window and the tail
   decoded with musicindex's decoders; AAC, which they do not read, decoded with PyAV), then added to the index in
   PostgreSQL one by one in a shuffled order, each first looked up (``dupes.store.find_recordings``): a new file
   joins its group when ingested. Groups are the connected components of the same-recording links;
4. pair recall: the share of (original, copy) and (copy, copy) pairs of one recording that end in one group;
   false merges: groups holding files of two recordings or more, and the wrong pairs they make;
5. cost per track (CPU, one process): the fingerprint computed on decoded audio, and the extra decode it needs
   beyond the analysis window the pass decodes anyway;
6. ``--scale``: synthetic tracks are added until the index holds that many (their landmarks drawn from the real
   ones' keys, so popular keys stay popular), then every copy is looked up again: the time to find a new file's
   recording (the index query, loading the candidates' fingerprints, the verification), and whether it still
   finds it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_SET = Path("~/.cache/musicindex-devset/set").expanduser()
DEFAULT_CACHE = Path("~/.cache/musicindex-dupes-bench").expanduser()

ALTERATIONS = {
    # name: (codec, container suffix, bit rate, sample rate (None: the original's), mono, gain dB, seconds cut)
    "mp3-192": ("libmp3lame", ".mp3", 192_000, None, False, 0.0, 0.0),
    "aac-128": ("aac", ".m4a", 128_000, None, False, 0.0, 0.0),
    "opus-96": ("libopus", ".opus", 96_000, 48_000, False, 0.0, 0.0),
    "mp3-96-mono-22k": ("libmp3lame", ".mp3", 96_000, 22_050, True, 0.0, 0.0),
    "cut-6s-mp3-128": ("libmp3lame", ".mp3", 128_000, None, False, 0.0, 6.0),
    "gain-6db-mp3-128": ("libmp3lame", ".mp3", 128_000, None, False, -6.0, 0.0),
    "flac": ("flac", ".flac", None, None, False, 0.0, 0.0),
    "retag": (None, None, None, None, False, 0.0, 0.0),
}


@dataclass
class Item:
    """One file of the benchmark: its family (the recording it is a copy of; hard negatives are families of
    their own), what it is, and how to read it."""

    name: str
    family: str
    kind: str  # "original", an alteration, or a hard-negative kind
    path: Path | None = None
    audio: tuple[np.ndarray, int] | None = None  # in-memory (hard negatives), (channels, samples), rate
    package: str = ""


# --- making the copies ------------------------------------------------------------------------------------------
def decode_any(path: Path) -> tuple[np.ndarray, int]:
    """(float32 (channels, samples), rate): libsndfile, else PyAV (AAC)."""
    import soundfile as sf

    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(y.T), int(sr)
    except (sf.LibsndfileError, RuntimeError):
        import av

        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
            chunks = [g.to_ndarray() for f in container.decode(stream) for g in resampler.resample(f)]
            return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32), int(stream.rate)


def encode(y: np.ndarray, sr: int, out: Path, codec: str, bit_rate: int | None, rate: int | None, mono: bool) -> None:
    import av

    if mono and y.shape[0] > 1:
        y = y.mean(axis=0, keepdims=True)
    layout = "mono" if y.shape[0] == 1 else "stereo"
    y = y[:2] if y.shape[0] > 2 else y
    rate = rate or sr
    tmp = out.with_name(out.name + ".part")
    with av.open(
        str(tmp), "w", format={".m4a": "mp4", ".opus": "ogg", ".mp3": "mp3", ".flac": "flac"}[out.suffix]
    ) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y, dtype=np.float32), format="fltp", layout=layout)
        frame.sample_rate = sr
        ctx = stream.codec_context
        resampler = av.AudioResampler(
            format=ctx.format.name, layout=layout, rate=rate, frame_size=ctx.frame_size or None
        )
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(part):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    tmp.replace(out)


def make_copy(job: tuple[str, str, str]) -> str:
    """Make one altered copy (a worker process); returns its path. Cached: an existing copy is kept."""
    source, alteration, out = job
    src, dst = Path(source), Path(out)
    if dst.exists():
        return out
    dst.parent.mkdir(parents=True, exist_ok=True)
    codec, _, bit_rate, rate, mono, gain, cut = ALTERATIONS[alteration]
    if codec is None:  # the same audio, other tags
        import mutagen

        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        tags = mutagen.File(tmp, easy=True)
        tags["title"] = "Retagged copy"
        tags["artist"] = "Someone Else"
        tags["album"] = "A Compilation"
        tags.save()
        tmp.replace(dst)
        return out
    y, sr = decode_any(src)
    if cut:
        y = y[:, int(cut * sr) :]
    if gain:
        y = y * np.float32(10 ** (gain / 20))
    encode(y, sr, dst, codec, bit_rate, rate, mono)
    return out


def copy_path(cache: Path, source: Path, set_dir: Path, alteration: str) -> Path:
    suffix = ALTERATIONS[alteration][1] or source.suffix
    rel = source.relative_to(set_dir / "audio")
    return (cache / alteration / rel).with_suffix(suffix)


# --- the set ----------------------------------------------------------------------------------------------------
def originals(set_dir: Path, limit: int | None) -> list[dict[str, str]]:
    rows = sorted(csv.DictReader((set_dir / "all.csv").open()), key=lambda r: r["path"])
    if limit and limit < len(rows):
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def variants(set_dir: Path) -> list[tuple[Path, Path]]:
    """(dropped variant file, kept file) pairs of the dev set that exist as plain files."""
    cache = set_dir.parent / "extract"
    out = []
    for row in csv.DictReader((set_dir / "dropped.csv").open()):
        if not row["reason"].startswith("variant") or "!" in row["source_path"]:
            continue
        kept_src = row["reason"].split("(kept ", 1)[1].rstrip(")")
        variant = cache / row["package"] / row["source_path"]
        kept = set_dir / "audio" / row["package"] / Path(kept_src).name
        if variant.is_file() and kept.is_file():
            out.append((variant, kept))
    return out


def hard_negatives(rows: list[dict[str, str]], limit: int) -> list[Item]:
    """Shared-intro and shared-sample files made from pairs of tracks of one soundtrack (in memory)."""
    by_package: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if float(r["duration_s"]) >= 120.0:
            by_package[r["package"]].append(r)
    out: list[Item] = []
    for package, tracks in sorted(by_package.items()):
        for a, b in zip(tracks[::2], tracks[1::2], strict=False):
            if len(out) >= 2 * limit:
                return out
            ya, sa = decode_any(Path(a["path"]))
            yb, sb = decode_any(Path(b["path"]))
            if sa != sb or ya.shape[0] != yb.shape[0]:
                continue
            # the other part: a real track played backwards (it shares no landmark with any file of the set)
            body = np.ascontiguousarray(np.concatenate([yb, yb], axis=1)[:, ::-1])
            intro = np.concatenate([ya[:, : 75 * sa], body[:, 75 * sa : ya.shape[1]]], axis=1)
            sample = body[:, : yb.shape[1]].copy()
            sample[:, 40 * sa : 48 * sa] = ya[:, 40 * sa : 48 * sa]
            stem_a, stem_b = Path(a["path"]).stem, Path(b["path"]).stem
            out.append(
                Item(
                    f"intro:{stem_a}+{stem_b}",
                    f"intro:{stem_a}+{stem_b}",
                    "shared intro",
                    audio=(intro, sa),
                    package=package,
                )
            )
            out.append(
                Item(
                    f"sample:{stem_b}<{stem_a}",
                    f"sample:{stem_b}<{stem_a}",
                    "shared sample",
                    audio=(sample, sa),
                    package=package,
                )
            )
    return out


# --- fingerprints and their cost --------------------------------------------------------------------------------
def fingerprint_item(item: Item) -> tuple[object, dict[str, float]]:
    """(Fingerprint or the reason it has none, {"compute": CPU s, "extra_decode": CPU s}) of one file, read the
    way the one pass reads it."""
    from musicindex.audio import fingerprint as F
    from musicindex.audio.decode import _resample, read_window
    from musicindex.audio.window import SAMPLE_RATE
    from musicindex.errors import AudioError

    cost = {"compute": 0.0, "extra_decode": 0.0, "window_decode": 0.0}
    try:
        if item.audio is not None or (item.path is not None and item.path.suffix == ".m4a"):
            y, sr = item.audio if item.audio is not None else decode_any(item.path)  # type: ignore[arg-type]
            mono = y.mean(axis=0) if y.ndim == 2 else y
            duration = mono.size / sr
            segments = []
            for start, n in F.regions(duration):
                part = np.ascontiguousarray(mono[int(start * sr) : int(start * sr) + int(n * sr)], dtype=np.float32)
                segments.append((start, _resample(part, sr, SAMPLE_RATE)))
        else:
            t0 = time.process_time()
            read_window(item.path)  # what the pass decodes anyway: the analysis window
            t1 = time.process_time()
            segments, duration = F.read_regions(item.path)
            t2 = time.process_time()
            cost["window_decode"] = t1 - t0
            cost["extra_decode"] = max(0.0, (t2 - t1) - (t1 - t0))  # the tail (a short track: the rest of it)
        t0 = time.process_time()
        fp = F.fingerprint(segments, duration)
        cost["compute"] = time.process_time() - t0
        return fp, cost
    except AudioError as e:
        return str(e), cost


def cached_fingerprint(folder: Path, item: Item) -> tuple[object, dict[str, float]]:
    """``fingerprint_item`` kept under ``folder`` (a rerun skips the decoding; the costs are those measured)."""
    import hashlib

    from musicindex.audio.fingerprint import FINGERPRINT_VERSION, Fingerprint

    key = hashlib.sha256(f"{FINGERPRINT_VERSION}:{item.name}:{item.path}".encode()).hexdigest()[:24]
    data, meta = folder / f"{key}.fp", folder / f"{key}.json"
    if meta.exists():
        saved = json.loads(meta.read_text())
        fp = Fingerprint.from_bytes(data.read_bytes()) if saved["error"] is None else saved["error"]
        return fp, saved["cost"]
    fp, cost = fingerprint_item(item)
    folder.mkdir(parents=True, exist_ok=True)
    if not isinstance(fp, str):
        data.write_bytes(fp.to_bytes())  # type: ignore[attr-defined]
    meta.write_text(json.dumps({"name": item.name, "error": fp if isinstance(fp, str) else None, "cost": cost}))
    return fp, cost


# --- the evaluation ---------------------------------------------------------------------------------------------
def evaluate(db, items: list[Item], prints: dict[str, object], seed: int) -> dict:
    """Add every fingerprinted file to the index in a shuffled order, each looked up first; group; score."""
    from sqlalchemy import text

    from musicindex.dupes import groups as G
    from musicindex.dupes import store

    order = [it for it in items if not isinstance(prints[it.name], str)]
    random.Random(seed).shuffle(order)
    ids: dict[str, int] = {}
    links: list[G.Link] = []
    lookups: list[float] = []
    with db.session() as s:
        for it in items:
            ids[it.name] = s.execute(
                text("INSERT INTO tracks (path, status) VALUES (:p, 'indexed') RETURNING id"),
                {"p": f"/bench/{it.name}"},
            ).scalar_one()
        for it in items:
            if isinstance(prints[it.name], str):
                store.store(s, ids[it.name], None, prints[it.name])  # type: ignore[arg-type]
    for it in order:
        fp = prints[it.name]
        with db.session() as s:
            t0 = time.perf_counter()
            found = store.find_recordings(s, fp)  # type: ignore[arg-type]
            lookups.append(time.perf_counter() - t0)
            for c in found:
                link = G.recording_link(ids[it.name], c.track_id, c.verdict)
                if link is not None:
                    links.append(link)
            store.store(s, ids[it.name], fp)  # type: ignore[arg-type]
    name_of = {v: k for k, v in ids.items()}
    family = {it.name: it.family for it in items}
    kind = {it.name: it.kind for it in items}
    groups = [g for g in G.group(links) if g.kind == G.SAME_RECORDING]
    group_of = {name_of[t]: i for i, g in enumerate(groups) for t in g.track_ids}
    # recall over the pairs of one recording (original and copies)
    members: dict[str, list[str]] = defaultdict(list)
    for it in items:
        if it.kind not in ("shared intro", "shared sample", "variant"):
            members[it.family].append(it.name)
    pairs = hits = 0
    by_alteration: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for names in members.values():
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                pairs += 1
                ok = a in group_of and group_of.get(a) == group_of.get(b)
                hits += ok
                if kind[a] == "original" or kind[b] == "original":
                    alt = kind[b] if kind[a] == "original" else kind[a]
                    by_alteration[alt][0] += ok
                    by_alteration[alt][1] += 1
    false_groups = []
    wrong_pairs = 0
    for g in groups:
        fams = defaultdict(list)
        for t in g.track_ids:
            fams[family[name_of[t]]].append(name_of[t])
        if len(fams) > 1:
            false_groups.append(dict(fams))
            sizes = [len(v) for v in fams.values()]
            wrong_pairs += (sum(sizes) ** 2 - sum(x * x for x in sizes)) // 2
    hard = defaultdict(lambda: [0, 0])  # hard negatives merged with anything / total
    for it in items:
        if it.kind in ("shared intro", "shared sample", "variant"):
            hard[it.kind][1] += 1
            hard[it.kind][0] += it.name in group_of
    return {
        "files": len(items),
        "fingerprinted": len(order),
        "not_fingerprinted": {it.name: prints[it.name] for it in items if isinstance(prints[it.name], str)},
        "pairs": pairs,
        "pair_recall": hits / pairs if pairs else float("nan"),
        "recall_by_alteration": {
            k: {"found": v[0], "pairs": v[1], "recall": v[0] / v[1]} for k, v in sorted(by_alteration.items())
        },
        "groups": len(groups),
        "false_merge_groups": len(false_groups),
        "false_merge_pairs": wrong_pairs,
        "false_merges": false_groups[:20],
        "hard_negatives_merged": {k: {"merged": v[0], "files": v[1]} for k, v in hard.items()},
        "lookup_ms_p50_small_index": 1000 * statistics.median(lookups),
        "ids": ids,
    }


def grow(db, total: int, seed: int) -> float:
    """Add synthetic tracks until the index holds ``total``: as many keys as a real track, uniform over the key space
    (the real tracks' keys are nearly all distinct: ``real_distinct_keys``), times inside a window and a tail like a
    real track's. They hold keys only (no stored fingerprint: a lookup loads the fingerprints of its few candidates
    only). Bulk load: the index's B-trees are dropped, the rows inserted, the B-trees built again and the foreign
    key added back NOT VALID (16 million row-by-row checks would take longer than everything else). Returns the
    seconds it took."""
    from sqlalchemy import text

    from musicindex.audio.fingerprint import KEY_SAMPLE
    from musicindex.dupes import store

    t0 = time.perf_counter()
    k = store.KEYS
    with db.session() as s:
        have = s.execute(text("SELECT count(*) FROM tracks")).scalar_one()
        per_track = s.execute(
            text(f"SELECT avg(n) FROM (SELECT count(*) AS n FROM {k} GROUP BY track_id) x")
        ).scalar_one()
        missing = total - have
        if missing <= 0:
            return 0.0
        s.execute(text("SELECT setseed(:x)"), {"x": (seed % 1000) / 1000.0})
        s.execute(
            text(
                "INSERT INTO tracks (path, status) SELECT '/synthetic/' || g, 'indexed' FROM generate_series(1, :n) g"
            ),
            {"n": missing},
        )
        fk = s.execute(
            text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"), {"t": k}
        ).scalar_one()
        s.execute(text(f"ALTER TABLE {k} DROP CONSTRAINT {fk}"))
        s.execute(text(f"DROP INDEX ix_{k}_key"))
        s.execute(text(f"DROP INDEX ix_{k}_track"))
        s.execute(
            text(
                f"""INSERT INTO {k} (key, track_id, t)
                    SELECT floor(random() * {(1 << 32) // KEY_SAMPLE})::int, id,
                           CASE WHEN random() < 0.67 THEN 646 + floor(random() * 646)::int
                                ELSE 3800 + floor(random() * 323)::int END
                    FROM (SELECT id FROM tracks WHERE path LIKE '/synthetic/%') x, generate_series(1, :k)"""
            ),
            {"k": round(float(per_track))},
        )
        for statement in store.INDEXES:
            s.execute(text(statement))
        s.execute(
            text(f"ALTER TABLE {k} ADD FOREIGN KEY (track_id) REFERENCES tracks (id) ON DELETE CASCADE NOT VALID")
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {k}"))
        conn.execute(text("VACUUM ANALYZE tracks"))
    return time.perf_counter() - t0


def at_scale(db, items: list[Item], prints: dict[str, object], ids: dict[str, int]) -> dict:
    """Every copy looked up again in the grown index (itself excluded): time and whether its original is found."""
    from musicindex.dupes import store

    times, found, total, candidates_ms, cpu = [], 0, 0, [], []
    originals_of = {it.family: ids[it.name] for it in items if it.kind == "original"}
    for it in items:
        fp = prints[it.name]
        if it.kind in ("original", "shared intro", "shared sample", "variant") or isinstance(fp, str):
            continue
        with db.session() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            got = store.find_recordings(s, fp, exclude=[ids[it.name]])  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
            cpu.append(1000 * (time.process_time() - c0))
            t0 = time.perf_counter()
            store.candidates(s, fp, exclude=[ids[it.name]])  # type: ignore[arg-type]
            candidates_ms.append(1000 * (time.perf_counter() - t0))
        total += 1
        found += any(c.same and c.track_id == originals_of.get(it.family) for c in got)
    ms = sorted(1000 * t for t in times)
    return {
        "lookups": total,
        "found_original": found,
        "recall": found / total if total else float("nan"),
        "ms_p50": statistics.median(ms),
        "ms_p95": ms[int(0.95 * (len(ms) - 1))],
        "ms_max": ms[-1],
        "index_query_ms_p50": statistics.median(candidates_ms),
        "lookup_cpu_ms_p50": statistics.median(cpu),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="the dev set folder (benchmarks/devset.py)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the altered copies are kept")
    ap.add_argument("--tracks", type=int, default=0, help="distinct tracks (default: all)")
    ap.add_argument("--copies", type=int, default=1, help="altered copies per track (alterations taken in turn)")
    ap.add_argument("--every", type=int, default=1, help="copies for one track in this many (all stay negatives)")
    ap.add_argument("--hard", type=int, default=20, help="pairs of tracks made into shared-intro/sample negatives")
    ap.add_argument("--scale", type=int, default=100_000, help="tracks in the index for the lookup timing (0: skip)")
    ap.add_argument("--jobs", type=int, default=2, help="processes making the copies")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write every number here")
    args = ap.parse_args()
    if not (args.set / "all.csv").is_file():
        sys.exit(f"no dev set at {args.set}: run `python benchmarks/devset.py` first")
    load0 = os.getloadavg()
    rows = originals(args.set, args.tracks or None)
    kinds = list(ALTERATIONS)
    jobs, items = [], []
    for i, r in enumerate(rows):
        src = Path(r["path"])
        items.append(Item(src.stem + "@" + r["package"], r["path"], "original", src, package=r["package"]))
        if i % args.every:
            continue  # every track is a negative of the others; one in ``--every`` gets copies
        for k in range(args.copies):
            alteration = kinds[(args.copies * (i // args.every) + k) % len(kinds)]
            out = copy_path(args.cache, src, args.set, alteration)
            jobs.append((str(src), alteration, str(out)))
            items.append(
                Item(f"{src.stem}@{r['package']}:{alteration}", r["path"], alteration, out, package=r["package"])
            )
    t0 = time.perf_counter()
    todo = [j for j in jobs if not Path(j[2]).exists()]
    print(f"{len(rows)} tracks, {len(jobs)} copies ({len(todo)} to make), load {load0[0]:.1f}", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for n, _ in enumerate(pool.map(make_copy, todo), 1):
            if n % 50 == 0:
                print(f"  {n}/{len(todo)} copies made ({time.perf_counter() - t0:.0f} s)", flush=True)
    made_s = time.perf_counter() - t0
    for variant, kept in variants(args.set):
        kept_row = next((r for r in rows if Path(r["path"]) == kept), None)
        if kept_row is not None:
            items.append(Item(f"variant:{variant.name}", f"variant:{variant.name}", "variant", variant))
    items += hard_negatives(rows, args.hard)

    from musicindex.audio.analysis import warm_up

    warm_up()
    prints: dict[str, object] = {}
    costs: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for it in items:
        prints[it.name], cost = cached_fingerprint(args.cache / "fingerprints", it)
        if it.kind == "original":
            costs.append(cost)
    fp_s = time.perf_counter() - t0
    print(f"fingerprinted {len(items)} files in {fp_s:.0f} s", flush=True)

    from benchmarks._common import bench_environment

    with bench_environment("mi-dupes") as (_settings, db, _tmp):
        result = evaluate(db, items, prints, args.seed)
        scale = None
        if args.scale:
            grow_s = grow(db, args.scale, args.seed)
            from sqlalchemy import text

            from musicindex.dupes import store

            with db.session() as s:
                real = s.execute(
                    text(f"SELECT count(*), count(DISTINCT key) FROM {store.KEYS} WHERE track_id <= :m"),
                    {"m": max(result["ids"].values())},
                ).one()
                sizes = store.key_stats(s)
                sizes["real_keys"], sizes["real_distinct_keys"] = real[0], real[1]
                sizes["tracks"] = s.execute(text("SELECT count(*) FROM tracks")).scalar_one()
            scale = {"tracks": args.scale, "grow_s": grow_s, **sizes, **at_scale(db, items, prints, result["ids"])}
    result.pop("ids")
    compute = sorted(1000 * c["compute"] for c in costs)
    extra = sorted(1000 * c["extra_decode"] for c in costs)
    window = sorted(1000 * c["window_decode"] for c in costs)
    report = {
        "tracks": len(rows),
        "copies": len(jobs),
        "alterations": kinds,
        "copies_made_s": made_s,
        "load_before": load0,
        "load_after": os.getloadavg(),
        "cost_ms": {
            "fingerprint_mean": statistics.fmean(compute),
            "fingerprint_p50": statistics.median(compute),
            "fingerprint_p95": compute[int(0.95 * (len(compute) - 1))],
            "extra_decode_mean": statistics.fmean(extra),
            "extra_decode_p50": statistics.median(extra),
            "window_decode_mean": statistics.fmean(window),
        },
        **result,
        "scale": scale,
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


def print_report(r: dict) -> None:
    c = r["cost_ms"]
    print(f"\n## Duplicates on the dev set ({r['tracks']} tracks, {r['copies']} altered copies, {r['files']} files)\n")
    print(
        f"pair recall {r['pair_recall']:.3f} over {r['pairs']} pairs; false merges: {r['false_merge_groups']} groups, "
        f"{r['false_merge_pairs']} wrong pairs; {r['groups']} groups"
    )
    print("\n| alteration | found | pairs | recall |\n| --- | --- | --- | --- |")
    for k, v in r["recall_by_alteration"].items():
        print(f"| {k} | {v['found']} | {v['pairs']} | {v['recall']:.3f} |")
    print("\n| hard negative | merged | files |\n| --- | --- | --- |")
    for k, v in r["hard_negatives_merged"].items():
        print(f"| {k} | {v['merged']} | {v['files']} |")
    if r["not_fingerprinted"]:
        print("\nnot fingerprinted:", json.dumps(r["not_fingerprinted"], indent=1))
    if r["false_merges"]:
        print("\nfalse merges:", json.dumps(r["false_merges"], indent=1))
    print(
        f"\ncost per track (CPU, one process): fingerprint {c['fingerprint_mean']:.1f} ms mean, "
        f"{c['fingerprint_p50']:.1f} p50, {c['fingerprint_p95']:.1f} p95; extra decode {c['extra_decode_mean']:.1f} ms "
        f"mean ({c['extra_decode_p50']:.1f} p50) beside the window's {c['window_decode_mean']:.1f} ms"
    )
    s = r["scale"]
    if s:
        print(
            f"\nat {s['tracks']} tracks ({s['keys']} index keys, {s['key_bytes'] / 2**20:.0f} MiB; fingerprints "
            f"{s['fingerprint_bytes'] / 2**20:.0f} MiB; grown in {s['grow_s']:.0f} s): a new file's recording found in "
            f"{s['ms_p50']:.1f} ms p50, {s['ms_p95']:.1f} p95, {s['ms_max']:.1f} max (index query alone "
            f"{s['index_query_ms_p50']:.1f} ms p50; client CPU {s['lookup_cpu_ms_p50']:.1f} ms p50); original found "
            f"for {s['found_original']}/{s['lookups']}; the real tracks' keys: {s['real_distinct_keys']} distinct of "
            f"{s['real_keys']}"
        )
    print(f"\nload average before {r['load_before'][0]:.1f}, after {r['load_after'][0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
