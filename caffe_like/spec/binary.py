"""Binary protobuf encoding of schema messages, without protoc.

The schema dataclasses (:mod:`caffe_like.spec.params`) record each field's protobuf number, type and
repeated-ness, which is all the wire format needs.  This module turns them into protobuf descriptors at
run time (``descriptor_pb2`` + ``descriptor_pool`` + ``message_factory``), lazily and cached, in one
private :class:`~google.protobuf.descriptor_pool.DescriptorPool`, and converts between dataclasses and
the binary encoding Caffe reads and writes (``.caffemodel``, ``.binaryproto``, ``.solverstate``).

Two descriptor variants exist for every message:

``plain``
    exactly as caffe.proto declares it (``repeated float data = 5 [packed = true]`` ...).
``raw`` (the default, ``raw_blobs=True``)
    identical, except that every *packed* repeated ``float``/``double`` field (BlobProto's ``data``,
    ``diff``, ``double_data``, ``double_diff``) is declared ``repeated bytes``.  A packed field is one
    length-delimited record on the wire, exactly like a bytes field, so the raw variant reads and writes
    the same bytes while letting NumPy convert the payload in one call (``np.frombuffer`` /
    ``ndarray.tobytes``) instead of element by element.  A 60M-element weight blob costs milliseconds.

    A file that stores such a field *unpacked* (one fixed32/fixed64 record per element: legal protobuf,
    never written by Caffe) leaves those records in the raw message's unknown fields; :func:`decode`
    notices and falls back to the plain variant, and :func:`raw_blob_fallback_needed` lets callers that
    read protobuf objects directly do the same.

Enums are declared as real proto2 (closed) enums, each wrapped in its own message so that value names
never collide (``Engine.DEFAULT`` exists in many Caffe messages).  Singular fields keep proto2 presence:
:func:`decode` marks exactly the fields found on the wire as given (:func:`caffe_like.spec.schema.has`),
and :func:`encode` writes exactly the given fields, in field-number order, as Caffe's C++ serializer
does.  So ``encode(decode(b, cls)) == b`` for any canonical encoding whose fields the schema knows.

Values of ``bytes`` fields decode to :class:`bytes`; :func:`encode` accepts ``bytes`` or ``str``
(latin-1, which is how the text-format binder stores them).  Unknown ``*_param`` blocks kept by the
prototxt binder (Caffe forks) have no field number and are not encoded (a warning says so).

This module imports NumPy but never torch.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from ..errors import SpecError, WeightsError
from .schema import UNKNOWN_BLOCKS, EnumType, FieldInfo, Message, fields_of, has

__all__ = [
    "encode",
    "decode",
    "proto_class",
    "to_proto",
    "from_proto",
    "is_raw_field",
    "raw_blob_fallback_needed",
    "unknown_fields",
    "unknown_field_paths",
]

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "int32": _FDP.TYPE_INT32,
    "int64": _FDP.TYPE_INT64,
    "uint32": _FDP.TYPE_UINT32,
    "uint64": _FDP.TYPE_UINT64,
    "sint32": _FDP.TYPE_SINT32,
    "sint64": _FDP.TYPE_SINT64,
    "fixed32": _FDP.TYPE_FIXED32,
    "fixed64": _FDP.TYPE_FIXED64,
    "sfixed32": _FDP.TYPE_SFIXED32,
    "sfixed64": _FDP.TYPE_SFIXED64,
    "float": _FDP.TYPE_FLOAT,
    "double": _FDP.TYPE_DOUBLE,
    "bool": _FDP.TYPE_BOOL,
    "string": _FDP.TYPE_STRING,
    "bytes": _FDP.TYPE_BYTES,
}
_PACKABLE = set(_SCALAR_TYPES) - {"string", "bytes"}
#: little-endian NumPy dtype of each raw-capable field type
_RAW_DTYPES = {"float": np.dtype("<f4"), "double": np.dtype("<f8")}
_PACKAGES = {False: "caffe", True: "caffe_like_raw"}


def is_raw_field(info: FieldInfo) -> bool:
    """True when the raw variant declares this field ``repeated bytes`` (packed repeated float/double)."""
    return info.repeated and info.packed and info.ptype in _RAW_DTYPES


# --------------------------------------------------------------------------------------------------
# descriptor building


class _Variant:
    """The descriptors of one variant (plain or raw), added to the shared pool file by file."""

    def __init__(self, pool: descriptor_pool.DescriptorPool, raw: bool) -> None:
        self.pool = pool
        self.raw = raw
        self.package = _PACKAGES[raw]
        self.names: dict[type, str] = {}  # message class -> full name
        self.files: dict[type, str] = {}  # message class -> file that declares it
        self.enum_names: dict[int, str] = {}  # id(EnumType) -> full name of the enum
        self.enum_files: dict[int, str] = {}
        self.enum_keep: list[EnumType] = []  # keep ids stable
        self.taken: set[str] = set()
        self.classes: dict[type, type] = {}  # message class -> generated protobuf class
        self.n_files = 0

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def _closure(self, root: type) -> list[type]:
        """Message classes reachable from ``root`` that have no descriptor yet (root first)."""
        order: list[type] = []
        seen = {root}
        stack = [root]
        while stack:
            cls = stack.pop()
            if cls in self.names:
                continue
            order.append(cls)
            for info in fields_of(cls):
                if info.ptype == "message":
                    sub = info.message_cls()
                    if sub not in seen:
                        seen.add(sub)
                        stack.append(sub)
        return order

    def ensure(self, root: type) -> None:
        if root in self.names:
            return
        if not (isinstance(root, type) and issubclass(root, Message)):
            raise TypeError(f"{root!r} is not a schema message class")
        new = self._closure(root)
        self.n_files += 1
        file_name = f"caffe_like/{self.package}/{self.n_files}_{root.__name__}.proto"
        fdp = descriptor_pb2.FileDescriptorProto(name=file_name, package=self.package, syntax="proto2")
        deps: set[str] = set()
        for cls in new:  # names first: messages may refer to each other in any order
            self.names[cls] = f"{self.package}.{self._unique(cls.__name__)}"
            self.files[cls] = file_name
        for cls in new:
            mdp = fdp.message_type.add(name=self.names[cls].rsplit(".", 1)[1])
            numbers: dict[int, str] = {}
            for info in fields_of(cls):
                if info.number in numbers:
                    raise SpecError(
                        f"schema error: fields '{numbers[info.number]}' and '{info.name}' of "
                        f"{cls.__name__} share the protobuf field number {info.number}"
                    )
                numbers[info.number] = info.name
                fld = mdp.field.add(
                    name=info.name,
                    number=info.number,
                    label=_FDP.LABEL_REPEATED if info.repeated else _FDP.LABEL_OPTIONAL,
                )
                if info.ptype == "message":
                    sub = info.message_cls()
                    fld.type = _FDP.TYPE_MESSAGE
                    fld.type_name = "." + self.names[sub]
                    if self.files[sub] != file_name:
                        deps.add(self.files[sub])
                elif info.ptype == "enum":
                    fld.type = _FDP.TYPE_ENUM
                    fld.type_name = "." + self._enum(info.enum, fdp, file_name)
                    if self.enum_files[id(info.enum)] != file_name:
                        deps.add(self.enum_files[id(info.enum)])
                    if info.repeated and info.packed:
                        fld.options.packed = True
                elif self.raw and is_raw_field(info):
                    fld.type = _FDP.TYPE_BYTES
                else:
                    try:
                        fld.type = _SCALAR_TYPES[info.ptype]
                    except KeyError:
                        raise SpecError(
                            f"schema error: field '{info.name}' of {cls.__name__} has unknown type "
                            f"'{info.ptype}'"
                        ) from None
                    if info.repeated and info.packed and info.ptype in _PACKABLE:
                        fld.options.packed = True
        fdp.dependency.extend(sorted(deps))
        try:
            self.pool.AddSerializedFile(fdp.SerializeToString())
        except Exception as err:  # a schema bug (duplicate names, bad numbers): say which message
            raise SpecError(f"schema error: cannot build the protobuf descriptor of {root.__name__}: {err}") from None

    def _enum(self, enum_type: EnumType, fdp, file_name: str) -> str:
        key = id(enum_type)
        name = self.enum_names.get(key)
        if name is None:
            # wrapper message per enum: proto enum values are scoped like siblings of the enum, so
            # DEFAULT/CAFFE/CUDNN of many Engine enums would clash at package level
            wrapper = self._unique(f"Enum_{enum_type.name}")
            wdp = fdp.message_type.add(name=wrapper)
            edp = wdp.enum_type.add(name=enum_type.name)
            numbers = list(enum_type.values.values())
            if len(set(numbers)) != len(numbers):
                edp.options.allow_alias = True
            for value_name, number in enum_type.values.items():
                edp.value.add(name=value_name, number=number)
            name = f"{self.package}.{wrapper}.{enum_type.name}"
            self.enum_names[key] = name
            self.enum_files[key] = file_name
            self.enum_keep.append(enum_type)
        return name

    def message_class(self, cls: type) -> type:
        pb_cls = self.classes.get(cls)
        if pb_cls is None:
            self.ensure(cls)
            desc = self.pool.FindMessageTypeByName(self.names[cls])
            pb_cls = message_factory.GetMessageClass(desc)
            self.classes[cls] = pb_cls
        return pb_cls


_LOCK = threading.RLock()
_VARIANTS: dict[bool, _Variant] = {}


def _variant(raw: bool) -> _Variant:
    with _LOCK:
        if not _VARIANTS:
            pool = descriptor_pool.DescriptorPool()
            _VARIANTS[False] = _Variant(pool, raw=False)
            _VARIANTS[True] = _Variant(pool, raw=True)
        return _VARIANTS[raw]


def proto_class(cls: type, *, raw_blobs: bool = True) -> type:
    """The generated protobuf message class for schema class ``cls`` (built once, then cached).

    ``raw_blobs=True`` gives the raw variant (packed repeated float/double fields as ``repeated
    bytes``); ``False`` the plain one, exactly as caffe.proto declares it.
    """
    with _LOCK:
        return _variant(raw_blobs).message_class(cls)


# --------------------------------------------------------------------------------------------------
# dataclass -> protobuf


def _enum_number(info: FieldInfo, value, owner: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in info.enum.names:
        return value
    try:
        return info.enum.number(value)
    except KeyError:
        raise SpecError(
            f"cannot encode field '{info.name}' of {owner}: {value!r} is not one of "
            f"{', '.join(info.enum.values)} ({info.enum.name})"
        ) from None


def _as_bytes(value) -> bytes:
    if isinstance(value, str):
        return value.encode("latin-1")
    return bytes(value)


def _fill(pb: ProtoMessage, msg: Message, raw: bool, skip: Iterable[str] = ()) -> None:
    cls = type(msg)
    owner = cls.__name__
    for info in fields_of(cls):
        name = info.name
        if name in skip:
            continue
        value = getattr(msg, name)
        if info.repeated:
            if value is None or not len(value):  # len(): NumPy arrays are welcome in repeated fields
                continue
        elif not has(msg, name):
            continue
        try:
            if info.ptype == "message":
                if info.repeated:
                    container = getattr(pb, name)
                    for item in value:
                        _fill(container.add(), item, raw)
                else:
                    sub = getattr(pb, name)
                    sub.SetInParent()
                    _fill(sub, value, raw)
            elif info.ptype == "enum":
                if info.repeated:
                    getattr(pb, name).extend(_enum_number(info, v, owner) for v in value)
                else:
                    setattr(pb, name, _enum_number(info, value, owner))
            elif raw and is_raw_field(info):
                array = np.asarray(value, dtype=_RAW_DTYPES[info.ptype])
                if array.size:  # an empty packed field is not written at all
                    getattr(pb, name).append(array.tobytes())
            elif info.ptype == "bytes":
                if info.repeated:
                    getattr(pb, name).extend(_as_bytes(v) for v in value)
                else:
                    setattr(pb, name, _as_bytes(value))
            elif info.repeated:
                getattr(pb, name).extend(value)
            else:
                setattr(pb, name, value)
        except SpecError:
            raise
        except (TypeError, ValueError, OverflowError) as err:
            raise SpecError(f"cannot encode field '{name}' of {owner} ({info.ptype}): {err}") from None
    if msg.__dict__.get(UNKNOWN_BLOCKS):
        warnings.warn(
            f"{owner}: unknown parameter blocks {', '.join(msg.__dict__[UNKNOWN_BLOCKS])} have no "
            "field number and are left out of the binary encoding",
            stacklevel=3,
        )


def to_proto(msg: Message, *, raw_blobs: bool = True, skip: Iterable[str] = ()) -> ProtoMessage:
    """The protobuf message (raw or plain variant) holding the given fields of ``msg``.

    Top-level fields named in ``skip`` are left out (e.g. ``skip={"blobs"}`` to add them by hand).
    """
    pb = proto_class(type(msg), raw_blobs=raw_blobs)()
    _fill(pb, msg, raw_blobs, frozenset(skip))
    return pb


def encode(msg: Message, *, raw_blobs: bool = True) -> bytes:
    """Serialize a schema message to Caffe's binary protobuf encoding.

    ``raw_blobs`` picks the fast variant (blob arrays converted by NumPy in one call); both variants
    produce identical bytes.  Raises :class:`~caffe_like.errors.SpecError` for a value the field's
    type cannot hold.
    """
    return to_proto(msg, raw_blobs=raw_blobs).SerializeToString()


# --------------------------------------------------------------------------------------------------
# protobuf -> dataclass


class _NeedPlain(Exception):
    """A raw-variant message holds unpacked float records: decode again with the plain variant."""


class _BadPayload(Exception):
    """Data that protobuf accepted but the schema cannot hold (a ragged packed payload, invalid UTF-8)."""


def raw_blob_fallback_needed(pb: ProtoMessage, cls: type) -> bool:
    """True when raw-variant message ``pb`` (of schema class ``cls``) got raw fields *unpacked*.

    Such records have the wrong wire type for a bytes field and land in the unknown fields; the
    message must then be read with the plain variant (``proto_class(cls, raw_blobs=False)``).
    """
    raw_numbers = {info.number for info in fields_of(cls) if is_raw_field(info)}
    if not raw_numbers:
        return False
    return any(number in raw_numbers for number, _wire, _data in unknown_fields(pb))


def unknown_fields(pb: ProtoMessage) -> list[tuple[int, int, object]]:
    """The fields of ``pb`` (top level only) that its descriptor does not know: (number, wire type, data).

    Records of a known field with an unexpected wire type are among them too (protobuf's rule).
    """
    from google.protobuf import unknown_fields as _unknown

    return [(field.field_number, field.wire_type, field.data) for field in _unknown.UnknownFieldSet(pb)]


def unknown_field_paths(pb: ProtoMessage, prefix: str = "") -> list[str]:
    """Where ``pb`` holds fields its schema does not know, recursively: ``["layer[0].#143", ...]``.

    Useful to tell whether a decoded message kept everything the file had (then re-encoding it gives
    the same bytes) or a Caffe fork's fields were dropped.
    """
    paths = [f"{prefix}#{number}" for number, _wire, _data in unknown_fields(pb)]
    for fd, value in pb.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        if fd.is_repeated:
            for i, item in enumerate(value):
                paths += unknown_field_paths(item, f"{prefix}{fd.name}[{i}].")
        else:
            paths += unknown_field_paths(value, f"{prefix}{fd.name}.")
    return paths


def _raw_values(chunks: list[bytes], ptype: str, name: str) -> np.ndarray:
    dtype = _RAW_DTYPES[ptype]
    payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if any(len(chunk) % dtype.itemsize for chunk in chunks):
        raise _BadPayload(f"packed field '{name}' holds {len(payload)} bytes, not a whole number of {ptype}s")
    return np.frombuffer(payload, dtype=dtype)


def _is_raw_pb(pb: ProtoMessage) -> bool:
    return pb.DESCRIPTOR.full_name.startswith(_PACKAGES[True] + ".")


def _extract(pb: ProtoMessage, cls: type, skip: Iterable[str] = ()) -> Message:
    msg = cls()
    raw = _is_raw_pb(pb)
    for info in fields_of(cls):
        name = info.name
        if name in skip:
            continue
        if info.repeated:
            values = getattr(pb, name)
            if info.ptype == "message":
                if len(values):
                    sub_cls = info.message_cls()
                    setattr(msg, name, [_extract(v, sub_cls) for v in values])
                continue
            if not len(values):
                continue
            if info.ptype == "enum":
                setattr(msg, name, [info.enum.names[v] for v in values])
            elif raw and is_raw_field(info):
                setattr(msg, name, _raw_values(list(values), info.ptype, name).tolist())
            else:
                items = list(values)
                if info.ptype == "string" and any(isinstance(v, bytes) for v in items):
                    raise _BadPayload(f"string field '{name}' of {cls.__name__} is not valid UTF-8")
                setattr(msg, name, items)
            continue
        if not pb.HasField(name):
            continue
        value = getattr(pb, name)
        if info.ptype == "message":
            value = _extract(value, info.message_cls())
        elif info.ptype == "enum":
            value = info.enum.names[value]
        elif info.ptype == "string" and isinstance(value, bytes):  # upb hands invalid UTF-8 over as bytes
            raise _BadPayload(f"string field '{name}' of {cls.__name__} is not valid UTF-8")
        setattr(msg, name, value)
    if raw and raw_blob_fallback_needed(pb, cls):
        raise _NeedPlain
    return msg


def from_proto(pb: ProtoMessage, cls: type, *, skip: Iterable[str] = ()) -> Message:
    """The schema message of class ``cls`` for protobuf message ``pb`` (either variant).

    Exactly the fields present in ``pb`` are marked as given; top-level fields in ``skip`` are not
    converted (e.g. ``skip={"blobs"}`` when the caller reads blob arrays itself).  Raises
    ``ValueError`` when a raw-variant ``pb`` holds unpacked float records (see
    :func:`raw_blob_fallback_needed`); :func:`decode` handles that case itself.
    """
    try:
        return _extract(pb, cls, frozenset(skip))
    except _NeedPlain:
        raise ValueError("the message stores packed float fields unpacked; read it with raw_blobs=False") from None
    except _BadPayload as err:
        raise ValueError(str(err)) from None


def decode(data: bytes | bytearray | memoryview, cls: type, *, raw_blobs: bool = True,
           skip: Iterable[str] = ()) -> Message:
    """Parse Caffe's binary encoding of message ``cls`` into a schema dataclass.

    Fields present on the wire are marked as given, others keep their defaults.  Fields the schema
    does not know are ignored.  Raises :class:`~caffe_like.errors.WeightsError` when ``data`` is not a
    valid encoding of ``cls`` (the caller adds the file name with ``err.located(file=...)``).
    """
    skip = frozenset(skip)
    pb_cls = proto_class(cls, raw_blobs=raw_blobs)
    try:
        pb = pb_cls.FromString(data)
    except DecodeError as err:
        raise WeightsError(f"not a valid binary {cls.__name__} (protobuf: {err})") from None
    try:
        return _extract(pb, cls, skip)
    except _NeedPlain:
        return decode(data, cls, raw_blobs=False, skip=skip)
    except _BadPayload as err:
        raise WeightsError(f"not a valid binary {cls.__name__}: {err}") from None
    except UnicodeDecodeError as err:
        raise WeightsError(f"not a valid binary {cls.__name__}: a string field is not UTF-8 ({err})") from None
