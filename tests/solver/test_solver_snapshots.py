"""Snapshots, resume, fine-tuning, NaN handling, signals and the CSV log."""

from __future__ import annotations

import csv
import os
import signal

import numpy as np
import pytest
import torch

from caffe_like.errors import SolverError, SpecError, WeightsError
from caffe_like.solver import Solver, extra_state
from caffe_like.solver.signals import SignalActions
from caffe_like.weights import read_solverstate, write_solverstate

from solver_helpers import batches, least_squares_net, toy_data_layer, weights_of


def dropout_net() -> dict:
    """ToyData -> ip1 (8) -> Dropout -> ip2 (1) -> EuclideanLoss; the test phase reads its own ToyData."""
    return {"name": "dropout_regression", "layer": [
        {**toy_data_layer(4), "include": {"phase": "TRAIN"}},
        {**toy_data_layer(4), "name": "test_data", "include": {"phase": "TEST"}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "data", "top": "ip1",
         "inner_product_param": {"num_output": 8, "weight_filler": {"type": "gaussian", "std": 0.3},
                                 "bias_filler": {"type": "constant", "value": 0.1}}},
        {"name": "drop", "type": "Dropout", "bottom": "ip1", "top": "ip1", "dropout_param": {"dropout_ratio": 0.3}},
        {"name": "ip2", "type": "InnerProduct", "bottom": "ip1", "top": "pred",
         "inner_product_param": {"num_output": 1, "weight_filler": {"type": "gaussian", "std": 0.3}}},
        {"name": "loss", "type": "EuclideanLoss", "bottom": ["pred", "target"], "top": "loss"},
    ]}


def resume_solver(prefix, solver_type, **kwargs) -> Solver:
    settings = {"net_param": dropout_net(), "type": solver_type, "base_lr": 0.02, "momentum": 0.9,
                "lr_policy": "step", "gamma": 0.5, "stepsize": 4, "weight_decay": 0.001, "iter_size": 2,
                "average_loss": 3, "snapshot": 3, "snapshot_prefix": str(prefix), "random_seed": 11,
                "test_iter": [2], "test_interval": 4, "max_iter": 8}
    return Solver(settings, device="cpu", quiet=True, log=False, **kwargs)


def run(solver, until):
    losses = []
    while solver.iter < until:
        solver.step(1)
        losses.append(solver.losses.window[-1])
    return losses


@pytest.mark.parametrize("solver_type", ["SGD", "Adam"])
def test_resume_equals_an_uninterrupted_run_bit_for_bit(toy_layers, tmp_path, solver_type):
    straight = resume_solver(tmp_path / "a" / "snap", solver_type)
    expected_losses = run(straight, 8)
    expected_rng = torch.get_rng_state()

    first = resume_solver(tmp_path / "b" / "snap", solver_type)
    run(first, 5)  # goes past the snapshot at 3: the generators and the data cursor move on
    state = tmp_path / "b" / "snap_iter_3.solverstate"
    resumed = resume_solver(tmp_path / "b" / "snap", solver_type, snapshot=state)
    assert resumed.iter == 3
    losses = run(resumed, 8)

    assert losses == expected_losses[3:]
    assert resumed.losses.smoothed == straight.losses.smoothed
    for name, blobs in weights_of(straight).items():
        for a, b in zip(blobs, weights_of(resumed)[name]):
            assert np.array_equal(a, b), name
    for a, b in zip(straight.updater.history_blobs(), resumed.updater.history_blobs()):
        assert torch.equal(a, b)
    assert straight.net.layer_dict()["data"].cursor == resumed.net.layer_dict()["data"].cursor
    assert straight.test_nets[0].layer_dict()["test_data"].cursor == resumed.test_nets[0].layer_dict()["test_data"].cursor
    assert torch.equal(torch.get_rng_state(), expected_rng)  # Dropout drew the same numbers
    n_history = 2 if solver_type == "Adam" else 1
    assert len(read_solverstate(state).history) == n_history * 4


def test_snapshot_files_and_state_fields(toy_layers, tmp_path):
    solver = resume_solver(tmp_path / "snap", "SGD")
    solver.solve()
    names = sorted(p.name for p in tmp_path.iterdir())
    # every 3 iterations, plus the final one at max_iter 8 (snapshot_after_train)
    assert names == [f"snap_iter_{n}.{ext}" for n in (3, 6, 8) for ext in ("caffemodel", "solverstate")]
    state = read_solverstate(tmp_path / "snap_iter_8.solverstate")
    # current_step: the step policy sets it to iter // stepsize at each update; the last update had iter 7
    assert state.iter == 8 and state.current_step == 7 // 4 and state.learned_net == "snap_iter_8.caffemodel"
    extra = extra_state.decode(state.extra)
    assert extra["train_net"]["data"] == {"cursor": (8 * 2 * 4) % 64}  # 8 iterations of 2 batches of 4
    assert extra["test_nets"][0]["test_data"] == {"cursor": (2 * 2 * 4) % 64}  # tests at 0 and 4
    assert set(extra["rng"]) >= {"torch_cpu", "numpy", "python"}


def test_corrupt_snapshots_give_clear_errors(toy_layers, tmp_path):
    solver = resume_solver(tmp_path / "snap", "SGD")
    solver.step(3)
    state_path = tmp_path / "snap_iter_3.solverstate"
    model_path = tmp_path / "snap_iter_3.caffemodel"
    good_state, good_model = state_path.read_bytes(), model_path.read_bytes()

    state_path.write_bytes(good_state[: len(good_state) // 2])
    with pytest.raises(WeightsError, match="solverstate|SolverState"):
        resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)
    state_path.write_bytes(b"\x00\xff" * 50)
    with pytest.raises(WeightsError):
        resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)

    state_path.write_bytes(good_state)
    model_path.write_bytes(good_model[: len(good_model) - 20])
    with pytest.raises(WeightsError):
        resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)
    model_path.unlink()
    with pytest.raises(WeightsError, match="not found"):
        resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)
    model_path.write_bytes(good_model)

    data = read_solverstate(state_path)
    data.extra = b"not an archive"
    write_solverstate(state_path, data)
    with pytest.raises(WeightsError, match="caffe_like part"):
        resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)

    state_path.write_bytes(good_state)
    with pytest.raises(WeightsError, match="history blobs"):
        resume_solver(tmp_path / "snap", "Adam", snapshot=state_path)  # SGD state, Adam solver
    resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)  # the good files still resume


def test_a_caffe_solverstate_without_extension_resumes(toy_layers, tmp_path):
    solver = resume_solver(tmp_path / "snap", "SGD")
    solver.step(3)
    state_path = tmp_path / "snap_iter_3.solverstate"
    data = read_solverstate(state_path)
    data.extra = b""
    data.learned_net = str(tmp_path / "snap_iter_3.caffemodel")  # Caffe writes the path it was given
    write_solverstate(state_path, data)
    resumed = resume_solver(tmp_path / "snap", "SGD", snapshot=state_path)
    assert resumed.iter == 3
    for a, b in zip(solver.updater.history_blobs(), resumed.updater.history_blobs()):
        assert torch.equal(a, b)


def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_good_snapshot(tmp_path):
    prefix = tmp_path / "snap"
    solver = Solver({"net_param": least_squares_net(), "base_lr": 0.05, "lr_policy": "fixed", "snapshot": 2,
                     "snapshot_prefix": str(prefix), "random_seed": 1}, device="cpu", quiet=True, log=False)
    data = batches(8)
    for x, y in data[:5]:
        solver.step(1, data=x, target=y)
    bad = data[5][0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(SolverError, match=r"iteration 5.*snap_iter_4\.solverstate") as info:
        solver.step(1, data=bad, target=data[5][1])
    assert "nan" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"snap_iter_{n}.{ext}" for n in (2, 4) for ext in ("caffemodel", "solverstate")]
    resumed = Solver({"net_param": least_squares_net(), "base_lr": 0.05, "lr_policy": "fixed"},
                     device="cpu", quiet=True, log=False, snapshot=prefix.with_name("snap_iter_4.solverstate"))
    assert all(bool(torch.isfinite(b).all()) for blobs in resumed.net.params.values() for b in blobs)


def test_non_finite_weights_are_never_snapshotted(tmp_path):
    solver = Solver({"net_param": least_squares_net(), "base_lr": 0.05, "lr_policy": "fixed",
                     "snapshot_prefix": str(tmp_path / "snap")}, device="cpu", quiet=True, log=False)
    with torch.no_grad():
        solver.net.params["ip"][0][0, 0] = float("inf")
    with pytest.raises(SolverError, match="not finite at iteration 0"):
        solver.snapshot()
    assert not list(tmp_path.iterdir())


def test_diverging_solve_raises_solver_error(tmp_path):
    x, y = batches(1)[0]
    solver = Solver({"net_param": least_squares_net(), "base_lr": 1e4, "lr_policy": "fixed", "momentum": 0.9,
                     "max_iter": 200, "snapshot_prefix": str(tmp_path / "snap")},
                    device="cpu", quiet=True, log=False)
    with pytest.raises(SolverError, match=r"loss is (nan|inf) at iteration \d+.*no snapshot was written"):
        solver.solve(data=x, target=y)
    assert not list(tmp_path.iterdir())  # no final snapshot of a diverged run


def test_finetune_weights_versus_resume(toy_layers, tmp_path):
    source = resume_solver(tmp_path / "snap", "SGD")
    source.step(3)
    model = tmp_path / "snap_iter_3.caffemodel"
    state = tmp_path / "snap_iter_3.solverstate"

    finetuned = resume_solver(tmp_path / "ft", "SGD", weights=str(model))
    assert finetuned.iter == 0 and finetuned.current_step == 0
    assert not any(h.any() for h in finetuned.updater.history_blobs())
    for name, blobs in weights_of(source).items():
        for a, b in zip(blobs, weights_of(finetuned)[name]):
            assert np.array_equal(a, b)
    test_ip1 = finetuned.test_nets[0].params["ip1"][0]
    assert test_ip1 is finetuned.net.params["ip1"][0]  # shared with the train net, by layer name

    resumed = resume_solver(tmp_path / "snap", "SGD", snapshot=state)
    assert resumed.iter == 3 and any(h.any() for h in resumed.updater.history_blobs())

    with pytest.raises(SpecError, match="not both"):
        resume_solver(tmp_path / "x", "SGD", snapshot=state, weights=str(model))


def test_comma_separated_weights_load_in_order(toy_layers, tmp_path):
    a = resume_solver(tmp_path / "a", "SGD")
    a.step(3)
    b = resume_solver(tmp_path / "b", "SGD")
    b.step(6)
    both = resume_solver(tmp_path / "c", "SGD",
                         weights=f"{tmp_path / 'a_iter_3.caffemodel'},{tmp_path / 'b_iter_6.caffemodel'}")
    for name, blobs in weights_of(b).items():
        for x, y in zip(blobs, weights_of(both)[name]):
            assert np.array_equal(x, y)


def test_requested_actions_snapshot_and_stop(toy_layers, tmp_path, capsys):
    solver = resume_solver(tmp_path / "snap", "SGD")
    solver.report.quiet = False
    requests = {2: "snapshot", 5: "stop"}
    solver.action_request = lambda: requests.pop(solver.iter, None)
    solver.solve()
    assert solver.iter == 5 and solver.requested_early_exit
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".solverstate")
    # 2: asked for; 3: periodic; 5: the final snapshot of a stopped run (snapshot_after_train)
    assert names == ["snap_iter_2.solverstate", "snap_iter_3.solverstate", "snap_iter_5.solverstate"]
    assert "Optimization stopped early." in capsys.readouterr().out


def test_signal_effects():
    with SignalActions("stop", "snapshot") as actions:
        os.kill(os.getpid(), signal.SIGINT)
        if hasattr(signal, "SIGHUP"):
            os.kill(os.getpid(), signal.SIGHUP)
        assert actions() == "stop"
        assert actions() == ("snapshot" if hasattr(signal, "SIGHUP") else None)
        assert actions() is None
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C while stopping interrupts at once
            os.kill(os.getpid(), signal.SIGINT)
    with SignalActions("none", "none") as actions:
        os.kill(os.getpid(), signal.SIGINT)
        assert actions() is None
    with pytest.raises(ValueError):
        SignalActions("halt")


def test_display_lines_and_csv_log(toy_layers, tmp_path, capsys):
    settings = {"net_param": dropout_net(), "base_lr": 0.02, "lr_policy": "fixed", "display": 2, "max_iter": 6,
                "test_iter": [2], "test_interval": 3, "test_compute_loss": True,
                "snapshot_prefix": str(tmp_path / "run"), "random_seed": 2}
    solver = Solver(settings, device="cpu", progress=False)
    solver.solve()
    out = capsys.readouterr().out
    assert "Iteration 0 (0 iter/s," in out and "s/2 iters), loss = " in out
    assert "    Train net output #0: loss = " in out and "(* 1 = " in out
    assert "Iteration 4, lr = 0.02" in out
    assert "Iteration 3, Testing net (#0)" in out and "Test loss: " in out
    assert "    Test net output #0: loss = " in out
    assert out.rstrip().endswith("Optimization Done.")
    with open(tmp_path / "run_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["iteration", "seconds", "net", "kind", "name", "value"]
    seen = {(int(r["iteration"]), r["net"], r["kind"], r["name"]) for r in rows}
    for it in (0, 2, 4, 6):
        assert (it, "train", "loss", "loss") in seen
    for it in (0, 2, 4):
        assert (it, "train", "lr", "lr") in seen and (it, "train", "loss_output", "loss") in seen
    for it in (0, 3, 6):
        assert (it, "test0", "loss", "loss") in seen and (it, "test0", "loss_output", "loss") in seen
    lr_rows = [float(r["value"]) for r in rows if r["kind"] == "lr"]
    assert lr_rows == [pytest.approx(0.02)] * 3


def test_resumed_run_continues_the_csv_log(toy_layers, tmp_path):
    settings = {"net_param": dropout_net(), "base_lr": 0.02, "lr_policy": "fixed", "display": 1, "max_iter": 6,
                "snapshot": 3, "snapshot_prefix": str(tmp_path / "run"), "random_seed": 2}
    Solver(settings, device="cpu", quiet=True).step(5)
    Solver(settings, device="cpu", quiet=True, snapshot=tmp_path / "run_iter_3.solverstate").step(1)
    with open(tmp_path / "run_log.csv", newline="") as f:
        iterations = [int(r["iteration"]) for r in csv.DictReader(f) if r["kind"] == "loss"]
    assert iterations == [0, 1, 2, 3]  # 3 and 4 of the first run were dropped, 3 was redone


def test_extra_state_codec_round_trip():
    value = {"n": 2 ** 70, "f": [1.5, float("inf")], "t": (1, "a", None), "b": b"\x00\x01", "$key": True,
             "a": np.arange(6, dtype=np.uint32).reshape(2, 3), "s": np.float32(2.5),
             "x": torch.tensor([1.0, 2.0], dtype=torch.float64)}
    back = extra_state.decode(extra_state.encode(value))
    assert back["n"] == 2 ** 70 and back["f"] == [1.5, float("inf")] and back["t"] == (1, "a", None)
    assert back["b"] == b"\x00\x01" and back["$key"] is True and back["s"] == np.float32(2.5)
    assert np.array_equal(back["a"], value["a"]) and back["a"].dtype == np.uint32
    assert torch.equal(back["x"], value["x"])
    with pytest.raises(TypeError):
        extra_state.encode({"bad": object()})


def test_progress_bar_goes_to_stderr_and_lines_to_stdout(capsys):
    x, y = batches(1)[0]
    solver = Solver({"net_param": least_squares_net(), "base_lr": 0.05, "lr_policy": "fixed", "display": 2},
                    device="cpu", progress=True, log=False)
    solver.step(4, data=x, target=y)
    captured = capsys.readouterr()
    assert "4/4" in captured.err  # tqdm's counter
    assert "Iteration 2, lr = 0.05" in captured.out and "Iteration" not in captured.err
