"""`python -m esgen`: the same as the `esgen` command."""

from esgen._launch import main

main()
