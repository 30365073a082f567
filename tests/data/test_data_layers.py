"""The data layers: prefetching, resumable state, shuffling, MemoryData, errors, and the build-time peek."""

from __future__ import annotations

import copy
import gc
import json
import threading
import time

import numpy as np
import pytest
import torch

from caffe_like.cli import main
from caffe_like.data.prefetch import Prefetcher
from caffe_like.errors import DataError, SpecError

from datahelp import batches, data_net


def npz_layer(path, batch_size=4, **extra):
    transform = extra.pop("transform", {"mirror": True, "crop_size": 3, "scale": 0.5})
    return {"type": "Data", "transform_param": transform,
            "data_param": {"source": str(path), "backend": "NPZ", "batch_size": batch_size, **extra}}


def assert_same(run_a, run_b):
    assert len(run_a) == len(run_b)
    for a, b in zip(run_a, run_b):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shuffle", [False, True])
def test_prefetched_order_equals_direct_order(make_npz, shuffle):
    path, _ = make_npz(n=10, shape=(1, 5, 5))
    direct = batches(data_net(npz_layer(path, shuffle=shuffle), prefetch=0), 9)  # 36 records: 3+ epochs
    prefetched = batches(data_net(npz_layer(path, shuffle=shuffle)), 9)
    deep = batches(data_net(npz_layer(path, shuffle=shuffle, prefetch=1)), 9)
    assert_same(direct, prefetched)
    assert_same(direct, deep)


def test_in_order_wraps_and_shuffle_reshuffles_each_epoch(make_npz):
    path, _ = make_npz(n=6)
    plain = [b[1].tolist() for b in batches(data_net(npz_layer(path, 4, transform={})), 3)]
    assert plain == [[0, 1, 2, 3], [4, 5, 0, 1], [2, 3, 4, 5]]
    run = np.concatenate([b[1] for b in batches(data_net(npz_layer(path, 3, transform={}, shuffle=True)), 6)])
    epochs = run.reshape(3, 6)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(6))
    assert len({tuple(e) for e in epochs}) > 1  # a new order per epoch
    seeded_again = np.concatenate([b[1] for b in batches(data_net(npz_layer(path, 3, transform={}, shuffle=True)), 6)])
    np.testing.assert_array_equal(run, seeded_again)  # same seed, same order
    other_seed = np.concatenate([b[1] for b in batches(data_net(npz_layer(path, 3, transform={}, shuffle=True),
                                                                 seed=8), 6)])
    assert not np.array_equal(run, other_seed)


@pytest.mark.parametrize("shuffle", [False, True])
def test_resume_continues_the_exact_sequence(make_npz, shuffle):
    path, _ = make_npz(n=10, shape=(3, 5, 6))
    layer = npz_layer(path, shuffle=shuffle)
    reference = data_net(layer)
    batches(reference, 4)
    state = reference.layer_dict()["d"].get_extra_state()
    rest = batches(reference, 6)
    assert state["position"] == 16  # consumed, not read ahead
    time.sleep(0.05)  # the prefetch thread has read further ahead by now
    state = json.loads(json.dumps(state))  # plain values
    resumed = data_net(layer, seed=1234)  # another seed (e.g. random_seed -1): the state carries the order
    resumed.layer_dict()["d"].set_extra_state(state)
    assert_same(batches(resumed, 6), rest)


def test_state_is_the_consumed_position_not_the_read_ahead(make_npz):
    path, _ = make_npz(n=10)
    net = data_net(npz_layer(path, 2, transform={}))
    layer = net.layer_dict()["d"]
    start = layer.get_extra_state()["position"]
    batches(net, 3)
    time.sleep(0.1)
    assert layer.get_extra_state()["position"] == start + 6
    assert layer.loader.position > start + 6  # the thread is ahead


def test_set_extra_state_mid_run_and_through_torch_hooks(make_npz):
    path, _ = make_npz(n=7, shape=(1, 4, 4))
    layer = npz_layer(path, 3)
    a = data_net(layer)
    saved = copy.deepcopy(a.extra_states())
    expected = batches(a, 5)
    b = data_net(layer)
    batches(b, 2)  # consume something, prefetch running
    b.load_extra_states(saved)  # rewind
    assert_same(batches(b, 5), expected)
    c = data_net(layer)
    c.load_state_dict(a.state_dict())  # torch's extra-state hook, with a's consumed state (5 batches)
    assert c.layer_dict()["d"].get_extra_state() == a.layer_dict()["d"].get_extra_state()


def test_data_ignores_rand_skip_as_bvlc_caffe(make_npz):
    path, _ = make_npz(n=10)
    with pytest.warns(UserWarning, match="rand_skip is deprecated and ignored"):
        net = data_net(npz_layer(path, 1, transform={}, rand_skip=7))
    assert batches(net, 1)[0][1].tolist() == [0]


def test_solver_ranks_read_interleaved_shards_in_train(make_npz):
    path, _ = make_npz(n=7)
    layer = npz_layer(path, 2, transform={})
    whole = np.concatenate([b[1] for b in batches(data_net(layer), 4)])
    rank0 = np.concatenate([b[1] for b in batches(data_net(layer, solver_rank=0, solver_count=2), 2)])
    rank1 = np.concatenate([b[1] for b in batches(data_net(layer, solver_rank=1, solver_count=2), 2)])
    np.testing.assert_array_equal(rank0, whole[0::2])
    np.testing.assert_array_equal(rank1, whole[1::2])
    test1 = np.concatenate([b[1] for b in batches(data_net(layer, phase="TEST", solver_rank=1, solver_count=2), 2)])
    np.testing.assert_array_equal(test1, whole[:4])  # TEST: every rank reads everything, as Caffe
    with pytest.raises(SpecError, match="solver_rank 2"):
        data_net(layer, solver_rank=2, solver_count=2)


def test_float64_net_gets_float64_tops(make_npz):
    path, data = make_npz(n=4, shape=(1, 3, 3))
    net = data_net(npz_layer(path, 2, transform={"scale": 0.1}), dtype=torch.float64)
    out = net()
    assert out["data"].dtype == torch.float64 and out["label"].dtype == torch.float64
    np.testing.assert_array_equal(out["data"].numpy(), data[:2] * np.float64(np.float32(0.1)))


def test_exceptions_in_the_thread_reach_the_caller(make_npz):
    path, _ = make_npz(n=4)
    net = data_net(npz_layer(path, 2, transform={}))
    path.unlink()  # built from the header; the arrays are loaded by the thread, at the first forward
    with pytest.raises(DataError, match="layer 'd' \\(Data\\): cannot load the archive"):
        net()

    def boom():
        raise ZeroDivisionError("bad record")

    prefetcher = Prefetcher(boom, 2)
    with pytest.raises(DataError, match="ZeroDivisionError: bad record"):
        prefetcher.get()
    with pytest.raises(DataError, match="bad record"):  # again on every later call
        prefetcher.get()
    prefetcher.close()


def test_prefetcher_order_and_clean_shutdown():
    counter = iter(range(10**6))
    prefetcher = Prefetcher(lambda: next(counter), 3, name="test-prefetch")
    assert [prefetcher.get() for _ in range(50)] == list(range(50))
    prefetcher.close()
    assert not prefetcher.running
    prefetcher.close()  # twice is fine
    with pytest.raises(DataError, match="closed"):
        prefetcher.get()


def test_threads_stop_when_the_net_goes_away(make_npz):
    path, _ = make_npz(n=4)
    net = data_net(npz_layer(path, 2, transform={}))
    net()
    assert any(t.name == "caffe_like-data-d" for t in threading.enumerate())
    del net
    gc.collect()
    deadline = time.time() + 5
    while any(t.name == "caffe_like-data-d" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "caffe_like-data-d" for t in threading.enumerate())


def test_a_copied_net_reads_on_from_the_same_position(make_npz):
    path, _ = make_npz(n=9)
    net = data_net(npz_layer(path, 2, transform={}))
    batches(net, 2)
    twin = copy.deepcopy(net)
    assert_same(batches(twin, 3), batches(net, 3))
    thread = twin.layer_dict()["d"]._runtime.prefetcher._thread
    del twin
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()  # the copy's own thread stops with it


def test_feeding_the_tops_bypasses_the_layer(make_npz):
    path, _ = make_npz(n=4)
    net = data_net(npz_layer(path, 2, transform={}))
    out = net(data=torch.ones(1, 1, 4, 5), label=torch.zeros(1))
    assert out["data"].shape == (1, 1, 4, 5)
    assert net.layer_dict()["d"].get_extra_state()["position"] == 0


def test_missing_dataset_names_every_path_and_the_command(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("CAFFE_LIKE_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        data_net({"type": "Data", "data_param": {"source": "mnist/train", "backend": "IDX", "batch_size": 2}},
                 data_root=str(root))
    text = str(info.value)
    assert "IDX dataset 'mnist/train' not found" in text
    assert str(root / "mnist" / "train-images-idx3-ubyte.gz") in text
    assert str(tmp_path / "env" / "mnist" / "train-images-idx3-ubyte") in text
    assert "caffe-like data mnist --root DIR" in text and "--data-root DIR" in text


def test_sources_resolve_against_the_net_file_folder(tmp_path, make_npz):
    path, _ = make_npz(n=3)
    (tmp_path / "net.yaml").write_text(
        "name: n\nlayer:\n  - {name: d, type: Data, top: [data, label],\n"
        f"     data_param: {{source: {path.name}, backend: NPZ, batch_size: 1}}}}\n")
    import caffe_like

    net = caffe_like.Net(str(tmp_path / "net.yaml"), phase="TRAIN")
    assert net.blob_shapes["data"] == (1, 1, 4, 5)


def test_spec_errors(make_npz):
    path, _ = make_npz(n=3)
    with pytest.raises(SpecError, match="batch_size must be > 0"):
        data_net({"type": "Data", "data_param": {"source": str(path), "backend": "NPZ"}})
    with pytest.raises(SpecError, match="shuffle is not available for LMDB"):
        data_net({"type": "Data", "data_param": {"source": str(path), "backend": "LMDB", "batch_size": 1,
                                                 "shuffle": True}})
    with pytest.raises(DataError, match="cannot both"):
        data_net({"type": "Data", "transform_param": {"mean_value": [1], "mean_file": "m.binaryproto"},
                  "data_param": {"source": str(path), "backend": "NPZ", "batch_size": 1}})


def test_mean_file_from_a_binaryproto(make_npz, tmp_path):
    from caffe_like.weights import write_blobproto

    path, data = make_npz(n=2, shape=(1, 4, 5))
    mean = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    write_blobproto(tmp_path / "mean.binaryproto", mean)
    net = data_net({"type": "Data", "transform_param": {"mean_file": "mean.binaryproto", "scale": 2.0},
                    "data_param": {"source": str(path), "backend": "NPZ", "batch_size": 2}}, data_root=str(tmp_path))
    np.testing.assert_array_equal(net()["data"].numpy(), (data.astype(np.float32) - mean[0]) * 2)


def test_summary_does_not_start_reading(make_npz, capsys):
    path, _ = make_npz(n=3)
    net_file = path.parent / "net.yaml"
    net_file.write_text("name: n\nlayer:\n  - {name: d, type: Data, top: [data, label],\n"
                        f"     data_param: {{source: {path.name}, backend: NPZ, batch_size: 2}}}}\n")
    before = set(threading.enumerate())
    assert main(["summary", str(net_file), "--json", "--phase", "TRAIN"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layers"][0]["top_shapes"] == {"data": [2, 1, 4, 5], "label": [2]}
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("caffe_like-data")]



def test_summary_finds_relative_sources_under_data_root(make_npz, tmp_path, capsys):
    path, _ = make_npz(n=3)
    nets = tmp_path / "nets"
    nets.mkdir()
    net_file = nets / "net.yaml"
    net_file.write_text("name: n\nlayer:\n  - {name: d, type: Data, top: [data, label],\n"
                        f"     data_param: {{source: {path.name}, backend: NPZ, batch_size: 2}}}}\n")
    assert main(["summary", str(net_file), "--phase", "TRAIN"]) == 2  # not next to the net: a clear error
    assert "--data-root" in capsys.readouterr().err
    assert main(["summary", str(net_file), "--json", "--phase", "TRAIN", "--data-root", str(path.parent)]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["top_shapes"] == {"data": [2, 1, 4, 5], "label": [2]}

# -- MemoryData --------------------------------------------------------------------------------------

def memory_net(transform=None, batch_size=2, shape=(1, 2, 3), phase="TRAIN"):
    layer = {"type": "MemoryData", "memory_data_param": {"batch_size": batch_size, "channels": shape[0],
                                                         "height": shape[1], "width": shape[2]}}
    if transform:
        layer["transform_param"] = transform
    return data_net(layer, phase=phase)


def test_memory_data_reset_wraps_and_shapes_labels_like_caffe():
    net = memory_net()
    assert net.blob_shapes == {"data": (2, 1, 2, 3), "label": (2, 1, 1, 1)}
    layer = net.layer_dict()["d"]
    with pytest.raises(DataError, match="has no data yet"):
        net()
    data = np.arange(6 * 6, dtype=np.float32).reshape(6, 1, 2, 3)
    layer.reset(data, np.arange(6))
    got = batches(net, 4)
    assert [b[1].reshape(-1).tolist() for b in got] == [[0, 1], [2, 3], [4, 5], [0, 1]]
    assert got[0][1].shape == (2, 1, 1, 1)
    np.testing.assert_array_equal(got[1][0], data[2:4])
    with pytest.raises(DataError, match="multiple of batch_size"):
        layer.reset(data[:3], np.arange(3))
    with pytest.raises(DataError, match="N×1×2×3"):
        layer.reset(np.zeros((2, 1, 3, 3)), np.arange(2))
    state = layer.get_extra_state()
    after = batches(net, 1)
    layer.set_extra_state(state)
    assert_same(batches(net, 1), after)


def test_memory_data_add_transforms_and_reset_warns():
    net = memory_net(transform={"scale": 0.5, "crop_size": 2}, shape=(1, 2, 2), phase="TEST")
    layer = net.layer_dict()["d"]
    images = np.arange(4 * 9, dtype=np.uint8).reshape(4, 1, 3, 3)
    layer.add(images, [1, 2, 3, 4])
    (data, label), = batches(net, 1)
    np.testing.assert_array_equal(data, images[:2, :, 0:2, 0:2].astype(np.float32) * 0.5)  # TEST: centre crop
    with pytest.warns(UserWarning, match="does not transform"):
        layer.reset(np.zeros((2, 1, 2, 2)), [0, 0])
