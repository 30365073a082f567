"""Rewrite the L-Softmax fork's ``BN`` layers as BVLC ``BatchNorm`` + ``Scale { bias_term: true }``.

    python examples/porting/bn_to_batchnorm.py NET.prototxt OUT.prototxt [--weights IN.caffemodel OUT.caffemodel]

Each ``BN`` layer ``name`` (bottom ``b``, top ``t``) becomes

* ``name``: ``BatchNorm`` (bottom ``b``, top ``t``) with ``moving_average_fraction`` = the fork's ``momentum``
  (default 0.9) and its ``eps`` (default 1e-5), and no ``param`` blocks (BVLC freezes its statistics);
* ``name_scale``: ``Scale`` in place on ``t``, ``bias_term: true``, filled by the fork's ``slope_filler`` /
  ``bias_filler``, with the BN layer's two ``param`` blocks (slope and bias learning rates and decays).

With ``--weights``, a .caffemodel trained by the fork is converted too (layers other than BN are copied):

=================================  ==============================================================
fork ``BN`` blob                   becomes
=================================  ==============================================================
0 slope [1, C]                     ``name_scale`` blob 0 (gamma) [C]
1 bias [1, C]                      ``name_scale`` blob 1 (beta) [C]
2 moving mean [1, C]               ``name`` blob 0 (mean sum) [C], with blob 2 (factor) = [1]
3 moving 1/sqrt(var + eps) [1, C]  ``name`` blob 1 (variance sum) [C] = 1 / blob3² − eps
=================================  ==============================================================

so that the TEST-phase outputs are the same (BatchNorm divides by sqrt(var + eps)).  Training differs:
see docs/porting.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from caffe_like.spec.textformat import format as format_text
from caffe_like.spec.textformat import parse
from caffe_like.spec.tree import Leaf, Node
from caffe_like.spec.upgrade import upgrade_net
from caffe_like.weights import LayerBlobs, read_caffemodel, write_caffemodel

DEFAULT_MOMENTUM, DEFAULT_EPS = 0.9, 1e-5


def _value(node: Node | None, key: str, default):
    entry = node.first(key) if node is not None else None
    return entry.value.value if entry is not None and isinstance(entry.value, Leaf) else default


def rewrite_net(tree: Node) -> tuple[Node, dict[str, float]]:
    """The net with every BN layer replaced; returns it and {BN layer name: eps} (for the weights)."""
    out = Node(pos=tree.pos)
    eps_of: dict[str, float] = {}
    for entry in tree.entries:
        layer = entry.value
        if entry.key != "layer" or not isinstance(layer, Node) or _value(layer, "type", "") != "BN":
            out.add(entry.key, layer, entry.pos)
            continue
        name = _value(layer, "name", "")
        bn_param = layer.first("bn_param")
        bn_param = bn_param.value if bn_param is not None else None
        eps = float(_value(bn_param, "eps", DEFAULT_EPS))
        eps_of[name] = eps
        tops = layer.get_all("top")
        batch_norm = Node()
        batch_norm.add("name", Leaf(name, "str"))
        batch_norm.add("type", Leaf("BatchNorm", "str"))
        for key in ("bottom", "top", "include", "exclude", "phase"):
            for value in layer.get_all(key):
                batch_norm.add(key, value)
        settings = Node()
        settings.add("moving_average_fraction", Leaf(float(_value(bn_param, "momentum", DEFAULT_MOMENTUM)), "float"))
        settings.add("eps", Leaf(eps, "float"))
        batch_norm.add("batch_norm_param", settings)
        out.add("layer", batch_norm, entry.pos)
        scale = Node()
        scale.add("name", Leaf(f"{name}_scale", "str"))
        scale.add("type", Leaf("Scale", "str"))
        scale.add("bottom", tops[0])
        scale.add("top", tops[0])
        for key in ("param", "include", "exclude", "phase"):
            for value in layer.get_all(key):
                scale.add(key, value)
        scale_param = Node()
        scale_param.add("bias_term", Leaf("true", "ident"))
        for fork_key, key in (("slope_filler", "filler"), ("bias_filler", "bias_filler")):
            filler = bn_param.first(fork_key) if bn_param is not None else None
            if filler is not None:
                scale_param.add(key, filler.value)
        scale.add("scale_param", scale_param)
        out.add("layer", scale, entry.pos)
    return out, eps_of


def convert_weights(src: Path, dst: Path, eps_of: dict[str, float]) -> list[str]:
    """Write ``dst``: the fork's weights with every BN layer mapped (module docstring); returns those names."""
    model = read_caffemodel(src)
    layers, converted = [], []
    for layer in model.layers:
        if layer.name not in eps_of:
            layers.append(LayerBlobs(layer.name, layer.type, list(layer.blobs)))
            continue
        if len(layer.blobs) != 4:
            raise SystemExit(f"{src}: BN layer '{layer.name}' has {len(layer.blobs)} blobs, the fork's BN has 4")
        slope, bias, mean, inv_std = (np.asarray(b, dtype=np.float64).reshape(-1) for b in layer.blobs)
        variance = 1.0 / (inv_std * inv_std) - eps_of[layer.name]
        layers.append(LayerBlobs(layer.name, "BatchNorm", [mean.astype(np.float32), variance.astype(np.float32),
                                                           np.ones(1, np.float32)]))
        layers.append(LayerBlobs(f"{layer.name}_scale", "Scale", [slope.astype(np.float32), bias.astype(np.float32)]))
        converted.append(layer.name)
    write_caffemodel(dst, model.name, layers)
    return converted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("net", type=Path, help="the net with BN layers (.prototxt)")
    parser.add_argument("out", type=Path, help="the rewritten net (.prototxt)")
    parser.add_argument("--weights", nargs=2, type=Path, metavar=("IN", "OUT"),
                        help="also convert a .caffemodel trained with the BN layers")
    args = parser.parse_args(argv)
    tree, _notes = upgrade_net(parse(args.net.read_text(), str(args.net)), file=str(args.net))
    rewritten, eps_of = rewrite_net(tree)
    header = (f"# {args.out.name}: {args.net.name} with its {len(eps_of)} BN layers rewritten as BatchNorm + Scale\n"
              "# by examples/porting/bn_to_batchnorm.py (see docs/porting.md)\n")
    args.out.write_text(header + format_text(rewritten))
    print(f"{args.out}: {len(eps_of)} BN layers -> BatchNorm + Scale")
    if args.weights:
        names = convert_weights(args.weights[0], args.weights[1], eps_of)
        print(f"{args.weights[1]}: converted the weights of {len(names)} BN layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
