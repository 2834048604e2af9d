"""tools/bench_fleet.py end to end with a few endpoints (the README quotes the 500 run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.broker import broker_required, find_mosquitto

pytestmark = pytest.mark.slow
TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_fleet.py"


def test_bench_fleet_reports_every_device_applied() -> None:
    if find_mosquitto() is None:
        if broker_required():
            pytest.fail("mosquitto is not installed")
        pytest.skip("mosquitto is not installed")
    run = subprocess.run(
        [sys.executable, str(TOOL), "--devices", "12", "--procs", "2", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"devices=(\d+) all_applied_s=([\d.]+) msgs=(\d+)", last)
    assert match is not None, last
    assert int(match[1]) == 12
    # At least: 1 push + 12 deliveries + 24 reports in + 24 out, each with its PUBACK.
    assert int(match[3]) >= 2 * (1 + 12 + 24 + 24)
