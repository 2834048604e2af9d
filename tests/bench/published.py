"""The published Jetson TX2 rows, read from the independent copy in tests/data/published/.

The simulator is calibrated from its own table (``edge_agent.sim.perf_model.PUBLISHED``);
the tests compare against this file instead, so editing the simulator's table cannot make
them follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TX2_TABLE = Path(__file__).resolve().parents[1] / "data/published/jetson_tx2.tsv"
PROFILES = {"JETSON TX2 (MAXQ MODE)": "maxq", "JETSON TX2 (MAXP MODE)": "maxp"}


@dataclass(frozen=True, slots=True)
class PublishedRow:
    """One published row: images/s, module-input and GPU-rail watts, latency."""

    images_per_s: float
    board_w: float
    gpu_w: float
    latency_ms: float


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def load_tx2(path: Path = TX2_TABLE) -> dict[tuple[str, str], dict[int, PublishedRow]]:
    """Rows by (profile, network) then batch; networks as ``resnet50``, ``googlenet``..."""
    table: dict[tuple[str, str], dict[int, PublishedRow]] = {}
    profile: str | None = None
    network: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cells = line.split("\t")
        if cells[0].strip() in PROFILES:
            profile = PROFILES[cells[0].strip()]
            continue
        if cells[0] == "NETWORK":
            continue
        if cells[0]:
            network = cells[0].lower().replace("-", "")
        if profile is None or network is None or len(cells) != 8:
            raise ValueError(f"{path}: unexpected line {line!r}")
        row = PublishedRow(
            _number(cells[2]), _number(cells[3]), _number(cells[5]), _number(cells[7])
        )
        table.setdefault((profile, network), {})[int(cells[1])] = row
    return table
