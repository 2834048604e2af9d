"""The DVFS Pareto chart: the front is exactly the undominated points, and the governor's
evaluation writes the chart from the simulated board's own operating points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.image import imread

from edge_agent.bench.charts import HEIGHT_PX, WIDTH_PX, DvfsPoint, pareto_front

TOOL = Path(__file__).resolve().parents[2] / "tools" / "governor_eval.py"


def _p(label: str, p99_ms: float, energy_mj: float) -> DvfsPoint:
    return DvfsPoint(label, energy_mj, p99_ms, meets_slo=True)


def test_front_keeps_only_the_points_nothing_beats_on_both() -> None:
    points = [
        _p("fast-costly", 10, 120),
        _p("fast-cheaper", 12, 100),
        _p("dominated", 15, 110),  # slower than fast-cheaper and dearer
        _p("slow-cheapest", 40, 90),
        _p("tie-later", 40, 90),  # the same on both: the first one stands for them
        _p("slowest-dearer", 80, 95),
    ]
    assert [p.label for p in pareto_front(points)] == [
        "fast-costly",
        "fast-cheaper",
        "slow-cheapest",
    ]


finite = st.floats(min_value=0.1, max_value=1e4, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=40))
def test_front_is_the_set_of_undominated_points(pairs: list[tuple[float, float]]) -> None:
    points = [_p(str(i), lat, mj) for i, (lat, mj) in enumerate(pairs)]
    front = pareto_front(points)

    def dominates(a: DvfsPoint, b: DvfsPoint) -> bool:
        no_worse = a.p99_ms <= b.p99_ms and a.energy_mj <= b.energy_mj
        return no_worse and (a.p99_ms < b.p99_ms or a.energy_mj < b.energy_mj)

    for kept in front:
        assert not any(dominates(other, kept) for other in points)
    for point in points:
        if point not in front:
            assert any(
                dominates(kept, point)
                or (kept.p99_ms, kept.energy_mj) == (point.p99_ms, point.energy_mj)
                for kept in front
            )
    assert [p.p99_ms for p in front] == sorted(p.p99_ms for p in front)


@pytest.mark.slow
def test_governor_eval_writes_the_pareto_chart(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable, str(TOOL), "--segment-s", "3", "--boards", "jetson-orin-nano",
            "--out", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].startswith("slo_energy_vs_oracle=")
    image = imread(tmp_path / "dvfs_pareto_jetson-orin-nano.png")
    assert image.shape == (HEIGHT_PX, WIDTH_PX, 4)
    assert image[..., :3].std() > 0.05  # drawn, not blank
