"""The eight synthesized styles of the sample library: scales, timbres and one :class:`GenreStyle` per genre.

Each genre is a small style spec -- tempo range, swing, drum patterns, bass line style, chord/lead timbres,
harmony, distortion and background noise -- that :func:`musicindex.sample.synth.synthesize` renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------
# Style specs
# ---------------------------------------------------------------------------------

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

#: Timbres. ``("table", harmonic amplitudes)`` is additive (band-limited per note);
#: ``("fm", ratio, index, index_decay_s)`` is two-operator FM with a decaying index.
TIMBRES: dict[str, tuple] = {
    "sine": ("table", (1.0,)),
    "sub": ("table", (1.0, 0.12, 0.04)),
    "soft": ("table", (1.0, 0.35, 0.12, 0.05, 0.02)),
    "organ": ("table", (1.0, 0.7, 0.45, 0.0, 0.3, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.12)),
    "reed": ("table", (1.0, 0.25, 0.6, 0.12, 0.4, 0.08, 0.22, 0.05, 0.12, 0.03, 0.06)),
    "square": ("table", tuple((1.0 / k if k % 2 else 0.0) for k in range(1, 40))),
    "saw": ("table", tuple(1.0 / k for k in range(1, 64))),
    "string": ("table", tuple(1.0 / k**1.25 for k in range(1, 40))),
    "dull_saw": ("table", tuple(1.0 / k**1.8 for k in range(1, 24))),
    "epiano": ("fm", 1.0, 1.8, 0.35),
    "bell": ("fm", 3.5, 2.5, 0.8),
    "fmbass": ("fm", 1.0, 2.5, 0.12),
    "acid": ("fm", 0.5, 4.0, 0.09),
    "brass": ("fm", 1.0, 1.2, 2.0),
}


@dataclass(frozen=True)
class BassSpec:
    """Bass line. ``style``: root8 | pattern | walking | sub808 | acid | drone | none."""

    style: str
    timbres: tuple[str, ...] = ("sub",)
    octave: int = 2
    gain: float = 0.5
    patterns: tuple[str, ...] = ()
    decay: float = 0.4
    gate: float = 0.9


@dataclass(frozen=True)
class ChordSpec:
    """Harmony part. ``style``: pad | power | stab | skank | comp | arp | block | none."""

    style: str
    timbres: tuple[str, ...] = ("soft",)
    octave: int = 4
    gain: float = 0.3
    patterns: tuple[str, ...] = ()
    attack: float = 0.01
    decay: float = 1.0
    sevenths: bool = False
    prob: float = 1.0


@dataclass(frozen=True)
class LeadSpec:
    """Melody. ``grid`` is 8 (eighths) or 16 (sixteenths); ``density`` = note-on probability."""

    timbres: tuple[str, ...] = ("soft",)
    octave: int = 5
    density: float = 0.4
    grid: int = 8
    gain: float = 0.25
    prob: float = 0.8
    attack: float = 0.01
    decay: float = 0.6
    vibrato: float = 0.0


@dataclass(frozen=True)
class GenreStyle:
    """A small style spec from which :func:`synthesize` renders clips.

    Drum patterns are 16-step strings (one 4/4 bar of sixteenths): ``x`` hit, ``X``
    accent, ``o`` ghost (soft), ``?`` hit with probability 0.35, ``.`` rest. Each
    instrument lists alternatives; one is chosen per clip.
    """

    name: str
    tempo: tuple[float, float]
    swing: tuple[float, float] = (0.5, 0.5)
    swing_unit: int = 8
    scales: tuple[str, ...] = ("major",)
    progressions: tuple[tuple[int, ...], ...] = ((0, 4, 5, 3),)
    bars_per_chord: int = 1
    drums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drum_gain: float = 0.8
    drum_prob: float = 1.0
    fill_prob: float = 0.3
    crash_every: int = 0
    humanize: float = 0.004
    bass: BassSpec = BassSpec("none")
    chords: ChordSpec = ChordSpec("none")
    lead: LeadSpec | None = None
    distortion: float = 0.0
    noise: str = "hiss"
    noise_level: tuple[float, float] = (0.002, 0.01)
    reverb: float = 0.0
    swell: float = 0.0
    description: str = ""


GENRES: dict[str, GenreStyle] = {
    "ambient": GenreStyle(
        name="ambient",
        tempo=(60, 80),
        scales=("lydian", "major", "dorian"),
        progressions=((0, 3), (0, 5, 3, 4), (0, 4), (5, 3, 0, 4)),
        bars_per_chord=2,
        drums={"shaker": ("..o...o...o...o.", "o.......o.......", "................")},
        drum_gain=0.25,
        drum_prob=0.4,
        fill_prob=0.0,
        humanize=0.01,
        bass=BassSpec("drone", ("sine", "sub"), octave=2, gain=0.35),
        chords=ChordSpec("pad", ("soft", "string", "organ"), octave=4, gain=0.4, attack=1.5, decay=20.0, sevenths=True),
        lead=LeadSpec(("bell", "soft"), octave=5, density=0.12, grid=8, gain=0.2, prob=0.8, attack=0.05, decay=2.5),
        noise="wash",
        noise_level=(0.01, 0.04),
        reverb=0.5,
        swell=0.5,
        description="slow, beatless pads and drones, soft bells, noise wash",
    ),
    "techno": GenreStyle(
        name="techno",
        tempo=(122, 134),
        scales=("minor", "phrygian", "dorian"),
        progressions=((0, 0, 0, 0), (0, 0, 5, 5), (0, 6, 0, 5)),
        drums={
            "kick": ("x...x...x...x...",),
            "chat": ("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", ".xxx.xxx.xxx.xxx"),
            "ohat": ("..x...x...x...x.",),
            "clap": ("....x.......x...", "................"),
        },
        drum_gain=0.9,
        fill_prob=0.1,
        humanize=0.0,
        bass=BassSpec(
            "pattern",
            ("fmbass", "acid", "saw"),
            octave=2,
            gain=0.4,
            patterns=("..x...x...x...x.", "..xx..xx..xx..xx", "x.x.x.x.x.x.x.x."),
            decay=0.15,
            gate=0.6,
        ),
        chords=ChordSpec(
            "stab",
            ("saw", "organ", "square"),
            octave=4,
            gain=0.18,
            patterns=("...x.....x......", "......x.......x.", "x..x..x...x..x.."),
            attack=0.002,
            decay=0.12,
            prob=0.7,
        ),
        lead=LeadSpec(("acid", "bell"), octave=4, density=0.5, grid=16, gain=0.15, prob=0.4, attack=0.002, decay=0.12),
        noise="hiss",
        noise_level=(0.002, 0.01),
        description="four-on-the-floor kick, 16th hats, offbeat bass, stabs",
    ),
    "rock": GenreStyle(
        name="rock",
        tempo=(100, 140),
        scales=("major", "mixolydian", "minor"),
        progressions=((0, 4, 5, 3), (0, 3, 4, 4), (0, 6, 3, 0), (5, 3, 0, 4)),
        drums={
            "kick": ("x.....x.x.......", "x.......x.x.....", "x..x....x.......", "x.......x..x...."),
            "snare": ("....x.......x...", "....x.......x..o"),
            "chat": ("x.x.x.x.x.x.x.x.", "X.x.X.x.X.x.X.x."),
            "crash": ("x...............",),
        },
        drum_gain=0.85,
        fill_prob=0.5,
        crash_every=4,
        humanize=0.006,
        bass=BassSpec("root8", ("dull_saw", "sub"), octave=2, gain=0.45, decay=0.3, gate=0.85),
        chords=ChordSpec(
            "power",
            ("saw", "dull_saw"),
            octave=3,
            gain=0.35,
            patterns=("x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.", "x.......x......."),
            attack=0.003,
            decay=0.8,
        ),
        lead=LeadSpec(
            ("square", "reed", "saw"),
            octave=4,
            density=0.35,
            grid=8,
            gain=0.2,
            prob=0.6,
            attack=0.01,
            decay=0.5,
            vibrato=0.004,
        ),
        distortion=4.0,
        noise="hiss",
        noise_level=(0.003, 0.012),
        description="kick/snare backbeat, 8th hats, distorted power chords, root-note bass",
    ),
    "jazz": GenreStyle(
        name="jazz",
        tempo=(110, 190),
        swing=(0.6, 0.68),
        swing_unit=8,
        scales=("major", "dorian"),
        progressions=((1, 4, 0, 0), (0, 5, 1, 4), (1, 4, 0, 5), (2, 5, 1, 4)),
        drums={
            "ride": ("x...x.xx....x.xx", "x...x.x.x...x.x."),
            "hpedal": ("....x.......x...",),
            "brush": ("o.o.o.o.o.o.o.o.", "..o...o...o...o."),
            "kick": ("o...............", "................"),
        },
        drum_gain=0.55,
        fill_prob=0.15,
        humanize=0.012,
        bass=BassSpec("walking", ("sine", "sub", "dull_saw"), octave=2, gain=0.55, decay=0.5, gate=0.9),
        chords=ChordSpec(
            "comp", ("epiano_t", "soft", "organ"), octave=4, gain=0.3, attack=0.005, decay=0.7, sevenths=True
        ),
        lead=LeadSpec(
            ("reed", "brass", "epiano"),
            octave=4,
            density=0.55,
            grid=8,
            gain=0.25,
            prob=0.7,
            attack=0.02,
            decay=0.7,
            vibrato=0.006,
        ),
        noise="hiss",
        noise_level=(0.002, 0.008),
        reverb=0.2,
        description="swung ride cymbal, walking bass, 7th-chord comping, sax-like lead",
    ),
    "classical": GenreStyle(
        name="classical",
        tempo=(60, 104),
        scales=("major", "harmonic_minor", "minor"),
        progressions=((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 2, 3, 0, 3, 4), (0, 1, 4, 0)),
        drums={},
        drum_prob=0.0,
        humanize=0.015,
        bass=BassSpec("root8", ("dull_saw", "string"), octave=2, gain=0.3, decay=1.2, gate=1.0),
        chords=ChordSpec("arp", ("string", "soft", "dull_saw"), octave=4, gain=0.3, attack=0.03, decay=1.0),
        lead=LeadSpec(
            ("string", "soft", "reed"),
            octave=5,
            density=0.45,
            grid=8,
            gain=0.28,
            prob=0.95,
            attack=0.08,
            decay=3.0,
            vibrato=0.008,
        ),
        noise="hiss",
        noise_level=(0.001, 0.005),
        reverb=0.45,
        swell=0.6,
        description="no drums, string-like arpeggios and melody, cadential harmony, dynamics",
    ),
    "hiphop": GenreStyle(
        name="hiphop",
        tempo=(80, 98),
        swing=(0.55, 0.62),
        swing_unit=16,
        scales=("minor", "dorian"),
        progressions=((0, 5), (0, 3, 5, 4), (0, 0, 3, 3), (0, 6, 5, 4)),
        drums={
            "kick": ("x......x..x.....", "x.........x..x..", "x..x......x....."),
            "snare": ("....x.......x...",),
            "chat": ("x.x.x.x.x.x.x.x.", "x.xxx.x.x.xxx.x.", "x.x.x.x?x.x.x.xx"),
        },
        drum_gain=1.0,
        fill_prob=0.05,
        humanize=0.008,
        bass=BassSpec("sub808", ("sine", "sub"), octave=1, gain=0.7, decay=0.7, gate=1.0),
        chords=ChordSpec(
            "pad", ("epiano_t", "soft", "organ"), octave=4, gain=0.18, attack=0.02, decay=2.0, sevenths=True, prob=0.8
        ),
        lead=LeadSpec(
            ("epiano", "bell", "soft"), octave=5, density=0.2, grid=8, gain=0.18, prob=0.6, attack=0.005, decay=0.5
        ),
        noise="vinyl",
        noise_level=(0.004, 0.015),
        description="boom-bap kick/snare, swung hats, long 808 sub bass, vinyl crackle",
    ),
    "metal": GenreStyle(
        name="metal",
        tempo=(150, 200),
        scales=("phrygian", "minor", "harmonic_minor"),
        progressions=((0, 1, 0, 6), (0, 0, 5, 6), (0, 6, 5, 1)),
        drums={
            "kick": ("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", "xx.xxx.xxx.xxx.x"),
            "snare": ("....x.......x...", "x...x...x...x..."),
            "chat": ("x.x.x.x.x.x.x.x.", "xxxxxxxxxxxxxxxx"),
            "crash": ("x.......x.......", "x..............."),
        },
        drum_gain=0.9,
        fill_prob=0.4,
        crash_every=2,
        humanize=0.003,
        bass=BassSpec(
            "pattern",
            ("saw", "dull_saw"),
            octave=1,
            gain=0.35,
            patterns=("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x."),
            decay=0.12,
            gate=0.8,
        ),
        chords=ChordSpec(
            "power",
            ("saw",),
            octave=3,
            gain=0.4,
            patterns=("xxxxxxxxxxxxxxxx", "xxx.xxx.xxx.xx.x", "x.xxx.xxx.xxx.xx"),
            attack=0.001,
            decay=0.15,
        ),
        lead=LeadSpec(
            ("saw", "square"),
            octave=5,
            density=0.6,
            grid=16,
            gain=0.16,
            prob=0.5,
            attack=0.003,
            decay=0.3,
            vibrato=0.01,
        ),
        distortion=12.0,
        noise="hiss",
        noise_level=(0.005, 0.02),
        description="fast double-kick, heavily distorted palm-muted power chords, phrygian riffs",
    ),
    "reggae": GenreStyle(
        name="reggae",
        tempo=(68, 90),
        swing=(0.5, 0.58),
        swing_unit=16,
        scales=("major", "mixolydian", "minor"),
        progressions=((0, 3), (0, 3, 4, 3), (0, 4), (0, 5, 3, 4)),
        drums={
            "kick": ("........x.......",),
            "rim": ("........x.......", "....x.......x..."),
            "chat": ("x.x.x.x.x.x.x.x.", "x.xxx.xxx.xxx.xx"),
        },
        drum_gain=0.75,
        fill_prob=0.2,
        humanize=0.01,
        bass=BassSpec(
            "pattern",
            ("sub", "sine", "dull_saw"),
            octave=2,
            gain=0.65,
            patterns=("x..x..x.....x...", "x.....x.x...x...", "x..x....x..x.x.."),
            decay=0.35,
            gate=0.8,
        ),
        chords=ChordSpec(
            "skank",
            ("organ", "dull_saw", "square"),
            octave=4,
            gain=0.28,
            patterns=("....x.......x...", "..x...x...x...x."),
            attack=0.002,
            decay=0.09,
        ),
        lead=LeadSpec(
            ("reed", "organ", "soft"), octave=5, density=0.25, grid=8, gain=0.18, prob=0.5, attack=0.02, decay=0.6
        ),
        noise="hiss",
        noise_level=(0.002, 0.01),
        reverb=0.25,
        description="one-drop kick/rim on beat 3, offbeat skank chords, deep syncopated bass",
    ),
}

# e-piano-like additive table usable for chords (FM timbres are per-note only)
TIMBRES["epiano_t"] = ("table", (1.0, 0.45, 0.1, 0.12, 0.03, 0.02))
