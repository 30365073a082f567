"""tools/reproduce_table2.py and tools/lambda_sweep.py: help, overrides, a tiny real run, and the reports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("make_paper_configs", "make_mnist_mini", "reproduce_table2", "lambda_sweep")


def load_tool(name: str):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "tools"))
    return module


@pytest.mark.parametrize("tool", TOOLS)
def test_help(tool):
    done = subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "usage:" in done.stdout


def test_overrides_change_what_they_say():
    rt = load_tool("reproduce_table2")
    net, solver = rt.load_configs("rn_lsoftmax")
    rt.apply_overrides(net, solver, {"input": "scale256", "feature_act": "none", "lambda": 1.0, "epsilon": 1e-5,
                                     "normalization": "BATCH_SIZE", "lr": 0.1, "iters": 2000, "batch": 64})
    names = [layer["name"] for layer in net["layer"]]
    assert "feature_prelu" not in names
    for layer in net["layer"]:
        if layer["type"] == "Data":
            assert layer["transform_param"] == {"scale": 0.00390625}
    rn = [la for la in net["layer"] if la["type"] == "ReciprocalNormLoss"]
    assert len(rn) == 2 and rt.rn_settings(net) == {"lambda": 1.0, "epsilon": 1e-5, "normalization": "BATCH_SIZE"}
    assert solver["base_lr"] == 0.1 and solver["max_iter"] == 2000 and solver["stepvalue"] == [1000, 1500, 2000]
    train_batch = [la["data_param"]["batch_size"] for la in net["layer"] if la["type"] == "Data"]
    assert train_batch == [64, 100]
    rt.apply_overrides(net, solver, {"drop_rn": True})
    assert not any(la["type"] == "ReciprocalNormLoss" or la["name"] == "plain_score" for la in net["layer"])
    assert rt.parse_sets(["lambda=1", "normalization=NONE", "warm_start=100"]) == {
        "lambda": 1.0, "normalization": "NONE", "warm_start": 100}


@pytest.mark.slow
def test_a_tiny_table2_run_writes_the_report_and_figures(tmp_path, mnist_dir):
    results = tmp_path / "results.md"
    results.write_text("# Results\n\nhand-written text that must survive\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "reproduce_table2.py"), "--data-root", str(mnist_dir.parent),
         "--seeds", "1", "--iters", "20", "--eval-every", "20", "--variants", "rn_lsoftmax", "center",
         "--runs-dir", str(tmp_path / "runs"), "--results", str(results), "--figures", str(tmp_path / "fig"),
         "--no-estimate"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = results.read_text()
    assert "hand-written text that must survive" in text and "<!-- table2:begin -->" in text
    assert "| RN + L-Softmax | 92.06 | 552.54 |" in text and "λ=0.1, ε=1, NONE" in text
    for name in ("norm", "loss", "accuracy", "scatter"):
        assert (tmp_path / "fig" / f"table2_{name}.png").stat().st_size > 1000
    record = json.loads((tmp_path / "runs" / "rn_lsoftmax_seed1.json").read_text())
    assert [p["iter"] for p in record["curve"]] == [20] and record["diverged_at"] is None
    features = np.load(tmp_path / "runs" / "rn_lsoftmax_seed1_features.npz")
    assert features["features"].shape == (10000, 2) and features["labels"].shape == (10000,)


def _record(variant, seed, lam, acc, norm, diverged=None):
    curve = [{"iter": i, "accuracy": acc * i / 20, "norm": norm * i / 20, "loss": 2.0 / i} for i in (10, 20)]
    return {"id": f"{variant}_lambda{lam:g}_seed{seed}", "variant": variant, "seed": seed, "overrides": {"lambda": lam},
            "rn": {"lambda": lam, "epsilon": 1.0, "normalization": "NONE"}, "base_lr": 0.01, "iters": 20,
            "curve": curve if diverged is None else [], "diverged_at": diverged, "error": None, "seconds": 1.0,
            **({"final": {"accuracy": acc, "norm": norm, "loss": 0.1}} if diverged is None else {})}


def test_lambda_sweep_report_from_runs(tmp_path):
    ls = load_tool("lambda_sweep")
    runs = tmp_path / "runs"
    runs.mkdir()
    for variant in ("rn_softmax", "rn_lsoftmax"):
        for lam in (0.0, 0.01, 0.1, 1.0):
            for seed in (1, 2):
                diverged = 7 if lam == 1.0 and seed == 2 else None
                record = _record(variant, seed, lam, 0.9 + lam / 100, 20 + 10 * lam, diverged)
                (runs / f"{record['id']}.json").write_text(json.dumps(record))
    (runs / "meta.json").write_text(json.dumps({"command": "python tools/lambda_sweep.py", "commit": "abc",
                                                "machine": "test", "seconds": 60}))
    results = tmp_path / "results.md"
    assert ls.main(["--report-only", "--seeds", "2", "--runs-dir", str(runs), "--results", str(results),
                    "--figures", str(tmp_path / "fig")]) == 0
    text = results.read_text()
    assert "| RN + Softmax | 0.1 | 92.04 | 90.10 ± 0.00 | 21.00 ± 0.00 | 0 of 2 |" in text
    assert "seed 2 at iter 7" in text
    for name in ("norm", "loss", "accuracy"):
        assert (tmp_path / "fig" / f"lambda_{name}.png").exists()


def test_explore_table_reports_divergences():
    rt = load_tool("reproduce_table2")
    diverged = _record("rn_softmax", 1, 1.0, 0.9, 20, diverged=30)
    diverged["id"] = "A3_rn_softmax"
    stable = _record("softmax", 1, 0.0, 0.91, 17.3)
    stable.update(id="A1_softmax", rn=None)
    text = rt.explore_markdown([stable, diverged], command="c", commit="x", host="h")
    assert "**diverged (NaN) at iteration 30**" in text and "| A1 | Softmax |" in text and "17.30" in text


def test_committed_configs_load_in_the_tools():
    rt = load_tool("reproduce_table2")
    for variant in rt.VARIANTS:
        net, solver = rt.load_configs(variant)
        assert yaml.safe_dump(net) and solver["max_iter"] == rt.REFERENCE_ITERS
