"""Wave sizes, device outcomes and the abort rule (pure), and staging a model from a URL."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.fleet.document import DocumentRejected, ModelRef
from edge_agent.fleet.model_fetch import stage_model
from edge_agent.fleet.rollout import AbortRule, Outcome, outcome_of, parse_waves, wave_sizes

waves = st.lists(
    st.integers(1, 50).map(str) | st.integers(1, 100).map(lambda p: f"{p}%"), min_size=1
)


@given(items=waves, total=st.integers(0, 1000))
def test_wave_sizes_grow_and_end_at_the_total(items: list[str], total: int) -> None:
    sizes = wave_sizes(parse_waves(",".join(items)), total)
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == total


def test_wave_examples() -> None:
    assert wave_sizes(parse_waves("1,10%,100%"), 500) == [1, 50, 500]
    assert wave_sizes(parse_waves("2,2"), 3) == [2, 3]
    for bad in ("0", "150%", "x", ""):
        with pytest.raises(ValueError, match="wave"):
            parse_waves(bad)


def test_outcome_of_a_report() -> None:
    target = "group:lobby"
    assert outcome_of(None, target, 3) == "pending"
    assert outcome_of({"running": {target: 4}, "version": 9, "status": "x"}, target, 3) == "applied"
    assert outcome_of({"running": {}, "version": 3, "status": "rolled_back"}, target, 3) == (
        "rolled_back"
    )
    assert outcome_of({"running": {}, "version": 3, "status": "applying"}, target, 3) == "pending"
    assert outcome_of({"running": {}, "version": 2, "status": "rejected"}, target, 3) == "pending"
    waiting = {target: {"version": 3, "not_before": 2e9}}
    scheduled = {"running": {}, "version": 3, "status": "scheduled", "scheduled": waiting}
    assert outcome_of(scheduled, target, 3) == "scheduled"
    # The device says so in every later report, whatever that report is about.
    assert outcome_of({**scheduled, "version": 9, "status": "rejected"}, target, 3) == "scheduled"
    assert outcome_of(scheduled, target, 4) == "pending"
    assert outcome_of({**scheduled, "running": {target: 3}}, target, 3) == "applied"


def test_abort_rule_waits_for_the_minimum() -> None:
    rule = AbortRule(max_failure_pct=10, min_devices=3)
    assert not rule.should_abort({"a": "rolled_back", "b": "pending"})
    assert rule.should_abort({"a": "rolled_back", "b": "applied", "c": "applied"})
    nine: dict[str, Outcome] = {f"d{i}": "applied" for i in range(9)}
    assert not rule.should_abort({**nine, "x": "no_answer"})
    assert not AbortRule(max_failure_pct=0).should_abort({"a": "scheduled", "b": "scheduled"})


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files, honouring ``Range: bytes=N-`` (the stdlib server ignores it)."""

    def send_head(self) -> Any:
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if spec is None or not path.is_file():
            return super().send_head()
        start = int(spec.removeprefix("bytes=").rstrip("-"))
        data = path.read_bytes()
        self.send_response(206)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.server.ranges.append(start)  # type: ignore[attr-defined]
        handle = path.open("rb")
        handle.seek(start)
        return handle

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str, list[int]]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root))
    )
    server.ranges = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="http-test")
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", server.ranges  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_model_url_is_fetched_resumed_capped_and_verified(
    tmp_path: Path, http_root: tuple[Path, str, list[int]]
) -> None:
    root, base, ranges = http_root
    blob = bytes(range(256)) * 400
    (root / "m.onnx").write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    models = tmp_path / "models"
    models.mkdir()
    (models / f"{sha}.onnx.part").write_bytes(blob[:1000])  # an interrupted download
    ref = ModelRef(url=f"{base}/m.onnx", sha256=sha)
    path = stage_model(ref, models, max_bytes=1 << 20)
    assert path.read_bytes() == blob
    assert ranges == [1000], "the download resumed where the part file ended"
    assert not (models / f"{sha}.onnx.part").exists()

    with pytest.raises(DocumentRejected, match="larger than"):
        stage_model(ModelRef(url=f"{base}/m.onnx", sha256="1" * 64), models, max_bytes=5000)
    with pytest.raises(DocumentRejected, match="sha256 mismatch"):
        stage_model(ModelRef(url=f"{base}/m.onnx", sha256="2" * 64), models, max_bytes=1 << 20)
    assert sorted(p.name for p in models.iterdir()) == [f"{sha}.onnx"]
    with pytest.raises(DocumentRejected, match="download failed"):
        stage_model(ModelRef(url=f"{base}/missing.onnx", sha256="3" * 64), models, 1 << 20)
