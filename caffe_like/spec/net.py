"""NetSpec: a validated net definition (NetParameter) with its source file.

Load from ``.prototxt`` (current, V1 or V0 syntax, upgraded as Caffe does), ``.yaml``/``.yml`` or a dict
with the YAML's structure; validate; filter by phase/level/stage exactly as Caffe's
``Net::FilterNet``; dump to YAML or prototxt.  Torch is never imported here.

Example::

    spec = NetSpec.load("lenet_train_test.prototxt")
    train = spec.filter(spec.state(phase="TRAIN"))
    print(train.to_yaml())
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from ..errors import SpecError, did_you_mean
from .params import (
    LayerParameter,
    NetParameter,
    NetState,
    NetStateRule,
    known_layer_types,
    layer_param_fields,
)
from .schema import bind, fields_of, get_or_default, has
from .source import Definition, read_tree, tree_from_text
from .tree import Node, Pos

__all__ = ["NetSpec", "state_meets_rule", "layer_included", "PHASES"]

PHASES = ("TRAIN", "TEST")
_LAYER_FIELDS = frozenset(info.name for info in fields_of(LayerParameter))

_PLUGIN_FIX = (
    "known types: {known}. For a layer of your own, register it with caffe_like.register_layer, "
    "load its module with --plugin MODULE, or install a package with a 'caffe_like.layers' entry point"
)


def state_meets_rule(state: NetState, rule: NetStateRule) -> bool:
    """Caffe's ``Net::StateMeetsRule``: every condition the rule gives must hold."""
    if has(rule, "phase") and rule.phase != state.phase:
        return False
    if has(rule, "min_level") and state.level < rule.min_level:
        return False
    if has(rule, "max_level") and state.level > rule.max_level:
        return False
    if any(stage not in state.stage for stage in rule.stage):
        return False
    if any(stage in state.stage for stage in rule.not_stage):
        return False
    return True


def layer_included(layer: LayerParameter, state: NetState) -> bool:
    """Caffe's ``Net::FilterNet`` rule for one layer (include OR-ed, exclude vetoes)."""
    if layer.include:
        return any(state_meets_rule(state, rule) for rule in layer.include)
    return not any(state_meets_rule(state, rule) for rule in layer.exclude)


class NetSpec(Definition):
    """A net definition: the NetParameter (``param``), its ``file``, and the upgrade's ``notes``."""

    param: NetParameter

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def load(cls, source, *, validate: bool = True, check_types: bool = True) -> NetSpec:
        """Load a net from a path (.prototxt/.yaml), a dict or a NetParameter; a NetSpec is returned as is."""
        if isinstance(source, NetSpec):
            return source  # validated when it was made (and possibly filtered since)
        if isinstance(source, NetParameter):
            spec = cls(source)
        else:
            tree, file, lenient = read_tree(source)
            spec = cls.from_tree(tree, file=file, numbers_as_strings=lenient)
        if validate:
            spec.validate(check_types=check_types)
        return spec

    @classmethod
    def from_text(cls, text: str, *, yaml_syntax: bool = False, file: str | None = None,
                  validate: bool = True, check_types: bool = True) -> NetSpec:
        """Parse prototxt (default) or YAML text."""
        tree = tree_from_text(text, yaml_syntax=yaml_syntax, file=file)
        spec = cls.from_tree(tree, file=file, numbers_as_strings=yaml_syntax)
        if validate:
            spec.validate(check_types=check_types)
        return spec

    @classmethod
    def from_tree(cls, tree: Node, *, file: str | None, numbers_as_strings: bool) -> NetSpec:
        from .upgrade import upgrade_net

        tree, notes = upgrade_net(tree, file=file)
        param = bind(tree, NetParameter, owner="net", numbers_as_strings=numbers_as_strings)
        return cls(param, file=file, notes=notes)

    # -- accessors ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def layers(self) -> list[LayerParameter]:
        return self.param.layer

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in this net (data sources, mean files) are resolved against."""
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def layer(self, name: str) -> LayerParameter:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def where(self, layer: LayerParameter, field: str | None = None) -> dict:
        """Error-location keyword arguments for ``layer`` (and one of its fields)."""
        pos: Pos = layer.pos_of(field) if field else (layer._where or Pos())
        return {"file": pos.file or self.file, "line": pos.line, "column": pos.column,
                "layer": layer.name, "layer_type": layer.type or None}

    # -- phases ------------------------------------------------------------------------------------

    def state(self, phase: str | None = None, level: int | None = None,
              stages: list[str] | tuple[str, ...] | None = None) -> NetState:
        """The NetState to build with: the net's own ``state`` (phase default TEST), overridden by the
        arguments given, as pycaffe's ``Net(file, phase, level=, stages=)`` does."""
        state = copy.deepcopy(self.param.state) if self.param.state is not None else NetState()
        if phase is not None:
            if phase not in PHASES:
                raise SpecError(f"unknown phase '{phase}'", file=self.file, fix="use TRAIN or TEST")
            state.phase = phase
        if level is not None:
            state.level = level
        if stages:
            state.stage = list(state.stage) + [s for s in stages if s not in state.stage]
        return state

    def filter(self, state: NetState | str | None = None) -> NetSpec:
        """The net with only the layers whose include/exclude rules admit ``state`` (a NetState or a
        phase name), as ``Net::FilterNet``; the result's ``state`` is that state."""
        if not isinstance(state, NetState):
            state = self.state(phase=state)
        param = copy.copy(self.param)
        object.__setattr__(param, "_present", set(self.param._present))
        param.layer = [layer for layer in self.layers if layer_included(layer, state)]
        param.state = state
        return NetSpec(param, file=self.file, notes=self.notes)

    # -- validation --------------------------------------------------------------------------------

    def validate(self, *, check_types: bool = True) -> None:
        """Check every layer and, for each phase, the blob graph. Raises SpecError at the first problem."""
        known = known_layer_types()
        names: dict[str, LayerParameter] = {}
        for layer in self.layers:
            self._validate_layer(layer, known if check_types else None)
            first = names.get(layer.name)
            if layer.name and first is not None and _same_phase(first, layer):
                # Caffe accepts this (weights then load into the first layer of that name): warn only.
                warnings.warn(
                    f"{Pos(**{k: v for k, v in self.where(layer, 'name').items() if k in ('file', 'line', 'column')})}: "
                    f"the layer name '{layer.name}' is used twice in one phase (first at line "
                    f"{first.pos_of('name').line}); weights are matched by name, so rename one",
                    stacklevel=2,
                )
            names.setdefault(layer.name, layer)
        for phase in PHASES:
            self.filter(self.state(phase=phase)).check_graph()

    def _validate_layer(self, layer: LayerParameter, known: frozenset[str] | None) -> None:
        where = self.where(layer)
        if not layer.type:
            raise SpecError("the layer has no type", **where, fix="add e.g. type: Convolution")
        if known is not None and layer.type not in known:
            hint = did_you_mean(layer.type, known)
            raise SpecError(
                f"unknown layer type '{layer.type}'",
                **self.where(layer, "type"),
                fix=(hint + " " if hint else "") + _PLUGIN_FIX.format(known=", ".join(sorted(known))),
            )
        if layer.include and layer.exclude:
            raise SpecError("a layer may have include rules or exclude rules, not both",
                            **self.where(layer, "exclude"), fix="express the condition with one kind")
        if layer.loss_weight and len(layer.loss_weight) != len(layer.top):
            raise SpecError(
                f"loss_weight is given {len(layer.loss_weight)} times for {len(layer.top)} top(s)",
                **self.where(layer, "loss_weight"),
                fix="give none, or exactly one loss_weight per top (e.g. 'loss_weight: 1 loss_weight: 0')",
            )
        if layer.propagate_down and len(layer.propagate_down) != len(layer.bottom):
            raise SpecError(
                f"propagate_down is given {len(layer.propagate_down)} times for {len(layer.bottom)} bottom(s)",
                **self.where(layer, "propagate_down"),
                fix="give none, or exactly one propagate_down per bottom",
            )
        for block_name in (layer_param_fields(layer.type) if layer.type in known_layer_types() else ()):
            if block_name not in _LAYER_FIELDS:
                continue  # a plugin's fork block: its layer binds (and checks) it when built
            block = get_or_default(layer, block_name)
            for info in fields_of(type(block)):
                if info.required and not has(block, info.name):
                    raise SpecError(
                        f"missing required field '{block_name}.{info.name}' ({info.doc})",
                        **self.where(layer, block_name if has(layer, block_name) else None),
                        fix=f"add {block_name} {{ {info.name}: ... }}",
                    )

    def check_graph(self) -> None:
        """Blob-graph checks on an already filtered net: every bottom is produced by an earlier layer,
        and a top name is reused only in place (same name as the bottom at the same index)."""
        producer: dict[str, LayerParameter] = {}
        for layer in self.layers:
            for bottom in layer.bottom:
                if bottom not in producer:
                    hint = did_you_mean(bottom, producer)
                    phase = self.param.state.phase if self.param.state is not None else "TEST"
                    raise SpecError(
                        f"bottom '{bottom}' is not produced by any earlier layer (in the {phase} phase)",
                        **self.where(layer, "bottom"),
                        fix=hint or "check the spelling, the layer order and the include/exclude rules; "
                        "net inputs come from an Input layer",
                    )
            for index, top in enumerate(layer.top):
                in_place = index < len(layer.bottom) and layer.bottom[index] == top
                if top in producer and not in_place:
                    first = producer[top]
                    raise SpecError(
                        f"top '{top}' is produced by layer '{first.name}' (line {first.pos_of('top').line}) "
                        "and again here; Caffe allows reusing a name only in place",
                        **self.where(layer, "top"),
                        fix=f"rename the top, or make it in place by listing '{top}' as the bottom at "
                        f"position {index}",
                    )
                producer[top] = layer

    def __repr__(self) -> str:
        return f"NetSpec(name={self.name!r}, layers={len(self.layers)}, file={self.file!r})"


def _same_phase(a: LayerParameter, b: LayerParameter) -> bool:
    """Whether two layers can both be in one net (a duplicate name is only an error then)."""
    for phase in PHASES:
        state = NetState()
        state.phase = phase
        if layer_included(a, state) and layer_included(b, state):
            return True
    return False
