"""Payload builders for every message the agent publishes.

Every payload is a JSON object with ``"schema": SCHEMA_VERSION``; the JSON Schema of each kind
lives in ``edge_agent/telemetry/schemas/<kind>.json`` (kinds: ``status``, ``result``,
``telemetry``, ``profile_state``, ``policy_state``) and the tests validate every builder
against it. Optional fields are omitted rather than sent as ``null``, except where ``null``
means "not measured" (e.g. ``perf_per_watt`` without a power monitor).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Literal

SCHEMA_VERSION = 1
SCHEMA_KINDS = ("status", "result", "telemetry", "profile_state", "policy_state")
StatusState = Literal["online", "offline", "stopped"]


def new_boot_id() -> str:
    """A fresh id for this process start (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form of every payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (a dict) of one payload kind."""
    if kind not in SCHEMA_KINDS:
        raise ValueError(f"unknown payload kind {kind!r}; known: {', '.join(SCHEMA_KINDS)}")
    text = (
        resources.files("edge_agent.telemetry.schemas")
        .joinpath(f"{kind}.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def status_payload(
    state: StatusState,
    ts: float,
    version: str,
    boot_id: str,
    config_version: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Availability on the retained status topic (also the Will with ``offline``).

    ``config_version``: the committed fleet config version per source, when fleet is on.
    """
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "state": state,
        "ts": ts,
        "version": version,
        "boot_id": boot_id,
    }
    if config_version is not None:
        doc["config_version"] = dict(config_version)
    return doc


def result_payload(
    *,
    ts: float,
    camera: str,
    frame: int,
    captured_at: float,
    latency_ms: float,
    engine_ms: float,
    model: str,
    precision: str,
    profile: str | None,
    outputs: Mapping[str, Any],
    queue_ms: float | None = None,
    batch_size: int | None = None,
    provider: str | None = None,
    truth: Any = None,
    batch_energy_share_mj: float | None = None,
    energy_estimate: bool = True,
) -> dict[str, Any]:
    """One inference result, without ``msg_id`` (the Publisher assigns it).

    Args:
        ts: wall time the result was produced (s since the epoch).
        camera: camera name.
        frame: the camera's frame number.
        captured_at: wall time the frame was captured.
        latency_ms: capture to result.
        engine_ms: time inside the engine for this frame's batch.
        model: model name.
        precision: fp32, fp16 or int8.
        profile: the active power profile, if known.
        outputs: decoded outputs, one kind per model: ``{"top_k": [...]}``,
            ``{"detections": [...]}`` or raw ``{"outputs": [...]}`` (schemas/result.json).
        queue_ms: time spent waiting in the batcher.
        batch_size: size of the batch this frame ran in.
        provider: the ORT execution provider (or ``simulated``).
        truth: ground truth from a synthetic camera, when known.
        batch_energy_share_mj: this frame's share of its batch's energy (mJ), when a power
            monitor runs: the board energy measured while the batch ran on the engine,
            divided by its frames. An estimate, never a per-frame measurement, so the payload
            then also carries ``energy_estimate``. It leaves out the time between batches,
            so it is smaller than telemetry's ``mj_per_inference`` (all board energy over a
            window divided by the inferences in it).
        energy_estimate: sent with ``batch_energy_share_mj`` (omitted without it): whether
            it is an estimate. Every energy the agent has today is one, hence the default.
    """
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "ts": ts,
        "camera": camera,
        "frame": frame,
        "captured_at": captured_at,
        "latency_ms": latency_ms,
        "engine_ms": engine_ms,
        "model": model,
        "precision": precision,
        "profile": profile,
        "outputs": dict(outputs),
    }
    optional = {
        "queue_ms": queue_ms,
        "batch_size": batch_size,
        "provider": provider,
        "truth": truth,
        "batch_energy_share_mj": batch_energy_share_mj,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    if batch_energy_share_mj is not None:
        doc["energy_estimate"] = energy_estimate
    return doc


def telemetry_payload(
    *,
    ts: float,
    profile: str | None,
    total_w: float | None,
    rails: Mapping[str, tuple[float | None, float | None, float]] | None = None,
    energy_j: float | None = None,
    perf_per_watt: float | None = None,
    mj_per_inference: float | None = None,
    fps: float = 0.0,
    latency_ms: tuple[float, float, float] | None = None,
    clocks: Mapping[str, Any] | None = None,
    temps: Mapping[str, float | None] | None = None,
    loads: Mapping[str, float | None] | None = None,
    queues: Mapping[str, float] | None = None,
    drops: Mapping[str, int] | None = None,
    outbox_depth: int = 0,
    outbox_dropped: int = 0,
    outbox_lost: int = 0,
    outbox_errors: int = 0,
    outbox_detail: Mapping[str, Any] | None = None,
    events: Sequence[str | Mapping[str, Any]] = (),
    window_s: float | None = None,
    total_name: str | None = None,
    results: int | None = None,
    profile_error: str | None = None,
    engine: Mapping[str, Any] | None = None,
    config_version: Mapping[str, int] | None = None,
    governor: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One telemetry message.

    Args:
        ts: wall time (s since the epoch).
        profile: active power profile.
        total_w: board power (VDD_IN / POM_5V_IN), None without a monitor.
        rails: rail name -> (volts, amps, watts); volts/amps None where the channel lacks them.
        energy_j: energy over the window.
        perf_per_watt: inferences per second per watt over the window.
        mj_per_inference: all board energy over the window divided by the inferences in it
            (mJ; the MLPerf figure, idle time between batches included). Equals
            ``total_w / fps * 1000``.
        fps: inferences per second over the window.
        latency_ms: (p50, p95, p99) end-to-end latency over the window.
        clocks: clock name -> value with its unit in the name (``gpu_hz``, ``cpu0_khz``);
            a value may be a nested object of numbers (e.g. per-cluster).
        temps: thermal zone -> degrees Celsius (None: unreadable).
        loads: unit -> load with its unit in the name (``gpu_pct``).
        queues: queue name -> current depth.
        drops: counter name -> total dropped since start.
        outbox_depth: messages waiting in the outbox.
        outbox_dropped: oldest unsent messages dropped by the size bound and the disk floor
            (total, persisted).
        outbox_lost: messages the outbox could not store at all (disk full), persisted in
            the outbox's counters file.
        outbox_errors: outbox write failures since start (each may lose several messages).
        outbox_detail: more outbox fields (``drops`` by rule, ``results_dropped``,
            ``quarantined``, ``state``, ``bound``, ``reserve``), merged into ``outbox``.
        events: notable transitions since the last message (strings or small objects).
        window_s: length of the measurement window.
        total_name: the rail used as board total (``VDD_IN``, ``POM_5V_IN``).
        results: results produced since start.
        profile_error: why the last profile change failed, if it did.
        engine: ``{"provider", "state", "state_elapsed_s"}``; ``building_engine`` with its
            elapsed time while TensorRT builds, so a long build never looks like a hang.
        config_version: the committed fleet config version per source, when fleet is on.
        governor: the governor policy in force: ``policy``, ``set_by`` (as on
            ``policy/state``), ``preset`` (the profile ``fixed`` holds) and, while a governor
            runs, ``point`` (``label``, ``gpu_hz``, ``emc_hz``, ``cpu_khz``).
    """
    p50, p95, p99 = latency_ms if latency_ms is not None else (None, None, None)
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "ts": ts,
        "profile": profile,
        "power": {
            "total_w": total_w,
            "total_name": total_name,
            "rails": {name: {"v": v, "a": a, "w": w} for name, (v, a, w) in (rails or {}).items()},
        },
        "energy_j": energy_j,
        "perf_per_watt": perf_per_watt,
        "mj_per_inference": mj_per_inference,
        "fps": fps,
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
        "clocks": dict(clocks or {}),
        "temps": dict(temps or {}),
        "loads": dict(loads or {}),
        "queues": dict(queues or {}),
        "drops": dict(drops or {}),
        "outbox": {
            "depth": outbox_depth,
            "dropped": outbox_dropped,
            "lost": outbox_lost,
            "errors": outbox_errors,
            **dict(outbox_detail or {}),
        },
        "events": [e if isinstance(e, str) else dict(e) for e in events],
    }
    optional: dict[str, Any] = {
        "window_s": window_s,
        "results": results,
        "profile_error": profile_error,
        "engine": None if engine is None else dict(engine),
        "config_version": None if config_version is None else dict(config_version),
        "governor": None if governor is None else dict(governor),
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return doc


def profile_state_payload(
    profile: str | None, applied: bool, error: str | None, ts: float, requested: str | None = None
) -> dict[str, Any]:
    """The retained answer to a profile command.

    Args:
        profile: the profile now active (the applied one, or the previous one after an error).
        applied: whether the requested profile was applied and verified.
        error: why it was not, else None.
        ts: wall time of the answer.
        requested: the name that was asked for, when it could be decoded.
    """
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "profile": profile,
        "applied": applied,
        "error": error,
        "ts": ts,
    }
    if requested is not None:
        doc["requested"] = requested
    return doc


def policy_state_payload(
    policy: str,
    preset: str | None,
    set_by: str,
    accepted: bool,
    error: str | None,
    ts: float,
    requested: str | None = None,
) -> dict[str, Any]:
    """The retained governor policy in force, also the answer to a policy command.

    Args:
        policy: the policy in force (the new one, or the previous one after a refusal).
        preset: the profile ``fixed`` holds (``profile.initial``), None when it holds none.
        set_by: who set the policy in force: ``config`` (the config the agent started with:
            the file and any committed fleet documents), ``config reload``, ``fleet`` (a push
            while running) or ``mqtt`` (a ``policy/set`` command; not kept across a restart).
        accepted: whether the request answered here was applied.
        error: why it was not, naming the field; else None.
        ts: wall time of the answer.
        requested: the policy that was asked for, when it could be read.
    """
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "policy": policy,
        "preset": preset,
        "set_by": set_by,
        # A policy set over MQTT is a runtime override: at the next start the config file
        # (with any committed fleet documents) decides again.
        "persists": set_by != "mqtt",
        "accepted": accepted,
        "error": error,
        "ts": ts,
    }
    if requested is not None:
        doc["requested"] = requested
    return doc
