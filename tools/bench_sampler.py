"""CPU cost of the power sampler on a simulated board at 100 Hz (target < 2 % of one core).

Runs, in one process, ``--repeat`` times: a baseline of the same wall time with no sampler (whatever
the interpreter costs idle), then the real :class:`Sampler` thread reading the simulated
board's INA3221 files through the real reader. CPU is ``time.process_time`` (all threads);
the sampler's share is (CPU with sampler - CPU of the baseline) / wall seconds; the median
of the runs is reported.

The sampler keeps each pass raw and builds its reading when a query asks for it, so the bench
also times that decoding (warm, in the querying thread) and prints it as context: the ledger
and telemetry pay it once per sample they look at.

    python tools/bench_sampler.py --board jetson-tx2 --seconds 3 --hz 100

The last line is ``sampler_cpu_fraction=<fraction of one core>``.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_agent.clock import SystemClock  # noqa: E402
from edge_agent.hardware.ina3221 import InaMonitor  # noqa: E402
from edge_agent.hardware.root import Root  # noqa: E402
from edge_agent.power.sampler import Sampler  # noqa: E402

TARGET = 0.02


def _board_root(board: str, folder: Path) -> tuple[Root, str]:
    """The simulator's board tree if edge_agent.sim has one, else the test fake's TX2 rails."""
    sim = importlib.import_module("edge_agent.sim")
    create_board = getattr(sim, "create_board", None)
    if create_board is not None:
        created = create_board(board, folder)
        root = getattr(created, "root", folder)
        return (root if isinstance(root, Root) else Root(root)), f"edge_agent.sim {board}"
    fakes = importlib.import_module("tests.fakes.ina")
    fakes.make_ina3221(folder, "iio", fakes.TX2_RAILS, bus=0)
    return Root(folder), "tests.fakes.ina TX2 rails (edge_agent.sim.create_board not found)"


def _cpu_over(seconds: float) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    threading.Event().wait(seconds)
    return time.process_time() - cpu0, time.perf_counter() - wall0


def _empty_wake_fraction(seconds: float, hz: float) -> float:
    """CPU share of a thread that only wakes ``hz`` times a second (this host's floor)."""
    stop = threading.Event()

    def loop() -> None:
        deadline = time.monotonic()
        while not stop.wait(max(0.0, deadline - time.monotonic())):
            deadline += 1.0 / hz

    thread = threading.Thread(target=loop, name="empty-wake")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    thread.start()
    threading.Event().wait(seconds)
    stop.set()
    thread.join()
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def main() -> int:
    """Run the baseline and the sampler; print the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="jetson-tx2")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hz", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-sampler-"))
    try:
        root, what = _board_root(args.board, folder)
        clock = SystemClock()
        monitor = InaMonitor(root, clock)
        if not monitor.available:
            print(f"no monitor on the board: {monitor.reason}")
            print("sampler_cpu_fraction=nan")
            return 1
        print(f"board: {what}; {monitor.reason}")

        fractions: list[float] = []
        decode_fractions: list[float] = []
        for run in range(args.repeat):
            base_cpu, base_wall = _cpu_over(args.seconds)
            sampler = Sampler(monitor, clock, interval_s=1.0 / args.hz, capacity=10_000)
            sampler.start()
            try:
                cpu, wall = _cpu_over(args.seconds)
            finally:
                sampler.stop()
                sampler.join(5.0)
            stats = sampler.stats()
            decode_s = time.perf_counter()
            decoded = len(sampler.samples())
            decode_us = (time.perf_counter() - decode_s) / max(decoded, 1) * 1e6
            fraction = max(0.0, cpu / wall - base_cpu / base_wall)
            fractions.append(fraction)
            decode_fractions.append(decode_us * 1e-6 * stats.samples / wall)
            per_sample_us = (cpu - base_cpu * wall / base_wall) / max(stats.samples, 1) * 1e6
            print(
                f"run {run + 1}: baseline cpu {base_cpu * 1000:.1f} ms / {base_wall:.2f} s; "
                f"sampler {stats.samples} samples ({stats.samples / wall:.1f} Hz, late "
                f"{stats.late}), cpu {cpu * 1000:.1f} ms / {wall:.2f} s, "
                f"{per_sample_us:.0f} us/sample, fraction {fraction:.4f}; decoding a sample "
                f"for a query: {decode_us:.1f} us"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    median = statistics.median(fractions)
    decoding = statistics.median(decode_fractions)
    print(
        f"context: decoding every sample for queries (the ledger and telemetry do) adds "
        f"{decoding:.4f} in the querying threads: {median + decoding:.4f} in all"
    )
    floor = _empty_wake_fraction(args.seconds, args.hz)
    print(
        f"context: an empty thread waking at {args.hz:.0f} Hz costs {floor:.4f} of a core on this "
        f"host; the sampler's own work is about {max(0.0, median - floor):.4f}"
    )
    verdict = "ok" if median < TARGET else "ABOVE TARGET"
    print(f"{len(monitor.rail_names())} rails at {args.hz:.0f} Hz; median of {args.repeat} runs")
    print(f"target < {TARGET}: {verdict} (a loaded machine inflates this; see per-run lines)")
    print(f"sampler_cpu_fraction={median:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
