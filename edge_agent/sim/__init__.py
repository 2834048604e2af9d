"""Simulated Jetson boards: a faithful file tree, fake ``nvpmodel``/``jetson_clocks``, a power
model and a simulated engine for the reference networks.

``create_board``, ``SimBoard``, ``BOARDS`` and ``board_names`` are importable from here; they load
on first use so ``edge-agent`` startup does not pay for the board tables.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.sim.boards import BOARDS, board_names
    from edge_agent.sim.tree import SimBoard, create_board

__all__ = ["BOARDS", "SimBoard", "board_names", "create_board"]

_LAZY = {
    "BOARDS": "edge_agent.sim.boards",
    "board_names": "edge_agent.sim.boards",
    "SimBoard": "edge_agent.sim.tree",
    "create_board": "edge_agent.sim.tree",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edge_agent.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
