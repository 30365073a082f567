"""Net diagrams as Caffe's ``python/caffe/draw.py`` (``draw_net.py``) draws them, with graphviz.

:func:`net_to_dot` turns a net (prototxt, YAML, dict or NetSpec; fork layer types are fine, nothing is built)
into DOT source; :func:`render` runs a graphviz renderer on it; :func:`draw_net_to_file` does both, by the
output file's extension (``.png``, ``.svg``, ``.pdf``; ``.dot``/``.gv`` write the source).

The drawing follows draw.py:

* layers are filled ``record`` boxes labelled ``name`` / ``(type)``; Convolution and Deconvolution (red,
  ``#FF5050``) and Pooling (orange, ``#FF9900``, with its method: ``(MAX Pooling)``) add their kernel size,
  stride and pad; InnerProduct is purple (``#CC33FF``), the rest blue (``#6495ED``).  Lines are separated by
  a line break for ``rankdir`` LR/RL, by a space for TB/BT;
* blobs are grey (``#E0E0E0``) octagons; an edge goes from each bottom blob to the layer and from the layer to
  each top blob, labelled with the batch size (Data), or the number of outputs (Convolution, Deconvolution,
  InnerProduct, and here also LargeMarginInnerProduct);
* an in-place layer (one bottom, one top, the same blob) is a green (``#90EE90``) box hanging on its blob,
  with an edge from the blob and one back to it (no new blob node); ``fold_inplace=True`` writes such layers
  into the blob's octagon instead;
* ``phase`` keeps the layers a phase includes (by the ``phase`` of their include/exclude rules, as draw.py);
  None draws every layer (``ALL``); layers of the same name and type in both phases are one box;
* ``display_lrm`` adds the learning-rate multipliers of Convolution, Deconvolution and InnerProduct.

Renderers, in order: the ``dot`` program (Graphviz: PNG, SVG, PDF), then ``graphviz-pure`` (the PyPI package
of that name, a self-contained port of Graphviz's ``dot``: PNG and SVG).  ``CAFFE_LIKE_DOT`` names another
``dot``-compatible program.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

from .errors import CaffeLikeError

__all__ = ["net_to_dot", "render", "draw_net_to_file", "find_renderer", "DrawError", "FORMATS", "RANKDIRS"]

LAYER_STYLE = {"shape": "record", "fillcolor": "#6495ED", "style": "filled"}
NEURON_STYLE = {"shape": "record", "fillcolor": "#90EE90", "style": "filled"}
BLOB_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}
TYPE_COLORS = {"Convolution": "#FF5050", "Deconvolution": "#FF5050", "Pooling": "#FF9900",
               "InnerProduct": "#CC33FF", "LargeMarginInnerProduct": "#CC33FF"}
FORMATS = ("png", "svg", "pdf", "dot", "gv")
RANKDIRS = ("LR", "TB", "BT", "RL")
_RENDER_FORMATS = {"dot": ("png", "svg", "pdf"), "graphviz-pure": ("png", "svg")}


class DrawError(CaffeLikeError):
    """A diagram cannot be rendered (no graphviz renderer, or the renderer failed)."""

    exit_code = 1


def _first(values, default):
    return values[0] if values else default


def _conv_geometry(p) -> tuple[str, str, str]:
    from .spec.schema import has

    kernel = str(_first(p.kernel_size, 1)) if p.kernel_size or not has(p, "kernel_h") else f"{p.kernel_h}x{p.kernel_w}"
    stride = str(_first(p.stride, 1)) if p.stride or not has(p, "stride_h") else f"{p.stride_h}x{p.stride_w}"
    pad = str(_first(p.pad, 0)) if p.pad or not has(p, "pad_h") else f"{p.pad_h}x{p.pad_w}"
    return kernel, stride, pad


def _pool_geometry(p) -> tuple[str, str, str]:
    from .spec.schema import has

    if p.global_pooling:
        return "global", "1", "0"
    kernel = str(p.kernel_size) if has(p, "kernel_size") or not has(p, "kernel_h") else f"{p.kernel_h}x{p.kernel_w}"
    stride = str(p.stride) if has(p, "stride") or not has(p, "stride_h") else f"{p.stride_h}x{p.stride_w}"
    pad = str(p.pad) if has(p, "pad") or not has(p, "pad_h") else f"{p.pad_h}x{p.pad_w}"
    return kernel, stride, pad


def _lr_mults(layer) -> str:
    mults = [f"{float(spec.lr_mult):g}" for spec in layer.param] or ["1"]
    return ", ".join(mults)


def layer_label_lines(layer, display_lrm: bool = False) -> list[str]:
    """The lines of a layer's box, as draw.py's ``get_layer_label``."""
    from .spec.schema import get_or_default

    kind = layer.type
    if kind in ("Convolution", "Deconvolution"):
        kernel, stride, pad = _conv_geometry(get_or_default(layer, "convolution_param"))
        lines = [layer.name, f"({kind})", f"kernel size: {kernel}", f"stride: {stride}", f"pad: {pad}"]
    elif kind == "Pooling":
        p = get_or_default(layer, "pooling_param")
        kernel, stride, pad = _pool_geometry(p)
        lines = [layer.name, f"({p.pool} {kind})", f"kernel size: {kernel}", f"stride: {stride}", f"pad: {pad}"]
    else:
        lines = [layer.name, f"({kind})"]
    if display_lrm and kind in ("Convolution", "Deconvolution", "InnerProduct"):
        lines.append(f"lr mult: {_lr_mults(layer)}")
    return lines


def edge_label(layer) -> str | None:
    """The label of a layer's edges to its tops, as draw.py's ``get_edge_label``."""
    from .spec.schema import get_or_default

    kind = layer.type
    if kind == "Data":
        return f"Batch {get_or_default(layer, 'data_param').batch_size}"
    if kind in ("Convolution", "Deconvolution"):
        return str(get_or_default(layer, "convolution_param").num_output)
    if kind == "InnerProduct":
        return str(get_or_default(layer, "inner_product_param").num_output)
    if kind == "LargeMarginInnerProduct":
        return str(get_or_default(layer, "largemargin_inner_product_param").num_output)
    return None


def _included(layer, phase: str | None) -> bool:
    """draw.py's phase rule: only the ``phase`` of include/exclude rules counts."""
    from .spec.schema import has

    if phase is None:
        return True
    included = not layer.include
    for rule in layer.include:
        included = included or (rule.phase if has(rule, "phase") else "TRAIN") == phase
    for rule in layer.exclude:
        included = included and (rule.phase if has(rule, "phase") else "TRAIN") != phase
    return included


def _quote(text: str) -> str:
    """A DOT string; backslashes are left as they are (escape sequences such as the line break)."""
    return '"' + text.replace('"', '\\"') + '"'


def _record(text: str) -> str:
    """Escape a label line: backslashes, and the characters a record label gives meaning to."""
    text = text.replace("\\", "\\\\")
    for char in "{}|<>":
        text = text.replace(char, "\\" + char)
    return text


def _attrs(style: dict, **extra) -> str:
    items = {**style, **extra}
    return ", ".join(f"{key}={value if key == 'label' else _quote(str(value))}" for key, value in items.items())


def net_to_dot(source, *, rankdir: str = "LR", phase: str | None = None, label_edges: bool = True,
               display_lrm: bool = False, fold_inplace: bool = False) -> str:
    """DOT source of the net's diagram (see the module docstring).  ``phase``: "TRAIN", "TEST" or None (ALL)."""
    from .spec.net import NetSpec

    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if phase not in (None, "TRAIN", "TEST"):
        raise ValueError(f"phase must be TRAIN, TEST or None, got {phase!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fork's unknown *_param blocks are fine: nothing is built
        spec = NetSpec.load(source, validate=False)
    separator = "\\n" if rankdir in ("LR", "RL") else " "
    layers = [layer for layer in spec.layers if _included(layer, phase)]
    nodes: dict[str, tuple[str, str]] = {}  # key -> (id, attributes); first seen wins the id
    order: list[str] = []
    edges: list[tuple[str, str, str | None]] = []
    folded: dict[str, list[str]] = {}

    def node(key: str, attributes: str) -> str:
        if key not in nodes:
            nodes[key] = (f"n{len(nodes)}", attributes)
            order.append(key)
        else:
            nodes[key] = (nodes[key][0], attributes)  # as pydot's dict: the last definition wins
        return nodes[key][0]

    def blob(name: str) -> str:
        key = f"{name}_blob"
        if key in nodes:
            return nodes[key][0]
        return node(key, "")

    for layer in layers:
        in_place = len(layer.bottom) == 1 and len(layer.top) == 1 and layer.bottom[0] == layer.top[0]
        if in_place and fold_inplace:
            folded.setdefault(layer.top[0], []).append(f"{layer.name} ({layer.type})")
            blob(layer.top[0])
            continue
        label = _quote(separator.join(_record(line) for line in layer_label_lines(layer, display_lrm)))
        if in_place:
            style = NEURON_STYLE
        else:
            style = dict(LAYER_STYLE, fillcolor=TYPE_COLORS.get(layer.type, LAYER_STYLE["fillcolor"]))
        layer_id = node(f"{layer.name}_{layer.type}", _attrs(style, label=label))
        for bottom in layer.bottom:
            edges.append((blob(bottom), layer_id, None))
        top_label = edge_label(layer) if label_edges else None
        for top in layer.top:
            edges.append((layer_id, blob(top), top_label))
    lines = [f"digraph {_quote(spec.name or 'Net')} {{", f"  rankdir={rankdir};"]
    for key in order:
        node_id, attributes = nodes[key]
        if key.endswith("_blob") and not attributes:
            name = key[: -len("_blob")]
            text = separator.join(_record(line) for line in [name] + [f"+ {item}" for item in folded.get(name, [])])
            attributes = _attrs(BLOB_STYLE, label=_quote(text))
        lines.append(f"  {node_id} [{attributes}];")
    seen = set()
    for src, dst, label in edges:
        if (src, dst, label) in seen:
            continue
        seen.add((src, dst, label))
        lines.append(f"  {src} -> {dst}" + (f" [label={_quote(_record(label))}]" if label else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _program(name: str) -> str | None:
    """``name`` on PATH, or next to this Python (a virtualenv's scripts folder, activated or not)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in {sysconfig.get_path("scripts"), str(Path(sys.executable).parent)}:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def find_renderer(fmt: str = "png") -> tuple[str, str] | None:
    """(kind, program) of the first renderer that writes ``fmt``, or None."""
    override = os.environ.get("CAFFE_LIKE_DOT")
    if override:
        program = _program(override) or (override if Path(override).is_file() else None)
        return ("dot", program) if program else None
    for kind in ("dot", "graphviz-pure"):
        if fmt in _RENDER_FORMATS[kind]:
            program = _program(kind)
            if program:
                return kind, program
    return None


def render(dot: str, out: str | Path, fmt: str | None = None, *, timeout: float = 120.0) -> str:
    """Render DOT source into ``out`` (format from its extension unless ``fmt``); returns the program used."""
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in ("png", "svg", "pdf"):
        raise DrawError(f"cannot render to '{fmt}'", fix="write .png, .svg or .pdf (or .dot for the DOT source)")
    found = find_renderer(fmt)
    if found is None:
        other = find_renderer("png")
        if fmt == "pdf" and other is not None:
            raise DrawError(f"{other[0]} cannot write PDF and no Graphviz 'dot' program is installed",
                            fix="write .svg or .png, or install Graphviz (apt-get install graphviz)")
        raise DrawError("no graphviz renderer found (neither 'dot' nor 'graphviz-pure')",
                        fix="pip install graphviz-pure, or install Graphviz (apt-get install graphviz, brew install "
                            "graphviz); --dot FILE writes the DOT source without rendering")
    kind, program = found
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        try:
            result = subprocess.run([program, f"-T{fmt}", "-o", tmp], input=dot.encode("utf-8"),
                                    capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise DrawError(f"{program} failed: {err}") from None
        if result.returncode != 0 or not os.path.getsize(tmp):
            message = result.stderr.decode("utf-8", "replace").strip() or f"exit status {result.returncode}"
            raise DrawError(f"{program} failed: {message}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return program


def draw_net_to_file(source, out: str | Path, *, rankdir: str = "LR", phase: str | None = None,
                     display_lrm: bool = False, fold_inplace: bool = False, dot_file: str | Path | None = None) -> str:
    """Draw ``source`` into ``out`` (.png/.svg/.pdf, or .dot/.gv for the source); returns what wrote it."""
    dot = net_to_dot(source, rankdir=rankdir, phase=phase, display_lrm=display_lrm, fold_inplace=fold_inplace)
    if dot_file is not None:
        Path(dot_file).write_text(dot, encoding="utf-8")
    out = Path(out)
    if out.suffix.lower() in (".dot", ".gv"):
        out.write_text(dot, encoding="utf-8")
        return "DOT source"
    return render(dot, out)
