"""The error every frame source raises; a leaf, so capture and the synthetic sources share it."""

from __future__ import annotations

from edge_agent.errors import HardwareError


class SourceUnavailable(HardwareError):
    """A camera could not be opened or stopped delivering frames."""
