"""`python -m growdsl` is the `growdsl` command."""

from growdsl.cli import main

main()
