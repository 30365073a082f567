"""The layer contract: what every caffe_like layer declares and does.

A layer is a ``torch.nn.Module`` built from its LayerParameter and the shapes of its bottoms, *before*
any data flows (Caffe's ``SetUp`` = ``LayerSetUp`` + ``Reshape``).  A subclass declares:

* ``TYPE``: the Caffe type string (``"Convolution"``), registered once with
  :func:`caffe_like.layers.registry.register_layer`;
* ``BOTTOMS`` / ``TOPS``: arity as ``(min, max)`` (``max`` None = unbounded), checked by the base class;
* ``IS_LOSS``: True for Caffe LossLayers (top 0 defaults to ``loss_weight: 1``);
* ``NO_GRAD_BOTTOMS``: bottoms that never receive a gradient (labels; Caffe's ``AllowForceBackward``);
* ``setup(bottom_shapes)``: read the parameter block(s), create the learnable blobs in Caffe's order
  and layout with :meth:`add_blob`, and check the shapes (raise ShapeError/SpecError, the builder adds
  the layer's name and file position);
* ``infer_shapes(bottom_shapes) -> list[top shape]``: shape inference without data;
* ``forward(*bottoms) -> tuple[Tensor, ...]``: the computation, out of place (an in-place layer only
  rebinds the blob name in the net; it never mutates its input).

Blobs are ``torch.nn.Parameter`` objects kept in ``self.blobs`` (a :class:`BlobList`, an ``nn.ParameterList``
with fast integer indexing), in Caffe's order and layout, so a .caffemodel maps onto them 1:1.  Statistics that Caffe stores as blobs but never
trains (BatchNorm's) are Parameters with ``requires_grad=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from ..errors import ShapeError, SpecError
from ..fillers import fill
from ..spec.params import FillerParameter, LayerParameter
from ..spec.schema import UNKNOWN_BLOCKS, Message, bind, get_or_default

__all__ = ["Layer", "BlobList", "BuildContext", "Shape", "canonical_axis"]

Shape = tuple[int, ...]


#: ParameterList keys of the first blobs ("0", "1", ...), so that indexing needs no str(int)
_KEYS = tuple(str(i) for i in range(16))


class BlobList(nn.ParameterList):
    """``nn.ParameterList`` whose ``blobs[i]`` and iteration read the registered Parameters directly.

    ``nn.ParameterList.__getitem__`` resolves an index through ``getattr(self, str(i))`` (a few µs); layers
    read their blobs in every forward, so this subclass looks the Parameter up in ``_parameters``, the
    dict that ``nn.Module`` itself keeps current (``blobs[i] = p``, ``net.to(...)``, ``load_state_dict``
    and sharing all go through it), so nothing is cached that could go stale.  Slices, negative indices
    out of range and non-Parameter entries take ``nn.ParameterList``'s own path.
    """

    def __getitem__(self, idx):
        if idx.__class__ is int:
            size = self._size
            if -size <= idx < size:
                if idx < 0:
                    idx += size
                blob = self._parameters.get(_KEYS[idx] if idx < 16 else str(idx))
                if blob is not None:
                    return blob
        return super().__getitem__(idx)

    def __iter__(self):
        get = self._parameters.get
        blobs = []
        for i in range(self._size):
            blob = get(_KEYS[i] if i < 16 else str(i))
            if blob is None:
                return super().__iter__()
            blobs.append(blob)
        return iter(blobs)


class BuildContext:
    """What a layer may need from the net being built.

    Attributes:
        phase: "TRAIN" or "TEST" (the layer's own phase: its ``phase`` field, else the net's).
        dtype: dtype of new blobs.
        generator: CPU random generator for fillers (seeded from the net's/solver's seed).
        base_dir: folder that relative paths in the net resolve against (data sources, mean files).
        net_name: the net's name.
        options: free-form settings from the caller (data root, prefetch, ...).
    """

    def __init__(self, *, phase: str, dtype: torch.dtype = torch.float32,
                 generator: torch.Generator | None = None, base_dir=None, net_name: str = "",
                 options: dict | None = None) -> None:
        self.phase = phase
        self.dtype = dtype
        self.generator = generator
        self.base_dir = base_dir
        self.net_name = net_name
        self.options = dict(options or {})


class Layer(nn.Module):
    """Base class of every layer (see the module docstring for the contract)."""

    TYPE: ClassVar[str] = ""
    BOTTOMS: ClassVar[tuple[int, int | None]] = (1, 1)
    TOPS: ClassVar[tuple[int, int | None]] = (1, 1)
    IS_LOSS: ClassVar[bool] = False
    NO_GRAD_BOTTOMS: ClassVar[tuple[int, ...]] = ()
    #: plugin layers reading a parameter block BVLC Caffe does not have: {block name: Message class}
    EXTRA_PARAM_BLOCKS: ClassVar[dict[str, type]] = {}
    #: Caffe's BatchNorm: all blobs are statistics with lr_mult forced to 0
    FROZEN_BLOBS: ClassVar[bool] = False

    def __init__(self, spec: LayerParameter, bottom_shapes: Sequence[Shape], ctx: BuildContext) -> None:
        super().__init__()
        self.spec = spec
        self.layer_name = spec.name
        self.phase = ctx.phase
        self.ctx = ctx
        self.blobs = BlobList()
        self._check_arity(len(bottom_shapes), len(spec.top))
        bottom_shapes = [tuple(int(d) for d in s) for s in bottom_shapes]
        self.setup(bottom_shapes)
        self.top_shapes = [tuple(int(d) for d in s) for s in self.infer_shapes(bottom_shapes)]

    # -- to implement ------------------------------------------------------------------------------

    def setup(self, bottom_shapes: list[Shape]) -> None:
        """Read parameters, create blobs, check shapes (Caffe's LayerSetUp)."""

    def infer_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        """Top shapes for the given bottom shapes (Caffe's Reshape), without data."""
        raise NotImplementedError

    def forward(self, *bottoms: torch.Tensor):  # noqa: D401 - torch signature
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------------------

    def param(self, block: str) -> Message:
        """The layer's parameter block ``block`` (e.g. "convolution_param"), defaults if not given."""
        extra = self.EXTRA_PARAM_BLOCKS.get(block)
        if extra is not None:
            raw = self.spec.__dict__.get(UNKNOWN_BLOCKS, {}).get(block)
            return bind(raw, extra, owner=block) if raw is not None else extra()
        return get_or_default(self.spec, block)

    def add_blob(self, shape: Shape, filler: FillerParameter | None, *, default_value: float = 0.0,
                 trainable: bool = True) -> nn.Parameter:
        """Create the next learnable blob (Caffe order), filled by ``filler`` (None = constant
        ``default_value``, Caffe's per-layer default)."""
        data = fill(filler, shape, dtype=self.ctx.dtype, generator=self.ctx.generator,
                    default_value=default_value)
        blob = nn.Parameter(data, requires_grad=trainable)
        self.blobs.append(blob)
        return blob

    def fail(self, message: str, *, fix: str | None = None, shape: bool = True) -> Exception:
        """A ShapeError (or SpecError) about this layer, to ``raise``."""
        cls = ShapeError if shape else SpecError
        return cls(message, layer=self.layer_name, layer_type=self.TYPE, fix=fix)

    @property
    def training_phase(self) -> bool:
        return self.phase == "TRAIN"

    # -- checks ------------------------------------------------------------------------------------

    def _check_arity(self, n_bottoms: int, n_tops: int) -> None:
        for what, count, (low, high) in (("bottom", n_bottoms, self.BOTTOMS), ("top", n_tops, self.TOPS)):
            if count < low or (high is not None and count > high):
                expected = str(low) if low == high else (f"{low} to {high}" if high is not None else f"at least {low}")
                raise SpecError(
                    f"{self.TYPE} takes {expected} {what}(s), got {count}",
                    layer=self.layer_name,
                    layer_type=self.TYPE,
                    fix=f"list {expected} '{what}' entries",
                )

    def extra_repr(self) -> str:
        return f"name={self.layer_name!r}, phase={self.phase}"


def canonical_axis(axis: int, n_axes: int, layer: Layer, what: str = "axis") -> int:
    """Caffe's CanonicalAxisIndex: a negative axis counts from the end; out of range is an error."""
    if not -n_axes <= axis < n_axes:
        raise layer.fail(f"{what} {axis} is out of range for a blob with {n_axes} axes")
    return axis % n_axes
