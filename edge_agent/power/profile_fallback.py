"""The live fallback for a preset whose nvpmodel mode needs a reboot.

From some modes every preset needs a reboot (AGX Orin's default MODE_30W gates a different set
of GPU TPCs than MODE_15W, and nvpmodel writes the masks only at boot). The fallback applies the
preset's clock caps through sysfs inside the mode the board is in, leaving the mode and its
power gating alone. It is offered only when every cap is reachable inside that mode: no cap
above the mode's own (the mode's maximum is a ceiling the kernel enforces), and no CPU online
that the mode keeps offline. Anything else stays "reboot required".
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

from edge_agent.errors import RebootRequired
from edge_agent.hardware.nvpmodel import NvpConf, NvpMode
from edge_agent.power.profiles import ClockCaps, Profile

_CPU_MAX_PATH = re.compile(r"/cpu(\d+)/cpufreq/scaling_max_freq$")
_CORE_ARG = re.compile(r"^CORE_(\d+)$")


def _limit(mode: NvpMode, param: str) -> int | None:
    """The mode's ``MAX_FREQ`` for a CLOCK param; None when it sets none or sets no limit."""
    value = mode.int_value(param, "MAX_FREQ")
    return None if value is None or value <= 0 else value


def _too_high(what: str, cap: int | Literal["max"], limit: int | None, unit: str) -> str | None:
    if limit is None:
        return None
    if cap == "max":
        return f"{what} max is above the mode's {limit} {unit}"
    if cap > limit:
        return f"{what} {cap} {unit} is above the mode's {limit} {unit}"
    return None


def _cpu_limits(conf: NvpConf, mode: NvpMode) -> dict[int, int | None]:
    """CPU index named by each CPU CLOCK param -> the mode's cap for that CPU's policy."""
    limits: dict[int, int | None] = {}
    for param in conf.params.values():
        match = _CPU_MAX_PATH.search(param.args.get("MAX_FREQ", ""))
        if param.type == "CLOCK" and match:
            limits[int(match.group(1))] = _limit(mode, param.name)
    return limits


def _offline_in(conf: NvpConf, mode: NvpMode) -> set[int]:
    online = conf.params.get("CPU_ONLINE")
    if online is None:
        return set()
    offline = set()
    for arg in online.args:
        match = _CORE_ARG.match(arg)
        if match and mode.value("CPU_ONLINE", arg) == "0":
            offline.add(int(match.group(1)))
    return offline


def unreachable_caps(profile: Profile, conf: NvpConf, mode: NvpMode) -> list[str]:
    """Why the profile's caps cannot be set inside ``mode`` (empty: they can)."""
    caps = profile.clocks
    reasons: list[str] = []
    if caps.gpu_max_hz is not None:
        reason = _too_high("GPU cap", caps.gpu_max_hz, _limit(mode, "GPU"), "Hz")
        reasons += [reason] if reason else []
    limits = _cpu_limits(conf, mode)
    for cluster, khz in caps.cpu_max_khz.items():
        for cpu in profile.cpus_of(cluster):
            reason = _too_high(f"{cluster} cap", khz, limits.get(cpu), "kHz")
            if reason:
                reasons.append(reason)
                break
    if caps.cpus_online is not None:
        kept_off = sorted(set(caps.cpus_online) & _offline_in(conf, mode))
        if kept_off:
            reasons.append(f"cpu{kept_off[0]} is offline in {mode.name}")
    if caps.emc_max_hz is not None:
        emc_limit = _limit(mode, "EMC")
        if emc_limit is not None and (caps.emc_max_hz == 0 or caps.emc_max_hz > emc_limit):
            wanted = "uncapped" if caps.emc_max_hz == 0 else f"{caps.emc_max_hz} Hz"
            reasons.append(f"EMC {wanted} is above the mode's {emc_limit} Hz")
    return reasons


def live_fallback(
    profile: Profile, conf: NvpConf, current_id: int | None, refused: RebootRequired
) -> Profile:
    """The preset's caps as a clocks-only profile inside the current mode.

    Raises:
        RebootRequired: ``refused`` extended with why the caps cannot be reached live (or
            that the current mode is unknown).
    """
    mode = conf.mode_by_id(current_id) if current_id is not None else None
    if mode is None:
        raise RebootRequired(f"{refused}; no live fallback: the current mode is unknown")
    if not profile.clocks.model_dump(exclude_none=True, exclude_defaults=True):
        raise RebootRequired(f"{refused}; no live fallback: profile {profile.name} has no caps")
    reasons = unreachable_caps(profile, conf, mode)
    if reasons:
        raise RebootRequired(
            f"{refused}; no live fallback inside {mode.name}: {'; '.join(reasons)}"
        )
    caps: ClockCaps = profile.clocks
    return replace(
        profile,
        description=f"{profile.description} (its caps inside {mode.name})",
        nvpmodel_mode=None,
        clocks=caps,
    )
