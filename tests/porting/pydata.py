"""A data layer written as a Caffe Python layer (no bottoms): random images whose label is the channel
with the largest mean, so that a net can learn it.  ``param_str``: ``{"batch_size": 16, "channels": 3,
"size": 4, "seed": 0}`` (Python literal, read with ast.literal_eval as many Caffe data layers do)."""

import ast

import caffe
import numpy as np


class ChannelDataLayer(caffe.Layer):

    def setup(self, bottom, top):
        params = ast.literal_eval(self.param_str)
        self.batch_size = params["batch_size"]
        self.channels = params.get("channels", 3)
        self.size = params.get("size", 4)
        self.rng = np.random.RandomState(params.get("seed", 0))
        if len(bottom) != 0:
            raise Exception("ChannelDataLayer takes no bottoms.")
        if len(top) != 2:
            raise Exception("ChannelDataLayer needs two tops: data and label.")

    def reshape(self, bottom, top):
        top[0].reshape(self.batch_size, self.channels, self.size, self.size)
        top[1].reshape(self.batch_size)

    def forward(self, bottom, top):
        labels = self.rng.randint(0, self.channels, size=self.batch_size)
        data = self.rng.uniform(-1, 1, size=top[0].data.shape)
        data[np.arange(self.batch_size), labels] += 1.0
        top[0].data[...] = data
        top[1].data[...] = labels

    def backward(self, top, propagate_down, bottom):
        pass
