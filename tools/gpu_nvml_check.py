"""NVML backend check on a machine with an NVIDIA GPU: integrated power vs the energy counter.

Samples the GPU through edge-agent's real NVML backend and sampler at 100 Hz for 10 s while a
CUDA spin kernel switches the GPU between load and idle (on 1-4 s and 6-9 s), integrates power
with the ledger's trapezoidal rule, and compares it with the change of NVML's total-energy
counter over the same span. Needs only the NVIDIA driver: pynvml is used when installed, else
a small ctypes binding of ``libnvidia-ml.so.1`` stands in for it; the load uses the CUDA driver
API (``libcuda.so.1``) with a PTX kernel, and is skipped (idle GPU) if that fails.

    python tools/gpu_nvml_check.py [--seconds 10] [--hz 100]

The last line is ``nvml_energy_error=<fraction> integrated_j=<J> counter_j=<J>`` (target: the
error within 0.05).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import itertools
import sys
import threading
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGET = 0.05
NVML_FI_DEV_POWER_INSTANT = 186


class _FieldValue(ctypes.Structure):
    _fields_ = [  # ctypes layout of nvmlFieldValue_t
        ("fieldId", ctypes.c_uint32),
        ("scopeId", ctypes.c_uint32),
        ("timestamp", ctypes.c_int64),
        ("latencyUsec", ctypes.c_int64),
        ("valueType", ctypes.c_int32),
        ("nvmlReturn", ctypes.c_int32),
        ("value", ctypes.c_uint64),  # the union; uiVal is its low 32 bits (little endian)
    ]


def _ctypes_pynvml() -> types.ModuleType:
    """The few pynvml calls the backend makes, over ctypes, for hosts without nvidia-ml-py."""
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def check(ret: int) -> None:
        if ret != 0:
            lib.nvmlErrorString.restype = ctypes.c_char_p
            raise NVMLError(f"NVML error {ret}: {lib.nvmlErrorString(ret).decode()}")

    def handle(index: int) -> ctypes.c_void_p:
        out = ctypes.c_void_p()
        check(lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(out)))
        return out

    def count() -> int:
        out = ctypes.c_uint()
        check(lib.nvmlDeviceGetCount_v2(ctypes.byref(out)))
        return out.value

    def name(h: ctypes.c_void_p) -> str:
        buf = ctypes.create_string_buffer(96)
        check(lib.nvmlDeviceGetName(h, buf, ctypes.c_uint(96)))
        return buf.value.decode()

    def power(h: ctypes.c_void_p) -> int:
        out = ctypes.c_uint()
        check(lib.nvmlDeviceGetPowerUsage(h, ctypes.byref(out)))
        return out.value

    def energy(h: ctypes.c_void_p) -> int:
        out = ctypes.c_ulonglong()
        check(lib.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(out)))
        return out.value

    class _Value:
        def __init__(self, raw: int) -> None:
            self.uiVal = raw & 0xFFFFFFFF

    class _Field:
        def __init__(self, fv: _FieldValue) -> None:
            self.nvmlReturn = fv.nvmlReturn
            self.value = _Value(fv.value)

    def fields(h: ctypes.c_void_p, ids: list[int]) -> list[_Field]:
        arr = (_FieldValue * len(ids))()
        for i, field_id in enumerate(ids):
            arr[i].fieldId = field_id
        check(lib.nvmlDeviceGetFieldValues(h, ctypes.c_int(len(ids)), arr))
        return [_Field(v) for v in arr]

    mod.NVMLError = NVMLError  # type: ignore[attr-defined]
    mod.NVML_SUCCESS = 0  # type: ignore[attr-defined]
    mod.NVML_FI_DEV_POWER_INSTANT = NVML_FI_DEV_POWER_INSTANT  # type: ignore[attr-defined]
    mod.nvmlInit = lambda: check(lib.nvmlInit_v2())  # type: ignore[attr-defined]
    mod.nvmlShutdown = lambda: check(lib.nvmlShutdown())  # type: ignore[attr-defined]
    mod.nvmlDeviceGetCount = count  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = handle  # type: ignore[attr-defined]
    mod.nvmlDeviceGetName = name  # type: ignore[attr-defined]
    mod.nvmlDeviceGetPowerUsage = power  # type: ignore[attr-defined]
    mod.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    mod.nvmlDeviceGetFieldValues = fields  # type: ignore[attr-defined]
    return mod


_PTX = b"""
.version 6.0
.target sm_50
.address_size 64
.visible .entry spin(.param .u64 out, .param .u32 iters)
{
  .reg .f32 %f<3>;
  .reg .u32 %r<4>;
  .reg .u64 %rd<3>;
  .reg .pred %p;
  ld.param.u64 %rd1, [out];
  ld.param.u32 %r1, [iters];
  mov.u32 %r2, %tid.x;
  cvt.rn.f32.u32 %f1, %r2;
  mov.f32 %f2, 0f3F7FFFFE;
  mov.u32 %r3, 0;
LOOP:
  fma.rn.f32 %f1, %f1, %f2, %f2;
  add.u32 %r3, %r3, 1;
  setp.lt.u32 %p, %r3, %r1;
  @%p bra LOOP;
  cvta.to.global.u64 %rd2, %rd1;
  st.global.f32 [%rd2], %f1;
  ret;
}
"""


class GpuLoad:
    """A CUDA spin kernel launched in a loop while ``on`` is set; a no-op if CUDA fails."""

    def __init__(self) -> None:
        self.on = threading.Event()
        self.stop = threading.Event()
        self.error = ""
        self.launches = 0
        self._thread = threading.Thread(target=self._run, name="gpu-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self.on.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            cuda = ctypes.CDLL("libcuda.so.1")

            def check(ret: int, what: str) -> None:
                if ret != 0:
                    raise RuntimeError(f"{what} failed with CUDA error {ret}")

            check(cuda.cuInit(0), "cuInit")
            dev, ctx = ctypes.c_int(), ctypes.c_void_p()
            check(cuda.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
            # The primary context: its API is the same on every driver since CUDA 7.
            check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "PrimaryCtxRetain")
            check(cuda.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
            module, func = ctypes.c_void_p(), ctypes.c_void_p()
            check(cuda.cuModuleLoadData(ctypes.byref(module), _PTX), "cuModuleLoadData")
            check(cuda.cuModuleGetFunction(ctypes.byref(func), module, b"spin"), "GetFunction")
            out = ctypes.c_uint64()
            check(cuda.cuMemAlloc_v2(ctypes.byref(out), ctypes.c_size_t(1024)), "cuMemAlloc")
            iters = ctypes.c_uint32(1 << 16)
            params = (ctypes.c_void_p * 2)(
                ctypes.cast(ctypes.byref(out), ctypes.c_void_p),
                ctypes.cast(ctypes.byref(iters), ctypes.c_void_p),
            )
            while not self.stop.is_set():
                self.on.wait()
                if self.stop.is_set():
                    break
                began = time.perf_counter()
                check(
                    cuda.cuLaunchKernel(func, 4096, 1, 1, 256, 1, 1, 0, None, params, None),
                    "cuLaunchKernel",
                )
                check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
                self.launches += 1
                took = time.perf_counter() - began
                if took < 0.02 and iters.value < (1 << 30):
                    iters.value *= 2  # aim for ~20-40 ms kernels so "off" takes effect quickly
            cuda.cuMemFree_v2(out)
        except (OSError, RuntimeError, AttributeError) as err:
            self.error = str(err)


def _trapezoid(ts: list[float], ws: list[float], t0: float, t1: float) -> float:
    try:
        import numpy as np

        from edge_agent.power.ledger import integrate

        energy, _ = integrate(
            np.array(ts, float), np.array(ws, float), t0, t1, max_gap_s=1.0, hold_s=0.0
        )
        return energy
    except ImportError:
        total = 0.0
        for (ta, wa), (tb, wb) in itertools.pairwise(zip(ts, ws, strict=True)):
            a, b = max(ta, t0), min(tb, t1)
            if b > a:
                slope = (wb - wa) / (tb - ta)
                total += (wa + slope * (a - ta) + wa + slope * (b - ta)) / 2 * (b - a)
        return total


def main() -> int:
    """Sample, integrate, compare; the summary line comes last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=100.0)
    args = parser.parse_args()

    if importlib.util.find_spec("pynvml") is None:
        try:
            sys.modules["pynvml"] = _ctypes_pynvml()
            print("pynvml not installed: using the ctypes binding of libnvidia-ml.so.1")
        except OSError as err:
            print(f"no NVML library: {err}")
            print("nvml_energy_error=nan integrated_j=nan counter_j=nan")
            return 1

    from edge_agent.clock import SystemClock
    from edge_agent.hardware.nvml import NvmlMonitor
    from edge_agent.power.sampler import Sampler

    clock = SystemClock()
    monitor = NvmlMonitor(clock)
    print(f"nvml: available={monitor.available} {monitor.reason}")
    if not monitor.available:
        print("nvml_energy_error=nan integrated_j=nan counter_j=nan")
        return 1
    load = GpuLoad()
    load.start()
    sampler = Sampler(monitor, clock, interval_s=1.0 / args.hz, capacity=100_000)
    started = clock.monotonic()
    sampler.start()
    ticker = threading.Event()
    try:
        while (elapsed := clock.monotonic() - started) < args.seconds:
            phase = elapsed % 5.0
            if 1.0 <= phase < 4.0:
                load.on.set()
            else:
                load.on.clear()
            ticker.wait(0.05)
    finally:
        load.on.clear()
        sampler.stop()
        sampler.join(5.0)
        load.close()
        monitor.close()
    samples = sampler.samples()
    stats = sampler.stats()
    power_field = "instant field" if getattr(monitor, "_instant", False) else "power usage"
    print(
        f"samples={stats.samples} late={stats.late} errors={stats.read_errors} "
        f"power from NVML {power_field}; load launches={load.launches} {load.error}"
    )
    counted = [s for s in samples if s.energy_mj is not None]
    if len(counted) < 2:
        print("no NVML energy counter on this GPU (needs Volta or newer)")
        print("nvml_energy_error=nan integrated_j=nan counter_j=nan")
        return 1
    # Compare between the first and last counter updates: the counter steps at its own rate,
    # so its value at an arbitrary sample can be up to one update period stale.
    changes = [b for a, b in itertools.pairwise(counted) if b.energy_mj != a.energy_mj]
    first, last = (changes[0], changes[-1]) if len(changes) >= 2 else (counted[0], counted[-1])
    ts = [s.t_s for s in samples if s.total_mw is not None]
    ws = [s.total_mw / 1000.0 for s in samples if s.total_mw is not None]
    integrated_j = _trapezoid(ts, ws, first.t_s, last.t_s)
    counter_j = ((last.energy_mj or 0.0) - (first.energy_mj or 0.0)) / 1000.0
    span = last.t_s - first.t_s
    watts = sorted(ws)
    print(
        f"span={span:.2f}s counter_updates={len(changes)} power min/median/max="
        f"{watts[0]:.1f}/{watts[len(watts) // 2]:.1f}/{watts[-1]:.1f} W"
    )
    error = abs(integrated_j - counter_j) / counter_j if counter_j > 0 else float("nan")
    verdict = "ok" if error <= TARGET else "ABOVE TARGET"
    print(f"target <= {TARGET}: {verdict}")
    print(
        f"nvml_energy_error={error:.4f} integrated_j={integrated_j:.3f} counter_j={counter_j:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
