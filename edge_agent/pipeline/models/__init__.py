"""Model files shipped with edge-agent: the demo digits classifier and its held-out set.

``tools/train_demo_model.py`` writes ``demo_digits.onnx``, its sidecar ``demo_digits.yaml`` and
``digits_holdout.npz``; rerun it rather than editing them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from edge_agent.errors import InferenceError

_PACKAGE = __name__
_DEMO_MODEL = "demo_digits.onnx"
_DEMO_HOLDOUT = "digits_holdout.npz"


def bundled_demo_model() -> Path:
    """Path of the demo digits classifier shipped in the package."""
    return _package_file(_DEMO_MODEL)


def load_holdout() -> tuple[np.ndarray, np.ndarray]:
    """The demo model's held-out set: uint8 images (N, 8, 8) in 0..255 and int64 labels (N,)."""
    path = _package_file(_DEMO_HOLDOUT)
    with np.load(path, allow_pickle=False) as data:
        images = np.ascontiguousarray(data["images"], dtype=np.uint8)
        labels = np.ascontiguousarray(data["labels"], dtype=np.int64)
    return images, labels


def load_calibration_images() -> np.ndarray:
    """Training images (not held out) for INT8 calibration of the demo model: uint8 (M, 8, 8)."""
    with np.load(_package_file(_DEMO_HOLDOUT), allow_pickle=False) as data:
        return np.ascontiguousarray(data["calib_images"], dtype=np.uint8)


def _package_file(name: str) -> Path:
    resource = resources.files(_PACKAGE).joinpath(name)
    path = Path(str(resource))
    if not path.is_file():
        # A zipped install has no real file to hand to onnxruntime.
        raise InferenceError(f"bundled file {name} is missing from {_PACKAGE}")
    return path
