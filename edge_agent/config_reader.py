"""The bounded config reader: the only way a config file becomes a Python mapping.

``run``, ``check-config`` and a SIGHUP reload all read through :func:`read_config_file`, so a
file that one of them refuses, they all refuse, with the same message. The reader:

- opens without blocking and reads only a regular file (a FIFO, ``/dev/zero`` or a directory
  is refused at once, naming the path), up to :data:`MAX_CONFIG_BYTES`;
- decodes UTF-8 strictly, naming the byte offset of the first bad byte;
- parses YAML with the pure-Python safe loader, refusing nesting deeper than
  :data:`MAX_DEPTH` before Python's own recursion limit is near;
- walks the node graph once (aliases expanded, so an alias bomb or a self-referencing anchor
  is bounded too): at most :data:`MAX_NODES` nodes, no duplicate keys.

Every refusal is a :class:`ConfigError` with a path-like location, never a traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from edge_agent.errors import ConfigError, FieldError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "parse_yaml",
    "read_config_file",
    "read_regular_file",
]

MAX_CONFIG_BYTES = 256 * 1024
"""Agent configs are a few KB; this leaves room for a large camera list."""
MAX_DEPTH = 32
"""The agent's own schema nests 5 deep; 32 leaves room without nearing the recursion limit."""
MAX_NODES = 50_000
"""YAML nodes after expanding aliases (a guard against alias bombs)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting beyond MAX_DEPTH, raised by the composer before it recurses further."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with a depth limit on the (recursive) composer."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=mark)
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and parse a config file with every bound applied.

    Raises:
        ConfigError: not a regular file, too large, unreadable, not UTF-8, bad YAML, too deep,
            too many nodes, duplicate keys, or a document that is not a mapping.
    """
    return parse_yaml(read_regular_file(path), str(path))


def _file_error(message: str, where: str = "(file)") -> ConfigError:
    return ConfigError([FieldError(where, message)])


def read_regular_file(
    path: Path, max_bytes: int = MAX_CONFIG_BYTES, where: str = "(file)"
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, read without blocking on a FIFO.

    Raises:
        ConfigError: at ``where``, naming the path: missing, unreadable, not a regular file,
            or too large.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise _file_error(f"cannot read {path}: {err.strerror}", where) from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _file_error(f"{path} is not a regular file ({_kind(info.st_mode)})", where)
        if info.st_size > max_bytes:
            raise _file_error(_too_large(path, info.st_size, max_bytes), where)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # the file grew after fstat
            raise _file_error(_too_large(path, total, max_bytes), where)
        return b"".join(chunks)
    except OSError as err:
        if err.errno == errno.EISDIR:
            raise _file_error(f"{path} is not a regular file (a directory)", where) from err
        raise _file_error(f"cannot read {path}: {err.strerror}", where) from err
    finally:
        os.close(fd)


def _too_large(path: Path, size: int, limit: int = MAX_CONFIG_BYTES) -> str:
    return f"{path} is {size} bytes; it may hold at most {limit} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _decode(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            [
                FieldError(
                    "(file)",
                    f"not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start}",
                )
            ],
            source,
        ) from err


def parse_yaml(data: bytes | str, source: str) -> dict[str, Any]:
    """Parse config bytes (UTF-8) or text into a mapping, within the reader's bounds.

    Raises:
        ConfigError: see :func:`read_config_file`.
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([FieldError("(file)", _too_large(Path(source), len(data)))], source)
    text = _decode(data, source)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_nodes(node, source)
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = err.problem or err.context or "syntax error"
        raise ConfigError([FieldError("(yaml)", f"{where}: {problem}")], source) from err
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        problem = f"line {line}: character #x{err.character:04x} is not allowed in YAML"
        raise ConfigError([FieldError("(yaml)", problem)], source) from err
    except yaml.YAMLError as err:
        raise ConfigError([FieldError("(yaml)", str(err))], source) from err
    finally:
        if loader is not None:
            loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            [FieldError("(top level)", f"expected a mapping, got {type(document).__name__}")],
            source,
        )
    return document


def _short(path: str) -> str:
    """A field path cut to a readable length (a self-referencing anchor makes it endless)."""
    return path if len(path) <= 80 else path[:77] + "..."


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_nodes(root: Node, source: str) -> None:
    """One iterative walk over the expanded node graph: size, depth and duplicate keys."""
    stack: list[tuple[Node, str, int]] = [(root, "", 1)]
    count = 0
    while stack:
        node, path, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(
                [FieldError("(yaml)", f"more than {MAX_NODES} values (aliases expanded)")],
                source,
            )
        if depth > MAX_DEPTH:
            line = node.start_mark.line + 1
            raise ConfigError(
                [
                    FieldError(
                        _short(path) or "(yaml)",
                        f"line {line}: nested deeper than {MAX_DEPTH} levels (aliases expanded)",
                    )
                ],
                source,
            )
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                stack.append((item, f"{path}[{index}]", depth + 1))
        elif isinstance(node, MappingNode):
            stack.extend(_mapping_children(node, path, depth, source))


def _mapping_children(
    node: MappingNode, path: str, depth: int, source: str
) -> list[tuple[Node, str, int]]:
    seen: dict[tuple[str, str], int] = {}
    children: list[tuple[Node, str, int]] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            children.append((value_node, path, depth))  # merged keys belong to this mapping
            continue
        if isinstance(key_node, ScalarNode):
            key = (key_node.tag, str(key_node.value))
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    [
                        FieldError(
                            _short(_child(path, key[1])),
                            f"duplicate key {key[1]!r} on line {line} (first on line {seen[key]})",
                        )
                    ],
                    source,
                )
            seen[key] = line
            children.append((value_node, _child(path, key[1]), depth + 1))
        else:
            children.append((key_node, path, depth + 1))
            children.append((value_node, path, depth + 1))
    return children
