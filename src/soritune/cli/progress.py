"""The CLI's one progress bar: what runs, a bar, done / total, elapsed (and remaining) time, and a
line of info (a loss, a rate in units per second). Every verb uses it, so they all look alike.

    with progress_bar("prepare kspon", unit="utt") as bar:
        run(config, progress=bar.count)          # (done, total) callbacks: the rate is worked out here
    with progress_bar("training", remaining=True) as bar:
        bar.update(completed=ev["step"], total=ev["total_steps"], info=f"loss {ev['loss']:.3f}")
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from soritune.cli.app import console


class Bar:
    def __init__(self, progress, task, unit: str | None):
        self._progress, self._task, self._unit, self._t0 = progress, task, unit, time.perf_counter()

    def update(self, description: str | None = None, info: str | None = None, **kw) -> None:
        """rich's update (completed=, total=, advance=) with an optional new description and info text."""
        if description is not None:
            kw["description"] = description
        if info is not None:
            kw["info"] = info
        self._progress.update(self._task, **kw)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def count(self, done: int, total: int | None = None) -> None:
        """The (done, total) callback of prepare, synth, export and eval; shows the rate per second."""
        rate = done / max(time.perf_counter() - self._t0, 1e-9)
        self.update(completed=done, total=total, info=f"{rate:,.1f} {self._unit}/s" if self._unit else None)


@contextmanager
def progress_bar(description: str, *, unit: str | None = None, remaining: bool = False,
                 transient: bool = True) -> Iterator[Bar]:
    """A started bar (total unknown until a callback says); `transient` clears it when done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = ["[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    columns += [TimeRemainingColumn()] if remaining else []
    with Progress(*columns, TextColumn("{task.fields[info]}"), console=console, transient=transient) as progress:
        yield Bar(progress, progress.add_task(description, total=None, info=""), unit)
