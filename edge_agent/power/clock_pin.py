"""``edge-agent clocks pin | unpin | show``: jetson_clocks with its state kept for undoing.

``pin`` stores the clock state with ``jetson_clocks --store`` first, under the state directory
(``clocks_pin.conf``, apart from the file a profile switch uses around its own change), then
runs ``jetson_clocks``; ``unpin`` runs ``jetson_clocks --restore`` on that file and removes it.
Both hold the profile lock, so they never interleave with a profile switch, and both check the
result by what jetson_clocks leaves behind (:func:`~edge_agent.hardware.jetson_clocks.is_active`).
``show`` parses ``jetson_clocks --show`` when it runs (it needs root on a device), else reads
the clock files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.errors import CommandError, HardwareError
from edge_agent.hardware import clocks
from edge_agent.hardware.jetson_clocks import (
    JetsonClocks,
    JetsonClocksShow,
    is_active,
)
from edge_agent.hardware.root import Root
from edge_agent.power.profile_state import profile_lock

logger = logging.getLogger(__name__)

PIN_STORE = "clocks_pin.conf"


@dataclass(frozen=True, slots=True)
class PinOutcome:
    """What ``pin``/``unpin`` did: ``changed`` False when the clocks already were that way."""

    pinned: bool
    changed: bool
    store: Path
    message: str


def _runner(root: Root, timeout_s: float) -> JetsonClocks:
    jc = JetsonClocks(root, timeout_s=timeout_s)
    if not jc.available():
        raise CommandError(
            ["jetson_clocks"], f"not found at {root.display('usr/bin/jetson_clocks')}"
        )
    return jc


def pin(root: Root, state_dir: Path, timeout_s: float = 10.0) -> PinOutcome:
    """Store the clock state, then pin the clocks at the current mode's maxima.

    Raises:
        HardwareError: jetson_clocks is missing or failed, or the clocks read back unpinned
            (the stored state is put back first).
    """
    jc = _runner(root, timeout_s)
    store = state_dir / PIN_STORE
    with profile_lock(state_dir):
        if is_active(root):
            note = "" if store.is_file() else " (not by edge-agent: unpin has no state to restore)"
            return PinOutcome(True, False, store, f"clocks already pinned{note}")
        # A file left from an earlier pin whose clocks were since restored by other means is
        # stale: this state is the one to come back to.
        jc.store(store, overwrite=True)
        jc.pin()
        if not is_active(root):
            jc.restore(store)
            store.unlink()
            raise HardwareError(
                "jetson_clocks ran but the clocks do not read back pinned (min == max with the "
                "idle states disabled or the EMC locked); the stored state was restored"
            )
    logger.info("clocks pinned; state stored in %s", store)
    return PinOutcome(True, True, store, f"clocks pinned (state stored in {store})")


def unpin(root: Root, state_dir: Path, timeout_s: float = 10.0) -> PinOutcome:
    """Restore the state ``pin`` stored, and remove its file.

    Raises:
        HardwareError: nothing was stored while the clocks are pinned, jetson_clocks failed,
            or the clocks still read back pinned.
    """
    jc = _runner(root, timeout_s)
    store = state_dir / PIN_STORE
    with profile_lock(state_dir):
        if not store.is_file():
            if not is_active(root):
                return PinOutcome(False, False, store, "clocks not pinned")
            raise HardwareError(
                f"clocks are pinned but {store} holds no stored state (they were not pinned by "
                "'edge-agent clocks pin'); restore them with jetson_clocks --restore FILE"
            )
        jc.restore(store)
        if is_active(root):
            raise HardwareError(f"jetson_clocks --restore {store} ran but the clocks stay pinned")
        store.unlink()
    logger.info("clocks restored from %s", store)
    return PinOutcome(False, True, store, f"clocks restored from {store}")


def _show_dict(show: JetsonClocksShow) -> dict[str, Any]:
    def clock(value: Any) -> dict[str, int | None] | None:
        if value is None:
            return None
        return {"min_hz": value.min_hz, "max_hz": value.max_hz, "cur_hz": value.cur_hz}

    return {
        "cpus": [_cpu_dict(c) for c in show.cpus],
        "gpu": clock(show.gpu),
        "emc": clock(show.emc),
        "power_mode": show.power_mode,
    }


def _cpu_dict(cpu: Any) -> dict[str, Any]:
    """One CPU's row, from ``jetson_clocks --show`` or from the clock files (same fields)."""
    return {
        "cpu": cpu.index,
        "online": cpu.online,
        "governor": cpu.governor,
        "min_khz": cpu.min_khz,
        "max_khz": cpu.max_khz,
        "cur_khz": cpu.cur_khz,
    }


def _files_dict(root: Root) -> dict[str, Any]:
    dev = clocks.find_gpu_devfreq(root)
    gpu = None
    if dev is not None:
        state = clocks.read_gpu(root, dev)
        gpu = {"min_hz": state.min_hz, "max_hz": state.max_hz, "cur_hz": state.cur_hz}
    return {
        "cpus": [_cpu_dict(c) for c in clocks.list_cpus(root)],
        "gpu": gpu,
        "emc": None,
        "power_mode": None,
    }


def show(root: Root, state_dir: Path, timeout_s: float = 10.0) -> dict[str, Any]:
    """The clocks now: ``source``, ``pinned``, ``stored`` (the pin's state file or None),
    ``cpus``, ``gpu``, ``emc`` and ``power_mode``.

    Raises:
        HardwareError: neither ``jetson_clocks --show`` nor the clock files could be read.
    """
    jc = JetsonClocks(root, timeout_s=timeout_s)
    data: dict[str, Any] | None = None
    source = "sysfs"
    if jc.available():
        try:
            data = _show_dict(jc.show())
            source = "jetson_clocks --show"
        except HardwareError as err:  # not root, or output we cannot parse
            logger.info("jetson_clocks --show unavailable (%s); reading the clock files", err)
    if data is None:
        data = _files_dict(root)
    store = state_dir / PIN_STORE
    return {
        "source": source,
        "pinned": is_active(root),
        "stored": str(store) if store.is_file() else None,
        **data,
    }
