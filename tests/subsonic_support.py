"""What the Subsonic tests share: a tiny generated library served by the real app on a loopback port, raw HTTP
calls, and the Subsonic 1.16.1 XSD with the OpenSubsonic additions this server answers.

The XSD (``tests/data/subsonic-rest-api-1.16.1.xsd``, see ``tests/data/README.md``) is vendored unchanged;
:func:`opensubsonic_schema` adds, in memory, exactly the attributes and elements of :data:`XSD_ADDITIONS` (each an
OpenSubsonic addition) and nothing else, so a response that uses anything beyond them fails validation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from musicindex import ingest
from musicindex.sample.library import generate_library, write_tags
from musicindex.vocab import MOOD_TAGS

DATA = Path(__file__).parent / "data"
XSD = DATA / "subsonic-rest-api-1.16.1.xsd"
NS = "http://subsonic.org/restapi"
XS = "http://www.w3.org/2001/XMLSchema"
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob pass wörd"}
GENRES = ("rock", "jazz", "techno")
TAGS = (*MOOD_TAGS, "rock", "jazz", "electronic", "guitar", "instrumental")
DIM = 16

# --------------------------------------------------------------------------- the XSD and its OpenSubsonic additions
XSD_ADDITIONS: dict[str, Any] = {
    "attributes": {
        "Response": [("type", "xs:string"), ("serverVersion", "xs:string"), ("openSubsonic", "xs:boolean")],
        "Child": [("mediaType", "xs:string"), ("played", "xs:dateTime"), ("bpm", "xs:int"),
                  ("musicBrainzId", "xs:string"), ("sortName", "xs:string")],
        "AlbumID3": [("played", "xs:dateTime"), ("userRating", "sub:UserRating"), ("musicBrainzId", "xs:string"),
                     ("sortName", "xs:string")],
        "ArtistID3": [("musicBrainzId", "xs:string"), ("sortName", "xs:string"), ("userRating", "sub:UserRating")],
    },
    "elements": {  # a sequence added to a type that had none
        "Child": [("genres", "sub:ItemGenre"), ("moods", "xs:string"), ("replayGain", "sub:ReplayGain")],
        "AlbumID3": [("genres", "sub:ItemGenre")],
    },
    "responses": [  # new children of subsonic-response
        ("openSubsonicExtensions", "sub:OpenSubsonicExtension"), ("sonicMatch", "sub:SonicMatch"),
        ("tokenInfo", "sub:TokenInfo"), ("playQueueByIndex", "sub:PlayQueueByIndex"), ("lyricsList", "sub:LyricsList"),
    ],
    "retyped": {("PlayQueue", "current"): "xs:string"},  # OpenSubsonic ids are strings
    "types": """
        <xs:complexType name="ReplayGain">
            <xs:attribute name="trackGain" type="xs:double" use="optional"/>
            <xs:attribute name="albumGain" type="xs:double" use="optional"/>
            <xs:attribute name="trackPeak" type="xs:double" use="optional"/>
            <xs:attribute name="albumPeak" type="xs:double" use="optional"/>
        </xs:complexType>
        <xs:complexType name="ItemGenre"><xs:attribute name="name" type="xs:string" use="required"/></xs:complexType>
        <xs:complexType name="OpenSubsonicExtension">
            <xs:sequence><xs:element name="versions" type="xs:int" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
            <xs:attribute name="name" type="xs:string" use="required"/>
        </xs:complexType>
        <xs:complexType name="SonicMatch">
            <xs:sequence><xs:element name="entry" type="sub:Child" minOccurs="1" maxOccurs="1"/></xs:sequence>
            <xs:attribute name="similarity" type="xs:double" use="required"/>
        </xs:complexType>
        <xs:complexType name="PlayQueueByIndex">
            <xs:sequence><xs:element name="entry" type="sub:Child" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
            <xs:attribute name="currentIndex" type="xs:int" use="optional"/>
            <xs:attribute name="position" type="xs:long" use="optional"/>
            <xs:attribute name="username" type="xs:string" use="required"/>
            <xs:attribute name="changed" type="xs:dateTime" use="required"/>
            <xs:attribute name="changedBy" type="xs:string" use="required"/>
        </xs:complexType>
        <xs:complexType name="LyricsList">
            <xs:sequence><xs:element name="structuredLyrics" type="sub:StructuredLyrics" minOccurs="0"
                maxOccurs="unbounded"/></xs:sequence>
        </xs:complexType>
        <xs:complexType name="StructuredLyrics">
            <xs:sequence><xs:element name="line" type="sub:LyricsLine" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
            <xs:attribute name="displayArtist" type="xs:string" use="optional"/>
            <xs:attribute name="displayTitle" type="xs:string" use="optional"/>
            <xs:attribute name="lang" type="xs:string" use="required"/>
            <xs:attribute name="offset" type="xs:long" use="optional"/>
            <xs:attribute name="synced" type="xs:boolean" use="required"/>
        </xs:complexType>
        <xs:complexType name="LyricsLine">
            <xs:simpleContent><xs:extension base="xs:string">
                <xs:attribute name="start" type="xs:long" use="optional"/>
            </xs:extension></xs:simpleContent>
        </xs:complexType>
        <xs:complexType name="TokenInfo">
            <xs:attribute name="username" type="xs:string" use="required"/>
        </xs:complexType>
    """,
}  # fmt: skip
"""What the OpenSubsonic API adds to the 1.16.1 schema, as far as this server uses it (docs/subsonic.md)."""


def opensubsonic_schema() -> Any:
    """The vendored 1.16.1 XSD with :data:`XSD_ADDITIONS`, as an ``lxml.etree.XMLSchema``."""
    from lxml import etree

    tree = etree.parse(str(XSD))
    root = tree.getroot()
    q = f"{{{XS}}}"

    def ctype(name: str) -> Any:
        (found,) = root.findall(f"{q}complexType[@name='{name}']")
        return found

    for name, attrs in XSD_ADDITIONS["attributes"].items():
        for attr, typ in attrs:
            etree.SubElement(ctype(name), f"{q}attribute", name=attr, type=typ, use="optional")
    for name, elements in XSD_ADDITIONS["elements"].items():
        seq = etree.Element(f"{q}sequence")
        for el, typ in elements:
            etree.SubElement(seq, f"{q}element", name=el, type=typ, minOccurs="0", maxOccurs="unbounded")
        ctype(name).insert(0, seq)
    choice = ctype("Response").find(f"{q}choice")
    for el, typ in XSD_ADDITIONS["responses"]:
        etree.SubElement(choice, f"{q}element", name=el, type=typ, minOccurs="1", maxOccurs="unbounded")
    for (name, attr), typ in XSD_ADDITIONS["retyped"].items():
        ctype(name).find(f"{q}attribute[@name='{attr}']").set("type", typ)
    types = etree.fromstring(f'<x xmlns:xs="{XS}" xmlns:sub="{NS}">{XSD_ADDITIONS["types"]}</x>')
    for t in types:
        root.append(t)
    return etree.XMLSchema(tree)


# --------------------------------------------------------------------------- a served library
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving ``app`` on a free loopback port in a background thread."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)["subsonic-response"]


@dataclass
class Served:
    """The library and its server: ``call("getAlbum", id=...)`` answers as alice (token auth, JSON)."""

    index: Any
    url: str
    port: int
    root: Path
    api_key: str
    extras: dict[str, Any] = field(default_factory=dict)

    def raw(self, name: str, params: Any = (), *, method: str = "GET", headers: dict[str, str] | None = None,
            body: bytes | None = None, path: str | None = None) -> Reply:  # fmt: skip
        query = urllib.parse.urlencode(list(params.items()) if isinstance(params, dict) else list(params))
        url = f"{self.url}{path or '/rest/' + name}"
        if method in ("GET", "HEAD") and query:
            url += "?" + query
        data = body if body is not None else (query.encode() if method == "POST" else None)
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if method == "POST" and body is None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def call(self, name: str, /, user: str = "alice", fmt: str = "json", **params: Any) -> dict[str, Any]:
        """A call as ``user`` with token auth; ``params`` values that are lists repeat their name."""
        salt = hashlib.sha256(str(time.monotonic_ns()).encode()).hexdigest()[:12]
        token = hashlib.md5((PASSWORDS[user] + salt).encode()).hexdigest()
        items = [("u", user), ("t", token), ("s", salt), ("v", "1.16.1"), ("c", "tests"), ("f", fmt)]
        for k, v in params.items():
            for x in v if isinstance(v, list) else [v]:
                items.append((k, str(x).lower() if isinstance(x, bool) else str(x)))
        reply = self.raw(name, items)
        assert reply.status == 200, reply.body[:300]
        return reply.json() if fmt == "json" else {"xml": reply.body}

    def ok(self, name: str, /, **params: Any) -> dict[str, Any]:
        r = self.call(name, **params)
        assert r["status"] == "ok", r
        return r

    def error(self, name: str, /, **params: Any) -> int:
        r = self.call(name, **params)
        assert r["status"] == "failed", r
        return int(r["error"]["code"])


def build_library(index: Any, root: Path) -> None:
    """A tiny library (3 genres x 3 songs, 3 s each, FLAC/Ogg/MP3 with embedded covers, one folder image, one song
    with an accented word), ingested in-process, with a synthetic musicnn version (embeddings clustered by genre,
    mood tags) so the sonic answers and ``moods`` have data."""
    generate_library(root, per_genre=3, genres=GENRES, duration=3.0, formats=("flac", "ogg", "mp3"), pictures=True)
    write_tags(root / "jazz" / "jazz.00001.ogg", title="Wesnoth Théme", artist="Ana Sól", album="Battle", year=1999,
               genre="jazz", track=2, disc=1)  # fmt: skip
    reg = ingest.register(index.db, [root])
    ingest.process_tracks(index.db, reg.queued_ids)
    add_musicnn(index.db)


def add_musicnn(db: Any, seed: int = 7) -> int:
    """An active musicnn version over every indexed track: clustered embeddings, tag probabilities and top tags."""
    rng = np.random.default_rng(seed)
    centres = {g: rng.normal(0, 1, DIM) for g in GENRES}
    moods = {"rock": ("happy", "party"), "jazz": ("Mellow", "chill"), "techno": ("party", "catchy")}
    with db.engine.begin() as conn:
        vid = conn.execute(
            text(
                "INSERT INTO model_versions (kind, state, embedding_dim, classes, params) "
                "VALUES ('musicnn', 'active', :d, CAST(:c AS jsonb), '{}'::jsonb) RETURNING id"
            ),
            {"d": DIM, "c": json.dumps(list(TAGS))},
        ).scalar_one()
        for tid, genre in conn.execute(text("SELECT id, genre_tag FROM tracks WHERE status = 'indexed'")).all():
            g = genre if genre in centres else "rock"
            vec = centres[g] + rng.normal(0, 0.3, DIM)
            probs = [0.6 if t in moods[g] or t == g else 0.02 for t in TAGS]
            top = [t for _, t in sorted(((-p, t) for p, t in zip(probs, TAGS, strict=True) if p >= 0.1))]
            conn.execute(
                text("INSERT INTO embeddings VALUES (:v, :t, 'musicnn', CAST(:e AS vector))"),
                {"v": vid, "t": tid, "e": "[" + ",".join(f"{x:.6f}" for x in vec) + "]"},
            )
            conn.execute(
                text("INSERT INTO track_tags VALUES (:v, :t, :p, :top)"), {"v": vid, "t": tid, "p": probs, "top": top}
            )
    return int(vid)


@contextlib.contextmanager
def serve_library(base_settings: Any, tmp: Path) -> Iterator[Served]:
    """A scratch database holding :func:`build_library`, users alice (admin), bob and the system user, an API key
    of alice's, and the real app serving it on a loopback port (its own data folder: key files, covers)."""
    from musicindex.db.scratch import scratch_database
    from musicindex.index import MusicIndex
    from musicindex.web import create_app

    with scratch_database(base_settings.database_url, prefix="mi_sonic") as db:
        index = MusicIndex(db, base_settings.with_(database_url=db.url, home=tmp / "home"))
        root = tmp / "music"
        build_library(index, root)
        index.users.add_user("alice", PASSWORDS["alice"], admin=True)
        index.users.add_user("bob", PASSWORDS["bob"])
        index.users.local_user()
        key = index.users.new_api_key("alice")
        try:
            with ServerThread(create_app(index)) as server:
                yield Served(index, server.url, server.port, root, key)
        finally:
            index.close()
