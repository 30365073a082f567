"""``caffe-like gradcheck``: passes for every loss layer, prints its table, and catches a broken layer."""

from __future__ import annotations

import pytest
import torch

from caffe_like import cli, gradcheck_suite
from caffe_like.layers import center_loss, large_margin_inner_product

HEADER = ("layer", "case", "check", "max rel err", "threshold", "verdict")


def rows_of(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["layer", "case", "check"] and set(lines[1]) <= {"-", " "}
    return [line.split() for line in lines[2:] if line and line.split()[0] in gradcheck_suite.LAYER_TYPES]


def test_float64_passes_with_its_table(capsys):
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for word in HEADER:
        assert word in out.splitlines()[0]
    rows = rows_of(out)
    assert {r[0] for r in rows} == set(gradcheck_suite.LAYER_TYPES)
    assert all(r[-1] == "ok" for r in rows) and "FAIL" not in out
    checks = {" ".join(r[2:-3]) for r in rows}
    assert {"ref/fd float64", "torch fwd == ref float64", "torch bwd == ref float64"} <= checks
    assert any(c.startswith("autograd.gradcheck") for c in checks)
    # every loss layer gets the full chain; Accuracy (no backward) only the forward comparison
    for layer in gradcheck_suite.LAYER_TYPES:
        layer_checks = {" ".join(r[2:-3]) for r in rows if r[0] == layer}
        assert ("torch fwd == ref float64" in layer_checks) and (len(layer_checks) == 1) == (layer == "Accuracy")
    assert out.rstrip().splitlines()[-1].endswith("checks passed (27 cases)")


def test_float32_passes(capsys):
    assert cli.main(["gradcheck", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "torch bwd == ref float32" in out and "caffe-fd float32" in out and "FAIL" not in out


def test_layer_filter(capsys):
    assert cli.main(["gradcheck", "--layer", "CenterLoss", "--layer", "ReciprocalNormLoss"]) == 0
    rows = rows_of(capsys.readouterr().out)
    assert {r[0] for r in rows} == {"CenterLoss", "ReciprocalNormLoss"}


def test_unknown_layer_is_a_clear_error(capsys):
    assert cli.main(["gradcheck", "--layer", "Convolutoin"]) == 2
    err = capsys.readouterr().err
    assert "Convolutoin" in err and "LargeMarginInnerProduct" in err and "Traceback" not in err


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gradcheck", "--help"])
    assert exit_info.value.code == 0
    assert "--dtype" in capsys.readouterr().out


def test_a_broken_margin_gradient_fails(monkeypatch, capsys):
    """A wrong A = P'(c) in the L-Softmax backward (the forward is untouched)."""
    real = large_margin_inner_product.psi_terms

    def broken(c, m):
        p, a, b = real(c, m)
        return p, a * 1.1, b

    monkeypatch.setattr(large_margin_inner_product, "psi_terms", broken)
    assert cli.main(["gradcheck", "--layer", "LargeMarginInnerProduct"]) == 1
    out = capsys.readouterr().out
    rows = rows_of(out)
    failed = {(r[1], " ".join(r[2:-3])) for r in rows if r[-1] == "FAIL"}
    assert ("double", "torch bwd == ref float64") in failed
    assert any(check.startswith("autograd.gradcheck") for _, check in failed)
    assert not any(case == "single" for case, _ in failed)  # m = 1 does not use psi_terms
    assert all(r[-1] == "ok" for r in rows if " ".join(r[2:-3]).startswith("torch fwd"))
    assert "FAILED" in out.splitlines()[-1]


def test_a_center_update_scaled_by_the_loss_weight_fails(monkeypatch, capsys):
    """The classic port mistake: the centers' update multiplied by the loss weight.  Only the comparison
    with the reference can see it (the centers' update is not a derivative, so finite differences cannot)."""
    real = center_loss._CenterLoss.backward

    def scaled(ctx, grad):
        dx, dc, dlabel = real(ctx, grad)
        return dx, None if dc is None else dc * grad, dlabel

    monkeypatch.setattr(center_loss._CenterLoss, "backward", staticmethod(scaled))
    assert cli.main(["gradcheck", "--layer", "CenterLoss"]) == 1
    rows = rows_of(capsys.readouterr().out)
    failed = {" ".join(r[2:-3]) for r in rows if r[-1] == "FAIL"}
    assert failed == {"torch bwd == ref float64"}


def test_a_layer_that_raises_is_reported_not_fatal(monkeypatch, capsys):
    def boom(self, *bottoms):
        raise RuntimeError("boom")

    monkeypatch.setattr(center_loss.CenterLoss, "forward", boom)
    assert cli.main(["gradcheck", "--layer", "CenterLoss", "--layer", "Accuracy"]) == 1
    out = capsys.readouterr().out
    assert "boom" in out and any(r[0] == "Accuracy" and r[-1] == "ok" for r in rows_of(out))


def test_library_rows():
    rows = gradcheck_suite.run_suite(["ReciprocalNormLoss"], "float64")
    assert rows and all(r.passed for r in rows)
    assert all(r.max_rel_error < 1e-6 for r in rows)
    assert torch.get_default_dtype() == torch.float32  # the suite leaves torch's defaults alone
