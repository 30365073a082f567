"""YAML reading and writing for nets and solvers, keeping line numbers.

Reading composes the document with PyYAML's *safe* loader (no Python objects can be constructed from a
config file) and turns it into the same schema-free :class:`~caffe_like.spec.tree.Node` the prototxt
reader produces, with a :class:`~caffe_like.spec.tree.Pos` on every key and value.  A list value is a
repeated field; a single value is accepted where Caffe allows one (``bottom: data``).

Writing dumps the plain structure of a message (:func:`caffe_like.spec.schema.to_plain`) in block
style, with small leaf-only mappings in flow style (``param: [{lr_mult: 1}, {lr_mult: 2}]``,
``include: {phase: TRAIN}``) so that a net reads like its prototxt.
"""

from __future__ import annotations

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..errors import SpecError
from .tree import Leaf, Node, Pos

__all__ = ["parse_yaml", "dump_yaml"]

_KIND = {bool: "bool", int: "int", float: "float", str: "str"}
_STANDARD_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")}


def _pos(mark, file: str | None) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1)


class _Converter:
    def __init__(self, file: str | None) -> None:
        self.file = file
        self.constructor = SafeConstructor()

    def check_tag(self, node) -> None:
        """Only plain data: a tag such as ``!!python/object`` is refused (safe loading)."""
        if node.tag not in _STANDARD_TAGS:
            raise SpecError(f"YAML tag '{node.tag}' is not allowed in a net or solver file",
                            **_pos(node.start_mark, self.file).where(),
                            fix="use plain values: numbers, strings, lists and mappings")

    def leaf(self, node: ScalarNode, key: str) -> Leaf:
        pos = _pos(node.start_mark, self.file)
        self.check_tag(node)
        value = self.constructor.construct_object(node, deep=True)
        if value is None:
            raise SpecError(f"field '{key}' has no value", **pos.where(), fix="give it a value or remove the key")
        kind = _KIND.get(type(value))
        if kind is None:
            raise SpecError(
                f"field '{key}': unsupported YAML value {node.value!r} ({node.tag})",
                **pos.where(),
                fix="quote it to make it a string",
            )
        return Leaf(value, kind, pos)

    def mapping(self, node, context: str) -> Node:
        pos = _pos(node.start_mark, self.file)
        if not isinstance(node, MappingNode):
            raise SpecError(f"{context} must be a mapping (key: value lines)", **pos.where())
        self.check_tag(node)
        out = Node(pos=pos)
        seen: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            key_pos = _pos(key_node.start_mark, self.file)
            if not isinstance(key_node, ScalarNode) or not isinstance(key_node.value, str):
                raise SpecError("keys must be plain names", **key_pos.where())
            key = key_node.value
            if key == "<<":
                raise SpecError("YAML merge keys ('<<') are not supported", **key_pos.where(),
                                fix="write the fields out")
            if key in seen:
                raise SpecError(
                    f"key '{key}' appears twice in the same mapping (first at line {seen[key].line})",
                    **key_pos.where(),
                    fix="write a repeated field as a list: key: [a, b]",
                )
            seen[key] = key_pos
            if isinstance(value_node, SequenceNode):
                self.check_tag(value_node)
            items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for item in items:
                if isinstance(item, MappingNode):
                    out.add(key, self.mapping(item, f"'{key}'"), key_pos)
                elif isinstance(item, SequenceNode):
                    raise SpecError(f"field '{key}': a list inside a list is not allowed",
                                    **_pos(item.start_mark, self.file).where())
                else:
                    out.add(key, self.leaf(item, key), key_pos)
        return out


def parse_yaml(text: str, file: str | None = None) -> Node:
    """Parse a YAML net or solver into a :class:`Node` (safe loader only)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = _pos(mark, file).where() if mark is not None else {"file": file}
        problem = err.problem or err.context or "malformed YAML"
        raise SpecError(f"YAML syntax error: {problem}", **where) from None
    except yaml.YAMLError as err:
        raise SpecError(f"YAML error: {err}", file=file) from None
    if root is None:
        raise SpecError("the file is empty", file=file, fix="a net needs at least a 'layer:' list")
    return _Converter(file).mapping(root, "the document")


class _Dumper(yaml.SafeDumper):
    """Block style, with short leaf-only mappings in flow style."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict):
    flat = all(
        not isinstance(v, dict) and not (isinstance(v, list) and any(isinstance(i, (dict, list)) for i in v))
        for v in data.values()
    )
    short = flat and len(repr(data)) <= 72
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=short)


def _represent_list(dumper: yaml.SafeDumper, data: list):
    leafy = all(not isinstance(v, (list, dict)) for v in data) or all(
        isinstance(v, dict) and all(not isinstance(x, (dict, list)) for x in v.values()) for v in data
    )
    short = leafy and len(repr(data)) <= 72
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=short)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_yaml(plain: dict) -> str:
    """YAML text for a plain structure (keys in the given order)."""
    return yaml.dump(plain, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110,
                     default_flow_style=False)
