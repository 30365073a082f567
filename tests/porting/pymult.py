"""A multiplier configured through ``param_str`` (JSON or YAML), written as a Caffe Python layer.

``param_str: "{'factor': 2.5}"`` or ``param_str: '{"factor": 2.5, "bias": 1}'``; in TEST the layer can be
told to pass its input through (``test_identity: true``), which exercises ``self.phase``.
"""

import json

import caffe
import yaml


class MultiplyLayer(caffe.Layer):

    def setup(self, bottom, top):
        try:
            params = json.loads(self.param_str)
        except ValueError:
            params = yaml.safe_load(self.param_str)
        self.factor = float(params["factor"])
        self.bias = float(params.get("bias", 0.0))
        if params.get("test_identity", False) and self.phase == caffe.TEST:
            self.factor, self.bias = 1.0, 0.0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.factor + self.bias

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self.factor
