"""The web page's fixes, over HTTP (no browser): each thing seen wrong, with the test that it is right now.

One test library per module (tests/test_web.py's ``build_library``, with a musicnn space), INSERTed directly.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import text

from musicindex import ingest
from musicindex.db.scratch import scratch_database
from musicindex.index import MusicIndex
from musicindex.query.explain import _pair, summary, wording
from musicindex.web import create_app
from musicindex.web.server import warm_up
from tests.test_web import add_version, build_library, client_of, err, library_index, ok


@pytest.fixture(scope="module")
def lib(base_settings, tmp_path_factory):
    with library_index(base_settings, tmp_path_factory.mktemp("pages"), "mi_pages", n=60, musicnn=True) as lib:
        yield lib


@pytest.fixture(scope="module")
def client(lib):
    with client_of(create_app(lib["index"])) as c:
        yield c


# --------------------------------------------------------------------------- why, in words
def test_why_reads_as_a_person_would_say_it():
    assert wording("tempo", 96.2, 128.4) == "faster (128 vs 96 BPM)"
    assert wording("spectral_centroid_mean", 2430.0, 1810.0) == "darker (1.8 vs 2.4 kHz)"
    assert wording("rms_mean", 0.05, 0.1) == "louder (\u221220 vs \u221226 dB)"
    assert wording("zero_crossing_rate_mean", 0.0101, 0.0104) == "noisier (229 vs 223 zero crossings a second)"
    assert wording("perceptr_var", 2.2e-5, 1.1e-4) == "more percussive (the percussive part 7 dB louder)"
    assert wording("harmony_var", 0.003, 0.0009) == "less harmonic (the harmonic part 5 dB quieter)"
    # a rounding never hides the difference, and no number is in scientific notation
    assert _pair(0.0101, 0.0104) == ("0.0101", "0.0104")
    assert _pair(100.2, 100.4) == ("100.2", "100.4")
    for feature in ("chroma_stft_mean", "rms_mean", "perceptr_var", "tempo"):
        words = wording(feature, 1.23e-6, 4.56e-6)
        assert "e-" not in words and "_" not in words, words
    diffs = [{"text": "faster (128 vs 96 BPM)"}, {"text": "louder (\u221214 vs \u221220 dB)"}]
    assert summary(["mellow", "acoustic"], diffs, "musicnn") == (
        "both mellow and acoustic; faster (128 vs 96 BPM) and louder (\u221214 vs \u221220 dB)"
    )
    assert summary([], [], "musicnn") == "close in the musicnn space; tempo, brightness and loudness about the same"


def test_why_on_the_track_page_has_no_raw_names_or_numbers(client, lib):
    seed = lib["rows"][4]
    res = ok(client.get(f"/api/tracks/{seed['id']}/similar", params={"k": 10, "space": "features"}))
    diffs = [d for h in res["items"] for d in h["why"]["feature_differences"]]
    assert diffs and all(d["text"].startswith(d["reads"]) for d in diffs)
    page = client.get(f"/tracks/{seed['id']}", params={"space": "features"}).text
    whys = [chunk.split("</span>")[0] for chunk in page.split('class="why-summary">')[1:]]
    assert len(whys) == 10
    for w in whys:
        assert "_mean" not in w and "_var" not in w and "e-0" not in w and " sd" not in w, w


# --------------------------------------------------------------------------- track page
def test_a_track_without_its_file_says_so(client, lib):
    gone = lib["rows"][30]  # no file on disk
    page = client.get(f"/tracks/{gone['id']}").text
    assert 'id="file-problem"' in page and "cannot be played" in page and "is gone" in page
    assert '<audio id="track-audio"' not in page and 'class="play big"' not in page
    page = client.get(f"/tracks/{lib['rows'][0]['id']}").text  # a file that is there: the player
    assert 'id="file-problem"' not in page and f'src="/api/tracks/{lib["rows"][0]["id"]}/audio"' in page
    assert 'class="play big"' in page


def test_feature_values_are_written_out(client, lib):
    page = client.get(f"/tracks/{lib['rows'][0]['id']}").text
    panel = page.split('class="feature-grid"')[1].split("</dl>")[0]
    assert panel.count('class="feature"') == 43 and "e-0" not in panel and "e+0" not in panel
    assert "spectral centroid mean" in panel  # names in words, no underscores


def test_map_names_an_untitled_track_by_its_file(client, lib):
    row = lib["rows"][2]
    with lib["db"].engine.begin() as conn:
        conn.execute(text("UPDATE tracks SET title = NULL WHERE id = :i"), {"i": row["id"]})
    try:
        points = {p["id"]: p for p in ok(client.get("/api/map"))["points"]}
        assert points[row["id"]]["title"] == Path(row["path"]).name
        page = client.get("/genres/" + row["label"], params={"k": 60}).text
        assert f'data-title="{Path(row["path"]).name}"' in page  # lists and the player name it the same way
    finally:
        with lib["db"].engine.begin() as conn:
            conn.execute(text("UPDATE tracks SET title = :t WHERE id = :i"), {"t": row["title"], "i": row["id"]})


# --------------------------------------------------------------------------- playlist builder
def test_playlist_builder_resolves_typed_names_and_never_answers_422(client, lib):
    rows = lib["rows"]
    a, b = rows[12], rows[40]
    # what the no-script form sends: empty ids and the typed names
    r = client.get("/playlist", params={"start": "", "end": "", "start_q": "", "end_q": "", "n": 6})
    assert r.status_code == 200 and "Playlist from A to B" in r.text
    r = client.get("/playlist", params={"start": "", "end": "", "start_q": a["title"], "end_q": b["title"], "n": 6})
    assert r.status_code == 200 and "Export M3U8" in r.text
    assert f'name="start" value="{a["id"]}"' in r.text and f'name="end" value="{b["id"]}"' in r.text
    # an ambiguous name: the page says so and offers the candidates, keeping the other end
    r = client.get("/playlist", params={"start": str(a["id"]), "end_q": "Blue", "n": 6})
    assert r.status_code == 200 and "pick one" in r.text and 'class="candidates"' in r.text
    assert "/playlist?end=" in r.text and f"start={a['id']}" in r.text
    r = client.get("/playlist", params={"start_q": "zzzz nothing", "end": str(b["id"])})
    assert r.status_code == 200 and "no track matches" in r.text
    r = client.get("/playlist", params={"start": "abc", "end": "999999"})
    assert r.status_code == 200 and "is no track id" in r.text and "no track 999999" in r.text


# --------------------------------------------------------------------------- models page
def test_models_page_offers_roll_back_only_with_a_retired_version_and_flags_zero_scores(base_settings, tmp_path):
    with scratch_database(base_settings.database_url, prefix="mi_pages_models") as db:
        build_library(db, tmp_path / "audio", n=12)
        index = MusicIndex(db, base_settings.with_(database_url=db.url))
        with client_of(create_app(index)) as c:
            page = c.get("/models").text
            assert 'class="rollback"' not in page  # nothing retired yet: nothing to roll back to
            add_version(db, "kmeans", metrics={"silhouette": 0.5})  # the first kmeans is retired now
            add_version(db, "knn", state="candidate", metrics={"accuracy": 0.0, "macro_f1": 0.0})
            page = c.get("/models").text
            assert page.count('class="rollback"') == 1 and 'data-kind="kmeans"' in page
            assert "scores 0 on its test set" in page and page.count("zero-score") == 2
        index.close()


# --------------------------------------------------------------------------- API docs
def test_api_docs_render_their_markdown(client):
    page = client.get("/api/docs").text
    assert "<ul>" in page and "<li>" in page and "<code>GET /api/tracks?q=...</code>" in page
    prose = page.split('class="prose"')[1].split("</div>")[0]
    assert "`" not in prose and "* Tracks" not in prose


# --------------------------------------------------------------------------- status
def test_status_answers_at_once_and_keeps_the_last_real_ingest(lib, monkeypatch, tmp_path):
    """The page never waits for the workers: checked by order, not by a clock (a loaded machine cannot break it):
    every look after the first two hangs until the test lets it go, and the page answers while one hangs."""
    from musicindex.web import status as web_status

    index = MusicIndex(lib["db"], lib["index"].settings)
    asked: list[float] = []
    answered: list[float] = []
    release = threading.Event()

    def slow_ping(timeout: float = 1.0, destination: Any = None) -> list[str]:
        asked.append(time.monotonic())
        if len(asked) > 2:  # the cold app's and the warm-up's looks answer; the next ones hang
            release.wait(120)
        answered.append(time.monotonic())
        return []

    monkeypatch.setattr(index.dispatcher, "ping_workers", slow_ping)
    monkeypatch.setattr(web_status, "SERVICES_TTL", 0.0)  # every answer wants a fresh look: one is always running
    root = tmp_path / "music"
    root.mkdir()
    for i in range(3):
        _wav(root / f"t{i}.wav", 1.5, 220.0 * (i + 1))
    real = ingest.register(lib["db"], [root])
    assert len(real.queued_ids) == 3
    with client_of(create_app(index)) as cold:  # the first look at the workers is still on its way: the page says so
        assert "asking the workers" in cold.get("/status").text
    app = create_app(index)
    warm_up(app)  # what `musicindex serve` does before it listens
    with client_of(app) as c:
        assert len(answered) == 2  # the warm-up's look came back: the page has something to show
        for _ in range(5):
            r = c.get("/status")
            assert r.status_code == 200
            # answered while a look at the workers hangs: the page did not wait for it
            assert len(asked) == 3 and len(answered) == 2, (asked, answered)
        assert "0 worker(s)" in r.text and "no worker is running" in r.text and "musicindex worker" in r.text
        release.set()  # looks are shared: one at a time (5 answers, one look hanging)
        st = ok(c.get("/api/status"))
        assert st["checked"] and st["workers"] == [] and st["hint"].startswith("no worker is running")
        # the files are analysed; a re-scan finds nothing new: the page still shows the real ingest, and says the
        # re-scan was a no-op
        ingest.process_tracks(lib["db"], real.queued_ids)
        assert ingest.register(lib["db"], [root]).queued_ids == []
        st = ok(c.get("/api/status"))
        assert st["progress"]["batch"]["id"] == real.batch_id and st["progress"]["total"] == 3
        assert st["progress"]["done"] == 3
        assert st["progress"]["last_scan"]["id"] > real.batch_id and st["progress"]["last_scan"]["queued"] == 0
        page = c.get("/status").text
        assert "3 / 3 analysed" in page and "nothing new to analyse" in page


# --------------------------------------------------------------------------- query by file
def _wav(path: Path, seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(int(22050 * seconds)) / 22050
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 22050)
    return path.read_bytes()


def test_query_by_file_is_a_list_like_every_other(client, lib, tmp_path):
    body = Path(lib["audio"][1].path).read_bytes()
    r = client.post(
        "/fragments/similar-to-file", params={"k": 5, "space": "features", "filename": "mine.ogg"}, content=body
    )
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert html.count('class="track"') == 5 and html.count('class="play"') == 5 and 'class="play-all"' in html
    assert html.count('class="why"') == 5 and 'class="why-summary"' in html  # why, as in the other lists
    assert 'class="button m3u-link"' in html and "Sounds like mine.ogg" in html
    assert "upload-short" not in html  # 6 s of audio
    # a short file is compared, with a note that the answer is rough; one too short is refused and says so
    r = client.post(
        "/fragments/similar-to-file",
        params={"k": 3, "space": "features", "filename": "short.wav"},
        content=_wav(tmp_path / "short.wav", 3.0),
    )
    assert r.status_code == 200 and "upload-short" in r.text and "holds only 3.0 s of audio" in r.text
    tiny = _wav(tmp_path / "tiny.wav", 0.5)
    r = client.post("/fragments/similar-to-file", params={"space": "features", "filename": "tiny.wav"}, content=tiny)
    assert r.status_code == 422 and "too short: 0.50 s" in r.text
    body_ = err(client.post("/api/similar-to-file", params={"filename": "tiny.wav"}, content=tiny), 422, "audio_error")
    assert "too short" in body_["message"]


# --------------------------------------------------------------------------- radio's API
def test_recommend_with_history_and_exclusions_for_radio(client, lib):
    rows = lib["rows"]
    seed = rows[6]
    first = ok(client.get("/api/recommend", params={"liked": seed["id"], "k": 8}))["items"]
    played = [seed["id"], *(h["id"] for h in first[:4])]
    res = ok(
        client.get(
            "/api/recommend",
            params={"liked": seed["id"], "k": 8, "exclude_track": played, "history": played[-3:], "artist_spacing": 3},
        )
    )
    ids = [h["id"] for h in res["items"]]
    assert not set(ids) & set(played) and res["params"]["history"] == played[-3:]
    by_id = {r["id"]: r for r in rows}
    artists = [by_id[i]["artist"] for i in [*played[-3:], *ids]]
    assert all(artists[i] not in artists[max(0, i - 3) : i] for i in range(3, len(artists)))  # no run at the seam
    err(client.get("/api/recommend", params={"liked": seed["id"], "history": [999999]}), 404, "unknown_track")
    err(client.get("/api/recommend", params={"liked": seed["id"], "exclude_track": list(range(1, 1002))}), 422,
        "bad_argument")  # fmt: skip


# --------------------------------------------------------------------------- tags
def test_tag_search_page_and_api(client, lib):
    names = ok(client.get("/api/tags"))
    assert "mellow" in names and len(names) == len(set(names))
    res = ok(client.get("/api/tags/tracks", params={"tag": ["jazz", "mellow"], "k": 5}))
    assert res["items"] and res["params"]["tags"] == ["jazz", "mellow"]
    page = client.get("/tags", params={"tag": ["jazz", "mellow"]}).text
    assert "Tagged jazz + mellow" in page and 'class="play-all"' in page and page.count('class="track"') >= 1
    assert 'value="mellow" checked' in page
    r = client.get("/api/tags/tracks", params={"tag": "jazz", "format": "m3u8"})
    assert r.status_code == 200 and r.text.startswith("#EXTM3U")
    assert json.loads(client.get("/api/tags/tracks", params={"tag": "nope"}).text)["error"] == "bad_argument"
