"""A tiny protobuf-like schema on top of dataclasses: declare, bind, dump.

A Caffe message (``ConvolutionParameter``, ``LayerParameter``, ...) is a dataclass that derives from
:class:`Message`; each field is declared with one of :func:`scalar`, :func:`enum`, :func:`message` or
:func:`repeated`, which record the protobuf field number, wire type, Caffe default and documentation.

Semantics follow proto2:

* scalar fields hold Caffe's default until set; :func:`has` tells whether a field was given
  (``use_global_stats`` unset means "by phase", ``normalization`` unset lets legacy ``normalize`` decide);
* singular message fields are ``None`` until given (use :func:`get_or_default` to read them);
* repeated fields are lists.

:func:`bind` turns a schema-free :class:`~caffe_like.spec.tree.Node` (from prototxt, YAML or a dict)
into a message, validating every key, type, enum and range, and raising :class:`SpecError` with the
file, line, column and a did-you-mean hint.  :func:`to_node` and :func:`to_plain` go back, emitting only
fields that were given, in field-number order (the order Caffe's own text printer uses).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

from ..errors import SpecError, did_you_mean
from .tree import Leaf, Node, Pos

__all__ = [
    "Message",
    "EnumType",
    "scalar",
    "enum",
    "message",
    "repeated",
    "has",
    "get_or_default",
    "bind",
    "to_node",
    "to_plain",
    "field_info",
    "fields_of",
    "FieldInfo",
    "UNKNOWN_BLOCKS",
    "default_of",
]

_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_FLOAT_TYPES = ("float", "double")
_TRUE = {"true", "True", "t", "1"}
_FALSE = {"false", "False", "f", "0"}


class EnumType:
    """A protobuf enum: names and numbers, e.g. ``EnumType("Phase", TRAIN=0, TEST=1)``.

    Values of enum fields are the *names* (plain strings), as they appear in prototxt and YAML.
    """

    def __init__(self, name: str, extension_values: tuple[str, ...] = (), **values: int) -> None:
        self.name = name
        self.values = dict(values)
        self.names = {number: key for key, number in values.items()}
        if not set(extension_values) <= set(values):
            raise ValueError(f"{name}: extension values {extension_values} are not among its values")
        #: values that BVLC caffe.proto lacks (caffe_like extensions)
        self.extension_values = frozenset(extension_values)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def number(self, name: str) -> int:
        return self.values[name]

    def __repr__(self) -> str:
        return f"EnumType({self.name}: {', '.join(self.values)})"


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What the schema knows of one field (kept in the dataclass field's metadata)."""

    name: str
    number: int
    ptype: str  # int32 ... double, bool, string, bytes, enum, message
    repeated: bool
    default: Any
    doc: str
    enum: EnumType | None = None
    message: Any = None  # Message subclass, or a zero-argument callable returning it (forward refs)
    extension: bool = False  # not in BVLC caffe.proto: a caffe_like (or paper) addition
    required: bool = False  # Caffe fails without it when the layer is set up
    packed: bool = False

    def message_cls(self):
        cls = self.message
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, Message)):
            cls = cls()
        return cls


def _meta(info_kwargs: dict) -> dict:
    return {"caffe": info_kwargs}


def scalar(number: int, ptype: str, default: Any, doc: str, *, extension: bool = False,
           required: bool = False) -> Any:
    """A singular scalar field with its Caffe default (``ptype`` as in caffe.proto)."""
    return dataclasses.field(
        default=default,
        metadata=_meta(dict(number=number, ptype=ptype, repeated=False, default=default, doc=doc,
                            extension=extension, required=required)),
    )


def enum(number: int, enum_type: EnumType, default: str, doc: str, *, extension: bool = False,
         required: bool = False) -> Any:
    """A singular enum field; ``default`` is an enum name."""
    assert default in enum_type, (default, enum_type)
    return dataclasses.field(
        default=default,
        metadata=_meta(dict(number=number, ptype="enum", repeated=False, default=default, doc=doc,
                            enum=enum_type, extension=extension, required=required)),
    )


def message(number: int, cls: Any, doc: str, *, extension: bool = False, required: bool = False) -> Any:
    """A singular message field; None until given. ``cls`` may be a lambda for forward references."""
    return dataclasses.field(
        default=None,
        metadata=_meta(dict(number=number, ptype="message", repeated=False, default=None, doc=doc,
                            message=cls, extension=extension, required=required)),
    )


def repeated(number: int, ptype: str, doc: str, *, enum_type: EnumType | None = None,
             message_cls: Any = None, extension: bool = False, packed: bool = False,
             required: bool = False) -> Any:
    """A repeated field (a list). ``ptype`` is a scalar type, ``"enum"`` or ``"message"``;
    ``required`` means at least one value must be given."""
    return dataclasses.field(
        default_factory=list,
        metadata=_meta(dict(number=number, ptype=ptype, repeated=True, default=None, doc=doc,
                            enum=enum_type, message=message_cls, extension=extension, packed=packed,
                            required=required)),
    )


#: attribute under which a LayerParameter keeps unknown ``*_param`` blocks (fork layers): {name: Node}
UNKNOWN_BLOCKS = "_unknown_blocks"


class Message:
    """Base class of every schema message (a dataclass).  Tracks which fields were given.

    Subclasses set ``ALLOW_UNKNOWN_PARAM_BLOCKS = True`` to accept unknown ``*_param`` blocks with a
    warning (Caffe forks); they are kept verbatim and written back on dump.
    """

    ALLOW_UNKNOWN_PARAM_BLOCKS: ClassVar[bool] = False
    #: repeated fields that :func:`to_plain` writes as a single value when they hold exactly one
    SINGLE_AS_VALUE: ClassVar[frozenset] = frozenset()

    def __post_init__(self) -> None:
        present = set()
        for info in fields_of(type(self)):
            value = getattr(self, info.name)
            if info.repeated:
                continue
            if info.ptype == "message":
                if value is not None:
                    present.add(info.name)
            elif value != info.default or type(value) is not type(info.default):
                present.add(info.name)
        object.__setattr__(self, "_present", present)
        object.__setattr__(self, "_pos", {})
        object.__setattr__(self, "_where", None)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        present = self.__dict__.get("_present")
        if present is not None and not name.startswith("_"):
            if value is None:
                present.discard(name)
            else:
                present.add(name)

    def clear(self, name: str) -> None:
        """Unset a field: it gets its default back and :func:`has` says False."""
        info = field_info(type(self), name)
        if info.repeated:
            object.__setattr__(self, name, [])
        else:
            object.__setattr__(self, name, info.default)
        self._present.discard(name)

    def pos_of(self, name: str) -> Pos:
        """Where field ``name`` was given (or where the message starts, or nowhere)."""
        return self._pos.get(name) or self._where or Pos()


_FIELDS_CACHE: dict[type, tuple[FieldInfo, ...]] = {}
_BY_NAME_CACHE: dict[type, dict[str, FieldInfo]] = {}


def fields_of(cls: type) -> tuple[FieldInfo, ...]:
    """The schema fields of a message class, in declaration order."""
    cached = _FIELDS_CACHE.get(cls)
    if cached is None:
        infos = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("caffe")
            if meta is None:
                continue
            infos.append(FieldInfo(name=f.name, **meta))
        cached = tuple(infos)
        _FIELDS_CACHE[cls] = cached
        _BY_NAME_CACHE[cls] = {i.name: i for i in infos}
    return cached


def field_info(cls: type, name: str) -> FieldInfo:
    fields_of(cls)
    return _BY_NAME_CACHE[cls][name]


def _by_name(cls: type) -> dict[str, FieldInfo]:
    fields_of(cls)
    return _BY_NAME_CACHE[cls]


def has(msg: Message, name: str) -> bool:
    """True when field ``name`` was given (non-empty for repeated fields), as protobuf's HasField."""
    info = field_info(type(msg), name)
    if info.repeated:
        return bool(getattr(msg, name))
    return name in msg._present


def get_or_default(msg: Message, name: str) -> Message:
    """The message in field ``name``, or a fresh default instance when it was not given."""
    value = getattr(msg, name)
    if value is None:
        return field_info(type(msg), name).message_cls()()
    return value


# --------------------------------------------------------------------------------------------------
# binding: Node -> Message


def _describe_leaf(leaf: Leaf) -> str:
    if leaf.kind == "str":
        return f'the string "{leaf.value}"'
    return f"{leaf.value!r}"


def _convert_scalar(info: FieldInfo, leaf: Leaf, owner: str, numbers_as_strings: bool) -> Any:
    """Check and convert one leaf for a scalar/enum field; raises SpecError with the leaf's position."""
    kind, value, ptype = leaf.kind, leaf.value, info.ptype

    def bad(expected: str, fix: str | None = None) -> SpecError:
        return SpecError(
            f"field '{info.name}' of {owner} expects {expected}, got {_describe_leaf(leaf)}",
            **leaf.pos.where(),
            fix=fix,
        )

    if ptype in _INT_RANGES:
        if kind != "int":
            if kind == "float" and float(value).is_integer():
                raise bad(f"an integer ({ptype})", fix=f"write {int(value)}")
            raise bad(f"an integer ({ptype})")
        low, high = _INT_RANGES[ptype]
        if not low <= value <= high:
            raise bad(f"an integer in [{low}, {high}] ({ptype})")
        return int(value)
    if ptype in _FLOAT_TYPES:
        if kind in ("int", "float"):
            return float(value)
        if kind in ("ident", "str"):
            text = str(value).lower()
            sign = -1.0 if text.startswith("-") else 1.0
            text = text.lstrip("+-")
            if text in ("inf", "infinity"):
                return sign * math.inf
            if text == "nan":
                return math.nan
        raise bad("a number")
    if ptype == "bool":
        if kind == "bool":
            return bool(value)
        if kind in ("ident", "int"):
            text = str(value)
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise bad("true or false")
    if ptype in ("string", "bytes"):
        if kind == "str":
            if ptype == "bytes":
                if isinstance(value, bytes):
                    return value
                return value.encode("latin-1") if max(map(ord, value), default=0) < 256 else value.encode()
            return value if isinstance(value, str) else value.decode("latin-1")
        if kind == "int" and numbers_as_strings:
            return str(value)  # YAML: `top: 1` means the blob named "1"
        if kind == "ident":
            raise bad("a quoted string", fix=f'write "{value}" with quotes')
        raise bad("a string", fix="put it in quotes")
    if ptype == "enum":
        choices = info.enum.values
        if kind in ("ident", "str") and value in choices:
            return value
        if kind == "int" and value in info.enum.names:
            return info.enum.names[value]
        hint = did_you_mean(str(value), choices) if kind in ("ident", "str") else None
        raise bad(f"one of {', '.join(choices)} ({info.enum.name})", fix=hint)
    raise AssertionError(f"unknown ptype {ptype}")


def _declared_by_layer_type(layer_type: str | None, block: str) -> bool:
    """Whether a registered layer type (e.g. a plugin for a fork's layer) reads parameter block ``block``."""
    from .params import known_layer_types, layer_param_fields

    return layer_type in known_layer_types() and block in layer_param_fields(layer_type)


def _layer_context(msg_cls: type, node: Node) -> dict:
    """Name/type of the layer a node describes, if it is a layer, for error messages."""
    if msg_cls.__name__ != "LayerParameter":
        return {}
    ctx = {}
    for key, target in (("name", "layer"), ("type", "layer_type")):
        entry = node.first(key)
        if entry is not None and isinstance(entry.value, Leaf):
            ctx[target] = str(entry.value.value)
    return ctx


def bind(node: Node, cls: type, *, owner: str | None = None, context: dict | None = None,
         numbers_as_strings: bool = False) -> Message:
    """Validate ``node`` against message class ``cls`` and return the message.

    ``numbers_as_strings`` accepts an integer where a string is expected (YAML's ``top: 1``); the
    prototxt reader leaves it off, as Caffe requires quotes there.

    Raises SpecError naming the file, line, column, the enclosing layer (``context``) and a fix.
    """
    owner = owner or cls.__name__
    context = dict(context or {})
    context.update(_layer_context(cls, node))
    fields = _by_name(cls)
    msg = cls()
    msg._where = node.pos
    seen: set[str] = set()
    for entry in node.entries:
        info = fields.get(entry.key)
        if info is None:
            if cls.ALLOW_UNKNOWN_PARAM_BLOCKS and entry.key.endswith("_param") and isinstance(entry.value, Node):
                unknown = msg.__dict__.setdefault(UNKNOWN_BLOCKS, {})
                if entry.key in unknown:
                    raise SpecError(f"block '{entry.key}' is given twice", **entry.pos.where(), **context)
                unknown[entry.key] = entry.value
                if _declared_by_layer_type(context.get("layer_type"), entry.key):
                    continue
                warnings.warn(
                    f"{entry.pos}: layer '{context.get('layer', '?')}': unknown parameter block "
                    f"'{entry.key}' (from a Caffe fork?) kept as is; building this layer will fail",
                    stacklevel=2,
                )
                continue
            hint = did_you_mean(entry.key, fields)
            raise SpecError(
                f"unknown field '{entry.key}' in {owner}",
                **entry.pos.where(),
                **context,
                fix=hint or f"known fields: {', '.join(sorted(fields))}",
            )
        if not info.repeated and entry.key in seen:
            raise SpecError(
                f"field '{entry.key}' of {owner} is given more than once",
                **entry.pos.where(),
                **context,
                fix="it is not a repeated field: keep one value",
            )
        seen.add(entry.key)
        value = entry.value
        if info.ptype == "message":
            if not isinstance(value, Node):
                raise SpecError(
                    f"field '{entry.key}' of {owner} is a block and needs {{ ... }} (a mapping in YAML), "
                    f"got {_describe_leaf(value)}",
                    **entry.pos.where(),
                    **context,
                )
            sub_cls = info.message_cls()
            sub_owner = entry.key if cls.__name__ in ("LayerParameter", "NetParameter") else f"{owner}.{entry.key}"
            converted = bind(value, sub_cls, owner=sub_owner, context=context,
                             numbers_as_strings=numbers_as_strings)
        else:
            if isinstance(value, Node):
                raise SpecError(
                    f"field '{entry.key}' of {owner} takes a value, not a block",
                    **entry.pos.where(),
                    **context,
                    fix=f"write '{entry.key}: <value>'",
                )
            try:
                converted = _convert_scalar(info, value, owner, numbers_as_strings)
            except SpecError as err:
                raise err.located(**context) from None
        if info.repeated:
            getattr(msg, info.name).append(converted)
        else:
            setattr(msg, info.name, converted)
        msg._pos.setdefault(info.name, entry.pos)
    return msg


# --------------------------------------------------------------------------------------------------
# dumping: Message -> Node / plain


def _sorted_fields(cls: type) -> list[FieldInfo]:
    return sorted(fields_of(cls), key=lambda i: i.number)


def _scalar_leaf(info: FieldInfo, value: Any) -> Leaf:
    if info.ptype == "enum":
        return Leaf(value, "ident")
    if info.ptype == "bool":
        return Leaf("true" if value else "false", "ident")
    if info.ptype in ("string", "bytes"):
        return Leaf(value, "str")
    if info.ptype in _FLOAT_TYPES:
        return Leaf(float(value), "float")
    return Leaf(int(value), "int")


def to_node(msg: Message) -> Node:
    """The message as a schema-free Node (given fields only, in field-number order)."""
    node = Node()
    for info in _sorted_fields(type(msg)):
        if not has(msg, info.name):
            continue
        value = getattr(msg, info.name)
        values = value if info.repeated else [value]
        for item in values:
            if info.ptype == "message":
                node.add(info.name, to_node(item))
            else:
                node.add(info.name, _scalar_leaf(info, item))
    for key, block in msg.__dict__.get(UNKNOWN_BLOCKS, {}).items():
        node.add(key, block)
    return node


def _plain_number(value: float) -> float | int:
    """A float field's value for YAML: integral values as ints (``lr_mult: 2``), others as floats."""
    value = float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _node_to_plain(node: Node) -> dict:
    out: dict = {}
    for entry in node.entries:
        value = _node_to_plain(entry.value) if isinstance(entry.value, Node) else entry.value.value
        if entry.key in out:
            if not isinstance(out[entry.key], list) or not out.get(f"\0list:{entry.key}"):
                out[entry.key] = [out[entry.key]]
                out[f"\0list:{entry.key}"] = True
            out[entry.key].append(value)
        else:
            out[entry.key] = value
    return {k: v for k, v in out.items() if not k.startswith("\0")}


def to_plain(msg: Message) -> dict:
    """The message as nested dicts/lists (the YAML structure): given fields only, field-number order.

    Repeated fields are lists, except those a class names in ``SINGLE_AS_VALUE`` (``bottom``, ``top``,
    ``include``), which are written as a plain value when they hold exactly one.
    """
    out: dict = {}
    for info in _sorted_fields(type(msg)):
        if not has(msg, info.name):
            continue
        value = getattr(msg, info.name)
        if info.ptype == "message":
            plain = [to_plain(v) for v in value] if info.repeated else to_plain(value)
        elif info.repeated:
            plain = [_plain_number(v) if info.ptype in _FLOAT_TYPES else v for v in value]
        else:
            plain = _plain_number(value) if info.ptype in _FLOAT_TYPES else value
        if info.repeated and len(plain) == 1 and info.name in type(msg).SINGLE_AS_VALUE:
            plain = plain[0]
        out[info.name] = plain
    for key, block in msg.__dict__.get(UNKNOWN_BLOCKS, {}).items():
        out[key] = _node_to_plain(block)
    return out


def default_of(cls: type, name: str) -> Any:
    """Caffe's default value of a field (what an unset field reads as)."""
    info = field_info(cls, name)
    if info.repeated:
        return []
    if info.ptype == "message":
        return None
    return info.default

