"""Porting a Caffe project: what ``caffe-like check`` reports, and the coverage tables of docs/porting.md.

:func:`check_paths` scans files and folders (recursively) and returns a :class:`CheckReport`:

* **nets** (``.prototxt``/``.pbtxt``/``.pt``/``.txt``; ``.yaml``/``.yml`` in caffe_like's YAML form) and
  **solvers**, told apart by their fields (a net has ``layer``/``layers``/``input``; a solver has
  SolverParameter fields such as ``base_lr``, ``lr_policy``, ``net``).  Legacy V0/V1 nets are upgraded
  first, as Caffe does.  For a net: every layer (name, type, line) and whether its type is implemented
  (registered, plugins and entry points included), unknown ``*_param`` blocks (a fork's) and whether a
  registered layer reads them (``EXTRA_PARAM_BLOCKS``), unknown fields, fields caffe_like ignores (their
  schema documentation says so: ``engine``, ...), unsupported values (``backend: LEVELDB``, the Data
  layer's default), Python layers (is the module found, does it define the class: read with ``ast``,
  not imported), and whether the net builds in TRAIN and TEST (data that is not there does not count
  against portability: the shapes then come from the deploy net, or ``input_shape``).  For a solver: the
  solver type, lr policy, snapshot format, solver mode, fields caffe_like ignores, and the net it names.
* **weights** (``.caffemodel``): the layers that hold blobs, and for every net of the scan that builds,
  which layers' weights would load (name and blob shapes, :func:`caffe_like.weights.match_blobs`), which
  mismatch, which the net lacks, and which net layers would keep their fillers.  ``.caffemodel.h5`` /
  ``.solverstate.h5`` (HDF5 snapshots) are not readable by caffe_like.
* **mean files** (``.binaryproto``) and **solver states** (``.solverstate``): readable or not.

Statuses: ``ok``, ``ignored`` (no effect in caffe_like), ``partial`` (runs, with a difference), ``warning``
(cannot be verified here: missing data, a module or net file not found), ``unsupported`` and ``error``
(the file cannot be read).  The project is portable when nothing is ``unsupported`` or ``error``.

:func:`layer_coverage`, :func:`solver_coverage` and :func:`known_differences` feed the tables of
docs/porting.md (``tools/layer_coverage.py --markdown``), computed from the registry, so they stay true.

Building nets imports the modules of Python layers and runs their ``setup``, as Caffe would.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import CaffeLikeError, DataError, did_you_mean
from .spec.params import LAYER_PARAM_FIELDS, LayerParameter, NetParameter, SolverParameter
from .spec.schema import bind, fields_of
from .spec.tree import Leaf, Node

__all__ = ["Finding", "FileReport", "CheckReport", "check_paths", "BLOCKING", "layer_coverage",
           "solver_coverage", "known_differences", "FORK_HINTS", "NET_SUFFIXES"]

#: statuses that make a project not portable
BLOCKING = frozenset({"unsupported", "error"})
#: text files read as nets or solvers when found in a folder (explicitly named files are tried whatever
#: their suffix)
NET_SUFFIXES = (".prototxt", ".pbtxt", ".pt", ".yaml", ".yml")
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".tox", ".mypy_cache"}

#: what to do about layer types of well-known Caffe forks
FORK_HINTS = {
    "BN": "BatchNorm + Scale { bias_term: true }, or a plugin (docs/porting.md does both)",
    "BatchNormKyle": "BatchNorm + Scale { bias_term: true }",
    "ReLU6": "Clip { min: 0 max: 6 }",
    "DepthwiseConvolution": "Convolution with group equal to the number of channels",
    "ConvolutionDepthwise": "Convolution with group equal to the number of channels",
    "Interp": "a plugin layer (bilinear resize); Deconvolution with a bilinear filler is the Caffe way",
    "Upsample": "a plugin layer",
    "Normalize": "a plugin layer (SSD's L2 normalisation with a learned scale)",
    "Permute": "a plugin layer (a transpose)",
    "PriorBox": "a plugin layer (SSD)",
    "DetectionOutput": "a plugin layer (SSD)",
    "MultiBoxLoss": "a plugin layer (SSD)",
    "ROIPooling": "a plugin layer (Fast R-CNN), or a Python layer",
    "SmoothL1Loss": "a plugin layer (Fast R-CNN)",
    "CenterLoss": "caffe_like implements it (caffe-face's layer)",
}
#: fields of forks inside BVLC blocks
FORK_FIELD_HINTS = {
    ("pooling_param", "ceil_mode"): "the SSD fork's rounding switch: BVLC writes round_mode: CEIL (its default) "
                                    "or round_mode: FLOOR for ceil_mode: false",
}
#: fields the schema does not call ignored but caffe_like does not act on
EXTRA_IGNORED = {
    ("data_param", "rand_skip"): "deprecated; ignored with a warning, as BVLC Caffe's Data layer ignores it",
    ("net", "debug_info"): "Caffe's per-layer data/diff log; caffe_like does not print it",
    ("solver", "debug_info"): "Caffe's per-layer data/diff log; caffe_like does not print it",
    ("solver", "snapshot_diff"): "gradients are not stored in snapshots",
    ("solver", "layer_wise_reduce"): "a multi-GPU overlap setting; caffe_like trains in one process",
}
_IGNORED_DOC = re.compile(r"(?<!non-)\bignored\b")


@dataclass
class Finding:
    """One reported item of a file."""

    status: str  # ok | ignored | partial | warning | unsupported | error
    what: str  # layer | param_block | field | value | build | python | solver | net | weights | file
    message: str
    line: int | None = None
    name: str | None = None
    type: str | None = None


@dataclass
class FileReport:
    """What :func:`check_paths` found in one file."""

    path: str
    kind: str  # net | solver | weights | mean | solverstate | unknown
    title: str = ""
    layers: list[dict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, status: str, what: str, message: str, **kw) -> Finding:
        finding = Finding(status, what, message, **kw)
        self.findings.append(finding)
        return finding

    @property
    def portable(self) -> bool:
        return not any(f.status in BLOCKING for f in self.findings) and not any(
            row["status"] in BLOCKING for row in self.layers)

    def to_dict(self) -> dict:
        out = {"path": self.path, "kind": self.kind, "title": self.title, "portable": self.portable,
               "layers": self.layers, "findings": [asdict(f) for f in self.findings]}
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class CheckReport:
    """The whole scan: one :class:`FileReport` per file, in path order."""

    files: list[FileReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def portable(self) -> bool:
        return all(f.portable for f in self.files)

    def summary(self) -> dict:
        kinds = Counter(f.kind for f in self.files)
        problems = Counter()
        for report in self.files:
            for row in report.layers:
                if row["status"] in BLOCKING:
                    problems[f"layer type {row['type']}"] += 1
            for finding in report.findings:
                if finding.status in BLOCKING:
                    problems[finding.what] += 1
        return {
            "files": len(self.files),
            "kinds": dict(sorted(kinds.items())),
            "portable_files": sum(f.portable for f in self.files),
            "not_portable_files": sum(not f.portable for f in self.files),
            "problems": dict(problems.most_common()),
            "unsupported_layer_types": sorted({row["type"] for f in self.files for row in f.layers
                                               if row["status"] in BLOCKING and row["type"]}),
            "skipped_files": len(self.skipped),
            "portable": self.portable,
        }

    def to_dict(self) -> dict:
        return {"portable": self.portable, "summary": self.summary(),
                "files": [f.to_dict() for f in self.files], "skipped": self.skipped}


# --------------------------------------------------------------------------------------------------
# finding the files


def _collect(paths) -> tuple[list[tuple[Path, bool]], list[str]]:
    """(file, named explicitly) for every candidate file; paths that do not exist."""
    files: list[tuple[Path, bool]] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append((path, True))
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if any(part in _SKIP_DIRS for part in child.relative_to(path).parts[:-1]):
                    continue
                if child.is_file():
                    files.append((child, False))
        else:
            missing.append(str(raw))
    seen, unique = set(), []
    for path, explicit in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((path, explicit))
    return unique, missing


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".caffemodel.h5", ".solverstate.h5"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


_NET_KEYS = {"layer", "layers", "input", "input_shape", "input_dim"}
_SOLVER_KEYS = {info.name for info in fields_of(SolverParameter)} | {"solver_type"}


def _kind_of_tree(tree: Node) -> str:
    keys = set(tree.keys())
    if keys & _NET_KEYS:
        return "net"
    if keys & (_SOLVER_KEYS - {"net_param", "debug_info"}):
        return "solver"
    return "unknown"


# --------------------------------------------------------------------------------------------------
# nets


def _leaf_value(node: Node, key: str):
    entry = node.first(key)
    if entry is not None and isinstance(entry.value, Leaf):
        return entry.value.value
    return None


def _line(pos) -> int | None:
    return getattr(pos, "line", None)


def _registry():
    from .layers import registry

    registry.load_entry_points()
    return registry


def _walk_block(report: FileReport, node: Node, cls: type, owner: str, layer: dict) -> None:
    """Unknown and ignored fields inside a known block (recursively)."""
    infos = {info.name: info for info in fields_of(cls)}
    for entry in node.entries:
        info = infos.get(entry.key)
        where = {"line": _line(entry.pos), "name": layer.get("name"), "type": layer.get("type")}
        if info is None:
            hint = FORK_FIELD_HINTS.get((owner, entry.key)) or did_you_mean(entry.key, infos)
            report.add("unsupported", "field", f"unknown field '{entry.key}' in {owner}"
                       + (f" ({hint})" if hint else " (a Caffe fork's?)"), **where)
            continue
        ignored = EXTRA_IGNORED.get((owner, entry.key))
        if ignored is None and _IGNORED_DOC.search(info.doc or ""):
            ignored = info.doc
        if ignored:
            report.add("ignored", "field", f"{owner}.{entry.key}: {ignored}", **where)
        if owner == "data_param" and entry.key == "backend" and isinstance(entry.value, Leaf) \
                and entry.value.value == "LEVELDB":
            report.add("unsupported", "value", "data_param.backend LEVELDB is not supported: convert the "
                       "database to LMDB (or use an IDX/CIFAR/NPZ source)", **where)
        if info.ptype == "message" and isinstance(entry.value, Node):
            _walk_block(report, entry.value, info.message_cls(), entry.key, layer)


def _python_layer(report: FileReport, node: Node, layer: dict, base_dir: Path) -> bool:
    """Static check of a Python layer's module and class; True when both are found."""
    block = node.first("python_param")
    where = {"line": layer["line"], "name": layer["name"], "type": "Python"}
    if block is None or not isinstance(block.value, Node):
        report.add("unsupported", "python", "Python layer without python_param { module layer }", **where)
        return False
    module = _leaf_value(block.value, "module") or ""
    cls = _leaf_value(block.value, "layer") or ""
    source = None
    candidate = base_dir / (module.replace(".", "/") + ".py")
    if candidate.is_file():
        source = candidate
    else:
        try:
            spec = importlib.util.find_spec(module) if module else None
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            source = Path(spec.origin)
    if source is None:
        report.add("warning", "python", f"Python layer module '{module}' not found beside the net or on sys.path; "
                   "caffe_like looks in both when it builds the net (put it there, or on PYTHONPATH)", **where)
        return False
    try:
        tree = ast.parse(source.read_text(encoding="utf-8", errors="replace"), filename=str(source))
    except SyntaxError as err:
        report.add("unsupported", "python", f"Python layer module {source} has a syntax error (line {err.lineno})",
                   **where)
        return False
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    if cls not in classes:
        hint = did_you_mean(cls, classes)
        report.add("unsupported", "python", f"Python layer class '{cls}' is not defined in {source}"
                   + (f" ({hint})" if hint else ""), **where)
        return False
    report.add("ok", "python", f"Python layer {module}.{cls} ({source}) runs unmodified through caffe_like's "
               "caffe stand-in (no ONNX export)", **where)
    return True


def _net_layers(report: FileReport, tree: Node, base_dir: Path) -> bool:
    """Per-layer checks; returns whether the net may build (no unsupported layer)."""
    registry = _registry()
    layer_fields = {info.name: info for info in fields_of(LayerParameter)}
    buildable = True
    for entry in tree.entries:
        if entry.key not in ("layer",) or not isinstance(entry.value, Node):
            continue
        node = entry.value
        name = str(_leaf_value(node, "name") or "")
        kind = str(_leaf_value(node, "type") or "")
        row = {"name": name, "type": kind, "line": _line(entry.pos) or _line(node.pos), "status": "ok", "note": ""}
        cls = registry.LAYERS.get(kind)
        if not kind:
            row["status"], row["note"] = "unsupported", "no type"
        elif cls is None:
            hint = FORK_HINTS.get(kind)
            row["status"] = "unsupported"
            if kind in LAYER_PARAM_FIELDS:
                row["note"] = "a BVLC layer caffe_like does not implement"
            else:
                close = None if hint else did_you_mean(kind, registry.LAYERS)
                row["note"] = "unknown type (a fork's?)" + (f"; {close}" if close else "")
            if hint:
                row["note"] += f"; instead: {hint}"
        else:
            origin = cls.__module__
            if not origin.startswith("caffe_like."):
                row["note"] = f"plugin layer {origin}.{cls.__qualname__}"
        report.layers.append(row)
        if row["status"] in BLOCKING:
            buildable = False
        extra = getattr(cls, "EXTRA_PARAM_BLOCKS", {}) if cls is not None else {}
        for sub in node.entries:
            info = layer_fields.get(sub.key)
            where = {"line": _line(sub.pos), "name": name, "type": kind}
            if info is None:
                if sub.key.endswith("_param") and isinstance(sub.value, Node):
                    if sub.key in extra:
                        report.add("ok", "param_block", f"parameter block '{sub.key}' is read by "
                                   f"{cls.__module__}.{cls.__qualname__}", **where)
                        _walk_block(report, sub.value, extra[sub.key], sub.key, row)
                    else:
                        report.add("unsupported", "param_block", f"unknown parameter block '{sub.key}' (a Caffe "
                                   "fork's); a layer class that reads it must declare it in EXTRA_PARAM_BLOCKS",
                                   **where)
                        buildable = False
                else:
                    hint = did_you_mean(sub.key, layer_fields)
                    report.add("unsupported", "field", f"unknown layer field '{sub.key}'"
                               + (f" ({hint})" if hint else ""), **where)
                    buildable = False
            elif info.ptype == "message" and isinstance(sub.value, Node):
                _walk_block(report, sub.value, info.message_cls(), sub.key, row)
        if kind == "Python" and cls is not None and not _python_layer(report, node, row, base_dir):
            buildable = False
        if kind == "Data":
            block = node.first("data_param")
            backend = _leaf_value(block.value, "backend") if block is not None and isinstance(block.value, Node) \
                else None
            if backend is None:
                report.add("unsupported", "value", "data_param has no backend, so Caffe's default LEVELDB applies, "
                           "which caffe_like does not read: convert to LMDB and say backend: LMDB",
                           line=row["line"], name=name, type=kind)
    return buildable and not any(f.status in BLOCKING for f in report.findings)


def _bind_layers(report: FileReport, tree: Node) -> None:
    """Bind each layer alone, to report value errors the walk does not see (once per line)."""
    reported = {f.line for f in report.findings if f.status in BLOCKING}
    for entry in tree.entries:
        if entry.key != "layer" or not isinstance(entry.value, Node):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bind(entry.value, LayerParameter, owner="layer", numbers_as_strings=report.details.get("yaml", False))
            except CaffeLikeError as err:
                if err.line not in reported:
                    report.add("unsupported", "field", err.message + (f" ({err.fix})" if err.fix else ""),
                               line=err.line, name=err.layer, type=err.layer_type)
                    reported.add(err.line)


def _shapes_of(net) -> dict[str, list[tuple[int, ...]]]:
    return {name: [tuple(int(d) for d in b.shape) for b in layer.blobs]
            for name, layer in zip(net.layer_names, net.layers)}


def _build(report: FileReport, spec, options: dict) -> dict[str, list[tuple[int, ...]]]:
    """Build the net in TRAIN and TEST; {layer: blob shapes} of what built (for weight matching)."""
    from .net import Net
    from .spec.net import PHASES, layer_included

    shapes: dict[str, list[tuple[int, ...]]] = {}
    builds = {}
    for phase in PHASES:
        state = spec.state(phase=phase)
        if not any(layer_included(layer, state) for layer in spec.layers):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = Net(spec, phase=phase, seed=0, options={"peek_only": True, **options})
        except DataError as err:
            reason = err.message.splitlines()[0].split("; looked for")[0].rstrip(":; ")
            fallback = _deploy_shapes(spec, phase, options)
            if isinstance(fallback, dict):
                shapes.update({k: v for k, v in fallback.items() if k not in shapes})
                text = f"data not found here ({reason}); shapes from its deploy net"
                builds[phase] = "data missing; deploy net builds"
            else:
                text = (f"data not found here ({reason}); weights cannot be matched without "
                        f"the input shape ({fallback}): pass --data-root DIR or --input-shape C,H,W")
                builds[phase] = "data missing"
            report.add("warning", "build", f"{phase}: {text}")
            continue
        except CaffeLikeError as err:
            report.add("unsupported", "build", f"{phase}: does not build: {err.message}"
                       + (f" (fix: {err.fix})" if err.fix else ""), line=err.line, name=err.layer,
                       type=err.layer_type)
            builds[phase] = "fails"
            continue
        except Exception as err:  # noqa: BLE001 - a check never crashes on a weird net
            report.add("error", "build", f"{phase}: building failed unexpectedly: {type(err).__name__}: {err}")
            builds[phase] = "fails"
            continue
        summary = net.summary()
        builds[phase] = f"{len(summary['layers'])} layers, {summary['total_params']:,} parameters"
        report.add("ok", "build", f"{phase}: builds ({builds[phase]})")
        for name, value in _shapes_of(net).items():
            shapes.setdefault(name, value)
        del net
    report.details["builds"] = builds
    return shapes


def _deploy_shapes(spec, phase: str, options: dict):
    """Blob shapes from the deploy net (data layers as Input), or why they cannot be had."""
    from .export.deploy import derive_deploy
    from .net import Net

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            deploy = derive_deploy(spec, phase=phase, input_shape=options.get("input_shape"))
            net = Net(deploy.spec, seed=0, options={"peek_only": True})
    except CaffeLikeError as err:
        return err.message.splitlines()[0]
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return _shapes_of(net)


def _check_net(report: FileReport, tree: Node, path: Path, options: dict, *, yaml_syntax: bool,
               build: bool) -> dict | None:
    from .spec.net import NetSpec
    from .spec.upgrade import upgrade_net

    report.details["yaml"] = yaml_syntax
    try:
        tree, notes = upgrade_net(tree, file=str(path))
    except CaffeLikeError as err:
        report.add("unsupported", "net", f"legacy format cannot be upgraded: {err.message}", line=err.line,
                   name=err.layer)
        return None
    if notes:
        report.add("ok", "net", f"legacy format upgraded as Caffe does ({len(notes)} changes; --json lists them)")
        report.details["upgrade_notes"] = notes
    name = _leaf_value(tree, "name") or ""
    for entry in tree.entries:
        if entry.key not in {info.name for info in fields_of(NetParameter)} and entry.key != "layer":
            report.add("unsupported", "field", f"unknown net field '{entry.key}'", line=_line(entry.pos))
        if entry.key == "debug_info":
            report.add("ignored", "field", f"debug_info: {EXTRA_IGNORED[('net', 'debug_info')]}", line=_line(entry.pos))
    buildable = _net_layers(report, tree, path.resolve().parent)
    _bind_layers(report, tree)
    report.title = f"'{name}' ({len(report.layers)} layers)"
    report.details.pop("yaml", None)
    if any(f.status in BLOCKING for f in report.findings):
        buildable = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec = NetSpec.from_tree(tree, file=str(path), numbers_as_strings=yaml_syntax)
            spec.validate(check_types=False)
    except CaffeLikeError as err:
        if not any(f.line == err.line and f.status in BLOCKING for f in report.findings):
            report.add("error" if buildable else "warning", "net", f"invalid net: {err.message}"
                       + (f" (fix: {err.fix})" if err.fix else ""), line=err.line, name=err.layer)
        return None
    except Exception as err:  # noqa: BLE001 - a check never crashes on a weird net
        report.add("error", "net", f"validating the net failed unexpectedly: {type(err).__name__}: {err}")
        return None
    report.details["name"] = name
    if not build:
        return None
    if not buildable:
        report.add("warning", "build", "not built: it has unsupported (or unverifiable) parts")
        return None
    return _build(report, spec, options)


# --------------------------------------------------------------------------------------------------
# solvers


def _check_solver(report: FileReport, tree: Node, path: Path, yaml_syntax: bool, net_files: dict) -> None:
    from .spec.solver import LR_POLICIES, SOLVER_TYPES
    from .spec.upgrade import upgrade_solver

    try:
        tree, notes = upgrade_solver(tree, file=str(path))
    except CaffeLikeError as err:
        report.add("unsupported", "solver", err.message, line=err.line)
        return
    for note in notes:
        report.add("ok", "solver", f"legacy field upgraded as Caffe does: {note}")
    infos = {info.name: info for info in fields_of(SolverParameter)}
    for entry in tree.entries:
        info = infos.get(entry.key)
        line = _line(entry.pos)
        if info is None:
            hint = did_you_mean(entry.key, infos)
            report.add("unsupported", "field", f"unknown solver field '{entry.key}'"
                       + (f" ({hint})" if hint else " (a Caffe fork's?)"), line=line)
            continue
        ignored = EXTRA_IGNORED.get(("solver", entry.key))
        if ignored:
            report.add("ignored", "field", f"{entry.key}: {ignored}", line=line)
        if info.ptype == "message" and isinstance(entry.value, Node) and entry.key not in (
                "net_param", "train_net_param", "test_net_param"):
            _walk_block(report, entry.value, info.message_cls(), entry.key, {})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            param = bind(tree, SolverParameter, owner="solver", numbers_as_strings=yaml_syntax)
    except CaffeLikeError as err:
        if not any(f.line == err.line and f.status in BLOCKING for f in report.findings):
            report.add("unsupported", "solver", err.message + (f" (fix: {err.fix})" if err.fix else ""),
                       line=err.line)
        return
    from .spec.schema import has

    def at(name):
        return _line(param.pos_of(name)) if has(param, name) else None

    kind = param.type
    report.add("ok" if kind in SOLVER_TYPES else "unsupported", "solver", f"type {kind}"
               + ("" if kind in SOLVER_TYPES else f": not one of {', '.join(SOLVER_TYPES)}"), line=at("type"))
    policy = param.lr_policy
    report.add("ok" if policy in LR_POLICIES else "unsupported", "solver", f"lr_policy '{policy}'"
               + ("" if policy in LR_POLICIES else f": not one of {', '.join(LR_POLICIES)}"), line=at("lr_policy"))
    if param.snapshot_format == "HDF5":
        report.add("partial", "solver", "snapshot_format HDF5: caffe_like writes binary .caffemodel/.solverstate "
                   "snapshots instead (Caffe reads both)", line=at("snapshot_format"))
    mode = param.solver_mode
    report.add("ok", "solver", f"solver_mode {mode}: " + ("CUDA when available, else the CPU; --device overrides"
                                                          if mode == "GPU" else "the CPU unless --device says"),
               line=at("solver_mode"))
    if param.iter_size > 1:
        report.add("ok", "solver", f"iter_size {param.iter_size}: gradients accumulate as in Caffe",
                   line=at("iter_size"))
    nets = [param.net, param.train_net, *param.test_net]
    for net_path in [n for n in nets if n]:
        beside = (path.parent / net_path)
        here = Path(net_path)
        where = at("net") or at("train_net") or at("test_net")
        if beside.is_file() or (not here.is_absolute() and here.is_file()) or (here.is_absolute() and here.is_file()):
            report.add("ok", "net", f"net '{net_path}' found", line=where)
            continue
        same_name = net_files.get(Path(net_path).name)
        if same_name:
            report.add("warning", "net", f"net '{net_path}' is not found from the solver's folder or the current one "
                       f"(Caffe paths are relative to where caffe ran); the scan has {same_name}", line=where)
        else:
            report.add("warning", "net", f"net '{net_path}' not found", line=where)
    if param.net_param is not None or param.train_net_param is not None:
        report.add("ok", "net", "inline net definition (not upgraded from legacy syntax, as in Caffe)")
    report.title = f"({kind}, lr_policy {policy or '?'}, max_iter {param.max_iter})"


# --------------------------------------------------------------------------------------------------
# binary files


def _check_weights(report: FileReport, path: Path, nets: dict[str, dict]) -> None:
    from .weights import CaffeModel, match_blobs, read_caffemodel

    try:
        model = read_caffemodel(path)
    except CaffeLikeError as err:
        report.add("error", "file", f"unreadable weights file: {err.message}")
        return
    except Exception as err:  # noqa: BLE001
        report.add("error", "file", f"unreadable weights file: {type(err).__name__}: {err}")
        return
    registry = _registry()
    with_blobs = [layer for layer in model.layers if layer.blobs]
    report.title = (f"of net '{model.name}': {len(with_blobs)} layers with blobs, "
                    f"{sum(int(b.size) for layer in with_blobs for b in layer.blobs):,} values")
    report.details["layers"] = [{"name": layer.name, "type": layer.type,
                                 "shapes": [list(b.shape) for b in layer.blobs]} for layer in with_blobs]
    unknown = sorted({layer.type for layer in with_blobs if layer.type and layer.type not in registry.LAYERS})
    for kind in unknown:
        report.add("warning", "weights", f"layers of type {kind} hold weights here; caffe_like has no {kind} layer "
                   "(a net must map them to a supported or plugin layer of the same name and blob shapes)")
    matches = []
    for net_path, info in nets.items():
        expected = info["shapes"]
        rows = {"loads": [], "mismatch": [], "not_in_net": [], "keeps_filler": []}
        for layer in with_blobs:
            if layer.name not in expected:
                rows["not_in_net"].append(layer.name)
                continue
            try:
                match_blobs(CaffeModel(model.name, [layer]), {layer.name: expected[layer.name]}, file=str(path))
            except CaffeLikeError as err:
                rows["mismatch"].append(f"{layer.name}: {err.message}")
                continue
            rows["loads"].append(layer.name)
        stored = {layer.name for layer in with_blobs}
        rows["keeps_filler"] = [name for name, shapes in expected.items() if shapes and name not in stored]
        matches.append({"net": net_path, "net_name": info["name"], **rows})
    here = str(path.parent)
    matches.sort(key=lambda m: (-len(m["loads"]), len(m["mismatch"]), str(Path(m["net"]).parent) != here, m["net"]))
    report.details["matches"] = matches
    if not with_blobs:
        report.add("ok", "weights", "holds no learnable blobs (nothing to load)")
        return
    good = [m for m in matches if m["loads"] and not m["mismatch"]]
    for best in good:
        report.add("ok", "weights", f"loads into {best['net']}: {len(best['loads'])} of {len(with_blobs)} layers"
                   + (f"; not in the net (skipped): {', '.join(best['not_in_net'])}" if best["not_in_net"] else "")
                   + (f"; keep their fillers: {', '.join(best['keeps_filler'])}" if best["keeps_filler"] else ""))
    if good:
        return
    tried = [m for m in matches if m["mismatch"]]
    for match in tried[:3]:
        report.add("unsupported", "weights",
                   f"does not load into {match['net']}: {len(match['loads'])} layers fit, {len(match['mismatch'])} "
                   "mismatch: " + "; ".join(match["mismatch"][:3]) + (" ..." if len(match["mismatch"]) > 3 else ""))
    if not tried:
        report.add("warning", "weights", "no net of the scan builds here, so the weights cannot be matched"
                   if not matches else "no net of the scan has a layer named like the file's layers")


def _check_binary(report: FileReport, path: Path) -> None:
    from .weights import read_blobproto, read_solverstate

    try:
        if report.kind == "mean":
            array = read_blobproto(path)
            report.title = f"blob {list(array.shape)} (a mean file for transform_param.mean_file)"
            report.add("ok", "file", "readable")
        else:
            state = read_solverstate(path)
            report.title = (f"solver state at iteration {state.iter} ({len(state.history)} history blobs; "
                            f"weights in '{state.learned_net}')")
            report.add("ok", "file", "readable: resume with caffe-like train --snapshot")
    except CaffeLikeError as err:
        report.add("error", "file", f"unreadable: {err.message}")
    except Exception as err:  # noqa: BLE001
        report.add("error", "file", f"unreadable: {type(err).__name__}: {err}")


# --------------------------------------------------------------------------------------------------
# the scan


def check_paths(paths, *, build: bool = True, input_shape=None, data_root=None) -> CheckReport:
    """Scan files and folders (see the module docstring); raises FileNotFoundError for a missing path."""
    from .spec.source import is_yaml_path, tree_from_text

    files, missing = _collect(paths)
    if missing:
        raise FileNotFoundError(", ".join(missing))
    options = {}
    if input_shape is not None:
        options["input_shape"] = input_shape
    if data_root is not None:
        options["data_root"] = str(data_root)
    report = CheckReport()
    texts, binaries = [], []
    for path, explicit in files:
        suffix = _suffix(path)
        if suffix in (".caffemodel", ".binaryproto", ".solverstate", ".caffemodel.h5", ".solverstate.h5"):
            binaries.append((path, suffix))
        elif suffix in NET_SUFFIXES or suffix == ".txt" and path.name.endswith(".prototxt.txt") or explicit:
            texts.append((path, explicit))
        else:
            report.skipped.append(str(path))
    nets: dict[str, dict] = {}
    net_files = {}
    parsed = []
    for path, explicit in texts:
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            if explicit:
                item = FileReport(str(path), "unknown")
                item.add("error", "file", f"not a text file ({err}); nets and solvers are protobuf text")
                report.files.append(item)
            else:
                report.skipped.append(str(path))
            continue
        yaml_syntax = is_yaml_path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = tree_from_text(text, yaml_syntax=yaml_syntax, file=str(path))
        except CaffeLikeError as err:
            if yaml_syntax and not explicit:
                report.skipped.append(str(path))
                continue
            item = FileReport(str(path), "unknown")
            item.add("error", "file", f"cannot be parsed: {err.message}", line=err.line)
            report.files.append(item)
            continue
        except Exception as err:  # noqa: BLE001
            item = FileReport(str(path), "unknown")
            item.add("error", "file", f"cannot be parsed: {type(err).__name__}: {err}")
            report.files.append(item)
            continue
        kind = _kind_of_tree(tree)
        if kind == "unknown":
            if explicit:
                item = FileReport(str(path), "unknown")
                item.add("error", "file", "neither a Caffe net (no layer) nor a solver (no solver field)")
                report.files.append(item)
            else:
                report.skipped.append(str(path))
            continue
        if kind == "net":
            net_files.setdefault(path.name, str(path))
        parsed.append((path, tree, kind, yaml_syntax))
    for path, tree, kind, yaml_syntax in parsed:
        item = FileReport(str(path), kind)
        report.files.append(item)
        if kind == "net":
            shapes = _check_net(item, tree, path, options, yaml_syntax=yaml_syntax, build=build)
            if shapes:
                nets[str(path)] = {"shapes": shapes, "name": item.details.get("name", "")}
        else:
            _check_solver(item, tree, path, yaml_syntax, net_files)
    for path, suffix in binaries:
        if suffix.endswith(".h5"):
            item = FileReport(str(path), "weights" if "caffemodel" in suffix else "solverstate")
            item.add("unsupported", "file", "an HDF5 snapshot (snapshot_format: HDF5): caffe_like reads binary "
                     ".caffemodel/.solverstate files; convert it with Caffe (load it, save it with "
                     "snapshot_format: BINARYPROTO)")
            report.files.append(item)
            continue
        kind = {".caffemodel": "weights", ".binaryproto": "mean", ".solverstate": "solverstate"}[suffix]
        item = FileReport(str(path), kind)
        report.files.append(item)
        if kind == "weights":
            _check_weights(item, path, nets)
        else:
            _check_binary(item, path)
    report.files.sort(key=lambda f: f.path)
    return report


# --------------------------------------------------------------------------------------------------
# coverage tables (docs/porting.md)

_SOLVER_FEATURES = (
    ("type: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam", "supported", "Caffe's update formulas and order"),
    ("solver_type (legacy enum)", "supported", "upgraded to type, as Caffe does"),
    ("lr_policy: fixed, step, exp, inv, multistep, poly, sigmoid", "supported", "Caffe's formulas"),
    ("iter_size", "supported", "gradients accumulate over the passes, then one update"),
    ("clip_gradients, weight_decay, regularization_type L1/L2", "supported", "on every learnable blob, every iteration"),
    ("ParamSpec lr_mult, decay_mult, name (sharing)", "partial", "share_mode PERMISSIVE with different shapes is refused"),
    ("test_iter, test_interval, test_initialization, test_compute_loss", "supported", "outputs averaged as Caffe"),
    ("test_net, test_net_param, train_net, net_param, train_state, test_state", "supported", ""),
    ("display, average_loss", "supported", "plus a CSV log of every displayed and tested value"),
    ("snapshot, snapshot_prefix, snapshot_after_train", "supported", "written atomically"),
    ("snapshot_format BINARYPROTO", "supported", ".solverstate resumes bit for bit (RNG, layer counters)"),
    ("snapshot_format HDF5, .h5 snapshots", "not supported", "binary snapshots are written instead; .h5 files "
                                                               "are not read"),
    ("snapshot_diff", "not supported", "gradients are not stored (ignored)"),
    ("random_seed", "supported", "seeds torch's generators and the fillers"),
    ("solver_mode, device_id", "supported", "a preference: CUDA when available; --device overrides"),
    ("weights (fine-tuning list)", "supported", "as BVLC's SolverParameter.weights / caffe train -weights"),
    ("multi-GPU (caffe train -gpu 0,1)", "not supported", "one process, one device; the Data layer can already "
                                                          "read as Caffe's DataLayer::Skip (solver_rank/solver_count)"),
    ("debug_info", "not supported", "ignored: no per-layer data/diff log"),
    ("signals (SIGINT/SIGHUP effects)", "supported", "--sigint-effect / --sighup-effect"),
)


def layer_coverage() -> list[dict]:
    """Every Caffe layer type (BVLC master's, the paper's) plus registered ones: its status and a note."""
    registry = _registry()
    rows = []
    for kind in sorted(set(LAYER_PARAM_FIELDS) | set(registry.LAYERS), key=str.lower):
        cls = registry.LAYERS.get(kind)
        if cls is None:
            status, note = "not supported", ("abstract base of RNN and LSTM" if kind == "Recurrent"
                                             else "not implemented; a plugin layer can provide it")
        else:
            status, note = "supported", ""
            module = cls.__module__
            if not module.startswith("caffe_like."):
                note = f"plugin ({module})"
            elif kind == "Python":
                status, note = "partial", "runs the user's layer unmodified; no ONNX export"
            elif kind in ("Data",):
                status, note = "partial", "LMDB, IDX, CIFAR, NPZ; no LEVELDB (Caffe's default backend)"
            elif _notes_of(cls):
                note = f"differences: see {module.rsplit('.', 1)[-1]}"
        origin = "paper" if kind in ("LargeMarginInnerProduct", "CenterLoss", "ReciprocalNormLoss") else (
            "BVLC" if kind in LAYER_PARAM_FIELDS else "registered")
        rows.append({"type": kind, "origin": origin, "status": status, "note": note})
    return rows


def solver_coverage() -> list[dict]:
    """Solver features and their status."""
    return [{"feature": f, "status": s, "note": n} for f, s, n in _SOLVER_FEATURES]


def _notes_of(cls) -> list[str]:
    import inspect

    module = inspect.getmodule(cls)
    return _note_paragraphs(module.__doc__ or "") if module is not None else []


def _note_paragraphs(doc: str) -> list[str]:
    """The "NOTE: ..." paragraphs of a docstring, each joined into one line."""
    notes, current = [], None
    for line in doc.splitlines():
        text = line.strip()
        if text.startswith("NOTE:"):
            if current:
                notes.append(" ".join(current))
            current = [text[len("NOTE:"):].strip()]
        elif current is not None:
            if not text or text.startswith("See:") or text.startswith("NOTE:"):
                notes.append(" ".join(current))
                current = None
            else:
                current.append(text)
    if current:
        notes.append(" ".join(current))
    return notes


def known_differences() -> list[dict]:
    """The "NOTE:" lines of the layer modules' docstrings: [{"types": [...], "module", "notes": [...]}]."""
    import inspect

    registry = _registry()
    by_module: dict[str, dict] = {}
    for kind, cls in sorted(registry.LAYERS.items()):
        module = inspect.getmodule(cls)
        if module is None:
            continue
        entry = by_module.setdefault(module.__name__, {"module": module.__name__, "types": [],
                                                       "notes": _note_paragraphs(module.__doc__ or "")})
        entry["types"].append(kind)
    return [e for e in by_module.values() if e["notes"]]
