"""Python: a Caffe Python layer (``python_param {module, layer, param_str}``), run unmodified.

The user's module is imported (from ``sys.path``, else from the net file's folder, which is then added to
``sys.path`` as a pycaffe user's PYTHONPATH would have it) after :mod:`caffe_like.pycaffe_compat` is
installed as ``caffe`` (only when no real pycaffe is importable).  The class named by ``layer`` is called
with the LayerParameter, as Caffe does; ``self.param_str`` and ``self.phase`` (``caffe.TRAIN`` = 0,
``caffe.TEST`` = 1) are set before ``setup``.

* Build time (no data): ``setup(bottom, top)`` then ``reshape(bottom, top)`` with zero-filled bottoms of
  the bottom shapes; the tops' shapes are the layer's top shapes.  Blobs added in ``setup`` with
  ``self.blobs.add_blob(*shape)`` (and the values ``setup`` wrote into them) become the layer's learnable
  blobs: Parameters that .caffemodel files store, the solver updates (``param { lr_mult }`` applies) and
  a TEST net shares.
* Every forward: ``reshape`` then ``forward``, over NumPy copies of the bottoms and of the learnable blobs
  (in the net's dtype: float32, or float64 for gradient checks); the tops come back as tensors on the
  bottoms' device.  Values ``forward`` writes into ``self.blobs[i].data`` are kept (copied back).
* Backward (a ``torch.autograd.Function``): the tops' diffs are the incoming gradients, the bottoms' and
  learnable blobs' diffs start at 0, ``propagate_down[i]`` says whether bottom i needs a gradient, and
  ``backward(top, propagate_down, bottom)`` fills them; what it leaves in ``bottom[i].diff`` and
  ``self.blobs[j].diff`` is the gradient.  If other forwards of the layer ran in between (as
  ``torch.autograd.gradcheck`` does), the forward is run again on the saved inputs first, so that state
  the layer keeps in ``self`` matches.
* A loss written as a Python layer (Caffe's pyloss.py) is not a LossLayer: give ``loss_weight`` in the
  net, as in Caffe.

Errors (:class:`PythonLayerError`) name the layer, the module and class, and the problem, with the file and
line of the user's code: a module that cannot be imported, a missing class, an exception in ``setup`` /
``reshape`` / ``forward`` / ``backward``, a top left without a shape at setup, a top whose shape after a
forward does not match the shape the net was built for (only the batch axis, axis 0, may change).

NOTE: unlike Caffe, the blobs' diffs are presented zeroed to ``backward`` and what it writes is added to the
gradient, so ``=`` and ``+=`` both accumulate correctly over ``iter_size`` passes and shared blobs.
NOTE: unlike Caffe, state a Python layer keeps in its own attributes is not saved in snapshots; the
``share_in_parallel`` field is ignored; Python layers never export to ONNX.
See: Caffe python_layer.hpp, pycaffe _caffe.cpp (BVLC master).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from .. import pycaffe_compat
from ..errors import CaffeLikeError, did_you_mean
from .base import Layer
from .registry import register_layer

__all__ = ["Python", "PythonLayerError"]

_METHODS = ("setup", "reshape", "forward", "backward")


class PythonLayerError(CaffeLikeError):
    """A Caffe Python layer cannot be loaded or failed while it ran."""


_OWN_DIRS = (str(Path(__file__).resolve().parents[1]), str(Path(torch.__file__).resolve().parent))


def _is_own_frame(filename: str) -> bool:
    """Frames of caffe_like, torch or the import machinery (not the user's code)."""
    return filename.startswith("<frozen") or filename.startswith(_OWN_DIRS)


def user_frames(err: BaseException, limit: int = 3) -> str:
    """'file:line in func: code' of the innermost frames of ``err``'s traceback in the user's code."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not _is_own_frame(f.filename)]
    lines = [f"{f.filename}:{f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "")
             for f in frames[-limit:]]
    if isinstance(err, SyntaxError) and err.filename:
        lines.append(f"{err.filename}:{err.lineno}" + (f": {err.text.strip()}" if err.text else ""))
    return "; ".join(lines)


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    where = user_frames(err)
    return f"{text} (at {where})" if where else text


@register_layer
class Python(Layer):
    TYPE = "Python"
    BOTTOMS = (0, None)
    TOPS = (0, None)

    # -- building ----------------------------------------------------------------------------------

    def setup(self, bottom_shapes):
        p = self.param("python_param")
        self.module_name = p.module
        self.class_name = p.layer
        self.param_str = p.param_str
        self._np_dtype = torch.empty((), dtype=self.ctx.dtype).numpy().dtype
        self.register_buffer("_device_anchor", torch.zeros((), dtype=self.ctx.dtype), persistent=False)
        if not self.module_name or not self.class_name:
            raise self._error("python_param needs both 'module' and 'layer'",
                              fix='python_param { module: "my_layers" layer: "MyLayer" }')
        pycaffe_compat.install()
        cls = self._load_class()
        try:
            self.user = cls(self.spec)
        except Exception as err:
            raise self._error(f"creating {self._what} failed: {_describe(err)}",
                              fix="Caffe calls the class with the LayerParameter as its only argument; "
                                  "derive it from caffe.Layer") from err
        try:
            self.user.__dict__["_caffe_dtype"] = self._np_dtype
            self.user.param_str = self.param_str
            self.user.phase = pycaffe_compat.PHASES[self.phase]
        except Exception as err:
            raise self._error(f"cannot set param_str/phase on {self._what}: {_describe(err)}") from err
        self._bottoms = [pycaffe_compat.Blob(shape, dtype=self._np_dtype) for shape in bottom_shapes]
        self._tops = [pycaffe_compat.Blob(dtype=self._np_dtype) for _ in self.spec.top]
        self._call("setup", list(self._bottoms), list(self._tops))
        user_blobs = self._user_blobs()
        self._n_user_blobs = len(user_blobs)
        self._call("reshape", list(self._bottoms), list(self._tops))
        self._check_blob_count("reshape")
        for index, blob in enumerate(self._tops):
            if blob._shape is None:
                raise self._error(f"reshape() gave top {index} ('{self.spec.top[index]}') no shape",
                                  fix="call top[i].reshape(...) for every top in reshape()")
        self._setup_shapes = ([tuple(s) for s in bottom_shapes], [tuple(b.shape) for b in self._tops])
        for blob in user_blobs:
            param = self.add_blob(tuple(blob.shape), None, default_value=0.0)
            with torch.no_grad():
                param.copy_(torch.from_numpy(np.array(blob.data, dtype=self._np_dtype)))
        self._forward_id = 0
        self._saved_id = 0

    def infer_shapes(self, bottom_shapes):
        bottom_shapes = [tuple(s) for s in bottom_shapes]
        if bottom_shapes == self._setup_shapes[0]:
            return list(self._setup_shapes[1])
        for blob, shape in zip(self._bottoms, bottom_shapes):
            blob.reshape(*shape)
        self._call("reshape", list(self._bottoms), list(self._tops))
        return [tuple(b.shape) for b in self._tops]

    @property
    def _what(self) -> str:
        return f"class '{self.class_name}' of module '{self.module_name}'"

    def _error(self, message: str, *, fix: str | None = None) -> PythonLayerError:
        pos = self.spec.pos_of("python_param") if getattr(self, "spec", None) is not None else None
        where = {"file": pos.file, "line": pos.line} if pos is not None and pos.file else {}
        return PythonLayerError(f"Python layer {message}", layer=self.layer_name, layer_type="Python", fix=fix,
                                **where)

    def _load_class(self):
        name = self.module_name
        base_dir = Path(self.ctx.base_dir) if self.ctx.base_dir is not None else None
        try:
            module = self._import(name, base_dir)
        except PythonLayerError:
            raise
        except Exception as err:
            raise self._error(f"module '{name}' cannot be imported: {_describe(err)}",
                              fix="fix the module (the error above is in its code or its imports)") from err
        cls = getattr(module, self.class_name, None)
        if cls is None:
            classes = [k for k, v in vars(module).items() if isinstance(v, type) and not k.startswith("_")]
            hint = did_you_mean(self.class_name, classes)
            raise self._error(
                f"module '{name}' ({getattr(module, '__file__', '?')}) has no class '{self.class_name}'",
                fix=(hint + " " if hint else "") + "classes in the module: " + (", ".join(sorted(classes)) or "none"))
        if not isinstance(cls, type) or not all(callable(getattr(cls, m, None)) for m in ("setup", "reshape", "forward")):
            raise self._error(f"'{self.class_name}' in module '{name}' is not a caffe.Layer class "
                              "(with setup, reshape, forward and backward)",
                              fix="name a class derived from caffe.Layer in python_param.layer")
        return cls

    def _import(self, name: str, base_dir: Path | None):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
                raise  # the module was found; something it imports was not
            first_error = err
        top = name.split(".")[0]
        if base_dir is not None and ((base_dir / f"{top}.py").is_file() or (base_dir / top).is_dir()):
            if str(base_dir) not in sys.path:
                sys.path.append(str(base_dir))
            importlib.invalidate_caches()
            return importlib.import_module(name)
        searched = "sys.path" + (f" and the net's folder {base_dir}" if base_dir is not None else "")
        raise self._error(f"module '{name}' not found ({searched}): {first_error}",
                          fix="put the module next to the net file, or add its folder to PYTHONPATH") from None

    # -- calling the user's code -------------------------------------------------------------------

    def _user_blobs(self) -> list:
        blobs = getattr(self.user, "blobs", None)
        if blobs is None:
            return []
        return list(blobs)

    def _check_blob_count(self, method: str) -> None:
        if len(self._user_blobs()) != self._n_user_blobs:
            raise self._error(f"{method}() of {self._what} changed the number of learnable blobs "
                              f"({self._n_user_blobs} after setup, {len(self._user_blobs())} now)",
                              fix="add learnable blobs (self.blobs.add_blob) in setup() only")

    def _call(self, method: str, *args) -> None:
        func = getattr(self.user, method, None)
        if func is None:
            raise self._error(f"{self._what} has no method {method}()",
                              fix=f"define {method}() in the class (caffe.Layer interface)")
        try:
            func(*args)
        except PythonLayerError:
            raise
        except Exception as err:
            raise self._error(f"{method}() of {self._what} raised {_describe(err)}",
                              fix="fix the Python layer's code") from err

    def _check_top_shapes(self) -> None:
        for index, (blob, expected) in enumerate(zip(self._tops, self.top_shapes)):
            shape = tuple(blob.shape)
            if blob._shape is None or len(shape) != len(expected) or shape[1:] != tuple(expected[1:]):
                raise self._error(
                    f"{self._what} produced top {index} ('{self.spec.top[index]}') of shape {list(shape)}, but the "
                    f"net was built for {list(expected)} (the shape reshape() gave it at setup; only the batch "
                    "axis may change)",
                    fix="give the top its final shape in reshape(), from the bottoms' shapes")

    def _device(self, tensors) -> torch.device:
        for tensor in tensors:
            return tensor.device
        return self._device_anchor.device

    def _run_forward(self, bottoms: list[np.ndarray], params: list[np.ndarray]) -> list[np.ndarray]:
        """reshape + forward over the arrays; returns copies of the tops' data."""
        for blob, array in zip(self._bottoms, bottoms):
            blob._load(array)
        for blob, array in zip(self._user_blobs(), params):
            blob._load(array)
        self._call("reshape", list(self._bottoms), list(self._tops))
        self._call("forward", list(self._bottoms), list(self._tops))
        self._check_blob_count("forward")
        self._check_top_shapes()
        self._forward_id += 1
        return [np.array(blob.data, dtype=self._np_dtype, copy=True) for blob in self._tops]

    def _run_backward(self, saved: dict, grads, needs: list[bool]) -> list[np.ndarray | None]:
        """backward() for the forward that ``saved`` describes; the bottoms' and blobs' diffs."""
        if self._forward_id != saved["id"]:
            self._run_forward(saved["bottoms"], saved["params"])
            saved["id"] = self._forward_id
        for blob, array in zip(self._bottoms, saved["bottoms"]):
            blob._load(array)
            blob._zero_diff()
        for blob, array in zip(self._user_blobs(), saved["params"]):
            blob._load(array)
            blob._zero_diff()
        for blob, array, grad in zip(self._tops, saved["tops"], grads):
            blob._load(array)
            blob.diff[...] = 0 if grad is None else grad.detach().cpu().numpy().reshape(blob.shape)
        n_bottoms = len(self._bottoms)
        propagate_down = [bool(flag) for flag in needs[:n_bottoms]]
        self._call("backward", list(self._tops), propagate_down, list(self._bottoms))
        self._check_blob_count("backward")
        diffs: list[np.ndarray | None] = []
        for index, (blob, array) in enumerate(zip(self._bottoms, saved["bottoms"])):
            if tuple(blob.shape) != tuple(array.shape):
                raise self._error(f"backward() of {self._what} reshaped bottom {index} to {list(blob.shape)} "
                                  f"(it is {list(array.shape)})", fix="do not reshape bottoms in backward()")
            diffs.append(np.array(blob.diff, copy=True) if propagate_down[index] else None)
        for blob, need in zip(self._user_blobs(), needs[n_bottoms:]):
            diffs.append(np.array(blob.diff, copy=True) if need else None)
        return diffs

    # -- torch -------------------------------------------------------------------------------------

    def forward(self, *bottoms):
        params = list(self.blobs)
        tensors = [*bottoms, *params]
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        if needs_grad and self._tops:
            tops = _PythonFunction.apply(self, len(bottoms), *tensors)
        else:
            device = self._device(tensors)
            arrays = self._run_forward([_to_numpy(t, self._np_dtype) for t in bottoms],
                                       [_to_numpy(t, self._np_dtype) for t in params])
            tops = tuple(torch.from_numpy(a).to(device) for a in arrays)
        self._write_back(params)
        return tuple(tops)

    def _write_back(self, params: list[torch.Tensor]) -> None:
        """Keep values that forward() wrote into self.blobs[i].data (running statistics and the like)."""
        for param, blob in zip(params, self._user_blobs()):
            current = _to_numpy(param, self._np_dtype)
            if not np.array_equal(current, blob.data):
                with torch.no_grad():
                    param.copy_(torch.from_numpy(np.array(blob.data, copy=True)).to(param.device))

    def onnx_unsupported(self) -> str | None:
        """Why this layer cannot be exported (the ONNX exporter's hook)."""
        return (f"a Caffe Python layer ({self.module_name}.{self.class_name}) runs arbitrary NumPy code that ONNX "
                "cannot represent; port it to a caffe_like layer (register_layer, see docs/porting.md) to "
                "export the net")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, module={self.module_name!r}, layer={self.class_name!r}"


def _to_numpy(tensor: torch.Tensor, dtype) -> np.ndarray:
    array = tensor.detach()
    if array.device.type != "cpu":
        array = array.cpu()
    array = array.numpy()
    return array if array.dtype == dtype else array.astype(dtype)


class _PythonFunction(torch.autograd.Function):
    """Wires a Python layer into autograd: forward and backward call the user's methods."""

    @staticmethod
    def forward(ctx, layer: Python, n_bottoms: int, *tensors):
        device = layer._device(tensors)
        bottoms = [_to_numpy(t, layer._np_dtype) for t in tensors[:n_bottoms]]
        params = [np.array(_to_numpy(t, layer._np_dtype), copy=True) for t in tensors[n_bottoms:]]
        tops = layer._run_forward(bottoms, params)
        ctx.layer = layer
        ctx.device = device
        ctx.saved = {"id": layer._forward_id, "bottoms": bottoms, "params": params, "tops": tops}
        ctx.dtypes = [t.dtype for t in tensors]
        return tuple(torch.from_numpy(a).to(device) for a in tops)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        needs = list(ctx.needs_input_grad[2:])
        diffs = ctx.layer._run_backward(ctx.saved, grads, needs)
        out = [None if d is None else torch.from_numpy(d).to(device=ctx.device, dtype=dtype)
               for d, dtype in zip(diffs, ctx.dtypes)]
        return (None, None, *out)
