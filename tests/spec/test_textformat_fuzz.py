"""Property-based tests of the prototxt reader/writer.

1. Random text never makes :func:`parse` raise anything but a located CaffeLikeError; whatever parses
   survives a format/parse round trip.
2. Valid Caffe prototxts with random mutations: the same.
3. Random trees of every leaf kind round-trip through format/parse exactly.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_like.errors import CaffeLikeError
from caffe_like.spec.textformat import format, parse
from caffe_like.spec.tree import Leaf, Node

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


def plain(value):
    """A Node/Leaf as comparable data without positions; floats by repr (so -0.0 and nan compare)."""
    if isinstance(value, Node):
        return [(e.key, plain(e.value)) for e in value.entries]
    if value.kind == "float":
        return ("float", repr(value.value))
    return (value.kind, value.value)


def check_parse(text: str) -> None:
    """``parse`` either fails with a located CaffeLikeError or gives a tree that round-trips."""
    try:
        node = parse(text, "fuzz.prototxt")
    except CaffeLikeError as err:
        assert err.file == "fuzz.prototxt"
        assert err.line is not None and err.column is not None
        assert 1 <= err.line <= text.count("\n") + 1
        return
    assert plain(parse(format(node))) == plain(node)


# --------------------------------------------------------------------------------------------------
# 1. random text

PROTOTXT_ALPHABET = "{}<>[]:;,-#\"'\\ \n\t\r.+eExXfFuU01789abcTRAIN_ \u00e9\x00"


@settings(max_examples=400, **SETTINGS)
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=200))
def test_random_unicode(text):
    if _has_surrogate(text):
        _parse_or_spec_error(text)
    else:
        check_parse(text)


@settings(max_examples=400, **SETTINGS)
@given(st.text(alphabet=PROTOTXT_ALPHABET, max_size=300))
def test_random_prototxt_characters(text):
    check_parse(text)


@settings(max_examples=300, **SETTINGS)
@given(st.binary(max_size=300), st.sampled_from(["replace", "latin-1"]))
def test_random_bytes(data, how):
    text = data.decode("latin-1") if how == "latin-1" else data.decode("utf-8", errors="replace")
    check_parse(text)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _parse_or_spec_error(text: str) -> None:
    """For text with lone surrogates (not UTF-8 encodable), only require the error contract."""
    try:
        parse(text, "fuzz.prototxt")
    except CaffeLikeError as err:
        assert err.line is not None


# --------------------------------------------------------------------------------------------------
# 2. mutated valid files

SEEDS = [
    """\
name: "LeNet"
layer {
  name: "mnist"  type: "Data"  top: "data"  top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param { source: "examples/mnist/mnist_train_lmdb"  batch_size: 64  backend: LMDB }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  convolution_param {
    num_output: 20  kernel_size: 5  stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: -0.5e-3 }
  }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" loss_weight: 1.0f }
""",
    """\
name: "CaffeNet"   # V1
input: "data"
input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param < num_output: 96 kernel_size: 11 stride: 4 >
}
""",
    """\
net: 'lenet.prototxt'; test_iter: [100, 0x10, 017]
base_lr: 0.01, lr_policy: "multistep" stepvalue: 5000 stepvalue: 7000
param: [{ lr_mult: 1 }, < lr_mult: 2 >] clip: -inf eps: - 1e-8
snapshot_prefix: "a\\tb\\x41\\101\\u00e9\\U0001F600" 'tail' solver_mode: GPU
""",
]

_TOKEN_SPLIT = re.compile(r"""\s+|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[A-Za-z0-9_.+-]+|.""", re.S)
JUNK = "{}<>[]:;,-#\"'\\@$%^&*=/?.\x00\ufeff\u00e9 \n"


@st.composite
def mutated_prototxt(draw) -> str:
    """A seed file with one to four random token-level or character-level mutations."""
    tokens = _TOKEN_SPLIT.findall(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete_brace", "delete", "duplicate", "swap", "truncate", "junk"]))
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        if op == "delete_brace":
            braces = [k for k, t in enumerate(tokens) if t in "{}<>[]"]
            if braces:
                del tokens[draw(st.sampled_from(braces))]
        elif op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "truncate":
            text = "".join(tokens)
            tokens = [text[: draw(st.integers(0, len(text)))]]
        else:
            tokens.insert(i, draw(st.text(alphabet=JUNK, min_size=1, max_size=3)))
    return "".join(tokens)


def test_seeds_are_valid():
    for seed in SEEDS:
        check_parse(seed)
        assert parse(seed).entries


@settings(max_examples=700, **SETTINGS)
@given(mutated_prototxt())
def test_mutated_prototxt(text):
    check_parse(text)


# --------------------------------------------------------------------------------------------------
# 3. random trees

keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
idents = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.sampled_from(["-inf", "-nan", "-Infinity", "true", "false", "TRAIN"]),
)
invalid_utf8 = st.binary(max_size=12).filter(lambda b: not _is_utf8(b))
leaves = st.one_of(
    st.builds(Leaf, st.text(max_size=20), st.just("str")),
    st.builds(Leaf, invalid_utf8, st.just("str")),
    st.builds(Leaf, idents, st.just("ident")),
    st.builds(Leaf, st.integers(), st.just("int")),
    st.builds(Leaf, st.floats(allow_nan=False, allow_infinity=False), st.just("float")),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _make_node(entries) -> Node:
    node = Node()
    for key, value in entries:
        node.add(key, value)
    return node


trees = st.recursive(
    st.lists(st.tuples(keys, leaves), max_size=5).map(_make_node),
    lambda children: st.lists(st.tuples(keys, st.one_of(leaves, children)), max_size=5).map(_make_node),
    max_leaves=30,
)


@settings(max_examples=500, **SETTINGS)
@given(trees, st.integers(0, 4))
def test_random_trees_roundtrip(tree, indent):
    assert plain(parse(format(tree, indent=indent))) == plain(tree)


@settings(max_examples=200, **SETTINGS)
@given(st.floats())
def test_every_float_roundtrips(value):
    back = parse(format(_make_node([("v", Leaf(value, "float"))]))).entries[0].value
    if math.isfinite(value):
        assert back.kind == "float" and repr(back.value) == repr(value)
    else:
        assert back.kind == "ident" and repr(float(back.value)) == repr(value)
