"""The bench's measurement loop with a known latency model, budget choice and argument parsing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.bench.report import BenchRow, best_batch, clocks_text, result_dict
from edge_agent.bench.runner import ActivityGauge, BatchRunner, Bench, BenchOptions
from edge_agent.cli.bench import REFERENCE_NETWORKS, parse_batches, reference_key, resolve_model
from edge_agent.clock import SystemClock
from edge_agent.errors import ConfigError, InferenceError
from edge_agent.hardware.root import Root
from edge_agent.pipeline.model_meta import bundled_demo_model
from edge_agent.sim import perf_model


class LinearLatencyEngine:
    """An engine whose batch takes 5 ms + 5 ms per image (waits on an Event, no compute)."""

    simulated = True
    provider = "linear"

    def __init__(self, clock: SystemClock, refuse: int | None = None) -> None:
        self.clock = clock
        self.refuse = refuse
        self.prepared: list[int] = []
        self.closed = threading.Event()

    @staticmethod
    def latency_s(batch: int) -> float:
        return 0.005 + 0.005 * batch

    def prepare(self, batch: int) -> float:
        if batch == self.refuse:
            raise InferenceError(f"batch {batch} is not supported")
        self.prepared.append(batch)
        return 0.5

    def run(self, batch: int) -> None:
        deadline = self.clock.monotonic() + self.latency_s(batch)
        while (left := deadline - self.clock.monotonic()) > 0:
            if self.closed.wait(left):
                raise InferenceError("closed")

    def close(self) -> None:
        self.closed.set()


def test_known_latency_model_gives_throughput_latency_and_budget(tmp_path: Path) -> None:
    clock = SystemClock()
    engine = LinearLatencyEngine(clock, refuse=16)
    seen: list[int] = []

    def factory(max_batch: int) -> BatchRunner:
        seen.append(max_batch)
        return engine

    gauge = ActivityGauge()
    options = BenchOptions(
        batches=(1, 2, 4, 8, 16),
        duration_s=0.2,
        latency_budget_ms=30.0,
        settle_s=0.0,
        monitor="none",
    )
    bench = Bench(Root(tmp_path), options, factory, clock, tmp_path / "state", activity=gauge)
    result = bench.run("linear")
    assert seen == [16]
    assert engine.prepared == [1, 2, 4, 8]
    assert engine.closed.is_set()
    assert gauge.get() == 0.0  # idle again afterwards
    rows = {r.batch: r for r in result.rows}
    for batch in (1, 2, 4, 8):
        row = rows[batch]
        expected_ms = LinearLatencyEngine.latency_s(batch) * 1000.0
        assert row.latency_ms == pytest.approx(expected_ms, rel=0.25)
        assert row.images_per_s == pytest.approx(batch * 1000.0 / expected_ms, rel=0.25)
        assert row.board_w is None  # no power monitor: no watts, never 0 W
        assert row.board_ips_per_w is None
    assert rows[16].error == "batch 16 is not supported"
    assert rows[16].images_per_s is None
    # 10, 15, 25, 45 ms per batch: batch 4 is the fastest within 35 ms.
    assert result.best_within_budget() == {"current": 4}
    doc = result_dict(result)
    assert doc["best_within_budget"] == {"current": 4}
    assert doc["profiles"] == {"current": {"status": "measured", "error": None, "clocks": {}}}
    assert [r["batch"] for r in doc["rows"]] == [1, 2, 4, 8, 16]
    assert not result.failed


def row(
    profile: str, batch: int, ips: float | None, p99: float | None, error: str | None = None
) -> BenchRow:
    return BenchRow(profile, batch, False, images_per_s=ips, p99_ms=p99, error=error)


def test_best_batch_takes_the_fastest_within_budget() -> None:
    rows = [
        row("maxq", 1, 60.0, 16.0),
        row("maxq", 2, 75.0, 27.0),
        row("maxq", 4, 80.0, 50.0),
        row("maxq", 8, None, None, error="boom"),
        row("maxp", 1, 80.0, 12.0),
        row("maxp", 2, 80.0, 21.0),  # a tie goes to the smaller batch
    ]
    assert best_batch(rows, "maxq", 30.0) == 2
    assert best_batch(rows, "maxq", 50.0) == 4
    assert best_batch(rows, "maxq", 10.0) is None
    assert best_batch(rows, "maxp", 100.0) == 1
    assert best_batch(rows, "other", 100.0) is None


def test_parse_batches() -> None:
    assert parse_batches("1,2, 4,8,2") == (1, 2, 4, 8)
    for bad in ("", "1,,2", "-1", "two", "0"):
        with pytest.raises(ConfigError) as info:
            parse_batches(bad)
        assert info.value.errors[0].path == "--batch"


def test_resolve_model(tmp_path: Path) -> None:
    assert set(REFERENCE_NETWORKS) == set(perf_model.NETWORKS)
    assert reference_key("ResNet-50") == "resnet50"
    assert reference_key("mobilenet") is None
    demo = resolve_model("demo")
    assert (demo.name, demo.path, demo.network) == ("demo", bundled_demo_model(), None)
    unbuilt = resolve_model("GoogLeNet", tmp_path)
    assert (unbuilt.name, unbuilt.path, unbuilt.network) == ("googlenet", None, "googlenet")
    built = tmp_path / "googlenet.onnx"
    built.write_bytes(b"")
    assert resolve_model("googlenet", tmp_path).path == built
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"")
    assert resolve_model(str(own)).name == "mine"
    with pytest.raises(ConfigError) as info:
        resolve_model(str(tmp_path / "missing.onnx"))
    assert "resnet50" in str(info.value.errors[0])


def test_clocks_text() -> None:
    clocks = {
        "nvpmodel_mode": "MAXQ",
        "gpu_max_hz": 854250000,
        "cpus_online": [0, 3, 4, 5],
        "cpu_max_khz": {"cpu0": 1200000, "cpu3": 1200000},
        "emc_max_hz": 0,
        "jetson_clocks_active": False,
    }
    assert clocks_text(clocks) == "mode MAXQ, GPU 854 MHz, CPUs 0,3,4,5 at 1200 MHz, EMC uncapped"
    assert clocks_text({}) == "clocks unknown"
