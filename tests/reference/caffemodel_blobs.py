"""Read the learnable blobs out of a binary ``.caffemodel`` with a tiny protobuf wire-format walk.

Pure Python + NumPy, so the reference tests need neither the protobuf package nor caffe_like's own reader
(which the references must not depend on).  Only the fields the tests need are decoded:

* ``NetParameter``: field 100 ``layer`` (LayerParameter, repeated);
* ``LayerParameter``: field 1 ``name`` (string), field 7 ``blobs`` (BlobProto, repeated);
* ``BlobProto``: field 7 ``shape`` (BlobShape: field 1 ``dim``, int64, packed or not), field 5 ``data``
  (float32, packed or not), field 8 ``double_data`` (float64), and the legacy 4-D ``num``/``channels``/
  ``height``/``width`` (fields 1-4) when there is no ``shape``.

Everything else (including the legacy V1 ``layers`` field 2) is skipped by wire type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes):
    """Yield ``(field_number, wire_type, value)``; value is an int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == _I32:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        if pos > len(buf):
            raise ValueError(f"truncated field {field}")
        yield field, wire, value


def _packed_varints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def _blob(buf: bytes) -> np.ndarray:
    dims: list[int] = []
    legacy: dict[int, int] = {}
    floats: list[bytes] = []
    doubles: list[bytes] = []
    for field, wire, value in _fields(buf):
        if field == 7 and wire == _LEN:  # shape: BlobShape
            for f2, w2, v2 in _fields(value):
                if f2 == 1:
                    dims.extend(_packed_varints(v2) if w2 == _LEN else [v2])
        elif field == 5:  # data: float32
            floats.append(value)
        elif field == 8:  # double_data
            doubles.append(value)
        elif field in (1, 2, 3, 4) and wire == _VARINT:
            legacy[field] = value
    if doubles and not floats:
        data = np.frombuffer(b"".join(doubles), dtype="<f8")
    else:
        data = np.frombuffer(b"".join(floats), dtype="<f4")
    shape = tuple(dims) if dims else tuple(legacy.get(f, 1) for f in (1, 2, 3, 4))
    return data.reshape(shape).copy()


def read_caffemodel_blobs(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Map each layer name to its learnable blobs, in order (layers without blobs are left out)."""
    buf = Path(path).read_bytes()
    layers: dict[str, list[np.ndarray]] = {}
    for field, wire, value in _fields(buf):
        if field != 100 or wire != _LEN:
            continue
        name, blobs = "", []
        for f2, w2, v2 in _fields(value):
            if f2 == 1 and w2 == _LEN:
                name = v2.decode("utf-8")
            elif f2 == 7 and w2 == _LEN:
                blobs.append(_blob(v2))
        if blobs:
            layers[name] = blobs
    return layers
