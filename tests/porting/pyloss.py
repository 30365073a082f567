"""A Euclidean loss written as a Caffe Python layer, in the style of Caffe's examples/pycaffe/layers/pyloss.py.

Use it with ``loss_weight: 1`` in the net: a Python layer is not a LossLayer.  One change from the example:
``self.diff`` takes the blobs' dtype (the example forces float32), so that a float64 net can check its
gradient with finite differences.
"""

import caffe
import numpy as np


class EuclideanLossLayer(caffe.Layer):
    """loss = sum((a - b)^2) / num / 2 over two bottoms of the same size."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        self.diff = np.zeros_like(bottom[0].data)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            if i == 0:
                sign = 1
            else:
                sign = -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num
