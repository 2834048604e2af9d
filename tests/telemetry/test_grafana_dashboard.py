"""The Grafana dashboard names only metrics the agent exports, and selects by device."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from edge_agent.telemetry.metrics import METRIC_NAMES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "grafana"
_METRIC = re.compile(r"\bedge_agent_[a-z_]+")
_HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "edge-agent.json").read_text(encoding="utf-8"))
    return doc


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation."""
    out = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    out += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    return out


def _base(name: str) -> str:
    return next((name.removesuffix(p) for p in _HISTOGRAM_PARTS if name.endswith(p)), name)


def test_every_query_names_an_exported_metric() -> None:
    queries = _queries(_dashboard())
    assert len(queries) >= 10
    for where, expr in queries:
        names = {_base(n) for n in _METRIC.findall(expr)}
        assert names, f"{where}: no edge_agent metric in {expr!r}"
        unknown = names - set(METRIC_NAMES)
        assert not unknown, f"{where}: {sorted(unknown)} are not exported"
        assert 'device=~"$device"' in expr, f"{where}: not filtered by the device variable"


def test_the_dashboard_shows_what_operators_asked_for() -> None:
    dashboard = _dashboard()
    exprs = " ".join(expr for _where, expr in _queries(dashboard))
    for metric in (
        "edge_agent_board_power_watts",
        "edge_agent_inferences_per_joule",
        "edge_agent_inference_latency_seconds_bucket",
        "edge_agent_inferences_total",
        "edge_agent_clock_hz",
        "edge_agent_temperature_celsius",
        "edge_agent_info",
        "edge_agent_governor_info",
        "edge_agent_governor_point_hz",
    ):
        assert metric in exprs, metric
    assert "histogram_quantile(0.99" in exprs
    (device,) = [v for v in dashboard["templating"]["list"] if v["name"] == "device"]
    assert device["query"]["query"] == "label_values(edge_agent_info, device)"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_scrape_example_sets_the_device_label() -> None:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert all("device" in group["labels"] for group in job["static_configs"])
    assert all(t.endswith(":9101") for g in job["static_configs"] for t in g["targets"])
