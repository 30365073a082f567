"""Reading a net or solver definition from a file, text or dict into a syntax tree.

The format follows the file extension: ``.yaml``/``.yml`` are YAML, everything else (``.prototxt``,
``.pt``, ``.pbtxt``, ``.txt``, ...) is protobuf text format, as Caffe's tools assume.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .tree import Node, Pos, node_from_plain

__all__ = ["is_yaml_path", "read_tree", "tree_from_text", "Definition"]

YAML_SUFFIXES = (".yaml", ".yml")


def is_yaml_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in YAML_SUFFIXES


def tree_from_text(text: str, *, yaml_syntax: bool, file: str | None = None) -> Node:
    """Parse ``text`` as YAML or prototxt."""
    if yaml_syntax:
        from .yamlio import parse_yaml

        return parse_yaml(text, file)
    from .textformat import parse

    return parse(text, file)


def read_tree(source: str | Path | dict) -> tuple[Node, str | None, bool]:
    """Read ``source`` (a path or a dict with the YAML's structure).

    Returns the tree, the file name (None for a dict) and whether strings may be written as bare
    numbers (True for YAML and dicts, False for prototxt, where Caffe requires quotes).
    """
    if isinstance(source, dict):
        return node_from_plain(source, Pos("<dict>")), None, True
    path = Path(source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", file=str(path), fix="check the path (relative paths are relative to "
                        "the current directory, or to the solver file for a solver's net)") from None
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(
            f"not a text file (byte {err.start} is not UTF-8)",
            file=str(path),
            fix="a binary .caffemodel holds weights: pass it with --weights, not as the net",
        ) from None
    yaml_syntax = is_yaml_path(path)
    return tree_from_text(text, yaml_syntax=yaml_syntax, file=str(path)), str(path), yaml_syntax


class Definition:
    """A net or solver definition (a schema message) with the file it came from.

    Attributes:
        param: the NetParameter or SolverParameter.
        file: the source file, or None for a dict/text.
        notes: what the legacy upgrade changed (empty for current-format files).
    """

    def __init__(self, param, file: str | None = None, notes: list[str] | None = None) -> None:
        self.param = param
        self.file = file
        self.notes = list(notes or [])

    def to_dict(self) -> dict:
        """The definition as nested dicts/lists (the YAML structure)."""
        from .schema import to_plain

        return to_plain(self.param)

    def to_yaml(self) -> str:
        from .yamlio import dump_yaml

        return dump_yaml(self.to_dict())

    def to_prototxt(self) -> str:
        from .schema import to_node
        from .textformat import format as format_text

        return format_text(to_node(self.param))

    def save(self, path: str | Path) -> None:
        """Write the definition as YAML or prototxt, by the file's extension."""
        text = self.to_yaml() if is_yaml_path(path) else self.to_prototxt()
        Path(path).write_text(text, encoding="utf-8")
