"""Runtime policy changes on a simulated Orin Nano: real profile switches, real sysfs caps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.governor_control import GovernorControl
from edge_agent.agent.governor_setup import build_governor
from edge_agent.agent.governor_worker import GovernorWorker
from edge_agent.agent.result_stats import ResultStats
from edge_agent.clock import FakeClock
from edge_agent.config_sections import GovernorConfig, ProfileConfig
from edge_agent.errors import EdgeAgentError, GovernorUnavailable
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController
from edge_agent.sim import create_board


class Board:
    """A simulated Orin Nano, its profile controller and the governor control over it."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "board"
        create_board("jetson-orin-nano", self.path)
        self.root = Root(self.path)
        self.clock = FakeClock()
        self.profiles = ProfileController(
            self.root, ProfileConfig(), tmp_path / "state", self.clock
        )
        self.held: list[str] = []
        self.builds = 0
        self.tables_gone = False
        self.control = GovernorControl(ProfileConfig(), self.build, self.hold, self.clock)

    def build(self, config: ProfileConfig) -> GovernorWorker:
        if self.tables_gone:
            raise GovernorUnavailable("no GPU/CPU/EMC frequency tables on this board")
        self.builds += 1
        return build_governor(
            config,
            self.root,
            self.clock,
            ResultStats(self.clock),
            None,
            dict,
            lambda: "resnet50",
            self.profiles,
        )

    def hold(self, name: str) -> Mapping[str, Any]:
        self.held.append(name)
        try:
            # As the daemon holds a preset: a mode that needs a reboot gets its caps inside
            # the current mode (the simulated Orin Nano boots in 25W; Max-Q is 7W).
            report = self.profiles.apply(name, live_fallback=True)
        except EdgeAgentError as err:
            return {"profile": None, "applied": False, "error": str(err)}
        return {"profile": report.profile, "applied": True, "error": None}

    def gpu_cap(self) -> int:
        dev = clocks.find_gpu_devfreq(self.root)
        assert dev is not None
        return clocks.read_gpu(self.root, dev).max_hz


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    b = Board(tmp_path)
    b.control.start()
    yield b
    b.control.stop()


def slo(**governor: Any) -> ProfileConfig:
    return ProfileConfig(policy="slo", governor=GovernorConfig(**governor))


def test_fixed_to_slo_starts_a_worker_and_retuning_keeps_it(board: Board) -> None:
    assert board.control.worker is None  # fixed at start: no governor thread
    assert board.control.set_policy(slo(slo_latency_ms=50), "mqtt").error is None
    worker = board.control.worker
    assert worker is not None
    assert worker.params.slo_latency_s == pytest.approx(0.05)
    cap = ProfileConfig(policy="power_cap", governor=GovernorConfig(power_cap_w=6, window_s=2))
    assert board.control.set_policy(cap, "fleet").error is None
    assert board.control.worker is worker  # what it learned is kept
    assert (worker.params.policy, worker.params.power_cap_w, worker.window_s) == (
        "power_cap",
        6,
        2,
    )
    assert board.builds == 1
    assert board.control.drain_events() == [
        "governor: policy fixed -> slo by mqtt; applied in 0 ms",
        "governor: policy slo -> power_cap by fleet; applied in 0 ms",
    ]


def test_to_fixed_stops_the_worker_and_lands_the_named_preset(board: Board) -> None:
    board.control.set_policy(slo(), "mqtt")
    worker = board.control.worker
    assert worker is not None
    maxq = next(p for p in worker.points if p.preset == "maxq")
    assert board.gpu_cap() > maxq.gpu_hz  # the board starts above Max-Q's GPU cap
    fixed = ProfileConfig(policy="fixed", initial="maxq")
    assert board.control.set_policy(fixed, "config reload").error is None
    assert board.control.worker is None
    assert board.held == ["maxq"]
    assert board.gpu_cap() == maxq.gpu_hz
    assert board.profiles.current().name == "maxq"
    assert board.control.drain_events()[-1].startswith(
        "governor: policy slo -> fixed (maxq) by config reload; applied in "
    )


def test_a_change_that_cannot_be_made_leaves_the_previous_policy(board: Board) -> None:
    board.control.set_policy(slo(), "mqtt")
    before = board.control.config
    board.control.drain_events()
    outcome = board.control.set_policy(ProfileConfig(policy="fixed", initial="turbo"), "mqtt")
    assert outcome.error is not None
    assert outcome.error.startswith("profile.initial: turbo: ")
    assert board.control.config == before
    assert board.control.worker is not None  # governed again, as before the request
    schedule = ProfileConfig.model_validate(
        {"policy": "schedule", "governor": {"schedule": [{"start": "08:00", "profile": "nope"}]}}
    )
    outcome = board.control.set_policy(schedule, "mqtt")
    assert outcome.error == (
        "profile.governor.schedule: unknown profile nope; known: 15w, maxn, maxp, maxq"
    )
    assert board.control.config == before
    assert board.control.drain_events() == []


def test_a_board_without_tables_refuses_a_governed_policy(board: Board) -> None:
    board.tables_gone = True
    outcome = board.control.set_policy(slo(), "mqtt")
    assert outcome.error == (
        "profile.policy: slo needs the governor, which is off: "
        "no GPU/CPU/EMC frequency tables on this board"
    )
    assert board.control.config.policy == "fixed"
    assert board.control.worker is None


def test_fixed_without_a_preset_leaves_the_clocks(board: Board) -> None:
    board.control.set_policy(slo(), "mqtt")
    cap = board.gpu_cap()
    assert board.control.set_policy(ProfileConfig(policy="fixed"), "mqtt").error is None
    assert board.held == []
    assert board.gpu_cap() == cap
    assert board.control.worker is None


def test_a_schedule_naming_a_profile_the_board_lacks_is_refused_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """From the config file at start: refused with the field named, the board keeps its
    clocks, and no worker runs (it used to start and fail at the entry's first window)."""
    b = Board(tmp_path)
    cap = b.gpu_cap()
    b.control = GovernorControl(
        ProfileConfig.model_validate(
            {
                "policy": "schedule",
                "governor": {"schedule": [{"start": "00:00", "profile": "maxtx2"}]},
            }
        ),
        b.build,
        b.hold,
        b.clock,
    )
    b.control.start()
    try:
        assert b.control.worker is None
        assert b.control.unavailable == (
            "profile.governor.schedule: unknown profile maxtx2; known: 15w, maxn, maxp, maxq"
        )
        assert "policy schedule off" in caplog.text
        assert b.gpu_cap() == cap
    finally:
        b.control.stop()


def test_from_fixed_a_schedule_naming_a_missing_profile_is_refused_by_name(board: Board) -> None:
    schedule = ProfileConfig.model_validate(
        {"policy": "schedule", "governor": {"schedule": [{"start": "08:00", "profile": "nope"}]}}
    )
    outcome = board.control.set_policy(schedule, "fleet")
    assert outcome.error == (
        "profile.governor.schedule: unknown profile nope; known: 15w, maxn, maxp, maxq"
    )
    assert board.control.worker is None
    assert board.control.config.policy == "fixed"


def test_a_preset_whose_mode_needs_a_reboot_lands_as_caps_in_the_current_mode(
    board: Board,
) -> None:
    """The governor never reboots: the Orin Nano's maxq (7W gates TPCs) is applied as its caps
    inside the running mode, as the daemon holds profile.initial (it used to fail each time)."""
    board.control.set_policy(slo(), "mqtt")
    worker = board.control.worker
    assert worker is not None
    mode_before = board.profiles.read_state(mode_from_status=True).mode_id
    maxq = next(p for p in worker.points if p.preset == "maxq")
    worker._apply(maxq)  # what a decision for the maxq point runs
    assert board.gpu_cap() == maxq.gpu_hz == 408000000
    assert board.profiles.read_state(mode_from_status=True).mode_id == mode_before


def test_in_force_names_the_policy_who_set_it_and_the_point_held(board: Board) -> None:
    assert board.control.in_force() == {"policy": "fixed", "set_by": "config"}
    board.control.set_policy(slo(), "fleet")
    worker = board.control.worker
    assert worker is not None
    point = worker.state.point
    state = board.control.in_force()
    assert (state["policy"], state["set_by"]) == ("slo", "fleet")
    assert state["point"] == {
        "label": point.label(),
        "gpu_hz": point.gpu_hz,
        "emc_hz": point.emc_hz,
        "cpu_khz": point.cpu_khz,
    }
    assert point.label() in {p.label() for p in worker.points}
    refused = board.control.set_policy(ProfileConfig(policy="fixed", initial="turbo"), "mqtt")
    assert refused.error is not None
    assert board.control.in_force()["set_by"] == "fleet"  # a refusal changes nothing
    fixed = ProfileConfig(policy="fixed", initial="maxq")
    assert board.control.set_policy(fixed, "config reload").error is None
    assert board.control.in_force() == {
        "policy": "fixed",
        "set_by": "config reload",
        "preset": "maxq",
    }
