"""User layers in PyTorch: register_layer, --plugin MODULE, the caffe_like.layers entry points, a fork's
parameter block through EXTRA_PARAM_BLOCKS, and the unknown-type error that says how to add one."""

from __future__ import annotations

import textwrap
import warnings

import pytest
import torch

import caffe_like
from caffe_like.cli import main
from caffe_like.errors import SpecError
from caffe_like.layers import registry

PLUGIN = textwrap.dedent('''
    """A lab's fork layers, as a caffe_like plugin."""
    from dataclasses import dataclass

    import caffe_like
    from caffe_like.spec.schema import Message, scalar


    @dataclass
    class TimesParameter(Message):
        factor: float = scalar(1, "float", 2.0, "the multiplier; default 2")


    @caffe_like.register_layer
    class {cls}(caffe_like.Layer):
        TYPE = "{cls}"
        EXTRA_PARAM_BLOCKS = {{"times_param": TimesParameter}}

        def setup(self, bottom_shapes):
            self.factor = self.param("times_param").factor

        def infer_shapes(self, bottom_shapes):
            return [bottom_shapes[0]]

        def forward(self, x):
            return (x * self.factor,)
''')


def _net(tmp_path, type_name: str, block: str = "") -> str:
    path = tmp_path / "net.prototxt"
    path.write_text(textwrap.dedent(f'''\
        name: "plugin_net"
        layer {{ name: "x" type: "Input" top: "x" input_param {{ shape {{ dim: 2 dim: 3 }} }} }}
        layer {{ name: "t" type: "{type_name}" bottom: "x" top: "y" {block} }}
        '''))
    return str(path)


def test_plugin_module_loaded_with_the_plugin_option(tmp_path, monkeypatch, capsys):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "lab_fork_layers.py").write_text(PLUGIN.format(cls="TimesFactor"))
    monkeypatch.syspath_prepend(str(plugins))
    net = _net(tmp_path, "TimesFactor", "times_param { factor: 3 }")
    assert main(["summary", net]) == 2  # not loaded: unknown type
    assert "unknown layer type 'TimesFactor'" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["--plugin", "lab_fork_layers", "summary", net, "--json"]) == 0
    assert '"type": "TimesFactor"' in capsys.readouterr().out
    built = caffe_like.Net(net)
    assert torch.equal(built(x=torch.ones(2, 3))["y"], torch.full((2, 3), 3.0))


def test_plugin_that_cannot_be_imported(capsys):
    assert main(["--plugin", "no_such_plugin_module_anywhere", "summary", "x.prototxt"]) == 2
    err = capsys.readouterr().err
    assert "cannot import plugin module 'no_such_plugin_module_anywhere'" in err and "PYTHONPATH" in err


def _install_fake_packages(tmp_path, monkeypatch, entry_points: dict[str, str], modules: dict[str, str]):
    """A site folder on sys.path holding ``modules`` ({name: source}) and one installed distribution per
    ``entry_points`` item ({entry point name: the module it names in the caffe_like.layers group}); the
    registry is told that it has not looked at entry points yet."""
    site = tmp_path / "site"
    site.mkdir()
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    for name, target in entry_points.items():
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[caffe_like.layers]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)


def test_entry_point_package(tmp_path, monkeypatch):
    """An installed package declaring a caffe_like.layers entry point is found when a net names its type."""
    _install_fake_packages(tmp_path, monkeypatch, {"lab_fork": "lab_fork_pkg"},
                           {"lab_fork_pkg": PLUGIN.format(cls="TimesFromPackage")})
    assert "TimesFromPackage" not in registry.LAYERS
    registry.load_entry_points()
    assert registry._entry_points_loaded and registry.LAYERS["TimesFromPackage"].__module__ == "lab_fork_pkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = caffe_like.Net(_net(tmp_path, "TimesFromPackage", "times_param { factor: 0.5 }"))
    assert torch.equal(net(x=torch.ones(2, 3))["y"], torch.full((2, 3), 0.5))
    assert main(["check", _net(tmp_path, "TimesFromPackage"), "--no-build"]) == 0


def test_entry_point_types_are_found_when_a_net_names_them(tmp_path, monkeypatch):
    """Without any explicit call: building a net (and the CLI) must look at the entry points first."""
    _install_fake_packages(tmp_path, monkeypatch, {"lazy": "lazy_fork_pkg"},
                           {"lazy_fork_pkg": textwrap.dedent('''
        import caffe_like

        @caffe_like.register_layer
        class Lazy(caffe_like.Layer):
            TYPE = "EntryPointLazy"
            def infer_shapes(self, shapes):
                return [shapes[0]]
            def forward(self, x):
                return (x + 1,)
        ''')})
    net = _net(tmp_path, "EntryPointLazy")
    built = caffe_like.Net(net)
    assert torch.equal(built(x=torch.zeros(2, 3))["y"], torch.ones(2, 3))


def test_load_entry_points_directly_and_a_broken_one_warns(tmp_path, monkeypatch):
    _install_fake_packages(tmp_path, monkeypatch,
                           {"good_fork_pkg": "good_fork_pkg", "broken_fork_pkg": "module_that_does_not_exist"},
                           {"good_fork_pkg": textwrap.dedent('''
        import caffe_like

        @caffe_like.register_layer
        class Negate(caffe_like.Layer):
            TYPE = "EntryPointNegate"
            def infer_shapes(self, shapes):
                return [shapes[0]]
            def forward(self, x):
                return (-x,)
        ''')})
    with pytest.warns(UserWarning, match="layer plugin 'broken_fork_pkg'.*failed to load"):
        registry.load_entry_points()
    assert registry.LAYERS["EntryPointNegate"].__module__ == "good_fork_pkg"
    registry.load_entry_points()  # once only: nothing happens the second time


def test_extra_param_block_is_checked_with_lines(tmp_path, monkeypatch):
    (tmp_path / "times_checked_plugin.py").write_text(PLUGIN.format(cls="TimesChecked"))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugin("times_checked_plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = caffe_like.Net(_net(tmp_path, "TimesChecked"))
        assert torch.equal(default(x=torch.ones(2, 3))["y"], torch.full((2, 3), 2.0))  # the block's default
        with pytest.raises(SpecError) as caught:
            caffe_like.Net(_net(tmp_path, "TimesChecked", "times_param { factr: 3 }"))
    message = str(caught.value)
    assert "unknown field 'factr'" in message and "did you mean 'factor'?" in message and "net.prototxt:3" in message


def test_unknown_block_on_a_builtin_layer_says_how_to_read_it(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SpecError) as caught:
            caffe_like.Net(_net(tmp_path, "ReLU", "relu6_param { cap: 6 }"))
    message = str(caught.value)
    assert "parameter block 'relu6_param' is not known to caffe_like" in message
    assert "EXTRA_PARAM_BLOCKS" in message and "register_layer" in message and "net.prototxt:3" in message


@pytest.mark.parametrize("how", ["net", "cli"])
def test_unknown_type_says_exactly_how_to_add_one(tmp_path, capsys, how):
    net = _net(tmp_path, "ShuffleChannel")
    if how == "net":
        with pytest.raises(SpecError) as caught:
            caffe_like.Net(net)
        message = str(caught.value)
    else:
        assert main(["summary", net]) == 2
        message = capsys.readouterr().err
    assert "unknown layer type 'ShuffleChannel'" in message and "net.prototxt:3" in message
    for words in ("register it with caffe_like.register_layer", "--plugin MODULE",
                  "'caffe_like.layers' entry point"):
        assert words in message, words


def test_a_bvlc_type_caffe_like_lacks_is_named_as_such(tmp_path):
    with pytest.raises(SpecError) as caught:
        caffe_like.Net(_net(tmp_path, "MVN"))
    message = str(caught.value)
    assert "'MVN' is a Caffe layer that caffe_like does not implement" in message
    assert "register_layer" in message and "--plugin MODULE" in message


def test_register_layer_refuses_a_second_class_for_a_type():
    class First(caffe_like.Layer):
        TYPE = "PortingTwice"

    class Second(caffe_like.Layer):
        TYPE = "PortingTwice"

    caffe_like.register_layer(First)
    with pytest.raises(ValueError, match="already registered"):
        caffe_like.register_layer(Second)
    assert caffe_like.register_layer(Second, replace=True) is Second
