"""The independent copy of the published TX2 table, and the simulator's table against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.sim import perf_model
from tests.bench.published import TX2_TABLE, load_tx2


def test_the_copy_holds_both_tx2_tables() -> None:
    table = load_tx2()
    networks = {"alexnet", "googlenet", "resnet50", "vgg19"}
    assert set(table) == {(p, n) for p in ("maxq", "maxp") for n in networks}
    assert all(sorted(rows) == [1, 2, 4, 8, 64, 128] for rows in table.values())
    row = table[("maxq", "resnet50")][128]
    assert (row.images_per_s, row.board_w, row.gpu_w, row.latency_ms) == (89.9, 5.5, 2.4, 1424.3)
    assert table[("maxp", "googlenet")][1].gpu_w == 4.14
    assert TX2_TABLE.read_text(encoding="utf-8").startswith("# Jetson TX2 inference figures")


def test_the_simulators_calibration_table_matches_the_copy() -> None:
    table = load_tx2()
    for (profile, network), rows in perf_model.PUBLISHED.items():
        copied = table[(profile, network)]
        for batch, (images_s, gpu_w) in zip(perf_model.PUBLISHED_BATCHES, rows, strict=True):
            assert (images_s, gpu_w) == (copied[batch].images_per_s, copied[batch].gpu_w)


def test_a_malformed_copy_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "t.tsv"
    bad.write_text("JETSON TX2 (MAXQ MODE)\nResNet-50\t1\t64.3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unexpected line"):
        load_tx2(bad)
