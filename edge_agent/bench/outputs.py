"""What a person sees around a bench: the progress bar, and the ``--out DIR`` files."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import onnxruntime as ort
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edge_agent.bench.report import BenchResult, write_files

logger = logging.getLogger(__name__)


def available_providers() -> list[str]:
    """The execution providers onnxruntime offers here, best first."""
    return list(ort.get_available_providers())


class BenchProgress:
    """A rich progress bar on stderr, one step per (precision, profile, batch) row.

    On a terminal it redraws in place and disappears when done; elsewhere rich prints
    nothing, so logs and captured output stay clean.
    """

    def __init__(self, total: int) -> None:
        console = Console(file=sys.stderr)
        self._progress = Progress(
            TextColumn("[bold]bench[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("starting", total=total)
        self.done = 0

    def __enter__(self) -> BenchProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def step(self, precision: str) -> Callable[[str, int], None]:
        """The callback for one precision's :class:`Bench`: advance after each row."""

        def advance(profile: str, batch: int) -> None:
            self.done += 1
            self._progress.update(
                self._task, advance=1, description=f"{precision} {profile} batch {batch}"
            )

        return advance


def charts_available() -> bool:
    """Whether matplotlib (the ``charts`` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def write_outputs(results: Sequence[BenchResult], out_dir: Path) -> list[Path]:
    """The charts (when matplotlib is installed) and the report files; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts: list[Path] = []
    if charts_available():
        # Optional dependency: imported only when installed and asked for.
        from edge_agent.bench.charts import write_charts

        charts = write_charts(results, out_dir)
    else:
        logger.warning("no charts: install the charts extra (pip install 'edge-agent[charts]')")
    return write_files(results, out_dir, charts)
