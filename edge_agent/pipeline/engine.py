"""The ONNX Runtime engine: provider choice, warm-up, fixed/dynamic batch, a readable state.

Providers are tried in the configured order of preference (TensorRT, CUDA, CPU) among those this
onnxruntime build offers; the provider that ORT actually put first is reported, because ORT
quietly falls back when a provider fails to initialise. A TensorRT engine build can take
minutes on a Jetson, so the engine reports ``building_engine`` with the elapsed time instead of
looking hung, and keeps engine and timing caches under ``<state_dir>/trt-cache``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge_agent.clock import Clock
from edge_agent.config import ModelConfig
from edge_agent.errors import InferenceError

logger = logging.getLogger(__name__)

StateName = Literal["loading", "building_engine", "ready", "failed"]

_PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_DTYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(uint8)": np.dtype(np.uint8),
}


@dataclass(frozen=True, slots=True)
class EngineState:
    """The engine's state as another thread sees it."""

    name: StateName
    elapsed_s: float
    provider: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The model's image input: NCHW, with a fixed batch size or ``None`` for dynamic."""

    name: str
    batch: int | None
    channels: int
    height: int
    width: int
    dtype: np.dtype[Any]


def provider_chain(
    wanted: list[str],
    available: list[str],
    precision: str,
    cache_dir: Path,
    calibration_table: str | None = None,
) -> list[str | tuple[str, dict[str, Any]]]:
    """ORT providers with options, in order of preference, keeping only available ones.

    Raises:
        InferenceError: none of the wanted providers is available.
    """
    chain: list[str | tuple[str, dict[str, Any]]] = []
    for key in wanted:
        name = _PROVIDER_NAMES[key]
        if name not in available:
            continue
        if key == "tensorrt":
            chain.append((name, tensorrt_options(precision, cache_dir, calibration_table)))
        else:
            chain.append(name)
    if not chain:
        raise InferenceError(
            f"none of the configured providers {wanted} is available in this onnxruntime "
            f"build (available: {available})"
        )
    return chain


def tensorrt_options(
    precision: str, cache_dir: Path, calibration_table: str | None = None
) -> dict[str, Any]:
    """TensorRT EP options: precision flags plus persistent engine and timing caches.

    ``calibration_table`` is a file name inside ``cache_dir`` (where the EP looks for it),
    used for INT8 on a model without Q/DQ nodes.
    """
    options: dict[str, Any] = {
        "trt_fp16_enable": precision in ("fp16", "int8"),
        "trt_int8_enable": precision == "int8",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
    }
    if precision == "int8" and calibration_table is not None:
        options["trt_int8_calibration_table_name"] = calibration_table
        options["trt_int8_use_native_calibration_table"] = False
    return options


class Engine:
    """One ORT session plus warm-up, batch padding and a state other threads can read.

    Args:
        model_path: the ONNX file.
        config: the ``model`` config section.
        state_dir: the agent's state directory (TensorRT caches go in ``trt-cache`` below it).
        clock: the injected clock.
        max_batch: the largest batch the pipeline will send (caps TensorRT profiles).
        latency_scale: optional hook; after a run taking ``t`` the engine waits
            ``t * (scale - 1)`` more, so a simulated board can stretch engine time.
    """

    def __init__(
        self,
        model_path: Path,
        config: ModelConfig,
        state_dir: Path,
        clock: Clock,
        *,
        max_batch: int = 1,
        latency_scale: Callable[[], float] | None = None,
    ) -> None:
        self._path = Path(model_path)
        self._config = config
        self._cache_dir = Path(state_dir) / "trt-cache"
        self._clock = clock
        self._wanted_batch = max_batch
        self._latency_scale = latency_scale
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._state: StateName = "loading"
        self._since = clock.monotonic()
        self._error: str | None = None
        self._provider: str | None = None
        self._session: Any = None
        self._input: InputSpec | None = None
        self._output_names: list[str] = []

    # -- state -----------------------------------------------------------------------------
    def state(self) -> EngineState:
        """The current state and how long it has lasted (safe from any thread)."""
        with self._lock:
            return EngineState(
                self._state, self._clock.monotonic() - self._since, self._provider, self._error
            )

    def _set_state(self, name: StateName, error: str | None = None) -> None:
        with self._lock:
            if name != self._state:
                logger.info("engine %s: %s -> %s", self._path.name, self._state, name)
            self._state = name
            self._since = self._clock.monotonic()
            self._error = error

    @property
    def provider(self) -> str:
        """The execution provider ORT actually uses (after ``load``)."""
        if self._provider is None:
            raise InferenceError("engine is not loaded")
        return self._provider

    @property
    def input(self) -> InputSpec:
        """The model's image input (after ``load``)."""
        if self._input is None:
            raise InferenceError("engine is not loaded")
        return self._input

    @property
    def model_path(self) -> Path:
        """The ONNX file this engine runs."""
        return self._path

    def batch_rows(self, count: int) -> int:
        """Rows the session runs for ``count`` frames: the fixed batch, or ``count``."""
        fixed = self.input.batch
        return count if fixed is None else fixed

    def max_batch(self) -> int:
        """The largest batch this model accepts given the wanted batch."""
        fixed = self.input.batch
        return self._wanted_batch if fixed is None else min(fixed, self._wanted_batch)

    # -- load ------------------------------------------------------------------------------
    def load(self) -> None:
        """Create the session, check the input and warm up; ``ready`` afterwards.

        Raises:
            InferenceError: missing or corrupt model, no usable provider, or an input no
                camera can feed. The state becomes ``failed`` with the message.
        """
        try:
            self._load()
        except InferenceError as err:
            self._set_state("failed", str(err))
            raise

    def _load(self) -> None:
        import onnxruntime as ort

        if not self._path.is_file():
            raise InferenceError(f"model file not found: {self._path}")
        available = list(ort.get_available_providers())
        uses_trt = "tensorrt" in self._config.providers and _PROVIDER_NAMES["tensorrt"] in available
        table = None
        if uses_trt:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            table = self._install_calibration_table()
            self._set_state("building_engine")
        chain = provider_chain(
            list(self._config.providers), available, self._config.precision, self._cache_dir, table
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._config.intra_op_threads
        options.inter_op_num_threads = self._config.inter_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(self._path), options, providers=chain)
        except _load_errors() as err:
            raise InferenceError(f"{self._path}: cannot load model: {err}") from err
        self._session = session
        self._provider = str(session.get_providers()[0])
        self._input = _image_input(session, self._path)
        self._output_names = [o.name for o in session.get_outputs()]
        logger.info(
            "engine %s: provider %s, input %s %s, batch %s",
            self._path.name,
            self._provider,
            self._input.name,
            (self._input.channels, self._input.height, self._input.width),
            self._input.batch or "dynamic",
        )
        self._warm_up()
        self._set_state("ready")

    def _install_calibration_table(self) -> str | None:
        """Copy ``<model>.calib`` (from ``edge-agent optimize --trt-calib-table``) to the cache.

        The TensorRT EP reads the table from its cache folder, by file name.
        """
        source = self._path.with_suffix(".calib")
        if self._config.precision != "int8" or not source.is_file():
            return None
        name = f"{self._path.stem}.calib"
        (self._cache_dir / name).write_bytes(source.read_bytes())
        return name

    def _warm_up(self) -> None:
        spec = self.input
        # TensorRT builds (or loads) its engine on the first run of each shape, and widens
        # its optimisation profile to every batch size seen; warming up at the largest and
        # the smallest batch covers all sizes in between, so no rebuild happens later.
        largest = self.batch_rows(self.max_batch())
        sizes = [largest] if spec.batch is not None or largest == 1 else [largest, 1]
        for rows in sizes:
            dummy = np.zeros((rows, spec.channels, spec.height, spec.width), dtype=spec.dtype)
            for _ in range(self._config.warmup_runs):
                self._session_run(dummy)

    # -- run -------------------------------------------------------------------------------
    def run(self, batch: np.ndarray, count: int) -> list[np.ndarray]:
        """Run ``count`` real frames from the front of ``batch``; padding is dropped.

        ``batch`` has at least ``batch_rows(count)`` rows; for a fixed-batch model the rows
        past ``count`` are padding and their outputs are cut off.
        """
        rows = self.batch_rows(count)
        start = self._clock.monotonic()
        outputs = self._session_run(batch[:rows])
        if self._latency_scale is not None:
            scale = self._latency_scale()
            if scale > 1.0:
                self._wake.wait((self._clock.monotonic() - start) * (scale - 1.0))
        if rows == count:
            return outputs
        return [o[:count] if o.ndim > 0 and o.shape[0] == rows else o for o in outputs]

    def _session_run(self, feed: np.ndarray) -> list[np.ndarray]:
        if self._session is None:
            raise InferenceError("engine is not loaded")
        try:
            outputs: list[np.ndarray] = self._session.run(
                self._output_names, {self.input.name: feed}
            )
        except _run_errors() as err:
            raise InferenceError(f"{self._path}: inference failed: {err}") from err
        return outputs

    def close(self) -> None:
        """Interrupt a latency stretch in progress and drop the session."""
        self._wake.set()
        self._session = None


def _image_input(session: Any, path: Path) -> InputSpec:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = [(i.name, i.shape) for i in inputs]
        raise InferenceError(f"{path}: expected one image input, the model has {names}")
    info = inputs[0]
    shape = list(info.shape)
    dtype = _DTYPES.get(info.type)
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if (
        len(shape) != 4
        or fixed[1] not in (1, 3)
        or fixed[2] is None
        or fixed[3] is None
        or dtype is None
    ):
        raise InferenceError(
            f"{path}: input {info.name!r} has shape {shape} and type {info.type}; no camera "
            "can feed it: expected [N, C, H, W] with C 1 or 3, fixed H and W, and float, "
            "float16 or uint8 elements"
        )
    return InputSpec(info.name, fixed[0], int(shape[1]), int(shape[2]), int(shape[3]), dtype)


def _ort_errors(*names: str) -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def _load_errors() -> tuple[type[BaseException], ...]:
    return _ort_errors(
        "Fail",
        "InvalidArgument",
        "InvalidGraph",
        "InvalidProtobuf",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
        "EPFail",
    )


def _run_errors() -> tuple[type[BaseException], ...]:
    return _ort_errors("Fail", "InvalidArgument", "RuntimeException", "EPFail")
