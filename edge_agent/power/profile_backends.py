"""Profile backends (nvpmodel, sysfs, jtop) behind one Protocol, and rollback.

A switch is planned first (mode name -> id through the board's own conf, the reboot check,
sysfs targets rounded into the available frequencies), so everything that can be refused is
refused before anything changes. :func:`restore_state` puts a snapshot back for rollbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError, ProfileError, RebootRequired
from edge_agent.hardware import clocks
from edge_agent.hardware.clocks import CpuState, GpuDevfreq
from edge_agent.hardware.nvpmodel import Nvpmodel, needs_reboot
from edge_agent.hardware.root import Root
from edge_agent.power.profile_state import ClockState, nearest
from edge_agent.power.profiles import ClockCaps, Profile

logger = logging.getLogger(__name__)


# --- backends -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwitchPlan:
    """What a backend will do, decided before anything changes.

    Attributes:
        mode_id/mode_name: the nvpmodel mode to set (None for sysfs).
        caps: the caps to verify afterwards (sysfs: the rounded targets it writes).
        reboot: the switch needs a reboot (only planned with ``allow_reboot``).
    """

    profile: Profile
    backend: str
    mode_id: int | None = None
    mode_name: str | None = None
    caps: ClockCaps = field(default_factory=ClockCaps)
    reboot: bool = False


class ProfileBackend(Protocol):
    """A way to switch profiles: nvpmodel, sysfs or the jtop service."""

    name: str

    def plan(self, profile: Profile, state: ClockState, allow_reboot: bool) -> SwitchPlan:
        """Decide the switch; raise before any change (ProfileError, RebootRequired)."""
        ...

    def switch(self, plan: SwitchPlan) -> None:
        """Carry the plan out. Raises HardwareError; the caller rolls back."""
        ...


def _plan_mode(
    nvp: Nvpmodel, backend: str, profile: Profile, state: ClockState, allow_reboot: bool
) -> SwitchPlan:
    if profile.nvpmodel_mode is None:
        raise ProfileError(f"profile {profile.name} has no nvpmodel mode; use the sysfs backend")
    conf = nvp.load_conf()
    mode = conf.mode_by_name(profile.nvpmodel_mode)
    if mode is None:
        names = ", ".join(m.name for m in conf.modes)
        raise ProfileError(
            f"profile {profile.name}: nvpmodel mode {profile.nvpmodel_mode!r} is not in "
            f"{nvp.conf_path()} (modes: {names})"
        )
    reboot = (
        state.mode_id is not None
        and state.mode_id != mode.id
        and (conf.mode_by_id(state.mode_id) is None or needs_reboot(conf, state.mode_id, mode.id))
    )
    if reboot and not allow_reboot:
        raise RebootRequired(
            f"reboot required: switching nvpmodel from {state.mode_name} ({state.mode_id}) to "
            f"{mode.name} ({mode.id}) changes the GPU power-gating mask; nothing was changed "
            "(pass --allow-reboot to switch and reboot)"
        )
    return SwitchPlan(profile, backend, mode.id, mode.name, profile.clocks, reboot)


class NvpmodelBackend:
    """``nvpmodel -m <id>``, the id looked up by mode name in the board's conf."""

    name = "nvpmodel"

    def __init__(self, nvp: Nvpmodel) -> None:
        self.nvp = nvp

    def plan(self, profile: Profile, state: ClockState, allow_reboot: bool) -> SwitchPlan:
        return _plan_mode(self.nvp, self.name, profile, state, allow_reboot)

    def switch(self, plan: SwitchPlan) -> None:
        assert plan.mode_id is not None
        self.nvp.set_mode(plan.mode_id, allow_reboot=plan.reboot)


@dataclass(frozen=True, slots=True)
class JtopApi:
    """What the jtop backend uses of jetson-stats (tests stand in a fake service).

    ``connect()`` (``jtop.jtop``) is a context manager whose value has
    ``nvpmodel.set_nvpmodel_id(mode_id, force=...)``; ``errors`` is what the client raises.
    """

    connect: Callable[[], AbstractContextManager[Any]]
    errors: tuple[type[BaseException], ...]


def load_jtop_api() -> JtopApi:
    """The real jetson-stats client.

    Raises:
        HardwareError: jetson-stats is not installed.
    """
    try:
        from jtop import JtopException, jtop
    except ImportError as err:
        raise HardwareError("jtop backend: jetson-stats is not installed") from err
    # The client talks to the service through a multiprocessing manager: a dead service
    # surfaces as OSError (refused, broken pipe) or EOFError from the proxy.
    return JtopApi(connect=jtop, errors=(JtopException, ValueError, OSError, EOFError))


def wait_for_mode(
    read_mode: Callable[[], int | None],
    mode_id: int,
    timeout_s: float,
    clock: Clock,
    *,
    poll_s: float = 0.1,
    wake: threading.Event | None = None,
) -> None:
    """Wait until ``read_mode()`` reports ``mode_id`` (the jtop service switches in a thread).

    Raises:
        HardwareError: the mode was not reported within ``timeout_s`` (naming the last one
            read); errors from ``read_mode`` propagate.
    """
    event = wake or threading.Event()
    deadline = clock.monotonic() + timeout_s
    while True:
        now_id = read_mode()
        if now_id == mode_id:
            return
        left = deadline - clock.monotonic()
        if left <= 0:
            raise HardwareError(
                f"nvpmodel still reports mode {now_id} {timeout_s:g} s after asking for "
                f"mode {mode_id} (did the service refuse it? see journalctl -u jtop)"
            )
        event.wait(min(poll_s, left))


class JtopBackend:
    """The jtop service (``/run/jtop.sock``): it runs nvpmodel as root for a non-root agent.

    The service applies the mode from its own thread after the call returns, so the switch
    waits (up to ``timeout_s``) until ``nvpmodel -q`` or its status file reports the mode
    before the common verification reads the clocks back.
    """

    name = "jtop"

    def __init__(
        self,
        nvp: Nvpmodel,
        clock: Clock,
        timeout_s: float,
        api: JtopApi | None = None,
        poll_s: float = 0.1,
    ) -> None:
        self.nvp = nvp
        self.clock = clock
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._api = api
        self._wake = threading.Event()

    def plan(self, profile: Profile, state: ClockState, allow_reboot: bool) -> SwitchPlan:
        return _plan_mode(self.nvp, self.name, profile, state, allow_reboot)

    def switch(self, plan: SwitchPlan) -> None:
        assert plan.mode_id is not None
        api = self._api or load_jtop_api()
        what = f"jtop: setting nvpmodel mode {plan.mode_name} ({plan.mode_id})"
        try:
            with api.connect() as jetson:
                nvpmodel = jetson.nvpmodel
                if nvpmodel is None:
                    raise HardwareError(f"{what}: the jtop service reports no nvpmodel")
                # force=True makes the service answer YES and reboot: only when the plan says so.
                nvpmodel.set_nvpmodel_id(plan.mode_id, force=plan.reboot)
        except api.errors as err:
            raise HardwareError(f"{what} failed: {type(err).__name__}: {err}") from err
        if plan.reboot:
            return
        mode_id = plan.mode_id
        try:
            wait_for_mode(lambda: _mode_now(self.nvp), mode_id, self.timeout_s, self.clock,
                          poll_s=self.poll_s, wake=self._wake)  # fmt: skip
        except HardwareError as err:
            raise HardwareError(f"{what}: {err}") from err


class SysfsBackend:
    """Writes caps straight to cpufreq/devfreq/online/EMC files, rounded into the tables."""

    name = "sysfs"

    def __init__(self, root: Root, gpu: GpuDevfreq | None) -> None:
        self.root = root
        self.gpu = gpu

    def _target(self, what: str, cap: int | Literal["max"], available: Sequence[int]) -> int:
        if not available:
            if cap == "max":
                raise ProfileError(f"{what}: 'max' needs a frequency table, and there is none")
            return cap
        if cap == "max":
            return max(available)
        if not min(available) <= cap <= max(available):
            raise ProfileError(
                f"{what}: {cap} is outside the available frequencies "
                f"{min(available)}..{max(available)}"
            )
        return nearest(cap, available)

    def plan(self, profile: Profile, state: ClockState, allow_reboot: bool) -> SwitchPlan:
        caps = profile.clocks
        gpu_hz: int | None = None
        if caps.gpu_max_hz is not None:
            if self.gpu is None:
                raise ProfileError(f"profile {profile.name}: this board has no GPU devfreq node")
            gpu_hz = self._target("gpu_max_hz", caps.gpu_max_hz, state.gpu_available_hz)
        cpu_khz: dict[str, int | Literal["max"]] = {}
        for cluster, khz in caps.cpu_max_khz.items():
            cpus = [state.cpu(i) for i in profile.cpus_of(cluster)]
            if any(c is None for c in cpus):
                raise ProfileError(f"profile {profile.name}: {cluster} names a missing CPU")
            table = sorted({f for c in cpus if c is not None for f in c.available_khz})
            cpu_khz[cluster] = self._target(f"cpu_max_khz.{cluster}", khz, table)
        if caps.cpus_online is not None:
            missing = set(caps.cpus_online) - {c.index for c in state.cpus}
            if missing:
                raise ProfileError(f"profile {profile.name}: no cpu{min(missing)} on this board")
        if caps.emc_max_hz is not None and clocks.emc_cap_path(self.root) is None:
            raise ProfileError(f"profile {profile.name}: this board has no EMC cap file")
        targets = ClockCaps(
            gpu_max_hz=gpu_hz,
            cpu_max_khz=cpu_khz,
            cpus_online=caps.cpus_online,
            emc_max_hz=caps.emc_max_hz,
        )
        return SwitchPlan(profile, self.name, caps=targets)

    def switch(self, plan: SwitchPlan) -> None:
        caps = plan.caps
        wanted = set(caps.cpus_online) if caps.cpus_online is not None else None
        if wanted is not None:
            for cpu in sorted(wanted):
                if not clocks.is_cpu_online(self.root, cpu):
                    clocks.set_cpu_online(self.root, cpu, True)
        for cluster, khz in caps.cpu_max_khz.items():
            assert khz != "max"
            for index in plan.profile.cpus_of(cluster):
                if clocks.is_cpu_online(self.root, index) and (wanted is None or index in wanted):
                    _set_cpu_max(self.root, clocks.read_cpu(self.root, index), khz)
        if wanted is not None:
            for cpu in clocks.cpu_indices(self.root):
                if cpu not in wanted and clocks.is_cpu_online(self.root, cpu):
                    clocks.set_cpu_online(self.root, cpu, False)
        if caps.gpu_max_hz is not None and self.gpu is not None:
            assert caps.gpu_max_hz != "max"
            _set_gpu_max(self.root, self.gpu, caps.gpu_max_hz)
        if caps.emc_max_hz is not None:
            clocks.set_emc_cap_hz(self.root, caps.emc_max_hz)


def _set_cpu_max(root: Root, cpu: CpuState, khz: int) -> None:
    # A pinned minimum (jetson_clocks) above the new maximum makes the kernel refuse it.
    if cpu.min_khz is not None and cpu.min_khz > khz:
        clocks.set_cpu_min_khz(root, cpu.index, khz)
    if cpu.max_khz != khz:
        clocks.set_cpu_max_khz(root, cpu.index, khz)


def _set_gpu_max(root: Root, gpu: GpuDevfreq, hz: int) -> None:
    state = clocks.read_gpu(root, gpu)
    if state.min_hz > hz:
        clocks.set_gpu_min_hz(root, gpu, hz)
    if state.max_hz != hz:
        clocks.set_gpu_max_hz(root, gpu, hz)


# --- rollback -------------------------------------------------------------------------------


def restore_state(
    root: Root, nvp: Nvpmodel | None, gpu: GpuDevfreq | None, before: ClockState
) -> list[str]:
    """Put a snapshot back: the nvpmodel mode, then every file that still differs.

    Each step is tried even when an earlier one failed; files that already hold the old value
    are not written (a read-only file that never changed does not stop the rollback).
    Returns the errors, empty when everything was restored.
    """
    errors: list[str] = []
    if nvp is not None and before.mode_id is not None:
        try:
            now_id = _mode_now(nvp)
            if now_id != before.mode_id:
                conf = nvp.load_conf()
                if (
                    now_id is not None
                    and conf.mode_by_id(now_id) is not None
                    and needs_reboot(conf, now_id, before.mode_id)
                ):
                    errors.append(f"nvpmodel mode {before.mode_name} needs a reboot to restore")
                else:
                    nvp.set_mode(before.mode_id)
        except HardwareError as err:
            errors.append(str(err))
    steps: list[tuple[str, Any]] = []
    online_before = set(before.online_cpus())
    for cpu in before.cpus:
        if cpu.online:
            steps.append((f"cpu{cpu.index} online", lambda c=cpu.index: _online(root, c, True)))
    for cpu in before.cpus:
        if cpu.online and cpu.max_khz is not None:
            steps.append((f"cpu{cpu.index} clocks", lambda c=cpu: _restore_cpu(root, c)))
    for cpu in before.cpus:
        if cpu.index not in online_before:
            steps.append((f"cpu{cpu.index} offline", lambda c=cpu.index: _online(root, c, False)))
    if gpu is not None and before.gpu_max_hz is not None:
        steps.append(("GPU clocks", lambda: _restore_gpu(root, gpu, before)))
    if before.emc_max_hz is not None:
        steps.append(("EMC cap", lambda: _restore_emc(root, before.emc_max_hz)))
    for what, step in steps:
        try:
            step()
        except HardwareError as err:
            errors.append(f"{what}: {err}")
    return errors


def _mode_now(nvp: Nvpmodel) -> int | None:
    """The mode id now: ``nvpmodel -q``, else the status file (``-q`` may be what broke)."""
    try:
        return nvp.query().id
    except HardwareError as err:
        logger.warning("nvpmodel -q failed, reading its status file: %s", err)
        return nvp.read_status()


def _online(root: Root, cpu: int, online: bool) -> None:
    if clocks.is_cpu_online(root, cpu) != online:
        clocks.set_cpu_online(root, cpu, online)


def _restore_cpu(root: Root, old: CpuState) -> None:
    now = clocks.read_cpu(root, old.index)
    assert old.max_khz is not None
    # Keep min <= max at every step: raise the maximum before the minimum, lower it after.
    if now.min_khz is not None and old.max_khz < now.min_khz and old.min_khz is not None:
        clocks.set_cpu_min_khz(root, old.index, old.min_khz)
    if now.max_khz != old.max_khz:
        clocks.set_cpu_max_khz(root, old.index, old.max_khz)
    if old.min_khz is not None and clocks.read_cpu(root, old.index).min_khz != old.min_khz:
        clocks.set_cpu_min_khz(root, old.index, old.min_khz)


def _restore_gpu(root: Root, gpu: GpuDevfreq, old: ClockState) -> None:
    now = clocks.read_gpu(root, gpu)
    assert old.gpu_max_hz is not None
    if old.gpu_min_hz is not None and old.gpu_max_hz < now.min_hz:
        clocks.set_gpu_min_hz(root, gpu, old.gpu_min_hz)
    if now.max_hz != old.gpu_max_hz:
        clocks.set_gpu_max_hz(root, gpu, old.gpu_max_hz)
    if old.gpu_min_hz is not None and clocks.read_gpu(root, gpu).min_hz != old.gpu_min_hz:
        clocks.set_gpu_min_hz(root, gpu, old.gpu_min_hz)


def _restore_emc(root: Root, hz: int | None) -> None:
    if hz is not None and clocks.read_emc_cap_hz(root) != hz:
        clocks.set_emc_cap_hz(root, hz)
