"""Caffe Python layers that go wrong in every way the Python layer must report clearly."""

import caffe
import numpy as np


class SetupFails(caffe.Layer):
    def setup(self, bottom, top):
        raise ValueError("setup went wrong on purpose")

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data


class ForwardFails(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        return 1 / 0


class BackwardFails(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        raise RuntimeError("backward went wrong on purpose")


class NoBackward(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data


class WrongTopShape(caffe.Layer):
    """reshape() says the top is like the bottom; forward() then makes it another shape."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].reshape(bottom[0].num, 7)
        top[0].data[...] = 1.0


class NoTopShape(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass


class BadAssign(caffe.Layer):
    """Writes an array of the wrong shape into the top."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = np.ones((3, 3, 3, 3, 3))


class FailAt(caffe.Layer):
    """Identity that raises at the forward number given in param_str ("fail_at: N")."""

    def setup(self, bottom, top):
        import yaml

        self.fail_at = int(yaml.safe_load(self.param_str)["fail_at"])
        self.calls = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError(f"failing at forward {self.calls} on purpose")
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff


class NotALayer:
    """Lacks the caffe.Layer interface."""
