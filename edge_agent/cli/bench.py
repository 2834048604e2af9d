"""``edge-agent bench``: the published table (images/s, W, images/s/W, latency) per profile.

This module is also the bench's ``--sim`` path, one of the places allowed to import
``edge_agent.sim``: on a simulated board (``--sim BOARD``, or ``--root`` at a tree written by
``edge-agent sim create``) it runs the board's power model, stretches real engine time by the
clock ratio, and runs the reference networks on the simulated engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.clock import SystemClock
from edge_agent.errors import ConfigError, FieldError, InferenceError, ProfileError
from edge_agent.sim.marker import is_simulated

if TYPE_CHECKING:
    from edge_agent.bench.runner import ActivityGauge, BenchOptions, RunnerFactory
    from edge_agent.clock import Clock

EXIT_OK = 0
EXIT_RUNTIME = 1


REFERENCE_NETWORKS: tuple[str, ...] = ("alexnet", "googlenet", "resnet50", "vgg19")
"""The published benchmark's networks (``tools/build_reference_models.py`` builds them)."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What ``--model`` named: an ONNX file, or a reference network (``path`` None if unbuilt)."""

    name: str
    path: Path | None
    network: str | None = None


def reference_key(name: str) -> str | None:
    """``ResNet-50`` -> ``resnet50``; None when ``name`` is not a reference network."""
    key = name.lower().replace("-", "").replace("_", "")
    return key if key in REFERENCE_NETWORKS else None


def resolve_model(spec: str, models_dir: Path | None = None) -> ModelChoice:
    """Resolve ``--model``: ``demo``, a reference network name, or a path to an ONNX file.

    A reference network resolves to ``<models_dir>/<name>.onnx`` when that file exists, else to
    a choice without a path (only a simulated board can run it).

    Raises:
        ConfigError: neither a file nor a known name.
    """
    if spec == "demo":
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.pipeline.model_meta import bundled_demo_model

        return ModelChoice("demo", bundled_demo_model())
    network = reference_key(spec)
    if network is not None and not Path(spec).is_file():
        built = models_dir / f"{network}.onnx" if models_dir is not None else None
        return ModelChoice(network, built if built and built.is_file() else None, network)
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(("demo", *REFERENCE_NETWORKS))
        raise ConfigError(
            [FieldError("--model", f"{spec}: no such ONNX file, and not one of {known}")]
        )
    return ModelChoice(path.stem, path)


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``; repeats dropped, order kept.

    Raises:
        ConfigError: not a comma-separated list of positive integers.
    """
    out: list[int] = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigError(
                [FieldError("--batch", f"{part.strip()!r} is not a positive integer")]
            )
        if value not in out:
            out.append(value)
    return tuple(out)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``bench`` subcommand."""
    parser = sub.add_parser(
        "bench",
        parents=[common],
        help="measure images/s, watts, images/s/W and latency per profile and batch",
        description=(
            "For each profile: apply it, then for each batch size warm up and run back-to-back "
            "batches for --duration seconds while sampling the power rails. Prints the "
            "published table's columns: images/s, board (module input) W and images/s/W, "
            "GPU-rail W and images/s/W, latency. Without --profiles the board is measured as "
            "it is. The profile from before the bench is restored afterwards."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="M",
        help="an ONNX file, 'demo' (bundled), or resnet50|googlenet|vgg19|alexnet",
    )
    parser.add_argument("--batch", default="1,2,4,8", metavar="1,2,4,8", help="batch sizes")
    parser.add_argument("--profiles", metavar="maxq,maxp", help="profiles to apply in turn")
    parser.add_argument(
        "--precision",
        default="fp32",
        metavar="fp32,fp16,int8",
        help="precisions to run in turn; fp16/int8 need the TensorRT execution provider "
        "(refused on the simulated engine, which has fp32 figures only)",
    )
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="top-1 per precision on the demo model's labelled set (--model demo)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write report.md, results.csv, results.json and PNG charts (charts extra) here",
    )
    parser.add_argument(
        "--latency-budget-ms",
        type=float,
        metavar="N",
        help="mark the best throughput per profile whose p99 latency is within N ms",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, metavar="S", help="seconds per batch size"
    )
    parser.add_argument("--sim", metavar="BOARD", help="bench a fresh simulated board")
    parser.add_argument("--json", action="store_true", help="JSON object as the last line")
    parser.add_argument(
        "--monitor",
        choices=["auto", "ina3221", "jtop", "nvml", "sim", "none"],
        help="power monitor backend (default: auto; sim on a simulated board)",
    )
    parser.add_argument("--state-dir", type=Path, help="profile lock and state directory")
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="where built reference models are (<name>.onnx; default <state-dir>/models)",
    )
    parser.add_argument(
        "--no-restore", action="store_true", help="leave the last profile applied afterwards"
    )
    parser.set_defaults(func=_handle)


class SimulatedEngine:
    """The simulated engine of a reference network: board-model timing, no compute.

    Each batch takes the perf model's latency at the GPU cap read from the tree when the batch
    size is prepared (after the profile switch). Waits on an Event, so ``close`` interrupts;
    the clock must be a real one (a FakeClock never reaches the deadline).
    """

    simulated = True
    provider = "simulated"

    def __init__(self, root: Path, network: str, clock: Clock) -> None:
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.sim import perf_model

        self.root = root
        self.network = perf_model.network_key(network)
        self._clock = clock
        self._latency_s = 0.0
        self._free_at = float("-inf")
        self._wake = threading.Event()

    def prepare(self, batch: int) -> float:
        """Read the GPU cap; returns the GPU activity that makes the rail read the model's W."""
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.sim import perf_model

        run = perf_model.simulate(self.root, self.network, batch)
        self._latency_s = run.latency_s
        self._free_at = float("-inf")
        return run.gpu_activity

    def run(self, batch: int) -> None:
        """Take the batch's time."""

        now = self._clock.monotonic()
        # A GPU runs batches queued back to back without waiting for the host to wake up, so
        # a call that comes back within a batch time of the last one continues from its end
        # instead of losing the host's wake-up latency on every batch.
        late_s = now - self._free_at
        start = self._free_at if 0.0 <= late_s < self._latency_s else now
        self._free_at = start + self._latency_s
        while (left := self._free_at - self._clock.monotonic()) > 0:
            if self._wake.wait(left):
                raise InferenceError("simulated engine closed")

    def close(self) -> None:
        """Interrupt a batch in progress."""
        self._wake.set()


def _runner_factory(
    choice: ModelChoice,
    sim_root: Path | None,
    options: BenchOptions,
    state_dir: Path,
    models_dir: Path,
    clock: Clock,
) -> RunnerFactory:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.bench.runner import BatchRunner, OrtRunner

    if choice.network is not None and sim_root is not None:
        network = choice.network

        def simulated(_max_batch: int) -> BatchRunner:
            return SimulatedEngine(sim_root, network, clock)

        return simulated
    path = choice.path
    if path is None:
        raise ConfigError(
            [
                FieldError(
                    "--model",
                    f"{choice.name} is a reference network; on a real board it needs a built "
                    f"model: python tools/build_reference_models.py --out {models_dir} "
                    f"{choice.name} (or pass --models-dir DIR, or --model PATH.onnx)",
                )
            ]
        )
    scale = None
    if sim_root is not None:
        # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
        from edge_agent.sim.perf_model import time_scale

        def scale() -> float:
            return time_scale(sim_root)

    def real(max_batch: int) -> BatchRunner:
        return OrtRunner(path, options.precision, state_dir, clock, max_batch, scale)

    return real


@contextlib.contextmanager
def power_model(root: Path, clock: Clock, gauge: ActivityGauge) -> Any:
    """Run a simulated board's power model with the engine's activity as its load."""
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.sim.power_model import PowerModel

    model = PowerModel(root, clock, busy=gauge.get)
    model.start()
    try:
        yield model
    finally:
        model.stop()
        model.join(timeout_s=5.0)


def _usage(field: str, message: str) -> ConfigError:
    return ConfigError([FieldError(field, message)])


def _handle(args: argparse.Namespace) -> int:
    # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
    from edge_agent.bench.accuracy import demo_top1
    from edge_agent.bench.outputs import BenchProgress, available_providers, write_outputs
    from edge_agent.bench.precision import check_precisions, parse_precisions
    from edge_agent.bench.report import print_report, results_doc
    from edge_agent.bench.runner import ActivityGauge, Bench, BenchOptions
    from edge_agent.cli.profile import default_state_dir
    from edge_agent.hardware.root import Root

    if args.duration <= 0:
        raise _usage("--duration", "must be > 0")
    if args.latency_budget_ms is not None and args.latency_budget_ms <= 0:
        raise _usage("--latency-budget-ms", "must be > 0")
    batches = parse_batches(args.batch)
    precisions = parse_precisions(args.precision)
    profiles: tuple[str, ...] | None = None
    if args.profiles is not None:
        profiles = tuple(dict.fromkeys(p.strip() for p in args.profiles.split(",") if p.strip()))
        if not profiles:
            raise _usage("--profiles", "give at least one profile name")
    clock = SystemClock()
    with contextlib.ExitStack() as stack:
        root = Path(args.root)
        if args.sim:
            # Lazy: these pull in pydantic, numpy or the board tables; --help stays fast.
            from edge_agent.sim import board_names, create_board

            if args.sim not in board_names():
                raise _usage(
                    "--sim", f"unknown board {args.sim!r}; valid: {', '.join(board_names())}"
                )
            folder = Path(tempfile.mkdtemp(prefix=f"edge-agent-bench-{args.sim}-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            root = create_board(args.sim, folder).root
        sim_root = root if args.sim or is_simulated(root) else None
        state_dir = args.state_dir or default_state_dir(root)
        models_dir = args.models_dir or state_dir / "models"
        choice = resolve_model(args.model, models_dir)
        if args.accuracy and choice.name != "demo":
            raise _usage("--accuracy", "needs a labelled set: only the demo model has one")
        check_precisions(
            precisions,
            simulated=choice.network is not None and sim_root is not None,
            providers=available_providers(),
        )
        gauge = ActivityGauge()
        if sim_root is not None:
            stack.enter_context(power_model(sim_root, clock, gauge))
        steps = len(precisions) * len(profiles or (None,)) * len(batches)
        progress = stack.enter_context(BenchProgress(steps))
        results = []
        for precision in precisions:
            options = BenchOptions(
                batches=batches,
                profiles=profiles,
                precision=precision,
                duration_s=args.duration,
                latency_budget_ms=args.latency_budget_ms,
                monitor=args.monitor or ("sim" if sim_root is not None else "auto"),
                # A board made for this run is thrown away afterwards: nothing to restore.
                restore=not (args.no_restore or args.sim),
            )
            factory = _runner_factory(choice, sim_root, options, state_dir, models_dir, clock)
            bench = Bench(
                Root(root), options, factory, clock, state_dir, activity=gauge,
                progress=progress.step(precision), accuracy=demo_top1 if args.accuracy else None,
            )  # fmt: skip
            try:
                results.append(bench.run(choice.name))
            except ProfileError as err:
                raise _usage("--profiles", str(err)) from err
            except InferenceError as err:
                raise _usage("--model", str(err)) from err
    table = sys.stderr if args.json else sys.stdout
    for result in results:
        print_report(result, table)
    if args.out is not None:
        for path in write_outputs(results, args.out):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(results_doc(results), sort_keys=True) + "\n")
    failed = any(result.failed for result in results)
    return EXIT_RUNTIME if failed else EXIT_OK
