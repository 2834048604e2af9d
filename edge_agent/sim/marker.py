"""The file that marks a tree as a simulated board and names the board it was created as.

A leaf module: the tree writer, the fake CLIs and the power model all read it, so it sits
below them and imports nothing of the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "sim/board.json"


def board_name(root: Path) -> str:
    """The board a simulated tree was created as (from ``sim/board.json``).

    Raises:
        FileNotFoundError: ``root`` is not a simulated board.
    """
    data = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    return str(data["board"])


def is_simulated(root: Path) -> bool:
    """Whether ``root`` holds a simulated board's marker."""
    return (Path(root) / MARKER).is_file()
