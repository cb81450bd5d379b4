"""The typer app every CLI module registers its verbs on. Heavy imports stay inside commands."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="soritune",
    help=(
        "Adapt, compress, evaluate and serve Whisper-class speech recognition for Korean and domain "
        "speech, on one GPU or a laptop.\n\n"
        "Model specs: bundled:whisper-base (offline), hf:ID_OR_DIR or a local path, ct2:DIR, "
        "tiny: (random, for tests), random:ARCH (random weights for benchmarks)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with `code` (user errors never show a traceback)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
