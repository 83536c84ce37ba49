"""Training labels at registration: ``--label-from folder | tag | csv:FILE``."""

from __future__ import annotations

import csv
from pathlib import Path

from musicindex.errors import InvalidArgumentError

LabelSpec = str | None
"""``"folder"`` (parent folder name, the GTZAN layout), ``"tag"`` (the genre tag, set when the
file is analysed), ``"csv:FILE"`` (rows ``path,label``) or None (no labels)."""


class LabelSource:
    """A parsed ``--label-from``: which kind, and for csv the ``path -> label`` map."""

    def __init__(self, spec: LabelSpec = None):
        self.kind: str | None = None
        self.mapping: dict[str, str] = {}
        if spec is None or spec == "":
            return
        if spec in ("folder", "tag"):
            self.kind = spec
        elif spec.startswith("csv:"):
            self.kind = "csv"
            self.mapping = read_label_csv(Path(spec[4:]).expanduser())
        else:
            raise InvalidArgumentError(f"--label-from must be 'folder', 'tag' or 'csv:FILE', got {spec!r}")

    @property
    def from_tag(self) -> bool:
        return self.kind == "tag"

    def label_for(self, path: str) -> tuple[str | None, str | None]:
        """(label, source) that registration sets for ``path``; (None, None): none to set now."""
        if self.kind == "folder":
            return folder_label(path), "folder"
        if self.kind == "csv":
            label = self.mapping.get(path)
            return (label, "csv") if label else (None, None)
        return None, None


def read_label_csv(file: Path) -> dict[str, str]:
    """The ``path,label`` rows of ``file`` (paths made absolute, relative ones to the file's folder)."""
    if not file.is_file():
        raise InvalidArgumentError(f"--label-from csv: no such file {file}")
    mapping: dict[str, str] = {}
    with open(file, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise InvalidArgumentError(f"{file}:{i + 1}: expected 'path,label', got {row!r}")
            if i == 0 and row[0].strip().lower() == "path":
                continue  # header
            p = Path(row[0].strip()).expanduser()
            if not p.is_absolute():
                p = file.parent / p
            mapping[str(p.absolute())] = row[1].strip()
    return mapping


def folder_label(path: str) -> str | None:
    return Path(path).parent.name or None
