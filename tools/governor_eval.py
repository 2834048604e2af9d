#!/usr/bin/env python3
"""Replay a load trace on simulated boards under fixed presets, the ``slo`` governor and an
oracle; print energy per inference, p99, SLO windows, drops and switches (all simulated).

The trace (per board): ResNet-50 at 10 -> 60 -> 20 fps, then a model change to GoogLeNet at
20 fps. It runs in simulated time (a discrete-event replay over the perf and power models), so
it takes seconds. The last line is
``slo_energy_vs_oracle=... slo_energy_vs_maxn=... slo_windows_met=... probes_to_converge=...``
(the worst board; energy ratios as +x% / -x%).

    .venv/bin/python tools/governor_eval.py [--segment-s 30] [--boards jetson-tx2,jetson-orin-nano]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.governor.policy import GovernorParams
from edge_agent.sim.boards import get_board
from edge_agent.sim.governor_eval import Evaluation, evaluate, landscape, prepare
from edge_agent.sim.governor_replay import Segment

# p99 latency SLO per board (s): a few frame intervals at 60 fps on the TX2, tighter on Orin.
SLO_S = {"jetson-tx2": 0.060, "jetson-orin-nano": 0.020}


def trace(segment_s: float) -> list[Segment]:
    return [
        Segment(segment_s, 10.0, "resnet50"),
        Segment(segment_s, 60.0, "resnet50"),
        Segment(segment_s, 20.0, "resnet50"),
        Segment(segment_s, 20.0, "googlenet"),
    ]


def run(board: str, segment_s: float, verbose: bool) -> Evaluation:
    params = GovernorParams(policy="slo", slo_latency_s=SLO_S.get(board, 0.05))
    ev = evaluate(get_board(board), trace(segment_s), params)
    slo_ms = params.slo_latency_s * 1e3
    print(f"\n{board} (simulated; SLO p99 <= {slo_ms:.0f} ms, trace 10 -> 60 -> 20 fps ResNet-50,")
    print(f"then GoogLeNet at 20 fps, {segment_s:.0f} s each)")
    print(f"{'run':<12} {'mJ/inf':>8} {'p99 ms':>8} {'SLO win':>8} {'drops':>6} {'switches':>9}")
    for r in ev.runs.values():
        per_seg = "/".join(str(n) for n in r.per_segment_switches)
        print(f"{r.name:<12} {r.energy_mj:>8.1f} {r.p99_ms:>8.1f} {r.windows_met:>8.1%} "
              f"{r.drops:>6d} {r.switches:>3d} ({per_seg})")  # fmt: skip
    met = ev.slo_windows_met_where_maxn
    print(f"slo vs oracle {ev.slo_vs_oracle:+.1%}, vs maxn {ev.slo_vs_maxn:+.1%} ", end="")
    print(f"(the oracle: {ev.oracle_vs_maxn:+.1%}), SLO windows where maxn meets it {met:.1%}")
    print(f"probes to settle per segment {ev.probes}, ", end="")
    print(f"changes after each step {ev.changes_per_step}")
    print("oracle points per segment:", "; ".join(ev.runs["oracle"].points))
    print("targets:", ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in targets(ev)))
    if verbose:
        for line in ev.reasons:
            print("  ", line)
    return ev


def targets(ev: Evaluation) -> list[tuple[str, bool]]:
    """The issue's targets for one board."""
    probes_ok = all(0 <= p <= 15 for p in ev.probes)
    return [
        ("SLO windows >= 99%", ev.slo_windows_met_where_maxn >= 0.99),
        ("within 10% of the oracle", ev.slo_vs_oracle <= 0.10),
        (">= 20% below maxn", ev.slo_vs_maxn <= -0.20),
        ("settles within 15 probes", probes_ok),
        ("<= 2 changes per step", all(n <= 2 for n in ev.changes_per_step)),
    ]


def pareto(board: str, segment_s: float, out: Path) -> Path:
    """The energy/latency landscape of every DVFS point on the trace's 60 fps segment."""
    # Lazy: matplotlib is the optional charts extra; the table above needs none of it.
    from edge_agent.bench.charts import DvfsPoint, pareto_chart

    slo_s = SLO_S.get(board, 0.05)
    segment = trace(segment_s)[1]
    runs = landscape(prepare(get_board(board)), segment, slo_s, seed=0)
    points = [
        DvfsPoint(
            r.point.label(),
            r.result.energy_per_inference_j * 1e3,
            r.result.p99_s * 1e3,
            r.qualifies,
        )
        for r in runs
    ]
    title = f"{board} (simulated): ResNet-50 at {segment.fps:g} fps, every DVFS point"
    return pareto_chart(points, out / f"dvfs_pareto_{board}.png", title=title, slo_ms=slo_s * 1e3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segment-s", type=float, default=30.0)
    ap.add_argument("--boards", default="jetson-tx2,jetson-orin-nano")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every governor change")
    ap.add_argument(
        "--out", type=Path, help="also write dvfs_pareto_<board>.png (the 60 fps segment)"
    )
    args = ap.parse_args(argv)
    evals = [run(b, args.segment_s, args.verbose) for b in args.boards.split(",")]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for board in args.boards.split(","):
            print("wrote", pareto(board, args.segment_s, args.out))
    worst_oracle = max(e.slo_vs_oracle for e in evals)
    worst_maxn = max(e.slo_vs_maxn for e in evals)
    met = min(e.slo_windows_met_where_maxn for e in evals)
    probes = [p for e in evals for p in e.probes]
    probe_txt = "never" if -1 in probes else str(max(probes))
    print(f"slo_energy_vs_oracle={worst_oracle:+.1%} slo_energy_vs_maxn={worst_maxn:+.1%} "
          f"slo_windows_met={met:.1%} probes_to_converge={probe_txt}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
