"""The jtop profile backend against a fake jtop service: waiting for the mode, error wrapping.

jetson-stats is not installed here. :class:`FakeJtopService` has the interface the backend
uses (``connect()`` as a context manager whose value has ``nvpmodel.set_nvpmodel_id``) and,
like the real service, applies the mode from its own thread after the call has returned, by
running the simulated board's nvpmodel.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock, SystemClock
from edge_agent.config import ProfileConfig
from edge_agent.errors import HardwareError
from edge_agent.hardware.nvpmodel import Nvpmodel
from edge_agent.hardware.root import Root
from edge_agent.power.profile_apply import ProfileController
from edge_agent.power.profile_backends import JtopApi, JtopBackend, SwitchPlan, wait_for_mode
from edge_agent.power.profile_state import verify
from edge_agent.sim.tree import SimBoard, create_board


class FakeJtopError(Exception):
    """Stands in for ``jtop.JtopException``."""


class FakeNvpmodelClient:
    """``jetson.nvpmodel``: queues the switch on the service and returns at once."""

    def __init__(self, service: FakeJtopService) -> None:
        self._service = service

    def set_nvpmodel_id(self, nvpmodel_id: int, force: bool = False) -> None:
        self._service.requests.append((nvpmodel_id, force))
        if self._service.set_error is not None:
            raise self._service.set_error
        self._service.switch_later(nvpmodel_id)


class FakeJtopClient:
    """The value of ``with jtop() as jetson``."""

    def __init__(self, service: FakeJtopService) -> None:
        self.nvpmodel = FakeNvpmodelClient(service)


class FakeJtopService:
    """A jtop service for one simulated board.

    Args:
        nvpmodel_bin: the board's nvpmodel, run by the service thread.
        delay_s: how long the service thread takes before it runs nvpmodel.
        refuse: log-and-ignore the request, as jtop does for a mask-changing mode.
    """

    def __init__(self, nvpmodel_bin: Path, delay_s: float = 0.4, refuse: bool = False) -> None:
        self.nvpmodel_bin = nvpmodel_bin
        self.delay_s = delay_s
        self.refuse = refuse
        self.requests: list[tuple[int, bool]] = []
        self.connect_error: BaseException | None = None
        self.set_error: BaseException | None = None
        self.applied: list[int] = []
        self._threads: list[threading.Thread] = []
        self._hold = threading.Event()

    @contextmanager
    def connect(self) -> Iterator[FakeJtopClient]:
        if self.connect_error is not None:
            raise self.connect_error
        yield FakeJtopClient(self)

    def switch_later(self, mode_id: int) -> None:
        if self.refuse:
            return
        thread = threading.Thread(target=self._switch, args=(mode_id,), name="fake-jtop-nvp")
        self._threads.append(thread)
        thread.start()

    def _switch(self, mode_id: int) -> None:
        self._hold.wait(self.delay_s)
        subprocess.run(
            [str(self.nvpmodel_bin), "-m", str(mode_id)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=True,
        )
        self.applied.append(mode_id)

    def join(self) -> None:
        self._hold.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def api(self) -> JtopApi:
        return JtopApi(connect=self.connect, errors=(FakeJtopError, OSError))


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


@pytest.fixture
def service(tx2: SimBoard) -> Iterator[FakeJtopService]:
    svc = FakeJtopService(tx2.nvpmodel)
    yield svc
    svc.join()


def plan_for(sim: SimBoard, name: str) -> tuple[ProfileController, SwitchPlan]:
    ctl = ProfileController(Root(sim.root), ProfileConfig(), sim.root / "state", FakeClock())
    backend = JtopBackend(Nvpmodel(Root(sim.root)), SystemClock(), 10.0)
    return ctl, backend.plan(ctl.profile(name), ctl.read_state(), allow_reboot=False)


def status_id(sim: SimBoard) -> int | None:
    return Nvpmodel(Root(sim.root)).read_status()


def test_switch_waits_until_the_service_has_applied_the_mode(
    tx2: SimBoard, service: FakeJtopService
) -> None:
    ctl, plan = plan_for(tx2, "maxq")
    assert plan.mode_id == 1
    assert status_id(tx2) == 3
    backend = JtopBackend(
        Nvpmodel(Root(tx2.root)), SystemClock(), 10.0, api=service.api(), poll_s=0.05
    )
    backend.switch(plan)
    # The service thread ran nvpmodel after set_nvpmodel_id returned; switch() waited for it.
    assert service.requests == [(1, False)]
    assert service.applied == [1]
    assert status_id(tx2) == 1
    after = ctl.read_state()
    assert verify(Root(tx2.root), plan.profile, plan.caps, plan.mode_name, after) == []


def test_a_refused_mode_times_out_naming_both_modes(tx2: SimBoard) -> None:
    service = FakeJtopService(tx2.nvpmodel, refuse=True)
    _, plan = plan_for(tx2, "maxq")
    backend = JtopBackend(
        Nvpmodel(Root(tx2.root)), SystemClock(), 0.3, api=service.api(), poll_s=0.05
    )
    with pytest.raises(HardwareError) as caught:
        backend.switch(plan)
    text = str(caught.value)
    assert text.startswith("jtop: setting nvpmodel mode MAXQ (1): ")
    assert "still reports mode 3 0.3 s after asking for mode 1" in text
    assert status_id(tx2) == 3


@pytest.mark.parametrize("stage", ["connect", "set"])
def test_jtop_exceptions_become_hardware_errors(
    tx2: SimBoard, service: FakeJtopService, stage: str
) -> None:
    error = FakeJtopError("jtop.service is not active")
    if stage == "connect":
        service.connect_error = error
    else:
        service.set_error = error
    _, plan = plan_for(tx2, "maxq")
    backend = JtopBackend(Nvpmodel(Root(tx2.root)), SystemClock(), 5.0, api=service.api())
    with pytest.raises(HardwareError) as caught:
        backend.switch(plan)
    assert str(caught.value) == (
        "jtop: setting nvpmodel mode MAXQ (1) failed: FakeJtopError: jtop.service is not active"
    )
    assert caught.value.__cause__ is error
    assert status_id(tx2) == 3


def test_a_dead_service_connection_is_wrapped(tx2: SimBoard, service: FakeJtopService) -> None:
    service.connect_error = ConnectionRefusedError(111, "Connection refused")
    _, plan = plan_for(tx2, "maxq")
    backend = JtopBackend(Nvpmodel(Root(tx2.root)), SystemClock(), 5.0, api=service.api())
    with pytest.raises(HardwareError, match=r"failed: ConnectionRefusedError: .*refused"):
        backend.switch(plan)


def test_wait_for_mode_returns_once_the_mode_is_reported(fake_clock: FakeClock) -> None:
    reads = iter([3, 3, None, 1])
    seen: list[int | None] = []

    def read_mode() -> int | None:
        value = next(reads)
        seen.append(value)
        return value

    wait_for_mode(read_mode, 1, 5.0, fake_clock, poll_s=0.001)
    assert seen == [3, 3, None, 1]


def test_wait_for_mode_gives_up_at_the_deadline(fake_clock: FakeClock) -> None:
    reads: list[float] = []

    def read_mode() -> int:
        reads.append(fake_clock.monotonic())
        fake_clock.advance(1.0)
        return 3

    with pytest.raises(HardwareError, match=r"still reports mode 3 2\.5 s after asking for mode 1"):
        wait_for_mode(read_mode, 1, 2.5, fake_clock, poll_s=0.001)
    assert reads == [1000.0, 1001.0, 1002.0]


def test_wait_for_mode_passes_reader_errors_through(fake_clock: FakeClock) -> None:
    def read_mode() -> int:
        raise HardwareError("nvpmodel status: no pmode in 'garbage'")

    with pytest.raises(HardwareError, match="no pmode"):
        wait_for_mode(read_mode, 1, 5.0, fake_clock)
