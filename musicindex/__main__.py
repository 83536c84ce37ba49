"""``python -m musicindex``: the `musicindex` command."""

from musicindex.cli.main import main

main()
