"""One song, many files: the same recording (the audio fingerprint) and versions of one song (titles, artists and
the audio as a check), as groups; files are never deleted.

* ``recording``: two fingerprints compared and the same-recording rule (pure);
* ``titles``: titles and artists as one song: version words and featuring credits taken off (pure);
* ``groups``: the same-song rule and the grouping of links into groups with a confidence (pure);
* ``store``: the fingerprint index in PostgreSQL and the lookup of a new file's recordings (takes a session).

The fingerprint itself is computed by ``musicindex.audio.fingerprint`` (no database there). Design and measured
figures: docs/duplicates.md.
"""
