"""The caffe_like part of a ``.solverstate`` (field 1000, ``SolverStateData.extra``), without pickle.

What Caffe's SolverState lacks for a bit-for-bit resume is stored here: the torch (CPU and CUDA), NumPy
and Python random states, the smoothed-loss window, and every layer's ``get_extra_state()`` of the train
and test nets (L-Softmax's iteration counter, the data layers' reading positions and transform RNGs).

Encoding: an uncompressed NPZ archive (``np.savez``) whose member ``__meta__`` holds a UTF-8 JSON
document and whose other members are the arrays the document refers to.  Values are encoded as:

* ``None``, bool, int (any size), float (NaN and ±inf too), str: JSON as they are;
* list: a JSON list; dict with str keys: a JSON object; a key starting with ``$`` is escaped as ``$$...``;
* tuple: ``{"$tuple": [...]}``; bytes: ``{"$bytes": name}`` (a uint8 array);
* numpy array or scalar: ``{"$array": name}``; torch tensor: ``{"$tensor": name, "device": "cpu"}``
  (restored on that device when it exists, else on the CPU).

Decoding uses ``np.load(..., allow_pickle=False)`` and ``json.loads``: no code runs from the file.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import torch

from ..errors import WeightsError

__all__ = ["encode", "decode", "EXTRA_FORMAT"]

#: the ``format`` tag written at the root of the document
EXTRA_FORMAT = "caffe_like.solverstate.extra/1"


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _store(self, array: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(array)
        return name

    def value(self, obj):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, torch.Tensor):
            array = obj.detach().cpu().numpy()
            return {"$tensor": self._store(array), "device": str(obj.device)}
        if isinstance(obj, np.generic):
            return {"$array": self._store(np.asarray(obj)), "scalar": True}
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                raise TypeError("object arrays cannot be stored in a solver state")
            return {"$array": self._store(obj)}
        if isinstance(obj, (bytes, bytearray)):
            return {"$bytes": self._store(np.frombuffer(bytes(obj), dtype=np.uint8))}
        if isinstance(obj, tuple):
            return {"$tuple": [self.value(v) for v in obj]}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                if not isinstance(key, str):
                    raise TypeError(f"dict keys in a solver state must be str, got {key!r}")
                out["$" + key if key.startswith("$") else key] = self.value(value)
            return out
        raise TypeError(f"cannot store a {type(obj).__name__} in a solver state (use numbers, str, lists, "
                        "dicts, tuples, bytes, numpy arrays or torch tensors)")


def encode(state: dict) -> bytes:
    """``state`` (a dict of the values listed in the module docstring) as NPZ bytes."""
    encoder = _Encoder()
    document = {"format": EXTRA_FORMAT, "state": encoder.value(state)}
    meta = np.frombuffer(json.dumps(document, allow_nan=True).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=meta, **encoder.arrays)
    return buffer.getvalue()


class _Decoder:
    def __init__(self, archive) -> None:
        self.archive = archive

    def _array(self, name: str) -> np.ndarray:
        return self.archive[name]

    def value(self, obj):
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "$tensor" in obj:
            tensor = torch.from_numpy(self._array(obj["$tensor"]).copy())
            device = torch.device(obj.get("device", "cpu"))
            if device.type == "cuda" and torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count():
                tensor = tensor.to(device)
            return tensor
        if "$array" in obj:
            array = self._array(obj["$array"])
            return array[()] if obj.get("scalar") else array
        if "$bytes" in obj:
            return self._array(obj["$bytes"]).tobytes()
        if "$tuple" in obj:
            return tuple(self.value(v) for v in obj["$tuple"])
        return {(key[1:] if key.startswith("$$") else key): self.value(value) for key, value in obj.items()}


def decode(data: bytes, *, file: str | None = None) -> dict:
    """The dict :func:`encode` stored; a WeightsError naming ``file`` when the bytes are not such a state."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            document = json.loads(archive["__meta__"].tobytes().decode("utf-8"))
            if not isinstance(document, dict) or document.get("format") != EXTRA_FORMAT:
                raise ValueError(f"unknown format tag {document.get('format') if isinstance(document, dict) else None!r}")
            return _Decoder(archive).value(document["state"])
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise WeightsError(f"the caffe_like part of the solver state (RNG states, layer counters) is corrupt: "
                           f"{err}", file=file,
                           fix="resume from another snapshot; a state written by Caffe itself has no such part") from None
