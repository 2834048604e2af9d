"""Frame -> model input: resize or letterbox, colour order, scale/mean/std, NCHW.

Frames are written straight into a preallocated batch buffer; the only per-frame allocation
left is the one ``cv2.resize`` makes for its output.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.errors import InferenceError
from edge_agent.pipeline.engine import InputSpec
from edge_agent.pipeline.model_meta import LetterboxInfo, PreprocessSpec


class Preprocessor:
    """Fills rows of one batch buffer from BGR (or gray) uint8 frames.

    Args:
        spec: the model's preprocessing settings.
        model_input: the engine's input (channels, size, element type).
        rows: buffer rows: the largest batch including fixed-batch padding.
    """

    def __init__(self, spec: PreprocessSpec, model_input: InputSpec, rows: int) -> None:
        channels = model_input.channels
        if (channels == 1) != (spec.color == "gray"):
            raise InferenceError(
                f"model input {model_input.name!r} has {channels} channel(s) but the "
                f"preprocessing colour is {spec.color!r}"
            )
        self._spec = spec
        self._width = model_input.width
        self._height = model_input.height
        self._channels = channels
        self.buffer: np.ndarray = np.zeros(
            (rows, channels, model_input.height, model_input.width), dtype=model_input.dtype
        )
        self._canvas: np.ndarray = np.full(
            (model_input.height, model_input.width, channels), spec.pad_value, dtype=np.uint8
        )
        alpha, beta = spec.coefficients()
        self._alpha = [float(a) for a in alpha]
        self._beta = [float(b) for b in beta]
        self._raw = model_input.dtype == np.dtype(np.uint8)

    @property
    def rows(self) -> int:
        """Rows in the batch buffer."""
        return int(self.buffer.shape[0])

    def fill(self, index: int, image: np.ndarray) -> LetterboxInfo:
        """Write one frame into row ``index`` of the buffer; returns its resize geometry."""
        orig_h, orig_w = int(image.shape[0]), int(image.shape[1])
        if self._spec.resize == "letterbox":
            info = LetterboxInfo.for_letterbox(orig_w, orig_h, self._width, self._height)
            new_w = min(self._width, round(orig_w * info.scale))
            new_h = min(self._height, round(orig_h * info.scale))
            x0, y0 = int(info.pad_x), int(info.pad_y)
            small = self._channels_last(_resized(image, new_w, new_h))
            self._canvas[:] = self._spec.pad_value
            self._canvas[y0 : y0 + new_h, x0 : x0 + new_w] = small
            pixels = self._canvas
        else:
            info = LetterboxInfo.for_stretch(orig_w, orig_h, self._width, self._height)
            pixels = self._channels_last(_resized(image, self._width, self._height))
        row = self.buffer[index]
        # Frames are BGR; an RGB model reads the channels in reverse instead of converting.
        order = (2, 1, 0) if self._spec.color == "rgb" else range(self._channels)
        for c, src in enumerate(order):
            if self._raw:
                row[c] = pixels[:, :, src]
                continue
            # x = p * (scale / std) + (-mean / std), computed into the buffer row in place.
            np.multiply(pixels[:, :, src], self._alpha[c], out=row[c], casting="unsafe")
            row[c] += self._beta[c]
        return info

    def clear(self, start: int) -> None:
        """Zero the rows from ``start`` on (the padding of a partial fixed-size batch)."""
        self.buffer[start:] = 0

    def _channels_last(self, image: np.ndarray) -> np.ndarray:
        """The image as H x W x C with the model's channel count (BGR order for 3)."""
        if image.ndim == 2 or image.shape[2] == 1:
            gray = image.reshape(image.shape[0], image.shape[1], 1)
            return gray if self._channels == 1 else np.repeat(gray, 3, axis=2)
        if self._channels == 1:
            converted: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            return converted[:, :, np.newaxis]
        return image


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    # INTER_AREA averages whole source blocks when shrinking (exact for integer factors);
    # INTER_LINEAR is the usual choice when enlarging.
    shrink = image.shape[1] >= width and image.shape[0] >= height
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    resized: np.ndarray = cv2.resize(image, (width, height), interpolation=interp)
    return resized
