"""caffe_like.spec.binary: protobuf descriptors built from the schema, binary encode/decode."""

from __future__ import annotations

import ast
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from caffe_like.errors import SpecError, WeightsError
from caffe_like.spec import binary, params
from caffe_like.spec.schema import EnumType, Message, enum, fields_of, has, message, repeated, scalar

from shared_paths import CAFFE_CASES

CASES = CAFFE_CASES
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason=f"Caffe reference cases not found at {CASES} "
                                                           "(set CAFFE_LIKE_CASES)")

_FD = binary.descriptor_pb2.FieldDescriptorProto


# --------------------------------------------------------------------------------------------------
# independent wire-format helpers (so the tests do not trust the code under test)


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def reachable(root: type) -> list[type]:
    seen, stack = [root], [root]
    while stack:
        for info in fields_of(stack.pop()):
            if info.ptype == "message" and info.message_cls() not in seen:
                seen.append(info.message_cls())
                stack.append(info.message_cls())
    return seen


# --------------------------------------------------------------------------------------------------
# descriptors


@pytest.mark.parametrize("raw", [False, True])
def test_descriptors_mirror_the_schema(raw):
    """Every message reachable from NetParameter: same fields, numbers, labels, types, packing."""
    for cls in reachable(params.NetParameter):
        desc = binary.proto_class(cls, raw_blobs=raw).DESCRIPTOR
        infos = fields_of(cls)
        assert [f.name for f in desc.fields] == [i.name for i in infos], cls.__name__
        for info in infos:
            fd = desc.fields_by_name[info.name]
            assert fd.number == info.number
            assert fd.is_repeated == info.repeated
            if info.ptype == "message":
                assert fd.message_type.name.startswith(info.message_cls().__name__)
            elif info.ptype == "enum":
                assert {v.name: v.number for v in fd.enum_type.values} == info.enum.values
            elif raw and binary.is_raw_field(info):
                assert fd.type == fd.TYPE_BYTES
            else:
                assert fd.type == getattr(fd, "TYPE_" + info.ptype.upper()), (cls.__name__, info.name)
                assert fd.GetOptions().packed == (info.repeated and info.packed)


def test_blobproto_packing_as_caffe_proto_declares():
    desc = binary.proto_class(params.BlobProto, raw_blobs=False).DESCRIPTOR
    for name in ("data", "diff", "double_data", "double_diff"):
        assert desc.fields_by_name[name].GetOptions().packed
    assert binary.proto_class(params.BlobShape, raw_blobs=False).DESCRIPTOR.fields_by_name["dim"].GetOptions().packed
    raw = binary.proto_class(params.BlobProto).DESCRIPTOR
    assert {f.name for f in raw.fields if f.type == f.TYPE_BYTES} == {"data", "diff", "double_data", "double_diff"}


def test_classes_are_cached():
    assert binary.proto_class(params.NetParameter) is binary.proto_class(params.NetParameter)
    assert binary.proto_class(params.BlobProto) is not binary.proto_class(params.BlobProto, raw_blobs=False)


def test_enums_do_not_clash():
    """Two enums with the same value names (and one with the same type name) live side by side."""
    mode_a = EnumType("Mode", DEFAULT=0, FAST=1)
    mode_b = EnumType("Mode", DEFAULT=0, SLOW=2)

    @dataclass
    class TwoEnums(Message):
        a: str = enum(1, mode_a, "DEFAULT", "a")
        b: str = enum(2, mode_b, "DEFAULT", "b")
        phase: str = enum(3, params.PHASE, "TRAIN", "phase")

    msg = TwoEnums(a="FAST", b="SLOW", phase="TEST")
    data = binary.encode(msg)
    assert data == key(1, 0) + varint(1) + key(2, 0) + varint(2) + key(3, 0) + varint(1)
    back = binary.decode(data, TwoEnums)
    assert (back.a, back.b, back.phase) == ("FAST", "SLOW", "TEST")


def test_duplicate_field_number_is_a_schema_error():
    @dataclass
    class Broken(Message):
        a: int = scalar(1, "int32", 0, "a")
        b: int = scalar(1, "int32", 0, "b")

    with pytest.raises(SpecError, match="share the protobuf field number 1"):
        binary.proto_class(Broken)


# --------------------------------------------------------------------------------------------------
# encode / decode of ordinary messages


def test_encode_matches_hand_written_wire_bytes():
    conv = params.ConvolutionParameter(num_output=20, kernel_size=[5], stride=[1],
                                       weight_filler=params.FillerParameter(type="xavier"))
    expected = (key(1, 0) + varint(20) + key(4, 0) + varint(5) + key(6, 0) + varint(1)
                + ld(7, ld(1, b"xavier")))
    assert binary.encode(conv) == expected
    assert binary.encode(conv, raw_blobs=False) == expected


def test_presence_is_exactly_what_was_on_the_wire():
    # bias_term given with its default value (true) and group not given at all
    data = key(1, 0) + varint(8) + key(2, 0) + varint(1)
    conv = binary.decode(data, params.ConvolutionParameter)
    assert conv.num_output == 8 and conv.bias_term is True
    assert has(conv, "num_output") and has(conv, "bias_term")
    assert not has(conv, "group") and conv.group == 1
    assert conv.weight_filler is None and not has(conv, "weight_filler")
    assert binary.encode(conv) == data  # defaults given explicitly are written back


def test_empty_submessage_is_present():
    layer = params.LayerParameter(name="c", convolution_param=params.ConvolutionParameter())
    data = binary.encode(layer)
    assert data == ld(1, b"c") + ld(106, b"")
    back = binary.decode(data, params.LayerParameter)
    assert has(back, "convolution_param") and back.convolution_param == params.ConvolutionParameter()


def test_negative_and_large_integers():
    filler = params.FillerParameter()
    filler.sparse = -1  # given explicitly (the constructor treats a default value as not given)
    assert binary.encode(filler) == key(7, 0) + varint(-1)
    assert binary.decode(binary.encode(filler), params.FillerParameter).sparse == -1
    shape = params.BlobShape(dim=[2**40, 3])
    assert binary.decode(binary.encode(shape), params.BlobShape).dim == [2**40, 3]


def test_net_round_trip():
    net = params.NetParameter(
        name="tiny",
        input=["data"],
        input_dim=[1, 3, 4, 4],
        state=params.NetState(phase="TRAIN", stage=["a", "b"]),
        layer=[
            params.LayerParameter(
                name="conv", type="Convolution", bottom=["data"], top=["conv"], phase="TEST",
                loss_weight=[0.5], propagate_down=[True, False],
                param=[params.ParamSpec(lr_mult=1.0), params.ParamSpec(lr_mult=2.0, decay_mult=0.0)],
                include=[params.NetStateRule(phase="TEST", min_level=-2, stage=["x"])],
                convolution_param=params.ConvolutionParameter(num_output=4, pad=[1, 2], engine="CUDNN"),
            ),
        ],
    )
    data = binary.encode(net)
    back = binary.decode(data, params.NetParameter)
    assert back == net
    assert binary.encode(back) == data
    assert binary.encode(net, raw_blobs=False) == data
    assert has(back.layer[0], "name") and not has(back.layer[0], "blobs")


def test_bytes_and_string_fields():
    @dataclass
    class Blobby(Message):
        raw: bytes = scalar(1, "bytes", b"", "bytes")
        text: str = scalar(2, "string", "", "text")
        many: list = repeated(3, "bytes", "several")

    msg = Blobby(raw=b"\x00\xff", text="héllo", many=[b"a", "b\xe9"])
    data = binary.encode(msg)
    back = binary.decode(data, Blobby)
    assert back.raw == b"\x00\xff" and back.text == "héllo" and back.many == [b"a", b"b\xe9"]


def test_skip_and_to_proto():
    layer = params.LayerParameter(name="x", type="T", blobs=[params.BlobProto(data=[1.0])])
    pb = binary.to_proto(layer, skip=("blobs",))
    assert len(pb.blobs) == 0 and pb.name == "x"
    back = binary.from_proto(binary.to_proto(layer), params.LayerParameter, skip=("blobs",))
    assert back.blobs == [] and back.name == "x"


def test_encode_errors_are_spec_errors():
    with pytest.raises(SpecError, match="num_output"):
        binary.encode(params.ConvolutionParameter(num_output="five"))
    with pytest.raises(SpecError, match="engine"):
        binary.encode(params.ConvolutionParameter(engine="TURBO"))


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\xff\xff\xff", b"\x0b", b"\x0a\x02\xff\xfe"])
def test_decode_garbage_raises_weights_error(data):
    with pytest.raises(WeightsError, match="NetParameter"):
        binary.decode(data, params.NetParameter)


def test_unknown_fields_are_reported_and_ignored():
    data = ld(1, b"n") + ld(555, b"whatever") + key(556, 0) + varint(3)
    net = binary.decode(data, params.NetParameter)
    assert net.name == "n"
    pb = binary.proto_class(params.NetParameter).FromString(data)
    assert binary.unknown_field_paths(pb) == ["#555", "#556"]


# --------------------------------------------------------------------------------------------------
# blobs: the raw fast path is byte-identical to the plain protobuf encoding


SPECIAL = [0.0, -0.0, 1.5, -2.25, math.inf, -math.inf, math.nan, 1e-45, 3.4028234663852886e38]


def _blob(**kw) -> params.BlobProto:
    return params.BlobProto(**kw)


@pytest.mark.parametrize("blob", [
    _blob(shape=params.BlobShape(dim=[3, 3]), data=SPECIAL),
    _blob(shape=params.BlobShape(dim=[9]), data=SPECIAL, diff=list(reversed(SPECIAL))),
    _blob(shape=params.BlobShape(dim=[9]), double_data=SPECIAL, double_diff=[0.1] * 9),
    _blob(num=1, channels=1, height=3, width=3, data=list(np.linspace(-1, 1, 9, dtype=np.float32))),
    _blob(shape=params.BlobShape()),
    _blob(data=[]),
], ids=["float", "float+diff", "double", "legacy", "scalar-shape", "empty"])
def test_raw_and_plain_encodings_are_identical(blob):
    raw = binary.encode(blob)
    plain = binary.encode(blob, raw_blobs=False)
    assert raw == plain
    for variant in (True, False):
        back = binary.decode(raw, params.BlobProto, raw_blobs=variant)
        assert binary.encode(back) == raw
        for name in ("data", "diff", "double_data", "double_diff"):
            got, want = np.array(getattr(back, name)), np.array(getattr(blob, name))
            dtype = "<f8" if name.startswith("double") else "<f4"
            assert got.astype(dtype).tobytes() == want.astype(dtype).tobytes(), name


def test_packed_float_is_caffes_encoding():
    blob = _blob(shape=params.BlobShape(dim=[2]), data=[1.0, -2.0])
    assert binary.encode(blob) == ld(5, struct.pack("<2f", 1.0, -2.0)) + ld(7, ld(1, varint(2)))


def test_large_blob_through_encode_decode():
    values = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    blob = _blob(shape=params.BlobShape(dim=[100, 1000]), data=values)  # an array works as the list
    data = binary.encode(blob)
    assert data == ld(5, values.tobytes()) + ld(7, ld(1, varint(100) + varint(1000)))
    back = binary.decode(data, params.BlobProto)
    assert np.array_equal(np.array(back.data, np.float32), values)


def test_unpacked_floats_fall_back_to_real_float_fields():
    values = [1.0, 2.5, -3.0]
    data = b"".join(key(5, 5) + struct.pack("<f", v) for v in values)
    data += b"".join(key(8, 1) + struct.pack("<d", v) for v in values[:2])
    data += ld(7, ld(1, varint(3)))
    pb = binary.proto_class(params.BlobProto).FromString(data)
    assert binary.raw_blob_fallback_needed(pb, params.BlobProto)
    with pytest.raises(ValueError, match="unpacked"):
        binary.from_proto(pb, params.BlobProto)
    blob = binary.decode(data, params.BlobProto)
    assert blob.data == values and blob.double_data == values[:2] and blob.shape.dim == [3]
    # nested inside a net as well
    net = binary.decode(ld(100, ld(7, data)), params.NetParameter)
    assert net.layer[0].blobs[0].data == values


def test_several_packed_chunks_are_concatenated():
    data = ld(5, struct.pack("<2f", 1, 2)) + ld(5, struct.pack("<f", 3))
    assert binary.decode(data, params.BlobProto).data == [1.0, 2.0, 3.0]
    assert binary.decode(data, params.BlobProto, raw_blobs=False).data == [1.0, 2.0, 3.0]


def test_bad_packed_payload_length():
    with pytest.raises(WeightsError, match="whole number"):
        binary.decode(ld(5, b"\x00\x00\x80"), params.BlobProto)


def test_net_with_blobs_raw_equals_plain():
    rng = np.random.default_rng(1)
    layers = [
        params.LayerParameter(name=f"l{i}", type="InnerProduct", phase="TEST",
                              blobs=[_blob(shape=params.BlobShape(dim=[4, 3]),
                                           data=rng.standard_normal(12).astype(np.float32).tolist()),
                                     _blob(shape=params.BlobShape(dim=[4]), data=[0.5] * 4)])
        for i in range(3)
    ]
    net = params.NetParameter(name="n", layer=layers)
    assert binary.encode(net) == binary.encode(net, raw_blobs=False)
    assert binary.decode(binary.encode(net), params.NetParameter) == net


# --------------------------------------------------------------------------------------------------
# real Caffe files


def _caffemodels() -> list[Path]:
    return sorted(CASES.glob("*/*/*.caffemodel")) if CASES.is_dir() else []


@needs_cases
def test_decode_real_caffemodel_layer_definitions():
    net = binary.decode((CASES / "layers/conv_basic/weights.caffemodel").read_bytes(), params.NetParameter)
    assert net.name == "conv_basic"
    conv1 = next(layer for layer in net.layer if layer.name == "conv1")
    assert conv1.type == "Convolution" and conv1.phase == "TEST" and has(conv1, "phase")
    assert conv1.bottom == ["data"] and conv1.top == ["conv1"]
    assert conv1.convolution_param.num_output == 5
    assert [b.shape.dim for b in conv1.blobs] == [[5, 3, 3, 3], [5]]
    assert len(conv1.blobs[0].data) == 135


@needs_cases
@pytest.mark.parametrize("path", _caffemodels(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_files_reencode_byte_for_byte(path):
    """Each layer whose fields the schema knows re-encodes to exactly the bytes Caffe wrote."""
    data = path.read_bytes()
    plain = binary.proto_class(params.NetParameter, raw_blobs=False).FromString(data)
    net = binary.decode(data, params.NetParameter)
    assert len(net.layer) == len(plain.layer)
    known = 0
    for layer, pb in zip(net.layer, plain.layer):
        if binary.unknown_field_paths(pb):
            continue  # a field the schema lacks (or a fork's block): dropped by decode, so no identity
        known += 1
        assert binary.encode(layer) == pb.SerializeToString(), layer.name
        assert binary.encode(layer, raw_blobs=False) == pb.SerializeToString(), layer.name
    if not binary.unknown_field_paths(plain):
        assert binary.encode(net) == data
    if path.parent.name == "conv_basic":
        assert known >= 2  # the convolutions: every field they carry is in the schema


def test_module_never_imports_torch():
    source = Path(binary.__file__).read_text()
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert "torch" not in names


def test_message_field_helpers_accept_forward_references():
    @dataclass
    class Outer(Message):
        inner: list = repeated(1, "message", "inner", message_cls=lambda: params.BlobShape)
        one: params.BlobShape = message(2, lambda: params.BlobShape, "one")

    msg = Outer(inner=[params.BlobShape(dim=[1])], one=params.BlobShape(dim=[2, 3]))
    assert binary.decode(binary.encode(msg), Outer) == msg
