"""One test per class of bad net/solver input: the SpecError names the file, the line and the culprit,
and the CLI prints it without a traceback and exits with status 2."""

from __future__ import annotations

import textwrap

import pytest

from caffe_like.cli import main
from caffe_like.errors import SpecError
from caffe_like.spec.net import NetSpec
from caffe_like.spec.solver import SolverSpec

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n'


def _write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path, text, name="net.prototxt", loader=NetSpec.load) -> SpecError:
    path = _write(tmp_path, text, name)
    with pytest.raises(SpecError) as info:
        loader(path)
    err = info.value
    assert err.file == str(path)
    return err


def test_unknown_field_with_suggestion(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
                 '  inner_product_param { num_ouput: 3 } }\n')
    assert err.line == 3 and err.column == 25 and err.layer == "ip"
    assert "num_ouput" in str(err) and "num_output" in str(err)


def test_unknown_enum_with_suggestion(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p"\n'
                 '  pooling_param { pool: MAXX kernel_size: 1 } }\n')
    assert err.line == 3 and err.column == 25 and err.layer == "p"
    assert "MAXX" in str(err) and "'MAX'" in str(err)


def test_unknown_layer_type(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "c" type: "Convolutoin" bottom: "data" top: "c" }\n')
    assert err.line == 2 and err.layer == "c"
    assert "Convolutoin" in str(err) and "'Convolution'" in str(err)
    assert "register_layer" in str(err)


def test_missing_required_field(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" }\n')
    assert err.line == 2 and err.layer == "ip"
    assert "inner_product_param.num_output" in str(err)


def test_top_produced_twice(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x" }\n'
                 'layer { name: "b" type: "ReLU" bottom: "data" top: "x" }\n')
    assert err.line == 3 and err.layer == "b"
    assert "'x'" in str(err) and "'a'" in str(err) and "in place" in str(err)


def test_in_place_top_is_fine(tmp_path):
    NetSpec.load(_write(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "data" }\n'))


def test_dangling_bottom(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "dta" top: "x" }\n')
    assert err.line == 2 and err.layer == "a"
    assert "'dta'" in str(err) and "'data'" in str(err)


def test_bottom_missing_in_one_phase_only(tmp_path):
    err = _error(tmp_path, INPUT.replace('top: "data"', 'top: "data" include { phase: TRAIN }') +
                 'layer { name: "a" type: "ReLU" bottom: "data" top: "x" }\n')
    assert "TEST" in str(err) and err.layer == "a"


def test_include_and_exclude(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x"\n'
                 ' include { phase: TRAIN }\n exclude { phase: TEST } }\n')
    assert err.layer == "a" and err.line == 4 and "include" in str(err)


def test_loss_weight_count(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x"\n'
                 ' loss_weight: 1 loss_weight: 2 }\n')
    assert err.layer == "a" and err.line == 3 and "loss_weight" in str(err)


def test_repeated_singular_field(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" name: "b" type: "ReLU" bottom: "data" top: "x" }\n')
    assert err.line == 2 and "more than once" in str(err)


def test_syntax_error_has_line_and_column(tmp_path):
    err = _error(tmp_path, INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x"\n')
    assert err.line is not None and "}" in str(err)


def test_mixed_layer_and_layers(tmp_path):
    err = _error(tmp_path, INPUT + 'layers { name: "a" type: RELU bottom: "data" top: "x" }\n')
    assert "layers" in str(err) and err.line is not None


def test_yaml_errors_have_lines(tmp_path):
    err = _error(tmp_path, """\
        name: n
        layer:
          - {name: data, type: Input, top: data, input_param: {shape: {dim: [1, 3]}}}
          - name: ip
            type: InnerProduct
            bottom: data
            top: ip
            inner_product_param: {num_output: 2, bias_trem: false}
        """, name="net.yaml")
    assert err.line == 8 and err.layer == "ip" and "bias_term" in str(err)


def test_yaml_duplicate_key(tmp_path):
    err = _error(tmp_path, "name: a\nname: b\n", name="net.yaml")
    assert err.line == 2 and "twice" in str(err)


def test_yaml_python_objects_are_refused(tmp_path):
    err = _error(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n", name="net.yaml")
    assert err.line == 1


def test_solver_unknown_lr_policy(tmp_path):
    _write(tmp_path, INPUT, "net.prototxt")
    err = _error(tmp_path, 'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "stpe"\n', name="solver.prototxt",
                 loader=SolverSpec.load)
    assert err.line == 3 and "'step'" in str(err)


def test_solver_missing_net(tmp_path):
    err = _error(tmp_path, 'net: "nowhere.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n',
                 name="solver.prototxt", loader=SolverSpec.load)
    assert err.line == 1 and "nowhere.prototxt" in str(err)


def test_solver_snapshot_without_prefix(tmp_path):
    _write(tmp_path, INPUT, "net.prototxt")
    err = _error(tmp_path, 'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nsnapshot: 100\n',
                 name="solver.prototxt", loader=SolverSpec.load)
    assert err.line == 4 and "snapshot_prefix" in str(err)


def test_cli_prints_the_error_without_traceback(tmp_path, capsys):
    path = _write(tmp_path, INPUT + 'layer { name: "c" type: "Convolutoin" bottom: "data" top: "c" }\n')
    assert main(["convert", str(path), str(tmp_path / "out.yaml")]) == 0  # convert keeps unknown types
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and "Convolutoin" in err and "Traceback" not in err


def test_cli_missing_file(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "none.prototxt")]) == 2
    assert "file not found" in capsys.readouterr().err
