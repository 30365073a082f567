"""caffe_like.weights: .caffemodel / .binaryproto / .solverstate / Datum files, against real Caffe files."""

from __future__ import annotations

import ast
import io
import json
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from caffe_like import weights
from caffe_like.errors import DataError, WeightsError
from caffe_like.spec import binary, params
from caffe_like.spec.schema import Message, fields_of, has, repeated, scalar
from caffe_like.weights import (
    CaffeModel,
    LayerBlobs,
    SolverStateData,
    decode_datum,
    encode_datum,
    encode_datum_image,
    match_blobs,
    read_blobproto,
    read_caffemodel,
    read_solverstate,
    write_blobproto,
    write_caffemodel,
    write_solverstate,
)

from shared_paths import CAFFE_CASES

ROOT = Path(__file__).resolve().parents[1]
CASES = CAFFE_CASES
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason=f"Caffe reference cases not found at {CASES} "
                                                           "(set CAFFE_LIKE_CASES)")


# --------------------------------------------------------------------------------------------------
# independent wire-format helpers: files written "by hand", not by the code under test


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


def vint(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def legacy_blob(array: np.ndarray) -> bytes:
    """A BlobProto with the legacy num/channels/height/width fields (right-aligned, 1-padded)."""
    dims = (1,) * (4 - array.ndim) + array.shape
    return b"".join(vint(n, d) for n, d in zip((1, 2, 3, 4), dims)) + ld(5, array.astype("<f4").tobytes())


def modern_blob(array: np.ndarray) -> bytes:
    return ld(5, array.astype("<f4").tobytes()) + ld(7, ld(1, b"".join(varint(d) for d in array.shape)))


def layer_record(name: str, type_: str, blobs: list[bytes]) -> bytes:
    return ld(100, ld(1, name.encode()) + ld(2, type_.encode()) + b"".join(ld(7, b) for b in blobs))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


rng = np.random.default_rng(1701)


def arrays_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and x.shape == y.shape and
                                    x.tobytes() == y.tobytes() for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------------
# real Caffe files


def _case_dirs(kind: str) -> list[Path]:
    return sorted(p for p in (CASES / kind).iterdir() if p.is_dir()) if (CASES / kind).is_dir() else []


@needs_cases
@pytest.mark.parametrize("case", _case_dirs("layers"), ids=lambda p: p.name)
def test_real_layer_case_weights(case):
    model = read_caffemodel(case / "weights.caffemodel")
    info = json.loads((case / "case.json").read_text())
    by_name = {layer.name: layer for layer in model.layers}
    assert len(by_name) == len(model.layers)
    assert model.net is not None and [layer.name for layer in model.net.layer] == [la.name for la in model.layers]
    for layer in info["layers"]:
        stored = by_name[layer["name"]]
        assert stored.type == layer["type"]
        assert [list(b.shape) for b in stored.blobs] == layer["param_shapes"], layer["name"]
        assert all(b.dtype == np.float32 and b.flags.writeable and b.flags.aligned for b in stored.blobs)
        assert stored.legacy == [False] * len(stored.blobs)


@needs_cases
@pytest.mark.parametrize("case", _case_dirs("solvers"), ids=lambda p: p.name)
def test_real_solver_case_weights(case):
    final = read_caffemodel(case / "final.caffemodel")
    init = read_caffemodel(case / "init.caffemodel")
    trajectory = np.load(case / "trajectory.npz")
    expected = {k for k in trajectory.files if k.startswith("param/")}
    seen = set()
    for layer in final.layers:
        for i, blob in enumerate(layer.blobs):
            name = f"param/{layer.name}/{i}"
            assert np.array_equal(blob, trajectory[name]) and blob.dtype == trajectory[name].dtype, name
            seen.add(name)
    assert seen == expected
    assert [la.name for la in init.layers] == [la.name for la in final.layers]
    for a, b in zip(init.layers, final.layers):
        assert [x.shape for x in a.blobs] == [x.shape for x in b.blobs]
    assert any(not np.array_equal(x, y) for a, b in zip(init.layers, final.layers) for x, y in zip(a.blobs, b.blobs))


@needs_cases
def test_real_file_embedded_layer_definitions():
    model = read_caffemodel(CASES / "layers/conv_basic/weights.caffemodel")
    assert model.name == "conv_basic" == model.net.name
    conv1 = next(layer for layer in model.net.layer if layer.name == "conv1")
    assert conv1.type == "Convolution" and conv1.bottom == ["data"] and conv1.top == ["conv1"]
    assert conv1.phase == "TEST" and has(conv1, "phase")
    assert conv1.convolution_param.num_output == 5
    assert conv1.blobs == []  # the arrays are in model.layers
    # the same through the generic decoder
    net = binary.decode((CASES / "layers/conv_basic/weights.caffemodel").read_bytes(), params.NetParameter)
    assert net.layer[1].convolution_param.num_output == 5


@needs_cases
@pytest.mark.parametrize("case", ["layers/lenet_full/weights.caffemodel", "solvers/sgd_step/final.caffemodel",
                                  "layers/lsoftmax_m2/weights.caffemodel"])
def test_rewrite_real_file(tmp_path, case):
    source = CASES / case
    model = read_caffemodel(source)
    out = tmp_path / "copy.caffemodel"
    write_caffemodel(out, model.name, model.layers,
                     layer_params={spec.name: spec for spec in model.net.layer})
    again = read_caffemodel(out)
    assert again.name == model.name
    assert [(la.name, la.type) for la in again.layers] == [(la.name, la.type) for la in model.layers]
    for a, b in zip(model.layers, again.layers):
        assert arrays_equal(a.blobs, b.blobs), a.name
    assert again.net == model.net
    # layers whose every field the schema knows come out byte for byte as Caffe wrote them
    plain = binary.proto_class(params.NetParameter, raw_blobs=False)
    original, rewritten = plain.FromString(source.read_bytes()), plain.FromString(out.read_bytes())
    identical = 0
    for a, b in zip(original.layer, rewritten.layer):
        if not binary.unknown_field_paths(a):
            assert a.SerializeToString() == b.SerializeToString(), a.name
            identical += a.name in ("conv1", "ip1")
    if "lsoftmax" not in case:
        assert identical >= 1


needs_fork_table = pytest.mark.skipif(not getattr(params, "FORK_LAYER_FIELD_NUMBERS", None),
                                      reason="the schema has no table of Caffe forks' field numbers")


@needs_cases
@needs_fork_table
def test_real_fork_files_decode_the_papers_blocks():
    """The cases' L-Softmax and center-loss layers were written by forks numbering their blocks 148/147."""
    lsoftmax = read_caffemodel(CASES / "layers/lsoftmax_m2/weights.caffemodel")
    layer = next(spec for spec in lsoftmax.net.layer if spec.type == "LargeMarginInnerProduct")
    block = layer.largemargin_inner_product_param
    assert block.num_output == 7 and block.type == "DOUBLE" and block.iteration == 3
    assert not has(layer, "clip_param")
    center = read_caffemodel(CASES / "layers/center_loss/weights.caffemodel")
    layer = next(spec for spec in center.net.layer if spec.type == "CenterLoss")
    assert layer.center_loss_param.num_output == 5 and not has(layer, "swish_param")


@needs_fork_table
def test_fork_numbers_only_for_layers_that_read_the_block(tmp_path):
    number = params.FORK_LAYER_FIELD_NUMBERS["center_loss_param"][0]
    block = key(1, 0) + varint(5)  # num_output: 5
    center = ld(100, ld(1, b"c") + ld(2, b"CenterLoss") + ld(number, block))
    other = ld(100, ld(1, b"s") + ld(2, b"Swish") + ld(number, b""))
    model = read_caffemodel(write(tmp_path / "fork.caffemodel", center + other))
    assert model.net.layer[0].center_loss_param.num_output == 5
    swish = model.net.layer[1]
    assert swish.center_loss_param is None
    bvlc = next(info.name for info in fields_of(params.LayerParameter) if info.number == number)
    assert has(swish, bvlc)


# --------------------------------------------------------------------------------------------------
# round trips


def _layers(dtype=np.float32) -> list[LayerBlobs]:
    return [
        LayerBlobs("data", "Input", []),
        LayerBlobs("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)).astype(dtype),
                                            rng.standard_normal(4).astype(dtype)]),
        LayerBlobs("relu1", "ReLU", []),
        LayerBlobs("prelu", "PReLU", [np.array(0.25, dtype=dtype)]),  # channel_shared: a 0-d blob
        LayerBlobs("ip", "InnerProduct", [rng.standard_normal((10, 36)).astype(dtype),
                                          np.zeros(10, dtype)]),
        LayerBlobs("empty", "Dummy", [np.zeros((0, 3), dtype)]),
    ]


@pytest.mark.parametrize("double", [False, True])
def test_round_trip(tmp_path, double):
    dtype = np.float64 if double else np.float32
    layers = _layers(dtype)
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, "net", layers, double=double)
    model = read_caffemodel(path)
    assert isinstance(model, CaffeModel) and model.name == "net"
    assert [(la.name, la.type) for la in model.layers] == [(la.name, la.type) for la in layers]
    for a, b in zip(layers, model.layers):
        if a.name == "empty":  # no values stored: the dtype cannot be told, float32 is assumed
            assert [x.shape for x in b.blobs] == [(0, 3)]
            continue
        assert arrays_equal(a.blobs, b.blobs), a.name
        assert all(blob.dtype == dtype for blob in b.blobs)
    pb = binary.proto_class(params.NetParameter, raw_blobs=False).FromString(path.read_bytes())
    assert not pb.layer[3].blobs[0].HasField("shape")  # a 0-d blob has no shape, as Blob::ToProto


def test_written_bytes_equal_protobuf_serialization(tmp_path):
    """The streamed writer produces exactly what protobuf (plain descriptors) serializes."""
    layers = _layers()
    specs = {
        "conv1": params.LayerParameter(
            name="conv1", type="Convolution", bottom=["data"], top=["conv1"], phase="TEST",
            param=[params.ParamSpec(lr_mult=1.0), params.ParamSpec(lr_mult=2.0)],
            include=[params.NetStateRule(phase="TEST")],  # field 8: written after the blobs (7)
            convolution_param=params.ConvolutionParameter(num_output=4, kernel_size=[3]),
        ),
        "relu1": params.LayerParameter(type="ReLU", bottom=["conv1"], top=["conv1"]),
    }
    for double in (False, True):
        path = tmp_path / f"w{double}.caffemodel"
        write_caffemodel(path, "net", layers, layer_params=specs, double=double)
        net = params.NetParameter(name="net")
        for lb in layers:
            spec = specs.get(lb.name) or params.LayerParameter(name=lb.name, type=lb.type)
            spec = binary.decode(binary.encode(spec), params.LayerParameter)  # a copy
            spec.name = lb.name
            blobs = []
            for array in lb.blobs:
                blob = params.BlobProto()
                if array.ndim:
                    blob.shape = params.BlobShape(dim=list(array.shape))
                if array.size:
                    setattr(blob, "double_data" if double else "data", array.ravel().tolist())
                blobs.append(blob)
            spec.blobs = blobs
            net.layer.append(spec)
        assert path.read_bytes() == binary.encode(net, raw_blobs=False)


def test_layer_params_are_written(tmp_path):
    spec = params.LayerParameter(name="conv1", type="Convolution", bottom=["data"], top=["conv1"],
                                 phase="TEST", convolution_param=params.ConvolutionParameter(num_output=4))
    spec.blobs = [params.BlobProto(data=[1.0])]  # ignored: the arrays come from LayerBlobs
    layers = _layers()
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, "n", layers, layer_params={"conv1": spec})
    model = read_caffemodel(path)
    conv1 = model.net.layer[1]
    assert conv1.phase == "TEST" and conv1.bottom == ["data"] and conv1.convolution_param.num_output == 4
    assert [b.shape for b in model.layers[1].blobs] == [(4, 3, 3, 3), (4,)]
    assert model.net.layer[0] == params.LayerParameter(name="data", type="Input")
    # the blobs carry shape and never the legacy dims
    pb = binary.proto_class(params.NetParameter, raw_blobs=False).FromString(path.read_bytes())
    for layer in pb.layer:
        for blob in layer.blobs:
            assert not any(blob.HasField(f) for f in ("num", "channels", "height", "width"))


def test_layer_params_mismatches(tmp_path):
    layers = _layers()
    with pytest.raises(ValueError, match="not written"):
        write_caffemodel(tmp_path / "a", "n", layers, layer_params={"nope": params.LayerParameter()})
    with pytest.raises(ValueError, match="type"):
        write_caffemodel(tmp_path / "a", "n", layers,
                         layer_params={"conv1": params.LayerParameter(type="Deconvolution")})
    with pytest.raises(TypeError, match="numeric"):
        write_caffemodel(tmp_path / "a", "n", [LayerBlobs("x", "X", [np.array(["a"])])])
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_non_contiguous_and_converted_arrays(tmp_path):
    base = rng.standard_normal((5, 7)).astype(np.float64)
    layers = [LayerBlobs("t", "InnerProduct", [base.T, base[::2, ::3], np.arange(6, dtype=np.int64)])]
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, "n", layers)
    blobs = read_caffemodel(path).layers[0].blobs
    assert np.array_equal(blobs[0], base.T.astype(np.float32))
    assert np.array_equal(blobs[1], base[::2, ::3].astype(np.float32))
    assert np.array_equal(blobs[2], np.arange(6, dtype=np.float32))


def test_large_file_over_64_mib(tmp_path):
    big = np.arange(17_500_000, dtype=np.float32)  # 70 MB: above protobuf's classic 64 MiB limit
    path = tmp_path / "big.caffemodel"
    write_caffemodel(path, "big", [LayerBlobs("fc", "InnerProduct", [big.reshape(3500, 5000), big[:5000]])])
    assert path.stat().st_size > 64 * 2**20
    model = read_caffemodel(path)
    assert np.array_equal(model.layers[0].blobs[0].ravel(), big)
    assert np.array_equal(model.layers[0].blobs[1], big[:5000])


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(b"old")
    write_caffemodel(path, "n", _layers())
    assert read_caffemodel(path).name == "n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.caffemodel"]
    # the permissions are those of an ordinary new file (umask applied), not mkstemp's 0600
    reference = tmp_path / "plain"
    reference.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.caffemodel"
    write_caffemodel(path, "first", _layers())
    before = path.read_bytes()
    original = weights._blob_record
    calls = []

    def failing(array, double):  # fails after a few blobs have been written
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("disk on fire")
        return original(array, double)

    monkeypatch.setattr(weights, "_blob_record", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_caffemodel(path, "second", _layers())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.caffemodel"]


def test_unwritable_destination(tmp_path):
    with pytest.raises(WeightsError, match="cannot write") as err:
        write_caffemodel(tmp_path / "missing_dir" / "w.caffemodel", "n", _layers())
    assert "missing_dir" in str(err.value)


# --------------------------------------------------------------------------------------------------
# legacy formats, written by hand through the wire format


def test_legacy_dims_file(tmp_path):
    weight = rng.standard_normal((3, 4)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    conv = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    data = ld(1, b"old") + layer_record("ip", "InnerProduct", [legacy_blob(weight), legacy_blob(bias)])
    data += layer_record("conv", "Convolution", [legacy_blob(conv)])
    path = write(tmp_path / "legacy.caffemodel", data)
    model = read_caffemodel(path)
    ip = model.layers[0]
    assert [b.shape for b in ip.blobs] == [(1, 1, 3, 4), (1, 1, 1, 3)] and ip.legacy == [True, True]
    loaded, skipped = match_blobs(model, {"ip": [(3, 4), (3,)], "conv": [(2, 1, 2, 2)]}, file=path)
    assert skipped == []
    assert loaded["ip"][0].shape == (3, 4) and np.array_equal(loaded["ip"][0], weight)
    assert loaded["ip"][1].shape == (3,) and np.array_equal(loaded["ip"][1], bias)
    assert np.array_equal(loaded["conv"][0], conv)
    # legacy right-alignment does not allow other shapes with the same count
    with pytest.raises(WeightsError, match=r"blob 0.*\[1, 1, 3, 4\] \(legacy 4-D\).*\[4, 3\]"):
        match_blobs(model, {"ip": [(4, 3), (3,)], "conv": [(2, 1, 2, 2)]}, file=path)
    with pytest.raises(WeightsError, match="shape mismatch"):
        match_blobs(model, {"ip": [(1, 1, 1, 3, 4), (3,)]}, file=path)  # more than 4 axes never match


def test_modern_blobs_are_not_right_aligned(tmp_path):
    """Only legacy protos are compared right-aligned: a modern [1, 1, 3, 4] does not load into [3, 4]."""
    path = write(tmp_path / "m.caffemodel", layer_record("ip", "InnerProduct", [modern_blob(np.zeros((1, 1, 3, 4)))]))
    with pytest.raises(WeightsError, match="shape mismatch"):
        match_blobs(read_caffemodel(path), {"ip": [(3, 4)]}, file=path)


@dataclass
class _V1Net(Message):
    """NetParameter with the V1 ``layers`` field (2), for building V1/V0 files in the tests."""

    name: str = scalar(1, "string", "", "name")
    layers: list = repeated(2, "message", "V1 layers", message_cls=weights.V1LayerParameterLite)


def test_v1_layers_file(tmp_path):
    weight = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    ip_w = rng.standard_normal((5, 16)).astype(np.float32)
    legacy = lambda a: binary.decode(legacy_blob(a), params.BlobProto)  # noqa: E731
    net = _V1Net(name="v1net", layers=[
        weights.V1LayerParameterLite(name="data", type="DATA", top=["data", "label"],
                                     include=[params.NetStateRule(phase="TEST")]),
        weights.V1LayerParameterLite(name="conv1", type="CONVOLUTION", bottom=["data"], top=["conv1"],
                                     blobs=[legacy(weight), legacy(np.ones(4, np.float32))]),
        weights.V1LayerParameterLite(name="ip1", type="INNER_PRODUCT", bottom=["conv1"], top=["ip1"],
                                     blobs=[legacy(ip_w), legacy(np.zeros(5, np.float32))]),
        weights.V1LayerParameterLite(name="loss", type="SOFTMAX_LOSS", bottom=["ip1", "label"]),
    ])
    path = write(tmp_path / "v1.caffemodel", binary.encode(net))
    model = read_caffemodel(path)
    assert model.name == "v1net"
    assert [(la.name, la.type) for la in model.layers] == [
        ("data", "Data"), ("conv1", "Convolution"), ("ip1", "InnerProduct"), ("loss", "SoftmaxWithLoss")]
    assert model.net.layer[1].bottom == ["data"] and model.net.layer[0].top == ["data", "label"]
    assert model.net.layer[0].include == [params.NetStateRule(phase="TEST")]
    loaded, skipped = match_blobs(model, {"conv1": [(4, 3, 2, 2), (4,)], "ip1": [(5, 16), (5,)], "loss": []},
                                  file=path)
    assert skipped == ["data"]
    assert np.array_equal(loaded["conv1"][0], weight) and np.array_equal(loaded["ip1"][0], ip_w)
    assert loaded["loss"] == []


def test_v0_layers_file(tmp_path):
    weight = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    v0 = weights.V0LayerParameterLite(name="conv1", type="conv",
                                      blobs=[binary.decode(legacy_blob(weight), params.BlobProto)])
    net = _V1Net(name="v0net", layers=[
        weights.V1LayerParameterLite(bottom=["data"], top=["conv1"], layer=v0),
        weights.V1LayerParameterLite(bottom=["conv1"], top=["conv1"],
                                     layer=weights.V0LayerParameterLite(name="relu1", type="relu")),
    ])
    model = read_caffemodel(write(tmp_path / "v0.caffemodel", binary.encode(net)))
    assert [(la.name, la.type) for la in model.layers] == [("conv1", "Convolution"), ("relu1", "ReLU")]
    assert np.array_equal(model.layers[0].blobs[0], weight) and model.layers[0].legacy == [True]
    assert model.net.layer[0].bottom == ["data"]


def test_v1_type_table_matches_caffe_proto():
    assert weights.V1_LAYER_TYPES[4] == "Convolution" and weights.V1_LAYER_TYPES[14] == "InnerProduct"
    assert weights.V1_LAYER_TYPES[21] == "SoftmaxWithLoss" and weights.V1_LAYER_TYPES[39] == "Deconvolution"
    assert len(weights.V1_LAYER_TYPES) == 40
    enum_type = weights.V1LayerParameterLite.__dataclass_fields__["type"].metadata["caffe"]["enum"]
    assert set(enum_type.values.values()) == set(weights.V1_LAYER_TYPES)


def test_unpacked_floats_file(tmp_path):
    values = rng.standard_normal(6).astype(np.float32)
    blob = b"".join(key(5, 5) + struct.pack("<f", v) for v in values) + ld(7, ld(1, varint(2) + varint(3)))
    path = write(tmp_path / "u.caffemodel", layer_record("ip", "InnerProduct", [blob]))
    assert np.array_equal(read_caffemodel(path).layers[0].blobs[0], values.reshape(2, 3))


def test_several_packed_chunks_and_double_data(tmp_path):
    a, b = np.arange(4, dtype=np.float32), np.arange(4, 6, dtype=np.float32)
    blob1 = ld(5, a.tobytes()) + ld(5, b.tobytes()) + ld(7, ld(1, varint(6)))
    d = np.linspace(0, 1, 3)
    blob2 = ld(5, np.ones(3, "<f4").tobytes()) + ld(8, d.astype("<f8").tobytes()) + ld(7, ld(1, varint(3)))
    model = read_caffemodel(write(tmp_path / "c.caffemodel", layer_record("x", "X", [blob1, blob2])))
    assert np.array_equal(model.layers[0].blobs[0], np.arange(6, dtype=np.float32))
    assert model.layers[0].blobs[1].dtype == np.float64 and np.array_equal(model.layers[0].blobs[1], d)


def test_no_shape_means_a_scalar(tmp_path):
    model = read_caffemodel(write(tmp_path / "s.caffemodel", layer_record("p", "PReLU", [ld(5, struct.pack("<f", 2))])))
    assert model.layers[0].blobs[0].shape == () and model.layers[0].blobs[0] == 2


def test_fork_layer_definition_keeps_blobs(tmp_path):
    """A layer whose definition clashes with the schema (a fork reusing a field number) still loads."""
    spec = ld(1, b"odd") + ld(2, b"Weird") + ld(3, b"x") + ld(4, b"y") + ld(106, b"\xff\xff")  # bad conv param
    data = ld(100, spec + ld(7, modern_blob(np.ones((2, 2), np.float32))))
    with pytest.warns(UserWarning, match="could not be fully decoded"):
        model = read_caffemodel(write(tmp_path / "f.caffemodel", data))
    assert model.layers[0].name == "odd" and model.layers[0].blobs[0].shape == (2, 2)
    assert model.net.layer[0].bottom == ["x"] and model.net.layer[0].top == ["y"]


# --------------------------------------------------------------------------------------------------
# errors


@pytest.fixture
def good_file(tmp_path) -> Path:
    path = tmp_path / "good.caffemodel"
    write_caffemodel(path, "good", _layers())
    return path


def _assert_names_file(err: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(err.value)
    assert err.value.file == str(path)


def test_truncated_file_all_cut_points(tmp_path, good_file):
    """Every truncation either raises WeightsError or (cut between layers) yields a prefix of the net."""
    data = good_file.read_bytes()
    full = read_caffemodel(good_file)
    cut = tmp_path / "cut.caffemodel"
    raised = 0
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        try:
            model = read_caffemodel(cut)
        except WeightsError as err:
            assert str(cut) in str(err)
            raised += 1
            continue
        k = len(model.layers)
        assert 0 < k < len(full.layers)
        for a, b in zip(full.layers, model.layers):
            assert a.name == b.name and arrays_equal(a.blobs, b.blobs)
    assert raised > len(data) * 0.9


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_inside_blob_data(tmp_path, good_file, fraction):
    data = good_file.read_bytes()
    n = int(len(data) * fraction)
    if n == len(data):
        n -= 1
    cut = write(tmp_path / "cut.caffemodel", data[:n])
    with pytest.raises(WeightsError, match="truncated") as err:
        read_caffemodel(cut)
    _assert_names_file(err, cut)
    assert "complete copy" in err.value.fix


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(tmp_path, seed):
    data = np.random.default_rng(seed).integers(0, 256, size=1000 + 100 * seed, dtype=np.uint8).tobytes()
    path = write(tmp_path / "random.caffemodel", data)
    with pytest.raises(WeightsError) as err:
        read_caffemodel(path)
    _assert_names_file(err, path)


def test_random_bytes_inside_a_valid_frame(tmp_path):
    for seed in range(20):
        junk = np.random.default_rng(seed).integers(0, 256, size=200, dtype=np.uint8).tobytes()
        path = write(tmp_path / "junk.caffemodel", ld(1, b"n") + ld(100, junk))
        with pytest.raises(WeightsError) as err:
            read_caffemodel(path)
        _assert_names_file(err, path)


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.caffemodel", b"")
    with pytest.raises(WeightsError, match="empty") as err:
        read_caffemodel(path)
    _assert_names_file(err, path)


def test_text_file(tmp_path):
    path = write(tmp_path / "net.prototxt", b'name: "lenet"\nlayer {\n  name: "data"\n  type: "Input"\n}\n')
    with pytest.raises(WeightsError, match="text file") as err:
        read_caffemodel(path)
    _assert_names_file(err, path)


@needs_cases
def test_real_prototxt_given_as_weights():
    path = CASES / "layers/conv_basic/net.prototxt"
    with pytest.raises(WeightsError, match="text file"):
        read_caffemodel(path)


def test_hdf5_file(tmp_path):
    path = write(tmp_path / "w.caffemodel.h5", b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(WeightsError, match="HDF5"):
        read_caffemodel(path)


def test_missing_file(tmp_path, good_file):
    with pytest.raises(WeightsError, match="not found") as err:
        read_caffemodel(tmp_path / "god.caffemodel")
    _assert_names_file(err, tmp_path / "god.caffemodel")
    assert "good.caffemodel" in err.value.fix  # did you mean
    with pytest.raises(WeightsError, match="not found") as err:
        read_caffemodel(tmp_path / "nowhere" / "x.caffemodel")
    assert err.value.fix


def test_directory(tmp_path):
    with pytest.raises(WeightsError, match="directory"):
        read_caffemodel(tmp_path)


def test_blob_count_mismatch_in_file(tmp_path):
    blob = ld(5, np.ones(5, "<f4").tobytes()) + ld(7, ld(1, varint(2) + varint(3)))
    path = write(tmp_path / "bad.caffemodel", layer_record("ip", "InnerProduct", [blob]))
    with pytest.raises(WeightsError, match=r"'ip'.*blob 0.*\[2, 3\].*6 values.*5 values") as err:
        read_caffemodel(path)
    _assert_names_file(err, path)


def test_both_layer_and_layers(tmp_path):
    data = layer_record("a", "ReLU", []) + ld(2, ld(4, b"b"))
    with pytest.raises(WeightsError, match="both"):
        read_caffemodel(write(tmp_path / "both.caffemodel", data))


def test_no_protobuf_exception_escapes(tmp_path, good_file):
    """Flip bytes all over a valid file: only WeightsError (or a valid read) may come out."""
    data = bytearray(good_file.read_bytes())
    path = tmp_path / "flip.caffemodel"
    for i in range(0, len(data), 7):
        corrupt = bytearray(data)
        corrupt[i] ^= 0xA5
        path.write_bytes(bytes(corrupt))
        try:
            read_caffemodel(path)
        except WeightsError:
            pass


# --------------------------------------------------------------------------------------------------
# match_blobs (Net::CopyTrainedLayersFrom)


def _model() -> CaffeModel:
    return CaffeModel("m", [
        LayerBlobs("conv1", "Convolution", [np.zeros((20, 1, 5, 5), np.float32), np.zeros(20, np.float32)]),
        LayerBlobs("relu1", "ReLU", []),
        LayerBlobs("old_fc", "InnerProduct", [np.zeros((10, 50), np.float32)]),
    ])


def test_match_by_name_and_skip_unknown():
    loaded, skipped = match_blobs(_model(), {"conv1": [(20, 1, 5, 5), (20,)], "ip_new": [(5, 5)]}, file="m.caffemodel")
    assert list(loaded) == ["conv1"] and skipped == ["relu1", "old_fc"]
    assert [a.shape for a in loaded["conv1"]] == [(20, 1, 5, 5), (20,)]


def test_match_shape_mismatch_message():
    with pytest.raises(WeightsError) as err:
        match_blobs(_model(), {"conv1": [(20, 3, 5, 5), (20,)]}, file="w.caffemodel")
    text = str(err.value)
    for part in ("w.caffemodel", "conv1", "blob 0", "[20, 1, 5, 5]", "[20, 3, 5, 5]"):
        assert part in text, part
    assert err.value.layer == "conv1" and err.value.file == "w.caffemodel"


def test_match_blob_count_mismatch_message():
    with pytest.raises(WeightsError, match=r"number of blobs.*has 2.*expects 1") as err:
        match_blobs(_model(), {"conv1": [(20, 1, 5, 5)]}, file="w.caffemodel")
    assert err.value.layer == "conv1" and "[20, 1, 5, 5], [20]" in str(err.value)
    with pytest.raises(WeightsError, match="number of blobs"):
        match_blobs(_model(), {"relu1": [(3,)]}, file="w.caffemodel")


# --------------------------------------------------------------------------------------------------
# mean files (BlobProto)


def test_blobproto_round_trip(tmp_path):
    mean = rng.uniform(0, 255, (1, 3, 4, 5)).astype(np.float32)
    path = tmp_path / "mean.binaryproto"
    write_blobproto(path, mean)
    got = read_blobproto(path)
    assert got.dtype == np.float32 and got.shape == (1, 3, 4, 5) and np.array_equal(got, mean)
    assert path.read_bytes() == ld(5, mean.tobytes()) + ld(7, ld(1, b"".join(varint(d) for d in mean.shape)))
    write_blobproto(path, mean.astype(np.float64), double=True)
    got = read_blobproto(path)
    assert got.dtype == np.float64 and np.array_equal(got, mean)


def test_blobproto_legacy_mean_file(tmp_path):
    mean = rng.uniform(0, 255, (3, 4, 5)).astype(np.float32)
    path = write(tmp_path / "mean.binaryproto", legacy_blob(mean))
    got = read_blobproto(path)
    assert got.shape == (1, 3, 4, 5) and np.array_equal(got[0], mean)


def test_blobproto_errors(tmp_path, good_file):
    with pytest.raises(WeightsError, match="not found"):
        read_blobproto(tmp_path / "nope.binaryproto")
    with pytest.raises(WeightsError, match="empty"):
        read_blobproto(write(tmp_path / "e.binaryproto", b""))
    with pytest.raises(WeightsError, match="BlobProto") as err:
        read_blobproto(good_file)  # a .caffemodel is not a mean file
    _assert_names_file(err, good_file)
    with pytest.raises(WeightsError):
        read_blobproto(write(tmp_path / "r.binaryproto", bytes(range(256))))


# --------------------------------------------------------------------------------------------------
# solver state


def test_solverstate_round_trip(tmp_path):
    state = SolverStateData(iter=1234, learned_net="snap_iter_1234.caffemodel",
                            history=[rng.standard_normal((4, 3)).astype(np.float32), np.zeros(4, np.float32),
                                     rng.standard_normal(2)],  # float64 history is kept in double_data
                            current_step=2, extra=b"\x00rng-state\xff" * 10)
    path = tmp_path / "snap_iter_1234.solverstate"
    write_solverstate(path, state)
    got = read_solverstate(path)
    assert (got.iter, got.learned_net, got.current_step, got.extra) == (1234, state.learned_net, 2, state.extra)
    assert arrays_equal(got.history, state.history)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@dataclass
class _CaffeSolverState(Message):
    """caffe.proto's SolverState exactly (no caffe_like extension), as Caffe reads it."""

    iter: int = scalar(1, "int32", 0, "iter")
    learned_net: str = scalar(2, "string", "", "learned_net")
    history: list = repeated(3, "message", "history", message_cls=params.BlobProto)
    current_step: int = scalar(4, "int32", 0, "current_step")


def test_solverstate_stays_readable_by_caffe(tmp_path):
    path = tmp_path / "s.solverstate"
    write_solverstate(path, SolverStateData(iter=7, learned_net="x.caffemodel", history=[np.ones(3, np.float32)],
                                            extra=b"opaque"))
    caffe_view = binary.decode(path.read_bytes(), _CaffeSolverState)
    assert caffe_view.iter == 7 and caffe_view.learned_net == "x.caffemodel"
    assert caffe_view.history[0].data == [1.0, 1.0, 1.0] and caffe_view.history[0].shape.dim == [3]
    pb = binary.proto_class(_CaffeSolverState).FromString(path.read_bytes())
    assert [u[0] for u in binary.unknown_fields(pb)] == [weights.SOLVERSTATE_EXTRA_FIELD]
    # and a state written by Caffe (no extension) reads with empty extra
    caffe_written = binary.encode(_CaffeSolverState(iter=5, learned_net="a", current_step=1,
                                                    history=[params.BlobProto(shape=params.BlobShape(dim=[2]),
                                                                              data=[1.0, 2.0])]))
    got = read_solverstate(write(tmp_path / "c.solverstate", caffe_written))
    assert (got.iter, got.current_step, got.extra) == (5, 1, b"")
    assert np.array_equal(got.history[0], [1.0, 2.0])


def test_solverstate_errors(tmp_path, good_file):
    with pytest.raises(WeightsError, match="not found"):
        read_solverstate(tmp_path / "x.solverstate")
    with pytest.raises(WeightsError, match="empty"):
        read_solverstate(write(tmp_path / "e.solverstate", b""))
    with pytest.raises(WeightsError, match="SolverState"):
        read_solverstate(write(tmp_path / "t.solverstate", b"iter: 5\n"))
    with pytest.raises(WeightsError):
        read_solverstate(good_file)


# --------------------------------------------------------------------------------------------------
# Datum


def test_datum_uint8_round_trip():
    image = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    data = encode_datum(image, 9)
    array, label, encoded = decode_datum(data)
    assert array.dtype == np.uint8 and np.array_equal(array, image) and label == 9 and not encoded
    # the wire layout Caffe's convert_imageset produces
    assert data == vint(1, 3) + vint(2, 5) + vint(3, 7) + ld(4, image.tobytes()) + vint(5, 9)


def test_datum_float_round_trip():
    features = rng.standard_normal((2, 3, 1)).astype(np.float32)
    array, label, encoded = decode_datum(encode_datum(features, -1))
    assert array.dtype == np.float32 and np.array_equal(array, features) and label == -1 and not encoded


def test_datum_rejects_bad_input():
    with pytest.raises(ValueError, match="C×H×W"):
        encode_datum(np.zeros((4, 4), np.uint8), 0)
    with pytest.raises(ValueError, match="dtype"):
        encode_datum(np.zeros((1, 4, 4), np.int64), 0)
    with pytest.raises(DataError):
        decode_datum(b"\xff\xff\xff")
    with pytest.raises(DataError, match="holds 3 values"):
        decode_datum(vint(1, 1) + vint(2, 2) + vint(3, 2) + ld(4, b"abc"))


def test_datum_encoded_image():
    pil = pytest.importorskip("PIL.Image")
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    pil.fromarray(rgb).save(buffer, format="PNG")
    data = encode_datum_image(buffer.getvalue(), 3)
    array, label, encoded = decode_datum(data)
    assert encoded and label == 3
    assert np.array_equal(array, rgb[:, :, ::-1].transpose(2, 0, 1))  # BGR, C×H×W, as OpenCV gives it
    raw, _label, encoded = decode_datum(data, decode_images=False)
    assert encoded and raw.ndim == 1 and raw.tobytes() == buffer.getvalue()
    gray = io.BytesIO()
    pil.fromarray(rgb[:, :, 0]).save(gray, format="PNG")
    array, _label, _encoded = decode_datum(encode_datum_image(gray.getvalue(), 0))
    assert array.shape == (1, 4, 6) and np.array_equal(array[0], rgb[:, :, 0])
    forced, _label, _encoded = decode_datum(encode_datum_image(gray.getvalue(), 0), color=True)
    assert forced.shape == (3, 4, 6)
    with pytest.raises(DataError, match="cannot be decoded"):
        decode_datum(encode_datum_image(b"not an image", 0))


# --------------------------------------------------------------------------------------------------
# hygiene


def test_module_never_imports_torch():
    names = set()
    for node in ast.walk(ast.parse(Path(weights.__file__).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert "torch" not in names


def test_bench_tool_runs():
    tool = ROOT / "tools" / "bench_weights.py"
    result = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--mb" in result.stdout
    result = subprocess.run([sys.executable, str(tool), "--mb", "2", "--repeat", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "round trip identical: True" in result.stdout and "MB/s" in result.stdout
