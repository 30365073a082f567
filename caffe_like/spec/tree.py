"""The schema-free syntax tree shared by the prototxt and YAML readers.

Both readers turn a file into a :class:`Node`: an ordered list of ``key: value`` entries, where a value
is either a :class:`Leaf` (a scalar with its lexical kind) or a nested :class:`Node`.  Repeated fields
are simply repeated keys (a ``key: [a, b]`` list is expanded into two entries).  Every entry remembers
its :class:`Pos` (file, line, column), so that the schema binder (:mod:`caffe_like.spec.schema`) can
name the exact place of a bad field.

Leaf kinds:
    ``"str"``   a quoted string (prototxt) or a YAML string
    ``"ident"`` a bare identifier in prototxt: an enum name, ``true``/``false``, ``inf``/``nan``
    ``"int"``   an integer literal (Python ``int``)
    ``"float"`` a floating literal (Python ``float``)
    ``"bool"``  a YAML boolean (Python ``bool``)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Pos", "Leaf", "Node", "Entry", "Value", "NOWHERE", "node_from_plain"]


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a source file; ``line`` and ``column`` are 1-based, None when unknown."""

    file: str | None = None
    line: int | None = None
    column: int | None = None

    def where(self) -> dict:
        """Keyword arguments for :class:`caffe_like.errors.CaffeLikeError`."""
        return {"file": self.file, "line": self.line, "column": self.column}

    def __str__(self) -> str:
        text = self.file or "<input>"
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


NOWHERE = Pos()


@dataclass(slots=True)
class Leaf:
    """A scalar value with its lexical kind (see the module docstring)."""

    value: object
    kind: str
    pos: Pos = NOWHERE


@dataclass(slots=True)
class Entry:
    """One ``key: value`` pair of a :class:`Node`; ``pos`` is the position of the key."""

    key: str
    value: Value
    pos: Pos = NOWHERE


@dataclass(slots=True)
class Node:
    """A message: ordered entries; ``pos`` is where the message starts (its ``{`` or first key)."""

    entries: list[Entry] = field(default_factory=list)
    pos: Pos = NOWHERE

    def add(self, key: str, value: Value, pos: Pos = NOWHERE) -> None:
        self.entries.append(Entry(key, value, pos))

    def get_all(self, key: str) -> list[Value]:
        return [e.value for e in self.entries if e.key == key]

    def first(self, key: str):
        """The first entry named ``key``, or None."""
        for e in self.entries:
            if e.key == key:
                return e
        return None

    def remove(self, key: str) -> list[Entry]:
        """Remove every entry named ``key`` and return them."""
        removed = [e for e in self.entries if e.key == key]
        self.entries = [e for e in self.entries if e.key != key]
        return removed

    def keys(self) -> Iterator[str]:
        return (e.key for e in self.entries)

    def __contains__(self, key: str) -> bool:
        return any(e.key == key for e in self.entries)


Value = Leaf | Node


def _leaf_from_python(value: object, pos: Pos) -> Leaf:
    if isinstance(value, bool):
        return Leaf(value, "bool", pos)
    if isinstance(value, int):
        return Leaf(value, "int", pos)
    if isinstance(value, float):
        return Leaf(value, "float", pos)
    if isinstance(value, str):
        return Leaf(value, "str", pos)
    if isinstance(value, bytes):
        return Leaf(value, "str", pos)
    from ..errors import SpecError

    raise SpecError(
        f"unsupported value {value!r} of type {type(value).__name__}",
        **pos.where(),
        fix="use numbers, strings, booleans, lists and mappings only",
    )


def node_from_plain(data: dict, pos: Pos = NOWHERE) -> Node:
    """Turn nested dicts/lists/scalars (the YAML structure, or a Python dict) into a :class:`Node`.

    A list value becomes repeated entries with the same key.  Positions are all ``pos`` (a Python dict
    has no lines); the YAML reader builds its nodes with real positions instead.
    """
    from ..errors import SpecError

    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping, got {type(data).__name__}", **pos.where())
    node = Node(pos=pos)
    for key, value in data.items():
        if not isinstance(key, str):
            raise SpecError(f"keys must be strings, got {key!r}", **pos.where())
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, dict):
                node.add(key, node_from_plain(item, pos), pos)
            elif isinstance(item, (list, tuple)):
                raise SpecError(f"field '{key}': nested lists are not allowed", **pos.where())
            elif item is None:
                raise SpecError(
                    f"field '{key}' has no value",
                    **pos.where(),
                    fix="give it a value or remove the key",
                )
            else:
                node.add(key, _leaf_from_python(item, pos), pos)
    return node
