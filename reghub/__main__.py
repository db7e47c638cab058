"""`python -m reghub` is the `reghub` command."""

from reghub.cli import main

main()
