"""A Python layer module whose import fails (a dependency that is not installed)."""

import caffe
import this_package_does_not_exist_anywhere  # noqa: F401


class Layer(caffe.Layer):
    pass
