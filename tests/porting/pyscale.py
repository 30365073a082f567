"""A per-channel scale with a learnable blob, written as a Caffe Python layer.

top = bottom * s[c], s of shape (channels,), created with ``self.blobs.add_blob`` and filled in ``setup``
with the value ``param_str`` gives (``"init: 1.5"``, YAML; default 1).
"""

import caffe
import numpy as np
import yaml


class ChannelScaleLayer(caffe.Layer):

    def setup(self, bottom, top):
        params = yaml.safe_load(self.param_str) if self.param_str else {}
        init = float((params or {}).get("init", 1.0))
        if len(bottom) != 1 or len(top) != 1:
            raise Exception("ChannelScale takes one bottom and one top.")
        self.blobs.add_blob(bottom[0].channels)
        self.blobs[0].data[...] = init

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def _scale(self, bottom):
        shape = [1] * len(bottom.data.shape)
        shape[1] = bottom.channels
        return self.blobs[0].data.reshape(shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self._scale(bottom[0])

    def backward(self, top, propagate_down, bottom):
        axes = tuple(i for i in range(len(top[0].diff.shape)) if i != 1)
        self.blobs[0].diff[...] += np.sum(top[0].diff * bottom[0].data, axis=axes)
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self._scale(bottom[0])
