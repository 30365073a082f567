"""Unit tests of the prototxt reader/writer (caffe_like.spec.textformat)."""

from __future__ import annotations

import math

import pytest

from caffe_like.errors import CaffeLikeError, SpecError
from caffe_like.spec import textformat
from caffe_like.spec.textformat import MAX_DEPTH, format, parse, parse_file
from caffe_like.spec.tree import Leaf, Node, Pos

# --------------------------------------------------------------------------------------------------
# helpers


def plain(value):
    """A Node/Leaf as comparable data without positions; floats by repr (so -0.0 and nan compare)."""
    if isinstance(value, Node):
        return [(e.key, plain(e.value)) for e in value.entries]
    if value.kind == "float":
        return ("float", repr(value.value))
    return (value.kind, value.value)


def only(text: str):
    """The single value of a one-field input."""
    node = parse(text)
    assert len(node.entries) == 1, node
    return node.entries[0].value


def leaf(text: str) -> tuple:
    return plain(only(text))


def error(text: str, file: str | None = "net.prototxt") -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, file)
    return info.value


def roundtrip(node: Node) -> Node:
    return parse(format(node))


# --------------------------------------------------------------------------------------------------
# realistic files in Caffe's own syntax

LENET = """\
name: "LeNet"
layer {
  name: "mnist"
  type: "Data"
  top: "data"
  top: "label"
  include {
    phase: TRAIN
  }
  transform_param {
    scale: 0.00390625
  }
  data_param {
    source: "examples/mnist/mnist_train_lmdb"
    batch_size: 64
    backend: LMDB
  }
}
layer {
  name: "mnist"
  type: "Data"
  top: "data"
  top: "label"
  include {
    phase: TEST
  }
  transform_param {
    scale: 0.00390625
  }
  data_param {
    source: "examples/mnist/mnist_test_lmdb"
    batch_size: 100
    backend: LMDB
  }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param {
    lr_mult: 1
  }
  param {
    lr_mult: 2
  }
  convolution_param {
    num_output: 20
    kernel_size: 5
    stride: 1
    weight_filler {
      type: "xavier"
    }
    bias_filler {
      type: "constant"
    }
  }
}
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "conv1"
  top: "pool1"
  pooling_param {
    pool: MAX
    kernel_size: 2
    stride: 2
  }
}
layer {
  name: "accuracy"
  type: "Accuracy"
  bottom: "ip2"
  bottom: "label"
  top: "accuracy"
  include {
    phase: TEST
  }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "ip2"
  bottom: "label"
  top: "loss"
}
"""

V1_NET = """\
name: "CaffeNet"  # V1 layers, as in the 2014 model zoo
input: "data"
input_dim: 10
input_dim: 3
input_dim: 227
input_dim: 227
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  convolution_param {
    num_output: 96
    kernel_size: 11
    stride: 4
  }
}
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers {
  name: "drop6" type: DROPOUT bottom: "fc6" top: "fc6"
  dropout_param { dropout_ratio: 0.5 }
}
"""

SOLVER = """\
# The train/test net protocol buffer definition
net: "examples/mnist/lenet_train_test.prototxt"
test_iter: 100
test_interval: 500
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
display: 100
max_iter: 10000
snapshot: 5000
snapshot_prefix: "examples/mnist/lenet"
solver_mode: GPU
"""

ODD_STYLE = """\
name: 'odd'; layer: < name: "a" type: 'ReLU' bottom: "x", top: "x"; >
layer [{ name: "b" }, < name: "c" >] layer: []
layer { param: [{ lr_mult: 1 }, { lr_mult: 2 }] top: ["t1", 't2'] }
"""


def test_lenet_tree():
    net = parse(LENET, "lenet.prototxt")
    assert [e.key for e in net.entries] == ["name"] + ["layer"] * 6
    assert plain(net.entries[0].value) == ("str", "LeNet")
    layers = net.get_all("layer")
    assert plain(layers[0])[:5] == [
        ("name", ("str", "mnist")), ("type", ("str", "Data")), ("top", ("str", "data")),
        ("top", ("str", "label")), ("include", [("phase", ("ident", "TRAIN"))]),
    ]
    assert plain(layers[0].first("transform_param").value) == [("scale", ("float", "0.00390625"))]
    assert plain(layers[1].first("data_param").value) == [
        ("source", ("str", "examples/mnist/mnist_test_lmdb")), ("batch_size", ("int", 100)),
        ("backend", ("ident", "LMDB")),
    ]
    conv = layers[2]
    assert [plain(p) for p in conv.get_all("param")] == [[("lr_mult", ("int", 1))], [("lr_mult", ("int", 2))]]
    conv_param = conv.first("convolution_param").value
    assert plain(conv_param.first("weight_filler").value) == [("type", ("str", "xavier"))]
    assert plain(layers[3].first("pooling_param").value)[0] == ("pool", ("ident", "MAX"))


def test_lenet_positions():
    net = parse(LENET, "lenet.prototxt")
    conv = net.entries[3]
    assert conv.pos == Pos("lenet.prototxt", 36, 1)
    assert conv.value.pos == Pos("lenet.prototxt", 36, 7)
    kernel = conv.value.first("convolution_param").value.first("kernel_size")
    assert kernel.pos == Pos("lenet.prototxt", 49, 5)
    assert kernel.value.pos == Pos("lenet.prototxt", 49, 18)
    assert net.pos == Pos("lenet.prototxt", 1, 1)


def test_v1_net_with_input_header():
    net = parse(V1_NET)
    assert [plain(v) for v in net.get_all("input_dim")] == [("int", 10), ("int", 3), ("int", 227), ("int", 227)]
    assert plain(net.first("input").value) == ("str", "data")
    conv, relu, drop = net.get_all("layers")
    assert plain(conv.first("type").value) == ("ident", "CONVOLUTION")
    assert [plain(v) for v in conv.get_all("blobs_lr")] == [("int", 1), ("int", 2)]
    assert plain(relu) == [("name", ("str", "relu1")), ("type", ("ident", "RELU")),
                           ("bottom", ("str", "conv1")), ("top", ("str", "conv1"))]
    assert plain(drop.first("dropout_param").value) == [("dropout_ratio", ("float", "0.5"))]


def test_solver():
    solver = parse(SOLVER)
    assert plain(solver) == [
        ("net", ("str", "examples/mnist/lenet_train_test.prototxt")), ("test_iter", ("int", 100)),
        ("test_interval", ("int", 500)), ("base_lr", ("float", "0.01")), ("momentum", ("float", "0.9")),
        ("weight_decay", ("float", "0.0005")), ("lr_policy", ("str", "inv")), ("gamma", ("float", "0.0001")),
        ("power", ("float", "0.75")), ("display", ("int", 100)), ("max_iter", ("int", 10000)),
        ("snapshot", ("int", 5000)), ("snapshot_prefix", ("str", "examples/mnist/lenet")),
        ("solver_mode", ("ident", "GPU")),
    ]


def test_odd_but_valid_style():
    net = parse(ODD_STYLE)
    assert plain(net) == [
        ("name", ("str", "odd")),
        ("layer", [("name", ("str", "a")), ("type", ("str", "ReLU")), ("bottom", ("str", "x")),
                   ("top", ("str", "x"))]),
        ("layer", [("name", ("str", "b"))]),
        ("layer", [("name", ("str", "c"))]),
        ("layer", [("param", [("lr_mult", ("int", 1))]), ("param", [("lr_mult", ("int", 2))]),
                   ("top", ("str", "t1")), ("top", ("str", "t2"))]),
    ]


@pytest.mark.parametrize("text", [LENET, V1_NET, SOLVER, ODD_STYLE])
def test_realistic_roundtrip(text):
    node = parse(text)
    assert plain(roundtrip(node)) == plain(node)


# --------------------------------------------------------------------------------------------------
# grammar


def test_empty_input():
    assert parse("").entries == []
    assert parse("  # only a comment\n\n").entries == []
    assert parse("").pos == Pos(None, 1, 1)


@pytest.mark.parametrize("text", [
    "m { a: 1 }", "m: { a: 1 }", "m < a: 1 >", "m: < a: 1 >", "m{a:1}", "m {\n a: 1\n}\n",
])
def test_message_forms(text):
    assert plain(only(text)) == [("a", ("int", 1))]


def test_empty_messages():
    assert plain(parse("a {} b <> c: {}")) == [("a", []), ("b", []), ("c", [])]


def test_separators_after_any_field():
    text = "a: 1, b: 2; c { d: 3; }, e < >; f: [1, 2]; g: 'x',"
    assert plain(parse(text)) == [
        ("a", ("int", 1)), ("b", ("int", 2)), ("c", [("d", ("int", 3))]), ("e", []),
        ("f", ("int", 1)), ("f", ("int", 2)), ("g", ("str", "x")),
    ]


def test_repeated_fields_keep_order():
    node = parse("top: 'a' bottom: 'x' top: 'b' top: 'c'")
    assert [(e.key, e.value.value) for e in node.entries] == [
        ("top", "a"), ("bottom", "x"), ("top", "b"), ("top", "c"),
    ]


def test_scalar_list_expands_with_key_position():
    node = parse("x: 0\ndim: [1, 2,\n  3]")
    dims = [e for e in node.entries if e.key == "dim"]
    assert [plain(e.value) for e in dims] == [("int", 1), ("int", 2), ("int", 3)]
    assert all(e.pos == Pos(None, 2, 1) for e in dims)
    assert [e.value.pos for e in dims] == [Pos(None, 2, 7), Pos(None, 2, 10), Pos(None, 3, 3)]


@pytest.mark.parametrize("text", ["p: [{a: 1}, <a: 2>]", "p [{a: 1}, {a: 2}]", "p [{a: 1}, <a: 2>]"])
def test_message_lists(text):
    node = parse(text)
    assert plain(node) == [("p", [("a", ("int", 1))]), ("p", [("a", ("int", 2))])]
    assert node.entries[1].value.pos.column == text.rindex("a: 2")  # its opening bracket


@pytest.mark.parametrize("text", ["p: []", "p []", "p: [ ]  # nothing"])
def test_empty_list(text):
    assert parse(text).entries == []


def test_list_of_mixed_scalars():
    assert plain(parse("v: [1, -2.5, 'x' \"y\", FOO, -inf]")) == [
        ("v", ("int", 1)), ("v", ("float", "-2.5")), ("v", ("str", "xy")), ("v", ("ident", "FOO")),
        ("v", ("ident", "-inf")),
    ]


@pytest.mark.parametrize("text", ["'abc'", '"abc"', '"a" "bc"', "'a' \"b\" 'c'", '"ab"\n  # c\n  "c"'])
def test_string_quotes_and_concatenation(text):
    assert leaf("s: " + text) == ("str", "abc")


@pytest.mark.parametrize(("escape", "value"), [
    (r"\n", "\n"), (r"\t", "\t"), (r"\r", "\r"), (r"\\", "\\"), (r"\'", "'"), (r"\"", '"'), (r"\?", "?"),
    (r"\a", "\a"), (r"\b", "\b"), (r"\f", "\f"), (r"\v", "\v"), (r"\0", "\0"), (r"\12", "\n"),
    (r"\101", "A"), (r"\1010", "A0"), (r"\x41", "A"), (r"\x4", "\x04"), (r"\x4g", "\x04g"),
    (r"\u00e9", "é"), (r"\u20AC", "€"), (r"\U0001F600", "😀"), (r"\uD83D\uDE00", "😀"),
    (r"\303\251", "é"), (r"\xc3\xa9", "é"),
])
def test_string_escapes(escape, value):
    assert leaf(f's: "<{escape}>"') == ("str", f"<{value}>")
    assert leaf(f"s: '<{escape}>'") == ("str", f"<{value}>")


def test_escaped_bytes_split_across_literals_join():
    assert leaf(r's: "\303" "\251"') == ("str", "é")


def test_invalid_utf8_gives_bytes():
    assert leaf(r's: "\377\000a"') == ("str", b"\xff\x00a")


def test_raw_unicode_in_strings():
    assert leaf('s: "żółw 🐢 日本"') == ("str", "żółw 🐢 日本")


def test_hash_inside_string_is_not_a_comment():
    assert leaf('s: "a # b" # real comment') == ("str", "a # b")


@pytest.mark.parametrize("text", [
    "a: 1 # c\n b: 2", "# head\na: 1\n#\nb: 2 #", "a:#x\n1 b:2", "a: 1\r\nb: 2\r\n", "a:\t1\v\fb:2",
])
def test_comments_and_whitespace(text):
    assert plain(parse(text)) == [("a", ("int", 1)), ("b", ("int", 2))]


@pytest.mark.parametrize("word", ["TRAIN", "true", "false", "True", "False", "t", "f", "inf", "nan",
                                  "Infinity", "_x9", "CONVOLUTION"])
def test_identifiers(word):
    assert leaf(f"v: {word}") == ("ident", word)


@pytest.mark.parametrize(("text", "value"), [
    ("-inf", "-inf"), ("- inf", "-inf"), ("-Infinity", "-Infinity"), ("-nan", "-nan"), ("-NaN", "-NaN"),
])
def test_negative_special_floats(text, value):
    assert leaf(f"v: {text}") == ("ident", value)


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("42", 42), ("-3", -3), ("- 3", -3), ("-\n# c\n3", -3), ("0x1F", 31), ("0X1f", 31),
    ("-0x10", -16), ("017", 15), ("00", 0), ("-017", -15), ("18446744073709551616", 2**64),
    ("9" * 1000, int("9" * 1000)),
])
def test_integers(text, value):
    got = only(f"v: {text}")
    assert got.kind == "int" and type(got.value) is int and got.value == value


@pytest.mark.parametrize(("text", "value"), [
    ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("1e-5", 1e-5), ("1.5E+3", 1500.0), ("1e5", 1e5),
    ("1.5f", 1.5), ("1.5F", 1.5), ("1f", 1.0), ("0f", 0.0), ("1e2f", 100.0), (".5e-3", 5e-4),
    ("0.1", 0.1), ("-2.5", -2.5), ("- 0.25", -0.25), ("0.00390625", 0.00390625), ("1e400", math.inf),
    ("3.4028234663852886e38", 3.4028234663852886e38), ("0.0", 0.0),
])
def test_floats(text, value):
    got = only(f"v: {text}")
    assert got.kind == "float" and type(got.value) is float and got.value == value


def test_negative_zero_keeps_its_sign():
    got = only("v: -0.0")
    assert got.kind == "float" and math.copysign(1.0, got.value) == -1.0


def test_integer_literal_stays_int():
    assert leaf("lr_mult: 1") == ("int", 1)
    assert leaf("base_lr: 1.0") == ("float", "1.0")


# --------------------------------------------------------------------------------------------------
# positions


def test_positions_of_keys_leaves_and_blocks():
    text = "name: 'x'\nlayer {\n  # comment\n\tinclude < phase: TEST >\n  v: - 3\n}\n"
    node = parse(text, "p.prototxt")
    name, layer = node.entries
    assert name.pos == Pos("p.prototxt", 1, 1)
    assert name.value.pos == Pos("p.prototxt", 1, 7)
    assert layer.pos == Pos("p.prototxt", 2, 1)
    assert layer.value.pos == Pos("p.prototxt", 2, 7)
    include, v = layer.value.entries
    assert include.pos == Pos("p.prototxt", 4, 2)  # a tab is one column
    assert include.value.pos == Pos("p.prototxt", 4, 10)
    phase = include.value.entries[0]
    assert (phase.pos.line, phase.pos.column, phase.value.pos.column) == (4, 12, 19)
    assert v.value.pos == Pos("p.prototxt", 5, 6)  # a negative number starts at its '-'


def test_positions_after_crlf_and_multiline_strings():
    node = parse('a: "x"\r\n   "y"\r\nb: 1', "f")
    assert node.entries[0].value.pos == Pos("f", 1, 4)
    assert node.entries[1].pos == Pos("f", 3, 1)


def test_top_level_node_starts_at_first_key():
    assert parse("\n\n  a: 1").pos == Pos(None, 3, 3)


# --------------------------------------------------------------------------------------------------
# errors

ERRORS = [
    # (text, words in the message, line, column)
    ('a: "abc', "unterminated string", 1, 4),
    ("a: 'abc\"\n", "unterminated string", 1, 4),
    ('a: "ab\ncd"', "unterminated string", 1, 4),
    ("layer {\n  b: 1\n\n", "expected '}' to close the block opened at line 1", 4, 1),
    ("a {\n b < c: 1 }", "expected '>' to close the block opened at line 2", 2, 11),
    ("a { b: 1 >", "expected '}' to close the block opened at line 1", 1, 10),
    ("foo 3", "expected ':' or '{' after field name 'foo'", 1, 5),
    ("foo\n", "expected ':' or '{' after field name 'foo'", 2, 1),
    ("a: @", "unexpected character '@'", 1, 4),
    ("a: 1\nb: 2 /* c */", "unexpected character '/'", 2, 6),
    ("a = 1", "unexpected character '='", 1, 3),
    ("a: +1", "unexpected character '+'", 1, 4),
    ("a: x.y", "unexpected character '.'", 1, 5),
    ("a: \x00", "unexpected character 'U+0000'", 1, 4),
    ("\ufeffa: 1", "byte-order mark", 1, 1),
    ("[foo.bar] { a: 1 }", "extension", 1, 1),
    ("a: 1 }", "unexpected '}' with no open block", 1, 6),
    ("a: 1 >", "unexpected '>' with no open block", 1, 6),
    ("a:", "expected a value for field 'a', got the end of the file", 1, 3),
    ("a: }", "expected a value for field 'a', got '}'", 1, 4),
    ("a: :", "expected a value for field 'a', got ':'", 1, 4),
    ("a: -foo", "expected a number, inf or nan after '-'", 1, 5),
    ("a: - 'x'", "expected a number, inf or nan after '-'", 1, 6),
    ("a: 1 2", "expected a field name, got the number 2", 1, 6),
    ("1: 2", "expected a field name, got the number 1", 1, 1),
    ("'a': 2", "expected a field name, got the string 'a'", 1, 1),
    ("a: 09", "octal", 1, 4),
    ("a: 017.5", "octal", 1, 4),
    ("a: 1abc", "invalid number '1abc'", 1, 4),
    ("a: 1.2.3", "invalid number '1.2.3'", 1, 4),
    ("a: 0x", "invalid number '0x'", 1, 4),
    ("a: 0xZZ", "invalid number '0xZZ'", 1, 4),
    ("a: 1e", "invalid number '1e'", 1, 4),
    ("a: 1e+", "invalid number '1e+'", 1, 4),
    ("a: 1.5ff", "invalid number '1.5ff'", 1, 4),
    ('a: "x\\q"', "invalid escape sequence '\\q'", 1, 6),
    ('a: "x\\"', "unterminated string", 1, 4),
    ('a: "\\400"', "octal escape '\\400' is larger than \\377", 1, 5),
    ('a: "\\U00110000"', "beyond the last code point", 1, 5),
    ('a: "\\u12"', "invalid escape sequence", 1, 5),
    ("a: [1, 2,]", "expected a value for field 'a', got ']'", 1, 10),
    ("a: [1 2]", "expected ',' or ']' in the list 'a' opened at line 1", 1, 7),
    ("a: [1,\n 2", "expected ',' or ']'", 2, 3),
    ("a: [1, {b: 1}]", "holds values, not messages", 1, 8),
    ("a: [{b: 1}, 2]", "holds messages", 1, 13),
    ("a [1, 2]", "a list without ':'", 1, 4),
    ("a: [[1]]", "expected a value for field 'a', got '['", 1, 5),
    ("a: 1;; b: 2", "expected a field name, got ';'", 1, 6),
    ('a: "x\\\ny"', "unterminated string", 1, 4),
    ("a: " + "9" * 5000, "integer literal of 5000 digits is too long", 1, 4),
    ("a: 1 b: 2 }", "unexpected '}'", 1, 11),
]


@pytest.mark.parametrize(("text", "words", "line", "column"), ERRORS)
def test_errors_name_file_line_column_and_culprit(text, words, line, column):
    err = error(text)
    assert words in err.message
    assert (err.file, err.line, err.column) == ("net.prototxt", line, column)
    assert str(err).startswith(f"net.prototxt:{line}:{column}: ")
    assert isinstance(err, CaffeLikeError)


@pytest.mark.parametrize(("text", "fix"), [
    ('a: "abc', "close the string"),
    ("a { b: 1", "add '}'"),
    ("foo 3", "foo: value"),
    ("a: 1abc", "space"),
    ("a: 1.2.3", "one decimal point"),
    ("a: 1e", "exponent"),
    ("a: 0x", "hexadecimal"),
    ("[foo.bar] {}", "plain name"),
    ('a: "\\q"', "backslash"),
])
def test_errors_suggest_a_fix(text, fix):
    assert fix in (error(text).fix or "")


def test_error_without_file_has_position():
    err = error("a: @", file=None)
    assert err.file is None and (err.line, err.column) == (1, 4)


def test_first_error_wins():
    err = error("a: 1\nb: @\nc: 'unterminated")
    assert (err.line, err.message) == (2, "unexpected character '@'")


def test_depth_limit():
    ok = "a {" * MAX_DEPTH + "}" * MAX_DEPTH
    node = parse(ok)
    for _ in range(MAX_DEPTH):
        node = node.entries[0].value
    assert node.entries == []
    err = error("a {" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1))
    assert f"nested more than {MAX_DEPTH} deep" in err.message and err.line == 1
    err = error("a: [" * 5000)
    assert err.line == 1
    err = error("a {" * 100000)
    assert "nested" in err.message


def test_huge_input_is_fine():
    text = "layer { name: 'x' top: 'y' param { lr_mult: 1 } }\n" * 20000
    assert len(parse(text).entries) == 20000
    err = error(text + "oops")
    assert err.line == 20001


def test_non_string_input():
    with pytest.raises(SpecError, match="must be a str"):
        parse(b"a: 1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# parse_file


def test_parse_file_positions_name_the_file(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text("name: 'n'\nlayer { name: 'ü' }\n", encoding="utf-8")
    node = parse_file(path)
    assert node.entries[1].pos == Pos(str(path), 2, 1)
    assert node.entries[1].value.entries[0].value.value == "ü"


def test_parse_file_not_utf8(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_bytes(b"name: 'n'\nlayer { name: '\xff' }\n")
    with pytest.raises(SpecError) as info:
        parse_file(path)
    err = info.value
    assert err.file == str(path) and (err.line, err.column) == (2, 16)
    assert "UTF-8" in err.message and "0xff" in err.message


def test_parse_file_missing(tmp_path):
    with pytest.raises(SpecError) as info:
        parse_file(tmp_path / "nope.prototxt")
    assert info.value.file == str(tmp_path / "nope.prototxt")
    assert "cannot read" in info.value.message


def test_parse_file_syntax_error_names_file(tmp_path):
    path = tmp_path / "x.prototxt"
    path.write_text("a {\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"x\.prototxt:2:1: expected '}'"):
        parse_file(path)


# --------------------------------------------------------------------------------------------------
# writer


def _node(*entries) -> Node:
    node = Node()
    for key, value in entries:
        node.add(key, value)
    return node


def test_format_layout():
    node = parse("name: 'n' layer { name: 'c' param { lr_mult: 1 } top: 'c' } v: -inf")
    assert format(node) == (
        'name: "n"\n'
        "layer {\n"
        '  name: "c"\n'
        "  param {\n"
        "    lr_mult: 1\n"
        "  }\n"
        '  top: "c"\n'
        "}\n"
        "v: -inf\n"
    )
    assert format(node, indent=4).splitlines()[3] == "    param {"
    assert format(node, indent=0).splitlines()[3] == "param {"


def test_format_empty_node_and_empty_block():
    assert format(Node()) == ""
    assert format(_node(("a", Node()))) == "a {\n}\n"


@pytest.mark.parametrize(("value", "text"), [
    (0.1, "0.1"), (1e-5, "1e-05"), (3.4028234663852886e38, "3.4028234663852886e+38"), (-0.0, "-0.0"),
    (2.0, "2.0"), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"), (5e-324, "5e-324"),
    (3, "3.0"),
])
def test_format_floats(value, text):
    assert format(_node(("v", Leaf(value, "float")))) == f"v: {text}\n"


@pytest.mark.parametrize("value", [0.1, 1e-5, 3.4028234663852886e38, -0.0, 0.0, 1e22, 2.5e-308, 5e-324,
                                   1.7976931348623157e308, 0.00390625, math.inf, -math.inf, math.nan])
def test_floats_roundtrip_exactly(value):
    back = only(format(_node(("v", Leaf(value, "float")))))
    if math.isinf(value) or math.isnan(value):
        assert back.kind == "ident"
        assert math.isnan(float(back.value)) if math.isnan(value) else float(back.value) == value
    else:
        assert back.kind == "float" and repr(back.value) == repr(value)


def test_format_scalars_of_every_kind():
    node = _node(("i", Leaf(-7, "int")), ("b", Leaf(True, "bool")), ("c", Leaf(False, "bool")),
                 ("e", Leaf("TRAIN", "ident")), ("s", Leaf("x", "str")), ("n", Leaf(-(2**70), "int")))
    assert format(node) == 'i: -7\nb: true\nc: false\ne: TRAIN\ns: "x"\nn: -1180591620717411303424\n'


def test_format_string_escapes():
    node = _node(("s", Leaf("q\"b\\n\n\r\t\x00\x7f'é😀\u200b\x85", "str")))
    assert format(node) == 's: "q\\"b\\\\n\\n\\r\\t\\000\\177\'é😀\\342\\200\\213\\302\\205"\n'


def test_format_bytes():
    assert format(_node(("s", Leaf(b"\xff\x00a\"\n", "str")))) == 's: "\\377\\000a\\"\\n"\n'


EVERY_ESCAPE = "".join(chr(c) for c in range(0, 0x80)) + "é€😀\u200b\x85\ufeff" + '\\"\'?'


@pytest.mark.parametrize("value", [EVERY_ESCAPE, "", "unicode: żółw 🐢 日本", "\\x41\\101", b"\xff\xfe", b"\x80"])
def test_strings_roundtrip(value):
    assert only(format(_node(("s", Leaf(value, "str"))))).value == value


@pytest.mark.parametrize(("leaf_", "words"), [
    (Leaf("not an ident", "ident"), "not a valid 'ident'"),
    (Leaf("-foo", "ident"), "not a valid 'ident'"),
    (Leaf("1", "int"), "not a valid 'int'"),
    (Leaf(True, "int"), "not a valid 'int'"),
    (Leaf("x", "float"), "not a valid 'float'"),
    (Leaf(1, "bool"), "not a valid 'bool'"),
    (Leaf(3, "str"), "not a valid 'str'"),
    (Leaf(3, "weird"), "not a valid 'weird'"),
    (Leaf(10**1000, "int"), "too large"),
])
def test_format_rejects_bad_leaves(leaf_, words):
    with pytest.raises(SpecError, match=words):
        format(_node(("v", leaf_)))


@pytest.mark.parametrize("key", ["", "a b", "1a", "a.b", "[ext]"])
def test_format_rejects_bad_keys(key):
    node = Node()
    node.add(key, Leaf(1, "int"), Pos("f.yaml", 3, 2))
    with pytest.raises(SpecError, match="not an identifier") as info:
        format(node)
    assert (info.value.file, info.value.line) == ("f.yaml", 3)


def test_format_depth_limit():
    node = Node()
    inner = node
    for _ in range(MAX_DEPTH + 1):
        child = Node()
        inner.add("a", child)
        inner = child
    with pytest.raises(SpecError, match="nested"):
        format(node)


def test_format_then_parse_is_identity_on_positions_free_tree():
    node = parse(LENET + V1_NET + SOLVER)
    text = format(node)
    assert format(parse(text)) == text


# --------------------------------------------------------------------------------------------------
# cross-check with the protobuf package's own text-format parser and printer


def _protobuf_message_class():
    """A dynamic message covering every scalar kind, built from a FileDescriptorProto."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="textformat_test.proto", package="tftest", syntax="proto2")
    enum = proto.enum_type.add(name="Phase")
    enum.value.add(name="TRAIN", number=0)
    enum.value.add(name="TEST", number=1)
    msg = proto.message_type.add(name="T")
    fields = [("s", F.TYPE_STRING), ("f", F.TYPE_FLOAT), ("d", F.TYPE_DOUBLE), ("i", F.TYPE_INT64),
              ("b", F.TYPE_BOOL), ("e", F.TYPE_ENUM), ("child", F.TYPE_MESSAGE), ("raw", F.TYPE_BYTES)]
    for number, (name, ftype) in enumerate(fields, start=1):
        field = msg.field.add(name=name, number=number, type=ftype, label=F.LABEL_REPEATED)
        if ftype == F.TYPE_ENUM:
            field.type_name = ".tftest.Phase"
        if ftype == F.TYPE_MESSAGE:
            field.type_name = ".tftest.T"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tftest.T"))


def test_protobuf_accepts_our_output():
    from google.protobuf import text_format

    cls = _protobuf_message_class()
    node = _node(
        ("s", Leaf(EVERY_ESCAPE, "str")), ("s", Leaf("żółw", "str")),
        ("d", Leaf(0.1, "float")), ("d", Leaf(-0.0, "float")), ("d", Leaf(math.inf, "float")),
        ("d", Leaf(-math.inf, "float")), ("d", Leaf(1e-300, "float")), ("f", Leaf(1.5, "float")),
        ("i", Leaf(-(2**63), "int")), ("b", Leaf(True, "bool")), ("b", Leaf("false", "ident")),
        ("e", Leaf("TEST", "ident")), ("child", _node(("i", Leaf(3, "int")), ("child", Node()))),
        ("raw", Leaf(b"\xff\x00", "str")),
    )
    msg = text_format.Parse(format(node), cls())
    assert list(msg.s) == [EVERY_ESCAPE, "żółw"]
    assert [repr(v) for v in msg.d] == ["0.1", "-0.0", "inf", "-inf", "1e-300"]
    assert list(msg.i) == [-(2**63)] and list(msg.b) == [True, False] and list(msg.e) == [1]
    assert msg.child[0].i == [3] and len(msg.child[0].child) == 1
    assert list(msg.raw) == [b"\xff\x00"]


def test_we_accept_protobufs_output():
    from google.protobuf import text_format

    cls = _protobuf_message_class()
    msg = cls(s=["a\"\n\\é", "\x00\x7f"], d=[0.1, 1e-5, math.inf, -math.inf], f=[0.1], i=[-5, 2**62],
              b=[True, False], e=[1], raw=[b"\xff\x01"])
    msg.child.add(i=[1]).child.add()
    for as_utf8 in (False, True):
        node = parse(text_format.MessageToString(msg, as_utf8=as_utf8))
        assert [leaf_.value for leaf_ in node.get_all("s")] == ["a\"\n\\é", "\x00\x7f"]
        assert [plain(leaf_) for leaf_ in node.get_all("d")] == [
            ("float", "0.1"), ("float", "1e-05"), ("ident", "inf"), ("ident", "-inf"),
        ]
        assert [leaf_.value for leaf_ in node.get_all("i")] == [-5, 2**62]
        assert [plain(leaf_) for leaf_ in node.get_all("b")] == [("ident", "true"), ("ident", "false")]
        assert plain(node.first("e").value) == ("ident", "TEST")
        assert plain(node.first("child").value) == [("i", ("int", 1)), ("child", [])]
        assert node.first("raw").value.value == b"\xff\x01"


def test_module_exports():
    assert set(textformat.__all__) == {"parse", "parse_file", "format", "MAX_DEPTH"}
