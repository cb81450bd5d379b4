"""`python -m soritune` runs the CLI."""

from soritune.cli import main

main()
