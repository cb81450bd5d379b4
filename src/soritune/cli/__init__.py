"""`soritune` console script: one module per stage registers its verbs on the shared app."""

from __future__ import annotations

import sys

from soritune.cli.app import app, console

# Each module below only imports typer at top level; importing them is cheap. The order is the
# order of the verbs in `soritune --help`, so it is kept as written.
# isort: off
from soritune.cli import models as _models  # noqa: F401,E402
from soritune.cli import transcribe as _transcribe  # noqa: F401,E402
from soritune.cli import speech as _speech  # noqa: F401,E402
from soritune.cli import report as _report  # noqa: F401,E402
from soritune.cli import demo as _demo  # noqa: F401,E402
from soritune.cli import data as _data  # noqa: F401,E402
from soritune.cli import curate as _curate  # noqa: F401,E402
from soritune.cli import synth as _synth  # noqa: F401,E402
from soritune.cli import evaluate as _evaluate  # noqa: F401,E402
from soritune.cli import serve as _serve  # noqa: F401,E402
from soritune.cli import train as _train  # noqa: F401,E402
from soritune.cli import bench as _bench  # noqa: F401,E402
from soritune.cli import compress as _compress  # noqa: F401,E402
from soritune.cli import plan as _plan  # noqa: F401,E402
from soritune.cli import speechllm as _speechllm  # noqa: F401,E402
# isort: on


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors (SoritunError) print one line, exit code 2."""
    import warnings

    from soritune.errors import SoritunError

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter, not for users

    try:
        app(args=argv if argv is not None else sys.argv[1:], standalone_mode=True)
    except SoritunError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
