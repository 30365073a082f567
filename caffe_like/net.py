"""The net builder: a NetSpec becomes a ``torch.nn.Module`` with Caffe's semantics.

``Net(source, phase)`` filters the definition for its NetState, builds every layer in order with shape
inference (no data is read), and wires the blobs by name:

* an in-place layer (top named like its bottom) rebinds the name; nothing is mutated, so autograd sees
  every intermediate value;
* a blob consumed by several layers accumulates their gradients, as Caffe's automatic Split does;
* ``propagate_down: false`` cuts the gradient into that bottom; labels never receive one;
* ``lr_mult: 0`` freezes a blob (no gradient at all) unless ``force_backward`` is set;
* ``param { name: ... }`` shares one Parameter between layers (Caffe's STRICT shape check);
* the objective ``net.loss`` is Σ loss_weight · sum(top) over every top with a non-zero weight, taken
  when the top is produced (a later in-place layer does not change it).  Only Caffe's loss layers
  default to weight 1 (on their first top).

Speed: the wiring is resolved once at build time (which tops are net inputs, which bottoms are cut), the
forward loop only looks blobs up by name, and a ``BatchNorm`` using batch statistics followed by a
per-channel ``Scale`` that rebinds its top (Caffe's usual ``BatchNorm`` + ``Scale`` pair) runs as one
``torch.batch_norm`` with an affine part (``net.fusion = False`` runs them apart; layers with hooks always
run apart).  ``net.to_channels_last()`` keeps 4-D blobs in NHWC memory order (values unchanged).

The API mirrors pycaffe::

    net = caffe_like.Net("lenet.prototxt", phase="TEST")
    out = net(data=images)            # {output blob: tensor}, outputs in alphabetical order
    net.blobs["conv1"]; net.params["conv1"][0]; net.loss.backward()
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _module_hooks

from .errors import CaffeLikeError, ShapeError, SpecError
from .layers import registry
from .layers.base import BuildContext, Layer
from .spec.net import NetSpec
from .spec.params import LayerParameter, ParamSpec
from .spec.schema import UNKNOWN_BLOCKS, has

__all__ = ["Net", "LearnableParam"]


@dataclass
class LearnableParam:
    """A blob the solver updates (an owner, not a sharer), with its per-blob settings."""

    param: nn.Parameter
    lr_mult: float
    decay_mult: float
    layer: str
    index: int
    name: str = ""


@dataclass
class _Record:
    """One built layer and how it is wired."""

    layer: Layer
    spec: LayerParameter
    bottoms: list[str]
    tops: list[str]
    detach: list[bool]
    loss_terms: list[tuple[int, float]]
    is_source: bool
    where: dict = field(default_factory=dict)
    #: some bottom is cut from the graph (propagate_down false, labels)
    any_detach: bool = False
    #: the Scale record this BatchNorm record may run together with (see Net._plan_fusions)
    fused_scale: _Record | None = None


class Net(nn.Module):
    """A Caffe net as a torch module (see the module docstring).

    Args:
        source: a path (.prototxt/.yaml), a dict with the YAML's structure, or a NetSpec.
        phase: "TRAIN" or "TEST"; None takes the net's ``state.phase`` (TEST by default, as Caffe).
        level, stages: the rest of the NetState used to filter layers.
        weights: a .caffemodel to load after building.
        seed: seed of the fillers' random generator (None = torch's global generator).
        dtype: dtype of the blobs (float32 as Caffe; float64 for gradient checks).
        options: settings passed to layers (e.g. ``data_root`` for data layers).
    """

    def __init__(self, source, phase: str | None = None, *, level: int | None = None,
                 stages=None, weights: str | Path | None = None, seed: int | None = None,
                 dtype: torch.dtype = torch.float32, options: dict | None = None) -> None:
        super().__init__()
        registry.load_entry_points()  # layer types of installed packages, before the net names them
        spec = NetSpec.load(source)
        state = spec.state(phase=phase, level=level, stages=stages)
        self.spec = spec.filter(state)
        self.phase = state.phase
        self.name = self.spec.name
        self.force_backward = self.spec.param.force_backward
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.layers = nn.ModuleList()
        self.layer_names: list[str] = []
        self._records: list[_Record] = []
        self.blob_shapes: dict[str, tuple[int, ...]] = {}
        self.blobs: dict[str, torch.Tensor] = {}
        self.loss: torch.Tensor | None = None
        self._learnable: list[LearnableParam] = []
        #: run BatchNorm (batch statistics) + per-channel Scale pairs as one op (see the module docstring)
        self.fusion = True
        #: 4-D inputs are converted to channels_last (``to_channels_last``)
        self.channels_last = False
        self.register_buffer("_anchor", torch.zeros((), dtype=dtype), persistent=False)
        self._build(generator, dtype, dict(options or {}))
        if weights is not None:
            self.load_weights(weights)

    # -- building ----------------------------------------------------------------------------------

    def _build(self, generator, dtype, options) -> None:
        owners: dict[str, tuple[nn.Parameter, LearnableParam, bool, str]] = {}
        available: set[str] = set()  # Caffe's net outputs: produced and not consumed afterwards
        for spec_layer in self.spec.layers:
            where = self.spec.where(spec_layer)
            cls = registry.get_layer_class(spec_layer.type, where=self.spec.where(spec_layer, "type"))
            for block in spec_layer.__dict__.get(UNKNOWN_BLOCKS, {}):
                if block not in cls.EXTRA_PARAM_BLOCKS:
                    raise SpecError(
                        f"parameter block '{block}' is not known to caffe_like (a Caffe fork's extension?)",
                        **where,
                        fix=f"remove it, or register a {spec_layer.type} layer that reads it "
                        "(EXTRA_PARAM_BLOCKS) with caffe_like.register_layer",
                    )
            phase = spec_layer.phase if has(spec_layer, "phase") else self.phase
            ctx = BuildContext(phase=phase, dtype=dtype, generator=generator, base_dir=self.spec.base_dir,
                               net_name=self.name, options=options)
            bottom_shapes = [self.blob_shapes[b] for b in spec_layer.bottom]
            try:
                layer = cls(spec_layer, bottom_shapes, ctx)
            except CaffeLikeError as err:
                raise err.located(**where) from None
            self.layers.append(layer)
            self.layer_names.append(spec_layer.name)
            for top, shape in zip(spec_layer.top, layer.top_shapes):
                self.blob_shapes[top] = shape
            self._wire_params(layer, spec_layer, owners, where)
            record = _Record(
                layer=layer,
                spec=spec_layer,
                bottoms=list(spec_layer.bottom),
                tops=list(spec_layer.top),
                detach=self._detach_flags(layer, spec_layer, where),
                loss_terms=[(i, w) for i, w in enumerate(self._loss_weights(layer, spec_layer)) if w != 0.0],
                is_source=not spec_layer.bottom,
                where=where,
            )
            self._records.append(record)
            available.difference_update(spec_layer.bottom)
            available.update(spec_layer.top)
        self.output_names = sorted(available)
        self.input_names = [t for r in self._records if r.is_source and r.spec.type == "Input" for t in r.tops]
        self._source_tops = frozenset(t for r in self._records if r.is_source for t in r.tops)
        for record in self._records:
            record.any_detach = any(record.detach)
        self._plan_fusions()

    def _plan_fusions(self) -> None:
        """Pair each BatchNorm with the Scale right after it when the two can run as one op: the Scale
        reads the BatchNorm's top and rebinds that name (so no blob of the net goes missing), has one
        bottom that receives a gradient, one learned value per channel (axis 1) and optionally a bias of
        the same shape; neither top carries a loss weight.  Whether the BatchNorm uses batch statistics,
        and the batch size, are checked when it runs."""
        from .layers.batch_norm import BatchNorm
        from .layers.scale_bias import Scale

        for record, following in zip(self._records, self._records[1:]):
            bn, scale = record.layer, following.layer
            if type(bn) is not BatchNorm or type(scale) is not Scale or record.loss_terms or following.loss_terms:
                continue
            top = record.tops[0]
            if following.bottoms != [top] or following.tops != [top] or following.any_detach:
                continue
            if not scale.learned_scale or len(bn.top_shapes[0]) < 2:
                continue
            if scale.axis_param % len(bn.top_shapes[0]) != 1:
                continue
            if any(tuple(blob.shape) != (bn.channels,) for blob in scale.blobs):
                continue
            record.fused_scale = following

    @staticmethod
    def _loss_weights(layer: Layer, spec_layer: LayerParameter) -> list[float]:
        if spec_layer.loss_weight:
            return [float(w) for w in spec_layer.loss_weight]
        weights = [0.0] * len(spec_layer.top)
        if layer.IS_LOSS and weights:
            weights[0] = 1.0
        return weights

    def _detach_flags(self, layer: Layer, spec_layer: LayerParameter, where: dict) -> list[bool]:
        flags = []
        for index in range(len(spec_layer.bottom)):
            forced = spec_layer.propagate_down[index] if spec_layer.propagate_down else None
            if index in layer.NO_GRAD_BOTTOMS:
                if forced:
                    raise SpecError(
                        f"propagate_down is true for bottom {index} ('{spec_layer.bottom[index]}'), "
                        f"but {spec_layer.type} sends no gradient to that bottom (e.g. a label)",
                        **where,
                        fix="set propagate_down: false for that bottom",
                    )
                flags.append(True)
            else:
                flags.append(forced is False)
        return flags

    def _wire_params(self, layer: Layer, spec_layer: LayerParameter, owners: dict, where: dict) -> None:
        n_blobs = len(layer.blobs)
        specs: list[ParamSpec] = list(spec_layer.param)
        if layer.FROZEN_BLOBS:
            if len(specs) != 3 and any(has(s, "lr_mult") and s.lr_mult != 0 for s in specs):
                raise SpecError(
                    f"{spec_layer.type} statistics cannot be learned (lr_mult must be 0)",
                    **where,
                    fix="remove the param blocks; caffe_like (like BVLC Caffe) freezes them itself",
                )
            specs = [ParamSpec(lr_mult=0.0) for _ in range(n_blobs)]
        if len(specs) > n_blobs:
            raise SpecError(f"{len(specs)} param blocks are given but the layer has {n_blobs} blob(s)",
                            **where, fix=f"give at most {n_blobs} param blocks")
        specs += [ParamSpec() for _ in range(n_blobs - len(specs))]
        for index, pspec in enumerate(specs):
            blob = layer.blobs[index]
            if pspec.name and pspec.name in owners:
                owner, learnable, explicit, owner_layer = owners[pspec.name]
                ok = (owner.shape == blob.shape) if pspec.share_mode == "STRICT" else owner.shape == blob.shape
                if not ok:
                    mode = "" if pspec.share_mode == "STRICT" else " (PERMISSIVE sharing of different shapes is not supported)"
                    raise ShapeError(
                        f"shared param '{pspec.name}' has shape {list(owner.shape)} in layer '{owner_layer}' "
                        f"but {list(blob.shape)} here{mode}",
                        **where,
                        fix="shared blobs must have the same shape",
                    )
                if has(pspec, "lr_mult"):
                    if explicit and pspec.lr_mult != learnable.lr_mult:
                        raise SpecError(f"shared param '{pspec.name}' has lr_mult {learnable.lr_mult} in layer "
                                        f"'{owner_layer}' and {pspec.lr_mult} here", **where,
                                        fix="give sharers the same lr_mult")
                    learnable.lr_mult = pspec.lr_mult
                if has(pspec, "decay_mult"):
                    learnable.decay_mult = pspec.decay_mult
                owners[pspec.name] = (owner, learnable, explicit or has(pspec, "lr_mult"), owner_layer)
                owner.requires_grad_(learnable.lr_mult != 0 or self.force_backward)
                layer.blobs[index] = owner
                continue
            learnable = LearnableParam(blob, float(pspec.lr_mult), float(pspec.decay_mult),
                                       spec_layer.name, index, pspec.name)
            if not layer.FROZEN_BLOBS:
                blob.requires_grad_(learnable.lr_mult != 0 or self.force_backward)
            # Caffe's learnable_params_ holds every owner blob, frozen statistics and lr_mult 0 ones too
            # (their update is 0); keeping them keeps .solverstate history in Caffe's order.
            self._learnable.append(learnable)
            if pspec.name:
                owners[pspec.name] = (blob, learnable, has(pspec, "lr_mult"), spec_layer.name)

    # -- running -----------------------------------------------------------------------------------

    def _prepare_input(self, name: str, value, expected: tuple[int, ...], where: dict) -> torch.Tensor:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        anchor = self._anchor
        if tensor.is_floating_point() and tensor.dtype != anchor.dtype:
            tensor = tensor.to(anchor.dtype)
        if tensor.device != anchor.device:
            tensor = tensor.to(anchor.device)
        if expected and tuple(tensor.shape[1:]) != tuple(expected[1:]):
            raise ShapeError(
                f"input '{name}' has shape {list(tensor.shape)}, but the net expects {list(expected)} "
                "(any batch size)",
                **where,
            )
        if self.channels_last:
            tensor = _channels_last(tensor)
        if self.force_backward and tensor.is_floating_point():
            tensor = tensor.detach().requires_grad_(True)
        return tensor

    def forward(self, **inputs) -> dict[str, torch.Tensor]:
        """Run every layer; returns {output blob: tensor}.  Net inputs (the tops of Input layers, or any
        top of a layer without bottoms, e.g. a data layer you want to bypass) are given by name."""
        if not self._source_tops.issuperset(inputs):
            unknown = set(inputs) - self._source_tops
            raise SpecError(f"unknown net input(s): {', '.join(sorted(unknown))}", file=self.spec.file,
                            fix=f"the net's inputs are: {', '.join(self.input_names) or '(none)'}")
        # The last forward's blobs are let go now, not when this one ends: their memory is reused at
        # once instead of a second set of activations being allocated (fresh pages, page faults) while
        # they are still alive.  net.blobs fills as the layers run (after an error it holds the blobs
        # computed so far); net.loss is None until the forward completes.
        blobs: dict[str, torch.Tensor] = {}
        self.__dict__["blobs"] = blobs
        self.__dict__["loss"] = None
        loss = None
        fusion = self.fusion
        skip = None  # the Scale record already run with its BatchNorm
        for record in self._records:
            if record is skip:
                continue
            if record.is_source:
                fed = [inputs.get(t) for t in record.tops]
                if all(v is not None for v in fed):
                    tops = tuple(self._prepare_input(t, v, self.blob_shapes[t], record.where)
                                 for t, v in zip(record.tops, fed))
                elif record.spec.type == "Input":
                    missing = [t for t, v in zip(record.tops, fed) if v is None]
                    raise SpecError(f"net input(s) not given: {', '.join(missing)}", **record.where,
                                    fix=f"call net({missing[0]}=tensor, ...)")
                else:
                    tops = _run_source(record.layer)
                    if self.channels_last:
                        tops = tuple(_channels_last(t) for t in ((tops,) if isinstance(tops, torch.Tensor) else tops))
            else:
                if record.any_detach:
                    args = [blobs[b].detach() if d else blobs[b] for b, d in zip(record.bottoms, record.detach)]
                else:
                    args = [blobs[b] for b in record.bottoms]
                try:
                    tops = None
                    if record.fused_scale is not None and fusion:
                        tops = self._run_fused(record, args[0])
                    if tops is None:
                        tops = record.layer(*args)
                    else:
                        skip = record.fused_scale
                except RuntimeError as err:
                    shapes = ", ".join(f"{b}{list(a.shape)}" for b, a in zip(record.bottoms, args))
                    raise ShapeError(f"forward failed for bottoms {shapes}: {err}", **record.where) from None
            if isinstance(tops, torch.Tensor):
                tops = (tops,)
            for name, top in zip(record.tops, tops):
                blobs[name] = top
            for index, weight in record.loss_terms:
                term = tops[index].sum() * weight
                loss = term if loss is None else loss + term
        # (plain attributes: nn.Module.__setattr__ would only look through its registries first)
        self.__dict__["loss"] = loss if loss is not None else torch.zeros((), dtype=self._anchor.dtype,
                                                                          device=self._anchor.device)
        return {name: blobs[name] for name in self.output_names}

    @staticmethod
    def _run_fused(record: _Record, x: torch.Tensor):
        """BatchNorm + Scale of ``record`` as one op, or None when it does not apply this time (global
        statistics, one value per channel, or a hook on either layer: hooks see the layers run apart)."""
        bn, scale = record.layer, record.fused_scale.layer
        if _has_hooks(bn) or _has_hooks(scale):
            return None
        blobs = scale.blobs
        return bn.forward_scaled(x, blobs[0], blobs[1] if scale.bias_term else None)

    def to_channels_last(self) -> Net:
        """Keep 4-D blobs (convolution weights, fed and produced 4-D inputs and everything computed from
        them) in channels_last (NHWC) memory order: the same values and shapes, often faster convolution
        and pooling on CPUs.  Parameters stay the same objects (``nn.Module.to`` converts in place)."""
        self.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    @property
    def loss_weights(self) -> dict[str, float]:
        """{top name: loss weight} for every top with a non-zero weight in the objective."""
        return {record.tops[index]: weight for record in self._records for index, weight in record.loss_terms}

    # -- parameters --------------------------------------------------------------------------------

    @property
    def params(self) -> OrderedDict[str, list[nn.Parameter]]:
        """{layer name: its blobs in Caffe's order}, for layers that have blobs (as pycaffe)."""
        return OrderedDict((name, list(layer.blobs)) for name, layer in zip(self.layer_names, self.layers)
                           if len(layer.blobs))

    def layer_dict(self) -> OrderedDict[str, Layer]:
        return OrderedDict(zip(self.layer_names, self.layers))

    def learnable_params(self) -> list[LearnableParam]:
        """Caffe's ``learnable_params``: every owner blob (sharers excluded) in net order, including
        lr_mult 0 blobs and BatchNorm's statistics, whose update is 0 (the solver may skip them)."""
        return list(self._learnable)

    # -- layer state beyond blobs (e.g. L-Softmax's iteration counter), for solver snapshots --------

    def extra_states(self) -> dict[str, object]:
        """{layer name: state} for layers that define ``get_extra_state`` (torch's hook)."""
        return {name: layer.get_extra_state() for name, layer in zip(self.layer_names, self.layers)
                if type(layer).get_extra_state is not nn.Module.get_extra_state}

    def load_extra_states(self, states: dict[str, object]) -> None:
        """Restore what :meth:`extra_states` returned (layers absent from the net are ignored)."""
        layers = self.layer_dict()
        for name, state in states.items():
            if name in layers:
                layers[name].set_extra_state(state)

    # -- weights -----------------------------------------------------------------------------------

    def save_weights(self, path: str | Path) -> None:
        """Write every layer's blobs as a binary .caffemodel (Caffe's NetParameter), atomically."""
        from .weights import LayerBlobs, write_caffemodel

        layers, params = [], {}
        for name, layer, record in zip(self.layer_names, self.layers, self._records):
            blobs = [b.detach().cpu().numpy() for b in layer.blobs]
            layers.append(LayerBlobs(name=name, type=record.spec.type, blobs=blobs))
            stored = copy.deepcopy(record.spec)
            stored.phase = layer.phase
            params[name] = stored
        write_caffemodel(path, self.name, layers, layer_params=params,
                         double=self._anchor.dtype == torch.float64)

    def load_weights(self, path: str | Path) -> list[str]:
        """Copy blobs from a .caffemodel by layer name (Caffe's CopyTrainedLayersFrom).

        Layers of the file that the net lacks are skipped and returned (with a warning when they hold
        blobs); a blob count or shape mismatch is a WeightsError naming the layer, both shapes and the file.
        """
        from .weights import match_blobs, read_caffemodel

        model = read_caffemodel(path)
        expected = {name: [tuple(b.shape) for b in layer.blobs] for name, layer in zip(self.layer_names, self.layers)}
        matched, skipped = match_blobs(model, expected, file=str(path))
        layers = self.layer_dict()
        with torch.no_grad():
            for name, arrays in matched.items():
                for blob, array in zip(layers[name].blobs, arrays):
                    blob.copy_(torch.from_numpy(np.ascontiguousarray(array)))
        with_blobs = {layer.name for layer in model.layers if layer.blobs}
        lost = [name for name in skipped if name in with_blobs]  # blob-less ones (Caffe's Splits) lose nothing
        if lost:
            warnings.warn(f"{path}: weights of layers not in the net were ignored: {', '.join(lost)}",
                          stacklevel=2)
        return skipped

    # -- description -------------------------------------------------------------------------------

    def summary(self) -> dict:
        """Layers, top shapes and parameter counts (DESIGN §8's ``summary --json`` object)."""
        layers = []
        for name, layer, record in zip(self.layer_names, self.layers, self._records):
            count = sum(int(b.numel()) for b in layer.blobs)
            layers.append({
                "name": name,
                "type": record.spec.type,
                "bottoms": record.bottoms,
                "tops": record.tops,
                "top_shapes": {t: list(s) for t, s in zip(record.tops, layer.top_shapes)},
                "params": count,
            })
        return {
            "name": self.name,
            "phase": self.phase,
            "layers": layers,
            "total_params": sum(item["params"] for item in layers),
            "outputs": {name: list(self.blob_shapes[name]) for name in self.output_names},
        }

    def extra_repr(self) -> str:
        return f"name={self.name!r}, phase={self.phase}, layers={len(self.layers)}"


@torch.compiler.disable
def _run_source(layer: Layer):
    """A layer without bottoms (a data layer: threads, queues, files) runs outside ``torch.compile``."""
    return layer()


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """A 4-D floating tensor in channels_last memory order (anything else as it is)."""
    if tensor.dim() == 4 and tensor.is_floating_point():
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _any_global_hook() -> bool:
    return bool(_module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks
                or _module_hooks._global_backward_hooks or _module_hooks._global_backward_pre_hooks)


def _has_hooks(module: nn.Module) -> bool:
    """Whether calling ``module`` would run any forward/backward hook (its own or global ones)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _any_global_hook())
