"""``edge-agent bench --out DIR``: report files, charts, and precisions refused, not relabelled."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from matplotlib.image import imread

from edge_agent.bench.accuracy import HOLDOUT_LIMIT
from edge_agent.bench.charts import HEIGHT_PX, WIDTH_PX
from edge_agent.bench.report import COLUMNS, BenchRow, row_cells
from edge_agent.cli.main import main
from edge_agent.pipeline.model_meta import bundled_demo_model, load_model_meta
from edge_agent.pipeline.optimize import SYNTHETIC, labelled_images, top1


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


def _printed_rows(text: str) -> dict[tuple[str, int], list[str]]:
    """(profile, batch) -> the cells of each row of the printed rich tables."""
    rows: dict[tuple[str, int], list[str]] = {}
    profile = ""
    for line in text.splitlines():
        if "jetson-tx2 MAX" in line:
            profile = line.split("jetson-tx2 ", 1)[1].split(":", 1)[0].strip().lower()
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[(profile, int(cells[0].rstrip(" *")))] = cells
    return rows


def _row(doc: dict[str, str]) -> BenchRow:
    def num(key: str) -> float | None:
        return float(doc[key]) if doc[key] else None

    return BenchRow(
        profile=doc["profile"],
        batch=int(doc["batch"]),
        simulated=doc["simulated"] == "True",
        images_per_s=num("images_per_s"),
        board_w=num("board_w"),
        board_ips_per_w=num("board_ips_per_w"),
        gpu_w=num("gpu_w"),
        gpu_ips_per_w=num("gpu_ips_per_w"),
        latency_ms=num("latency_ms"),
        p99_ms=num("p99_ms"),
        mj_per_image=num("mj_per_image"),
    )


@pytest.mark.slow
def test_out_writes_report_csv_json_and_two_charts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(
        [
            "bench", "--sim", "jetson-tx2", "--model", "resnet50", "--batch", "1,8,64",
            "--profiles", "maxq,maxp", "--duration", "0.3", "--out", str(out),
        ]
    )  # fmt: skip
    printed, err = capsys.readouterr()
    assert code == 0, err
    names = {"report.md", "results.csv", "results.json"}
    names |= {"images_per_watt.png", "throughput_latency.png"}
    assert {p.name for p in out.iterdir()} == names

    for png in ("images_per_watt.png", "throughput_latency.png"):
        image = imread(out / png)
        assert image.shape == (HEIGHT_PX, WIDTH_PX, 4), png
        assert image[..., :3].std() > 0.05, f"{png} is blank"

    table = _printed_rows(printed)
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["profile"], int(r["batch"])) for r in rows] == [
        (p, b) for p in ("maxq", "maxp") for b in (1, 8, 64)
    ]
    assert set(table) == {(r["profile"], int(r["batch"])) for r in rows}
    for doc in rows:
        assert doc["precision"] == "fp32"
        cells = table[(doc["profile"], int(doc["batch"]))]
        assert len(cells) == len(COLUMNS)
        assert [c.rstrip(" *") for c in row_cells(_row(doc), False)] == [
            c.rstrip(" *") for c in cells
        ]

    result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (result["board"], result["model"], result["simulated"]) == (
        "jetson-tx2",
        "resnet50",
        True,
    )
    assert [r["images_per_s"] for r in result["rows"]] == [float(r["images_per_s"]) for r in rows]

    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Bench: resnet50 on jetson-tx2")
    assert "## MAXQ fp32" in report
    assert "## MAXP fp32" in report
    assert "simulated engine" in report
    assert "![images_per_watt](images_per_watt.png)" in report
    assert "![throughput_latency](throughput_latency.png)" in report
    for cells in table.values():
        assert "| " + " | ".join(c.rstrip(" *") for c in cells) + " |" in report


def test_simulated_engine_refuses_reduced_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "bench", "--sim", "jetson-tx2", "--model", "resnet50", "--batch", "1",
            "--precision", "fp32,fp16,int8", "--duration", "0.2", "--out", str(out),
        ]
    )  # fmt: skip
    printed, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("--precision: fp16, int8: the simulated engine")
    assert "fp32 figures under another title" in err
    assert printed == ""
    assert not out.exists(), "refused before anything ran"


def test_cpu_engine_refuses_reduced_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench", "--sim", "jetson-tx2", "--model", "demo", "--batch", "1",
            "--precision", "fp16", "--duration", "0.2",
        ]
    )  # fmt: skip
    _printed, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("--precision: fp16 needs the TensorRT execution provider")
    assert "edge-agent optimize MODEL --precision fp16" in err


def test_unknown_precision_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--sim", "jetson-tx2", "--model", "resnet50", "--precision", "fp8"])
    assert code == 2
    assert capsys.readouterr().err.startswith("--precision: 'fp8' is not one of")


def test_accuracy_is_the_engines_top1_on_the_demo_holdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "acc"
    code = main(
        [
            "bench", "--sim", "jetson-tx2", "--model", "demo", "--batch", "4",
            "--profiles", "maxq", "--duration", "0.2", "--accuracy", "--out", str(out), "--json",
        ]
    )  # fmt: skip
    printed, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(printed.strip().splitlines()[-1])
    # The same model, images and preprocessing scored by the optimizer's own CPU session.
    model = bundled_demo_model()
    meta = load_model_meta(model)
    images, labels = labelled_images(SYNTHETIC, meta, HOLDOUT_LIMIT)
    assert result["top1"] == pytest.approx(top1(model, meta, images, labels))
    assert result["top1"] > 0.9
    assert "top-1 fp32 on the demo holdout" in err
    assert "Top-1 (fp32, demo holdout)" in (out / "report.md").read_text(encoding="utf-8")


def test_accuracy_needs_the_demo_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--sim", "jetson-tx2", "--model", "resnet50", "--accuracy"])
    assert code == 2
    assert capsys.readouterr().err.startswith("--accuracy: needs a labelled set")
