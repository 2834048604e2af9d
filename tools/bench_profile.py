#!/usr/bin/env python3
"""Profile switch plus verification on every simulated board (target: median < 500 ms).

For each board the benchmark alternates between two presets that switch live (maxq/maxp/maxn,
skipping pairs whose GPU power-gating masks differ; the AGX Orin is first moved to MAXN through
the simulated reboot path) and times ``ProfileController.apply``: lock, snapshot, plan,
``nvpmodel -m``, read-back with ``nvpmodel -q`` and sysfs, verification, persistence.

Baseline, same run: a bare ``nvpmodel -m`` process between the same two modes, the floor no
switch can go under. The ratio shows what verification and bookkeeping add.

    python tools/bench_profile.py [--repeat 20] [--board jetson-tx2 ...]

Last line: ``profile_switch_median_ms=<the largest per-board median>``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edge_agent.clock import SystemClock
from edge_agent.config import ProfileConfig
from edge_agent.hardware import commands
from edge_agent.hardware.nvpmodel import Nvpmodel, needs_reboot
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController
from edge_agent.sim.boards import board_names
from edge_agent.sim.tree import create_board

PRESETS = ("maxq", "maxp", "maxn")


def _live_pair(ctl: ProfileController, nvp: Nvpmodel) -> tuple[str, str]:
    """Two presets whose modes switch without a reboot (the board is moved to the first)."""
    conf = nvp.load_conf()
    ids = {}
    for name in PRESETS:
        mode_name = ctl.profile(name).nvpmodel_mode
        mode = conf.mode_by_name(mode_name) if mode_name else None
        if mode is not None:
            ids[name] = mode.id
    for first, second in itertools.combinations([n for n in PRESETS if n in ids], 2):
        if ids[first] != ids[second] and not needs_reboot(conf, ids[first], ids[second]):
            current = nvp.read_status()
            if current is not None and needs_reboot(conf, current, ids[first]):
                ctl.apply(first, allow_reboot=True)  # the sim "reboots" into it
            return first, second
    raise SystemExit(f"no two presets switch live on {ctl.board_file()[1].board}")


def bench_board(board: str, repeat: int, workdir: Path) -> tuple[float, float]:
    """Median switch+verify ms and median bare ``nvpmodel -m`` ms on one board."""
    sim = create_board(board, workdir / board)
    root = Root(sim.root)
    ctl = ProfileController(root, ProfileConfig(), sim.root / "var/lib/edge-agent", SystemClock())
    nvp = Nvpmodel(root)
    first, second = _live_pair(ctl, nvp)
    ctl.apply(first)
    switch_ms: list[float] = []
    for index in range(repeat):
        name = second if index % 2 == 0 else first
        start = time.perf_counter()
        report = ctl.apply(name)
        switch_ms.append((time.perf_counter() - start) * 1000.0)
        if not report.verified:
            raise SystemExit(f"{board}: {name} not verified")
    conf = nvp.load_conf()
    mode_ids = []
    for name in (first, second):
        mode_name = ctl.profile(name).nvpmodel_mode
        mode = conf.mode_by_name(mode_name) if mode_name else None
        assert mode is not None
        mode_ids.append(mode.id)
    bare_ms: list[float] = []
    for index in range(repeat):
        argv = [str(sim.nvpmodel), "-m", str(mode_ids[index % 2])]
        start = time.perf_counter()
        commands.run(argv, timeout_s=30, check=True)
        bare_ms.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(switch_ms), statistics.median(bare_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="switches per board")
    parser.add_argument("--board", action="append", help="board(s) to run (default: all)")
    args = parser.parse_args(argv)
    boards = args.board or board_names()
    medians: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        for board in boards:
            switch, bare = bench_board(board, args.repeat, Path(tmp))
            medians.append(switch)
            print(
                f"{board:<18} switch+verify median {switch:7.1f} ms   "
                f"bare nvpmodel -m median {bare:7.1f} ms   ratio {switch / bare:4.2f}   "
                f"(n={args.repeat})"
            )
    print(f"profile_switch_median_ms={max(medians):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
