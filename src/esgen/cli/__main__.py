"""`python -m esgen.cli`: the same as the `esgen` command."""

from esgen.cli import main

main()
