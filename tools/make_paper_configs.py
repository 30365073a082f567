#!/usr/bin/env python3
"""Generate the paper's nets and solvers as YAML: prototxt/paper/<net>/<variant>.yaml, <variant>_solver.yaml, deploy.yaml.

Nets (paper Table 1): mnist2d, mnist, cifar10, cifar100.  Variants: softmax, rn_softmax, lsoftmax, rn_lsoftmax,
center, rn_center ("rn_" = plus feature incay, a ReciprocalNormLoss layer).  Every net names the classifier's input
(the feature vector f) ``feature`` and the classifier's output ``score``.

The YAML is written as text (not yaml.dump) so that every choice carries a comment saying where it comes from:
the paper (../shared/paper.md), an original Caffe example (../shared/reference/loss_layers.md), or our own
measurement (docs/results.md, "What we tried").  Run from anywhere:

    python tools/make_paper_configs.py            # (re)write prototxt/paper/
    python tools/make_paper_configs.py --check    # exit 1 if a committed file differs from what would be written

Importable: ``net_text(net, variant)``, ``solver_text(net, variant)``, ``deploy_text(net)`` and ``NETS``/``VARIANTS``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "prototxt" / "paper"

NETS = ("mnist2d", "mnist", "cifar10", "cifar100")
VARIANTS = ("softmax", "rn_softmax", "lsoftmax", "rn_lsoftmax", "center", "rn_center")

# ---------------------------------------------------------------------------------------------------------------
# Per-net settings.  Each value that the paper does not fix says where it comes from (SOURCES below).
# ---------------------------------------------------------------------------------------------------------------

#: feature incay per net: λ (the RN layer's loss_weight), ε, loss_param.normalization -- see docs/results.md
RN = {
    "mnist2d": {"lambda": 0.1, "epsilon": 1.0, "normalization": "NONE"},
    "mnist": {"lambda": 0.1, "epsilon": 1.0e-5, "normalization": "BATCH_SIZE"},
    "cifar10": {"lambda": 0.1, "epsilon": 1.0e-5, "normalization": "BATCH_SIZE"},
    "cifar100": {"lambda": 0.1, "epsilon": 1.0e-5, "normalization": "BATCH_SIZE"},
}

MNIST2D_RN_NOTE = (
    "lambda 0.1 is one of the paper's values (1, 0.1, 0.01).  epsilon 1 and normalization NONE (the sum over the\n"
    "batch, not Eq. 8's 1/N) are our choice, measured on MNIST-2D (docs/results.md, 'What we tried'): with the\n"
    "paper's Eq. 8 as written (BATCH_SIZE) and a small epsilon (1e-5 or 1e-2) training diverges (NaN) within 3-30\n"
    "iterations for lambda 1, 0.1 and 0.01 (a correctly classified feature near 0 gets a gradient up to\n"
    "0.65 epsilon^-1.5); epsilon 1 bounds it, but then BATCH_SIZE with lambda <= 1 barely moves the norm (+2% at\n"
    "lambda 0.1); the un-normalised sum (what one 2017 Caffe layer's gradient computed) with lambda 0.1 raises it by\n"
    "~50% and stays stable; lambda 1 with NONE diverges.")

CIFAR_MEANS = {  # per-channel means of the training images, in the CIFAR backend's channel order (R, G, B)
    "cifar10": [125.307, 122.950, 113.865],
    "cifar100": [129.304, 124.070, 112.434],
}


def _fmt(value) -> str:
    """A YAML scalar: floats always with a dot (PyYAML reads '1e-05' as a string), enums and names bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            mantissa, exponent = text.lower().split("e")
            if "." not in mantissa:
                mantissa += ".0"
            return f"{mantissa}e{int(exponent)}"
        return text
    text = str(value)
    if not text or any(c in text for c in ":{}[],#&*!|>'\"%@`") or text.strip() != text:
        return '"' + text.replace('"', '\\"') + '"'
    return text


def flow(value) -> str:
    """A value in YAML flow style (mappings keep their insertion order)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return _fmt(value)


class Layers:
    """Collects layers as YAML text: one block mapping per layer, its parameter blocks in flow style."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def comment(self, text: str) -> None:
        for line in text.splitlines():
            self.lines.append(f"  # {line}" if line else "  #")

    def add(self, name: str, type_: str, bottom=None, top=None, comment: str | None = None, **fields) -> None:
        if comment:
            self.comment(comment)
        self.lines.append(f"  - name: {_fmt(name)}")
        self.lines.append(f"    type: {type_}")
        for key, value in (("bottom", bottom), ("top", top)):
            if value is None:
                continue
            self.lines.append(f"    {key}: {flow(value)}")
        for key, value in fields.items():
            if value is None:
                continue
            self.lines.append(f"    {key}: {flow(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


WEIGHT_BIAS = [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]
NO_DECAY = [{"lr_mult": 1, "decay_mult": 0}, {"lr_mult": 1, "decay_mult": 0}]


def _header(what: str, extra: str = "") -> str:
    lines = [
        f"# {what}",
        "# GENERATED by tools/make_paper_configs.py -- edit that script and re-run it, not this file.",
        "# Paper: Yuan, Yang, Zhang, 'Feature Incay for Representation Regularization' (../shared/paper.md);",
        "# values the paper leaves open come from the original Caffe examples (../shared/reference/loss_layers.md),",
        "# as each comment says.  Loads as YAML and, via 'caffe-like convert', as prototxt.",
    ]
    if extra:
        lines += [f"# {line}" if line else "#" for line in extra.splitlines()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# data layers
# ---------------------------------------------------------------------------------------------------------------

def _data_layers(L: Layers, net: str) -> None:
    if net == "mnist2d":
        transform = {"mean_value": [127.5], "scale": 0.0078125}
        L.add("mnist", "Data", top=["data", "label"], include={"phase": "TRAIN"},
              comment="Input (x - 127.5) / 128, in [-1, 1], and batch 128 train / 100 test: the paper is silent; these are the\n"
                      "Center-loss MNIST 2-D example's (loss_layers.md 2.3).  Sources resolve against the net's folder, then\n"
                      "--data-root / $CAFFE_LIKE_DATA (e.g. ../shared/data, which holds mnist/), then the current folder.",
              transform_param=transform,
              data_param={"source": "mnist/train", "backend": "IDX", "batch_size": 128})
        L.add("mnist", "Data", top=["data", "label"], include={"phase": "TEST"},
              transform_param=transform,
              data_param={"source": "mnist/t10k", "backend": "IDX", "batch_size": 100})
    elif net == "mnist":
        transform = {"mean_value": [127.5]}
        L.add("mnist", "Data", top=["data", "label"], include={"phase": "TRAIN"},
              comment="Input x - 127.5 (no scale), batch 128 train / 100 test: the L-Softmax MNIST example (loss_layers.md 1.6).",
              transform_param=transform,
              data_param={"source": "mnist/train", "backend": "IDX", "batch_size": 128})
        L.add("mnist", "Data", top=["data", "label"], include={"phase": "TEST"},
              transform_param=transform,
              data_param={"source": "mnist/t10k", "backend": "IDX", "batch_size": 100})
    else:
        folder = "cifar-10-batches-py" if net == "cifar10" else "cifar-100-python"
        mean = CIFAR_MEANS[net]
        L.add("cifar", "Data", top=["data", "label"], include={"phase": "TRAIN"},
              comment="Paper 4.1: random horizontal flips and mean subtraction.  The per-channel mean of the training images\n"
                      "(R, G, B: the CIFAR backend's order) stands in for the L-Softmax CIFAR example's mean image (no\n"
                      "mean file ships with the python batches); no scale, as that example.  Batch 128 / 100: the example's.",
              transform_param={"mirror": True, "mean_value": mean},
              data_param={"source": f"{folder}/train", "backend": "CIFAR", "batch_size": 128,
                          **({"cifar_label": "fine"} if net == "cifar100" else {})})
        L.add("cifar", "Data", top=["data", "label"], include={"phase": "TEST"},
              transform_param={"mean_value": mean},
              data_param={"source": f"{folder}/test", "backend": "CIFAR", "batch_size": 100,
                          **({"cifar_label": "fine"} if net == "cifar100" else {})})


# ---------------------------------------------------------------------------------------------------------------
# trunks (paper Table 1)
# ---------------------------------------------------------------------------------------------------------------

#: net -> list of stages [(kernel, channels, count)], the feature size, the activation, the classes
TRUNKS = {
    "mnist2d": {"stages": [(5, 20, 1), (5, 50, 1)], "feature": 2, "classes": 10},
    "mnist": {"stages": [(3, 64, 1), (3, 64, 3), (3, 64, 3), (3, 64, 3)], "feature": 256, "classes": 10,
              "act": "PReLU"},
    "cifar10": {"stages": [(3, 64, 1), (3, 64, 4), (3, 128, 4), (3, 256, 4)], "feature": 512, "classes": 10,
                "act": "ReLU"},
    "cifar100": {"stages": [(3, 128, 1), (3, 128, 4), (3, 256, 4), (3, 512, 4)], "feature": 512, "classes": 100,
                 "act": "ReLU"},
}


def _trunk_mnist2d(L: Layers) -> str:
    xavier = {"type": "xavier"}
    L.add("conv0", "Convolution", "data", "conv0", param=WEIGHT_BIAS,
          comment="Table 1, MNIST-2D: [5x5, 20] -> pool -> [5x5, 50] -> pool -> FC 2, i.e. Caffe's LeNet with a 2-D ip1.\n"
                  "As Caffe's LeNet example: stride 1, no padding, no activation after the convolutions, xavier fillers,\n"
                  "bias lr_mult 2 (decay_mult 0, as all the paper-related examples).",
          convolution_param={"num_output": 20, "kernel_size": 5, "stride": 1, "weight_filler": xavier,
                             "bias_filler": {"type": "constant"}})
    L.add("pool0", "Pooling", "conv0", "pool0", comment="Table 1: all pooling 2x2 stride 2, max.",
          pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
    L.add("conv1", "Convolution", "pool0", "conv1", param=WEIGHT_BIAS,
          convolution_param={"num_output": 50, "kernel_size": 5, "stride": 1, "weight_filler": xavier,
                             "bias_filler": {"type": "constant"}})
    L.add("pool1", "Pooling", "conv1", "pool1", pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
    L.add("fc", "InnerProduct", "pool1", "feature", param=WEIGHT_BIAS,
          comment="The 2-D feature f (with bias, as the Center-loss 2-D example's ip1).",
          inner_product_param={"num_output": 2, "weight_filler": xavier, "bias_filler": {"type": "constant"}})
    L.add("feature_prelu", "PReLU", "feature", "feature",
          comment="PReLU on the 2-D feature, in place (both losses see its output): the Center-loss 2-D example's; the paper\n"
                  "is silent.  Without it see docs/results.md ('What we tried').")
    return "feature"


def _bn(L: Layers, blob: str, tag: str, act: str) -> None:
    L.add(f"{tag}_bn", "BatchNorm", blob, blob)
    L.add(f"{tag}_scale", "Scale", blob, blob, param=NO_DECAY, scale_param={"bias_term": True})
    L.add(f"{tag}_{act.lower()}", act, blob, blob)


def _trunk_deep(L: Layers, net: str) -> str:
    t = TRUNKS[net]
    act = t["act"]
    msra = {"type": "msra"}
    L.comment(
        f"Table 1 ({net}): stages of 3x3 convolutions (stride 1, pad 1), each followed by BatchNorm + Scale (learned slope\n"
        f"and bias, decay_mult 0: the L-Softmax examples' BN layer) and {act}; 2x2/2 max pooling after stages 1, 2, 3\n"
        "(Caffe's ceil rounding); msra fillers, bias lr_mult 2 / decay_mult 0 (the L-Softmax examples, loss_layers.md 1.6).\n"
        + ("PReLU as Table 1 / the L-Softmax README advise for MNIST." if act == "PReLU" else
           "ReLU as the L-Softmax CIFAR examples (no dropout)."))
    blob = "data"
    for stage, (kernel, channels, count) in enumerate(t["stages"]):
        for index in range(count):
            name = f"conv{stage}_{index + 1}"
            L.add(name, "Convolution", blob, name, param=WEIGHT_BIAS,
                  convolution_param={"num_output": channels, "kernel_size": kernel, "pad": 1, "stride": 1,
                                     "weight_filler": msra, "bias_filler": {"type": "constant"}})
            _bn(L, name, name, act)
            blob = name
        if stage > 0:
            L.add(f"pool{stage}", "Pooling", blob, f"pool{stage}",
                  pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2})
            blob = f"pool{stage}"
    L.add("fc", "InnerProduct", blob, "feature", param=WEIGHT_BIAS,
          comment=f"The feature f: FC {t['feature']} + BatchNorm + Scale + {act} (the L-Softmax examples' ip1 block).",
          inner_product_param={"num_output": t["feature"], "weight_filler": msra, "bias_filler": {"type": "constant"}})
    _bn(L, "feature", "fc", act)
    return "feature"


# ---------------------------------------------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------------------------------------------

#: the L-Softmax examples' margin and lambda schedule (loss_layers.md 1.3 / 1.6)
LSOFTMAX = {
    "mnist2d": ("QUADRUPLE", 1000.0, 2.5e-5, 35.0, "MNIST example: m = 4, base 1000, gamma 2.5e-5, power 35, lambda_min 0"),
    "mnist": ("QUADRUPLE", 1000.0, 2.5e-5, 35.0, "MNIST example: m = 4, base 1000, gamma 2.5e-5, power 35, lambda_min 0"),
    "cifar10": ("DOUBLE", 1000.0, 2.0e-5, 45.0, "CIFAR10 example: m = 2, base 1000, gamma 2e-5, power 45, lambda_min 0\n"
                "(the example's m; its maintainer notes that the L-Softmax paper's CIFAR numbers used m = 4)"),
    "cifar100": ("DOUBLE", 1000.0, 2.0e-5, 45.0, "no CIFAR100 example exists: the CIFAR10 example's m = 2, base 1000, "
                 "gamma 2e-5,\npower 45, lambda_min 0"),
}


def _head(L: Layers, net: str, variant: str) -> None:
    classes = TRUNKS[net]["classes"]
    filler = {"type": "xavier"} if net == "mnist2d" else {"type": "msra"}
    base = variant.removeprefix("rn_")
    rn = variant.startswith("rn_")
    if base == "lsoftmax":
        margin, lbase, gamma, power, source = LSOFTMAX[net]
        L.add("classifier", "LargeMarginInnerProduct", ["feature", "label"], "score",
              comment="L-Softmax (no bias).  Margin and lambda schedule from the L-Softmax\n" + source + ".\n"
                      "TEST gives the plain x.W^T (caffe_like's documented choice; the original examples declare a second,\n"
                      "SINGLE TEST instance).  The weight is named so that the RN layer's plain scores can share it.",
              param=[{"name": "classifier_w", "lr_mult": 1, "decay_mult": 1}],
              largemargin_inner_product_param={"num_output": classes, "type": margin, "base": lbase,
                                               "gamma": gamma, "power": power, "lambda_min": 0.0,
                                               "weight_filler": filler})
    else:
        L.add("classifier", "InnerProduct", "feature", "score",
              comment="The classifier: a bias-free inner product (paper Eq. 8: softmax loss without bias).",
              param=[{"lr_mult": 1, "decay_mult": 1}],
              inner_product_param={"num_output": classes, "bias_term": False, "weight_filler": filler})
    L.add("loss", "SoftmaxWithLoss", ["score", "label"], "loss")
    L.add("accuracy", "Accuracy", ["score", "label"], "accuracy", include={"phase": "TEST"})
    if base == "center":
        L.add("center_loss", "CenterLoss", ["feature", "label"], "center_loss", loss_weight=0.01,
              comment="Center loss, Caffe-face's layer and update: loss_weight 0.01, centers lr_mult 1 / decay_mult 0, xavier\n"
                      "centers (the Center-loss MNIST example, loss_layers.md 2.3).  The paper's alpha is the solver's lr x\n"
                      "lr_mult (it decays with the lr policy).",
              param=[{"lr_mult": 1, "decay_mult": 0}],
              center_loss_param={"num_output": classes, "center_filler": {"type": "xavier"}})
    if rn:
        s = RN[net]
        note = MNIST2D_RN_NOTE if net == "mnist2d" else (
            "lambda 0.1 (one of the paper's 1, 0.1, 0.01; Table 4's best for RN+Softmax); epsilon 1e-5 ('small', the\n"
            "layer's default); normalization BATCH_SIZE = Eq. 8's 1/N.  Untested on this net: see docs/results.md.")
        scores = "score"
        if base == "lsoftmax":
            L.add("plain_score", "InnerProduct", "feature", "plain_score", include={"phase": "TRAIN"},
                  comment="Feature incay judges h(i) on the plain inner-product scores x.W^T (what the net predicts at test\n"
                          "time; paper.md), not on the margin logits of the TRAIN-phase L-Softmax: this TRAIN-only inner\n"
                          "product shares the L-Softmax weight by name (same lr_mult, as Caffe requires of sharers).  It gets\n"
                          "no gradient (the RN layer sends none to its scores), so it changes nothing else.",
                  param=[{"name": "classifier_w", "lr_mult": 1, "decay_mult": 1}],
                  inner_product_param={"num_output": classes, "bias_term": False})
            scores = "plain_score"
        fields = dict(loss_weight=s["lambda"], reciprocal_norm_loss_param={"epsilon": float(s["epsilon"])},
                      loss_param={"normalization": s["normalization"]})
        comment = ("Feature incay (paper Eq. 8): loss_weight = lambda.\n" + note + "\n"
                   "h(i) is judged on '" + scores + "'.")
        if base == "lsoftmax":
            L.add("incay", "ReciprocalNormLoss", ["feature", scores, "label"], "incay", include={"phase": "TRAIN"},
                  comment=comment, **fields)
            L.add("incay", "ReciprocalNormLoss", ["feature", "score", "label"], "incay", include={"phase": "TEST"},
                  comment="In TEST the L-Softmax scores are plain already.", **fields)
        else:
            L.add("incay", "ReciprocalNormLoss", ["feature", scores, "label"], "incay", comment=comment, **fields)


VARIANT_TITLES = {
    "softmax": "Softmax", "rn_softmax": "RN + Softmax", "lsoftmax": "L-Softmax", "rn_lsoftmax": "RN + L-Softmax",
    "center": "Center Loss", "rn_center": "RN + Center Loss",
}
NET_TITLES = {"mnist2d": "MNIST-2D", "mnist": "MNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def net_text(net: str, variant: str) -> str:
    L = Layers()
    _data_layers(L, net)
    if net == "mnist2d":
        _trunk_mnist2d(L)
    else:
        _trunk_deep(L, net)
    _head(L, net, variant)
    header = _header(f"{NET_TITLES[net]}, {VARIANT_TITLES[variant]}: train/test net (paper Table 1).")
    return header + f"name: {net}_{variant}\nlayer:\n" + L.text()


#: solver settings per net: (base_lr, stepvalues, max_iter, test_interval, comment)
SOLVERS = {
    "mnist2d": (0.01, [5000, 7500, 10000], 10000, 500,
                "base_lr 0.01, not the paper's 0.1: with 0.1 this net diverges (NaN) within 10 iterations, with or without\n"
                "feature incay (measured: docs/results.md, 'What we tried'); 0.01 is the Center-loss 2-D example's (and Caffe\n"
                "LeNet's) base_lr.  Steps: the L-Softmax MNIST example's 5000 / 7500 / 10000, gamma 0.1 (the paper's 'divided\n"
                "by 10'); the third falls on the last iteration of the paper's 10,000 (MNIST-2D quick experiment)."),
    "mnist": (0.1, [5000, 7500, 10000], 30000, 1000,
              "The L-Softmax MNIST example's schedule: base_lr 0.1 divided by 10 at 5000, 7500 and 10000, max_iter 30000."),
    "cifar10": (0.1, [5000, 7500, 30000], 30000, 1000,
                "The L-Softmax CIFAR10 example's schedule: base_lr 0.1, divided by 10 at 5000 and 7500 (its third step,\n"
                "30000, is its max_iter)."),
    "cifar100": (0.1, [5000, 7500, 30000], 30000, 1000,
                 "No CIFAR100 example exists: the L-Softmax CIFAR10 example's schedule (base_lr 0.1, /10 at 5000, 7500;\n"
                 "max_iter 30000)."),
}


def solver_text(net: str, variant: str) -> str:
    base_lr, steps, max_iter, test_interval, comment = SOLVERS[net]
    lines = [
        _header(f"{NET_TITLES[net]}, {VARIANT_TITLES[variant]}: solver (paper 4.1: SGD, momentum 0.9, weight decay 0.0005)."),
        f"net: {variant}.yaml",
        "# Paper 4.1: SGD with momentum 0.9 and weight decay 0.0005; the learning rate divided by 10 three times.",
        "type: SGD",
        "momentum: 0.9",
        "weight_decay: 0.0005",
    ]
    lines += [f"# {c}" for c in comment.splitlines()]
    lines += [
        f"base_lr: {_fmt(base_lr)}",
        "lr_policy: multistep",
        "gamma: 0.1",
        f"stepvalue: {flow(steps)}",
        f"max_iter: {max_iter}",
        "# Test over the whole test set (10,000 images = 100 batches of 100) every test_interval iterations.",
        "test_iter: [100]",
        f"test_interval: {test_interval}",
        "test_initialization: false",
        "display: 100",
        "# Snapshots and the CSV log go under runs/ (ignored by git), relative to this file.",
        "snapshot: 0",
        f"snapshot_prefix: ../../../runs/paper/{net}/{variant}",
        "random_seed: 1",
    ]
    return "\n".join(lines) + "\n"


def deploy_text(net: str) -> str:
    L = Layers()
    shape = [1, 1, 28, 28] if net.startswith("mnist") else [1, 3, 32, 32]
    L.add("data", "Input", top="data", input_param={"shape": {"dim": shape}},
          comment="Feed what the TEST data layer gives: " + (
              "(pixel - 127.5) / 128." if net == "mnist2d" else "pixel - 127.5." if net == "mnist" else
              "R, G, B pixels minus the per-channel means " + flow(CIFAR_MEANS.get(net, [])) + "."))
    if net == "mnist2d":
        _trunk_mnist2d(L)
    else:
        _trunk_deep(L, net)
    classes = TRUNKS[net]["classes"]
    L.add("classifier", "InnerProduct", "feature", "score",
          comment="Every variant's classifier as a plain bias-free inner product (L-Softmax's TEST form; same weight\n"
                  "layout, so any variant's weights load by layer name; CenterLoss and RN have no deploy part).",
          inner_product_param={"num_output": classes, "bias_term": False})
    L.add("prob", "Softmax", "score", "prob")
    header = _header(f"{NET_TITLES[net]}: deploy net for all six variants (outputs prob; the feature is blob 'feature').")
    return header + f"name: {net}_deploy\nlayer:\n" + L.text()


QUICKSTART = REPO / "caffe_like" / "quickstart"
#: the quick start's solver length (measured: docs/results.md, "Quick start")
QUICKSTART_ITERS = 2000


def quickstart_net_text() -> str:
    """prototxt/paper/mnist2d/rn_softmax.yaml reading the packaged mnist-mini (tests/paper_repro checks that
    nothing else differs)."""
    text = net_text("mnist2d", "rn_softmax")
    text = text.replace("source: mnist/train,", "source: mnist-mini/train,").replace(
        "source: mnist/t10k,", "source: mnist-mini/t10k,")
    head = ("# caffe-like quickstart: the MNIST-2D RN + Softmax net of prototxt/paper/mnist2d/rn_softmax.yaml, reading\n"
            "# mnist-mini (beside this file: the first 10,000 training and 2,000 test images of MNIST, CC BY-SA 3.0).\n")
    return head + text


def quickstart_solver_text() -> str:
    """prototxt/paper/mnist2d/rn_softmax_solver.yaml, shortened (stepvalues scaled with max_iter)."""
    base_lr, steps, max_iter, test_interval, _ = SOLVERS["mnist2d"]
    scaled = [s * QUICKSTART_ITERS // max_iter for s in steps]
    lines = [
        "# caffe-like quickstart: prototxt/paper/mnist2d/rn_softmax_solver.yaml, shortened to fit in about a minute on",
        "# 2 CPU cores (max_iter and the stepvalues scaled by the same factor; test_iter covers mnist-mini's 2,000 test",
        "# images).  GENERATED by tools/make_paper_configs.py.  'caffe-like quickstart --out DIR' sets the snapshot",
        "# prefix to DIR/mnist2d_rn_softmax.",
        "net: rn_softmax.yaml",
        "type: SGD",
        "momentum: 0.9",
        "weight_decay: 0.0005",
        f"base_lr: {_fmt(base_lr)}",
        "lr_policy: multistep",
        "gamma: 0.1",
        f"stepvalue: {flow(scaled)}",
        f"max_iter: {QUICKSTART_ITERS}",
        "test_iter: [20]",
        f"test_interval: {test_interval}",
        "test_initialization: false",
        "display: 100",
        "snapshot: 0",
        "snapshot_prefix: mnist2d_rn_softmax",
        "random_seed: 1",
    ]
    return "\n".join(lines) + "\n"


def all_files() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for net in NETS:
        folder = OUT / net
        for variant in VARIANTS:
            files[folder / f"{variant}.yaml"] = net_text(net, variant)
            files[folder / f"{variant}_solver.yaml"] = solver_text(net, variant)
        files[folder / "deploy.yaml"] = deploy_text(net)
    files[QUICKSTART / "rn_softmax.yaml"] = quickstart_net_text()
    files[QUICKSTART / "rn_softmax_solver.yaml"] = quickstart_solver_text()
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file would change")
    args = parser.parse_args(argv)
    stale = []
    for path, text in all_files().items():
        old = path.read_text() if path.exists() else None
        if old == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "differ" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}" + "".join(f"\n  {p.relative_to(REPO)}" for p in stale))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
