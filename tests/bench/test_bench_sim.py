"""``edge-agent bench`` on simulated boards: the published TX2 table, real ORT, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli.main import main
from edge_agent.sim.tree import SimBoard, create_board
from tests.bench.published import load_tx2

SHORT = "0.5"
PUBLISHED_TX2 = load_tx2()  # the independent copy, not the simulator's calibration table


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


def bench(
    root: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``edge-agent --root ROOT bench ARGS --json``; (exit code, JSON or None, stderr)."""
    code = main(["--root", str(root), "bench", *args, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, err


def rows_of(result: dict[str, Any], profile: str) -> dict[int, dict[str, Any]]:
    return {r["batch"]: r for r in result["rows"] if r["profile"] == profile}


@pytest.mark.parametrize("network", ["resnet50", "googlenet"])
def test_tx2_reproduces_published_table(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str], network: str
) -> None:
    code, result, err = bench(
        tx2.root, capsys, "--model", network, "--batch", "1,8,64", "--profiles", "maxq,maxp",
        "--duration", SHORT,
    )  # fmt: skip
    assert code == 0, err
    assert result is not None
    assert (result["board"], result["model"], result["simulated"]) == ("jetson-tx2", network, True)
    assert result["profiles"]["maxq"]["clocks"]["gpu_max_hz"] == 854250000
    assert result["profiles"]["maxp"]["clocks"]["gpu_max_hz"] == 1122000000
    checked = 0
    for profile in ("maxq", "maxp"):
        rows = rows_of(result, profile)
        published = PUBLISHED_TX2[(profile, network)]
        for batch in (1, 8, 64):
            row = rows[batch]
            images_s, gpu_w = published[batch].images_per_s, published[batch].gpu_w
            assert row["simulated"] is True
            assert row["error"] is None
            assert row["images_per_s"] == pytest.approx(images_s, rel=0.10), (profile, batch)
            assert row["gpu_w"] == pytest.approx(gpu_w, rel=0.10), (profile, batch)
            assert row["gpu_ips_per_w"] == pytest.approx(row["images_per_s"] / row["gpu_w"])
            assert row["board_w"] > row["gpu_w"]  # the input rail feeds the GPU and the rest
            # MLPerf: mJ per image = average W x seconds x 1000 / images.
            assert row["mj_per_image"] == pytest.approx(1000.0 / row["board_ips_per_w"], rel=1e-6)
            assert row["latency_ms"] == pytest.approx(1000.0 * batch / images_s, rel=0.10)
            checked += 1
    assert checked == 6
    maxq, maxp = rows_of(result, "maxq"), rows_of(result, "maxp")
    for batch in (1, 8, 64):
        assert maxq[batch]["board_ips_per_w"] > maxp[batch]["board_ips_per_w"]  # Max-Q: per joule
        assert maxq[batch]["gpu_ips_per_w"] > maxp[batch]["gpu_ips_per_w"]
        assert maxq[batch]["images_per_s"] < maxp[batch]["images_per_s"]  # Max-P: per second
    assert "simulated engine" in err  # the human table says so too


def test_latency_budget_picks_best_batch_per_profile(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    # The TX2 ResNet-50 model: batch 1/2/4 take 15.5/26.6/49.0 ms at Max-Q and
    # 12.1/20.8/38.3 ms at Max-P, so a 45 ms budget allows batch 2 and batch 4 respectively.
    code, result, err = bench(
        tx2.root, capsys, "--model", "ResNet-50", "--batch", "1,2,4", "--profiles", "maxq,maxp",
        "--duration", "0.3", "--latency-budget-ms", "45",
    )  # fmt: skip
    assert code == 0, err
    assert result is not None
    assert result["best_within_budget"] == {"maxq": 2, "maxp": 4}
    assert result["latency_budget_ms"] == 45.0
    assert "maxq: batch 2, maxp: batch 4" in err


def test_demo_model_runs_on_real_ort(tx2: SimBoard, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, err = bench(
        tx2.root, capsys, "--model", "demo", "--batch", "1,4", "--profiles", "maxq",
        "--duration", "0.3",
    )  # fmt: skip
    assert code == 0, err
    assert result is not None
    assert result["simulated"] is False
    assert result["provider"] == "CPUExecutionProvider"
    rows = rows_of(result, "maxq")
    assert sorted(rows) == [1, 4]
    for row in rows.values():
        assert row["simulated"] is False
        assert row["images_per_s"] > 0
        assert row["board_w"] > 0
        assert row["gpu_w"] > 0
        assert row["board_ips_per_w"] > 0
        assert row["p99_ms"] >= row["latency_ms"] * 0.5 > 0


def test_profile_before_the_bench_is_restored(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (tx2.devfreq_dir / "max_freq").read_text(encoding="utf-8")
    code, result, _ = bench(
        tx2.root, capsys, "--model", "resnet50", "--batch", "1", "--profiles", "maxq",
        "--duration", "0.2",
    )  # fmt: skip
    assert code == 0
    assert result is not None
    assert result["profiles"]["maxq"]["status"] == "measured"
    assert (tx2.devfreq_dir / "max_freq").read_text(encoding="utf-8") == before


def test_without_profiles_the_board_is_measured_as_it_is(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tx2.root), "profile", "maxp"]) == 0
    capsys.readouterr()
    code, result, _ = bench(
        tx2.root, capsys, "--model", "googlenet", "--batch", "1", "--duration", "0.3"
    )
    assert code == 0
    assert result is not None
    assert list(result["profiles"]) == ["maxp"]  # the matching profile names the rows
    (row,) = result["rows"]
    assert row["images_per_s"] == pytest.approx(179, rel=0.10)


def test_unknown_profile_exits_2_listing_valid_ones(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, err = bench(
        tx2.root, capsys, "--model", "resnet50", "--profiles", "maxq,turbo", "--duration", "0.2"
    )
    assert code == 2
    assert result is None  # refused before anything ran
    assert "turbo" in err
    for name in ("maxq", "maxp", "maxn", "maxp_arm", "maxp_denver"):
        assert name in err


def test_reboot_required_profile_is_skipped_not_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xavier = create_board("jetson-agx-xavier", tmp_path / "agx")
    code, result, _ = bench(
        xavier.root, capsys, "--model", "resnet50", "--batch", "1,2", "--profiles",
        "maxp,mode_10w", "--duration", "0.2", "--no-restore",
    )  # fmt: skip
    assert code == 0  # a skipped profile is not a failure
    assert result is not None
    assert result["profiles"]["mode_10w"]["status"] == "skipped"
    skipped = rows_of(result, "mode_10w")
    assert sorted(skipped) == [1, 2]
    for row in skipped.values():
        assert "reboot" in row["error"]
        assert row["images_per_s"] is None
    assert all(r["images_per_s"] > 0 for r in rows_of(result, "maxp").values())
    # nvpmodel's reboot prompt was not answered: the board is still in Max-P.
    assert main(["--root", str(xavier.root), "profile", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["profile"], shown["nvpmodel_mode"]) == ("maxp", "MODE_30W_ALL")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--model", "resnet50", "--batch", "1,x"], "--batch"),
        (["--model", "resnet50", "--batch", "0"], "--batch"),
        (["--model", "resnet50", "--duration", "0"], "--duration"),
        (["--model", "no-such.onnx"], "--model"),
        (["--model", "resnet50", "--sim", "jetson-tx9"], "--sim"),
    ],
)
def test_bad_arguments_exit_2(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    code, result, err = bench(tx2.root, capsys, *args)
    assert code == 2
    assert result is None
    assert err.startswith(f"{field}: ")


def test_reference_network_on_a_real_board_needs_a_built_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = bench(
        tmp_path, capsys, "--model", "vgg19", "--state-dir", str(tmp_path / "state")
    )
    assert code == 2
    assert "tools/build_reference_models.py" in err
    assert str(tmp_path / "state" / "models") in err


def test_sim_flag_creates_a_throwaway_board(capsys: pytest.CaptureFixture[str]) -> None:
    # maxp (25W) is the board's default mode; maxq (7W) would need a reboot from it.
    code, result, _ = bench(
        Path("/nonexistent"), capsys, "--sim", "jetson-orin-nano", "--model", "resnet50",
        "--batch", "2", "--profiles", "maxp", "--duration", "0.2",
    )  # fmt: skip
    assert code == 0
    assert result is not None
    assert result["board"].startswith("jetson-orin-nano")  # the profile file's board id
    assert result["rows"][0]["images_per_s"] > 0
    assert result["rows"][0]["gpu_w"] > 0
