"""SolverSpec: a validated solver definition (SolverParameter) and the nets it trains and tests.

Follows Caffe's ``Solver::Init``, ``InitTrainNet`` and ``InitTestNets``: exactly one train net
(``net``, ``net_param``, ``train_net`` or ``train_net_param``); test nets from ``test_net_param``, then
``test_net``, then one generic TEST instance of ``net``/``net_param`` per extra ``test_iter`` entry; each
net's NetState is the phase, merged with the net's own ``state``, merged with ``train_state`` /
``test_state[i]`` (protobuf MergeFrom: given fields override, stages add up).

Paths (``net``, ``train_net``, ``test_net``, ``snapshot_prefix``) are relative to the solver file.  For
nets written for Caffe's tool, whose paths are relative to the directory Caffe was started in, a net
path that does not exist next to the solver but exists relative to the current directory is used
from there.  Inline ``net_param`` is not upgraded from legacy syntax, as in Caffe.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ..errors import SpecError, did_you_mean
from .net import NetSpec
from .params import NetParameter, NetState, SolverParameter
from .schema import bind, has
from .source import Definition, read_tree, tree_from_text
from .tree import Node

__all__ = ["SolverSpec", "merge_state", "LR_POLICIES", "SOLVER_TYPES"]

LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


def merge_state(base: NetState, other: NetState | None) -> NetState:
    """protobuf ``base.MergeFrom(other)`` for NetState: set fields override, stages are appended."""
    merged = copy.deepcopy(base)
    if other is None:
        return merged
    if has(other, "phase"):
        merged.phase = other.phase
    if has(other, "level"):
        merged.level = other.level
    if other.stage:
        merged.stage = list(merged.stage) + list(other.stage)
    return merged


def _phase_state(phase: str) -> NetState:
    state = NetState()
    state.phase = phase
    return state


class SolverSpec(Definition):
    """A solver definition (``param``: SolverParameter) with its file; builds the NetSpecs of its train
    and test nets."""

    param: SolverParameter

    @classmethod
    def load(cls, source, *, validate: bool = True) -> SolverSpec:
        """Load from a path (.prototxt/.yaml), a dict, a SolverParameter or a SolverSpec."""
        if isinstance(source, SolverSpec):
            spec = source
        elif isinstance(source, SolverParameter):
            spec = cls(source)
        else:
            tree, file, lenient = read_tree(source)
            spec = cls.from_tree(tree, file=file, numbers_as_strings=lenient)
        if validate:
            spec.validate()
        return spec

    @classmethod
    def from_text(cls, text: str, *, yaml_syntax: bool = False, file: str | None = None,
                  validate: bool = True) -> SolverSpec:
        tree = tree_from_text(text, yaml_syntax=yaml_syntax, file=file)
        spec = cls.from_tree(tree, file=file, numbers_as_strings=yaml_syntax)
        if validate:
            spec.validate()
        return spec

    @classmethod
    def from_tree(cls, tree: Node, *, file: str | None, numbers_as_strings: bool) -> SolverSpec:
        from .upgrade import upgrade_solver

        tree, notes = upgrade_solver(tree, file=file)
        param = bind(tree, SolverParameter, owner="solver", numbers_as_strings=numbers_as_strings)
        return cls(param, file=file, notes=notes)

    # -- paths -------------------------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def resolve(self, path: str, *, must_exist: bool = False) -> Path:
        """A path from this solver file, relative to the solver's folder (see the module docstring)."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute():
            return candidate
        beside = self.base_dir / candidate
        if must_exist and not beside.exists() and candidate.exists():
            return candidate.resolve()
        return beside

    @property
    def snapshot_prefix(self) -> Path | None:
        return self.resolve(self.param.snapshot_prefix) if has(self.param, "snapshot_prefix") else None

    def _where(self, field: str) -> dict:
        pos = self.param.pos_of(field)
        return {"file": pos.file or self.file, "line": pos.line, "column": pos.column}

    # -- nets --------------------------------------------------------------------------------------

    def _load_net(self, field: str, value) -> NetSpec:
        if isinstance(value, NetParameter):
            return NetSpec(value, file=self.file)
        path = self.resolve(value, must_exist=True)
        if not path.exists():
            raise SpecError(f"{field} '{value}' not found (looked for {path})", **self._where(field),
                            fix="paths in a solver are relative to the solver file")
        return NetSpec.load(path, validate=False)

    def train_net(self) -> NetSpec:
        """The train net, filtered for its NetState (phase TRAIN + net state + train_state)."""
        p = self.param
        given = [f for f in ("train_net_param", "train_net", "net_param", "net") if has(p, f)]
        if len(given) != 1:
            raise SpecError(
                "a solver needs exactly one train net, given by one of net, net_param, train_net, "
                f"train_net_param (found {', '.join(given) or 'none'})",
                file=self.file,
                fix="e.g. net: lenet_train_test.prototxt",
            )
        field = given[0]
        net = self._load_net(field, getattr(p, field))
        state = merge_state(merge_state(_phase_state("TRAIN"), net.param.state), p.train_state)
        return net.filter(state)

    def test_nets(self) -> list[NetSpec]:
        """The test nets in Caffe's order (test_net_param, test_net, generic instances), filtered."""
        p = self.param
        sources: list[tuple[str, object]] = [("test_net_param", v) for v in p.test_net_param]
        sources += [("test_net", v) for v in p.test_net]
        generic = [f for f in ("net_param", "net") if has(p, f)]
        if generic:
            if len(p.test_iter) < len(sources):
                raise SpecError(f"test_iter is given {len(p.test_iter)} times for {len(sources)} test nets",
                                **self._where("test_iter"), fix="give one test_iter per test net")
            sources += [(generic[0], getattr(p, generic[0]))] * (len(p.test_iter) - len(sources))
        elif len(p.test_iter) != len(sources):
            raise SpecError(f"test_iter is given {len(p.test_iter)} times for {len(sources)} test nets",
                            **self._where("test_iter"), fix="give one test_iter per test net")
        if p.test_state and len(p.test_state) != len(sources):
            raise SpecError(f"test_state is given {len(p.test_state)} times for {len(sources)} test nets",
                            **self._where("test_state"), fix="give one test_state per test net, or none")
        nets = []
        for index, (field, value) in enumerate(sources):
            net = self._load_net(field, value)
            state = merge_state(_phase_state("TEST"), net.param.state)
            if p.test_state:
                state = merge_state(state, p.test_state[index])
            nets.append(net.filter(state))
        return nets

    # -- validation --------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check the settings Caffe checks at Solver::Init and in the update (fatal there, errors here)."""
        p = self.param
        if not has(p, "lr_policy"):
            raise SpecError("lr_policy is required", file=self.file,
                            fix=f"add lr_policy: one of {', '.join(LR_POLICIES)}")
        if p.lr_policy not in LR_POLICIES:
            raise SpecError(f"unknown lr_policy '{p.lr_policy}'", **self._where("lr_policy"),
                            fix=did_you_mean(p.lr_policy, LR_POLICIES) or f"use one of {', '.join(LR_POLICIES)}")
        if p.type not in SOLVER_TYPES:
            raise SpecError(f"unknown solver type '{p.type}'", **self._where("type"),
                            fix=did_you_mean(p.type, SOLVER_TYPES) or f"use one of {', '.join(SOLVER_TYPES)}")
        if p.lr_policy in ("step", "sigmoid") and p.stepsize <= 0:
            raise SpecError(f"lr_policy '{p.lr_policy}' needs stepsize > 0", **self._where("lr_policy"))
        if p.lr_policy == "poly" and p.max_iter <= 0:
            raise SpecError("lr_policy 'poly' needs max_iter > 0", **self._where("lr_policy"))
        if p.type in ("AdaGrad", "RMSProp") and p.momentum != 0:
            raise SpecError(f"momentum cannot be used with {p.type}", **self._where("momentum"),
                            fix="remove momentum (or set it to 0)")
        if p.average_loss < 1:
            raise SpecError("average_loss must be >= 1", **self._where("average_loss"))
        if p.iter_size < 1:
            raise SpecError("iter_size must be >= 1", **self._where("iter_size"))
        if p.regularization_type not in ("L1", "L2"):
            raise SpecError(f"unknown regularization_type '{p.regularization_type}'",
                            **self._where("regularization_type"), fix="use L2 or L1")
        if p.snapshot > 0 and not has(p, "snapshot_prefix"):
            raise SpecError("snapshot is given but snapshot_prefix is not", **self._where("snapshot"),
                            fix="add snapshot_prefix: e.g. snapshots/lenet")
        tests = self.test_nets()
        if tests and p.test_interval <= 0:
            raise SpecError("test nets are given but test_interval is not > 0", file=self.file,
                            fix="add test_interval: e.g. 500")
        self.train_net()

    # -- dumping -----------------------------------------------------------------------------------

    def rebased(self, folder: str | Path) -> SolverSpec:
        """A copy whose relative paths (net, train_net, test_net, snapshot_prefix) point to the same
        files when the solver is written into ``folder``."""
        param = copy.deepcopy(self.param)
        target = Path(folder).resolve()
        for field in ("net", "train_net", "snapshot_prefix"):
            if has(param, field) and not Path(getattr(param, field)).is_absolute():
                setattr(param, field, os.path.relpath(self.resolve(getattr(param, field)), target))
        param.test_net = [v if Path(v).is_absolute() else os.path.relpath(self.resolve(v), target)
                          for v in param.test_net]
        return SolverSpec(param, file=str(target / "solver"), notes=self.notes)

    def save(self, path: str | Path) -> None:
        """Write the solver as YAML or prototxt (by extension); relative paths are rebased so that they
        still name the same files from the new location."""
        spec = self.rebased(Path(path).resolve().parent) if self.file else self
        Definition.save(spec, path)

    def __repr__(self) -> str:
        return f"SolverSpec(type={self.param.type!r}, lr_policy={self.param.lr_policy!r}, file={self.file!r})"
