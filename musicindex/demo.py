"""`musicindex demo`: the end-to-end tour on the embedded servers."""
from __future__ import annotations

import time

from rich.console import Console


def run_demo(console: Console) -> None:
    from musicindex import services
    from musicindex.api import MusicIndex
    from musicindex.cli import print_doctor

    t0 = time.monotonic()
    console.rule("[bold]musicindex demo")
    console.print("starting the embedded servers (PostgreSQL + pgvector, Redis) if needed ...")
    services.start()
    index = MusicIndex.connect(check_schema=False)
    index.upgrade()
    print_doctor(index.doctor())
    index.close()
    console.print(f"demo finished in {time.monotonic() - t0:.1f} s")
