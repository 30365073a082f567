"""The preprocessing a data layer applies, as data: described at export, applied again at inference.

Caffe's ``DataTransformer`` in the TEST phase turns raw 8-bit pixels into the net's input as
``(pixel - mean) * scale`` over the centre ``crop_size`` window (the mean image, when a ``mean_file`` is
given, has the uncropped size and is cut at the same window).  :func:`describe` records that, plus what
the pixels are (channel order, size), in a JSON-able dict stored in the ONNX model's metadata;
:func:`apply` redoes it with NumPy on raw pixels (images, IDX files, uint8 arrays).

Channel order (what the net was trained on, as Caffe's readers produce it):

* ImageData: ``BGR`` when ``is_color`` (OpenCV), ``gray`` otherwise;
* Data: ``gray`` for 1 channel; 3 channels: ``RGB`` for caffe_like's CIFAR backend (as Caffe's
  ``convert_cifar_data`` stores CIFAR's planes), ``BGR`` otherwise (``convert_imageset`` uses OpenCV);
  ``force_gray``/``force_color`` decide for encoded records;
* MemoryData and WindowData: ``BGR`` for 3 channels (pycaffe / OpenCV habit), ``gray`` for 1;
* HDF5Data, DummyData and plain Input layers: ``none`` (the values are fed as they are).

This module never imports torch.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..spec.params import LayerParameter
from ..spec.schema import get_or_default, has

__all__ = ["describe", "apply", "mean_image", "NO_PREPROCESSING"]

#: the description of an input fed as it is
NO_PREPROCESSING = {"channel_order": "none", "scale": 1.0, "mean_value": [], "mean_file": "", "crop_size": 0,
                    "image_size": None, "raw": False}


def _channel_order(layer: LayerParameter, channels: int) -> str:
    transform = get_or_default(layer, "transform_param")
    if layer.type == "ImageData":
        return "BGR" if get_or_default(layer, "image_data_param").is_color else "gray"
    if layer.type in ("HDF5Data", "DummyData", "Input"):
        return "none"
    if channels == 1:
        return "gray"
    if channels != 3:
        return "none"
    if layer.type == "Data":
        if transform.force_gray:
            return "gray"
        if get_or_default(layer, "data_param").backend == "CIFAR":
            return "RGB"
    return "BGR"


def describe(layer: LayerParameter, shape, uncropped, base_dir: Path) -> dict:
    """The preprocessing of data layer ``layer`` whose top 0 has ``shape`` (N, C, H, W) in TEST.

    ``uncropped`` is the per-item (C, H, W) before cropping when known.
    """
    shape = tuple(int(d) for d in shape)
    channels = shape[1] if len(shape) > 1 else 1
    order = _channel_order(layer, channels)
    if layer.type in ("HDF5Data", "DummyData", "Input"):
        return dict(NO_PREPROCESSING, source_layer=layer.name, source_type=layer.type)
    transform = get_or_default(layer, "transform_param")
    out = {
        "source_layer": layer.name,
        "source_type": layer.type,
        "raw": True,  # the layer reads raw 8-bit pixels, 0..255
        "channel_order": order,
        "scale": float(transform.scale),
        "mean_value": [float(v) for v in transform.mean_value],
        "mean_file": "",
        "crop_size": int(transform.crop_size),
        "image_size": None,
    }
    if uncropped is not None and len(uncropped) == 3:
        out["image_size"] = [int(uncropped[1]), int(uncropped[2])]
    if layer.type == "ImageData":
        p = get_or_default(layer, "image_data_param")
        if p.new_height and p.new_width:
            out["image_size"] = [int(p.new_height), int(p.new_width)]
    if not out["crop_size"] and len(shape) == 4:
        out["image_size"] = out["image_size"] or [shape[2], shape[3]]
    if has(transform, "mean_file") and transform.mean_file:
        from ..weights import read_blobproto

        path = Path(transform.mean_file)
        path = path if path.is_absolute() else Path(base_dir) / path
        mean = np.asarray(read_blobproto(path), dtype=np.float32)
        mean = mean.reshape(mean.shape[-3:]) if mean.ndim >= 3 else mean
        out["mean_file"] = path.name
        out["mean_image"] = {"shape": list(mean.shape),
                             "float32_le_base64": base64.b64encode(mean.astype("<f4").tobytes()).decode("ascii")}
        out["image_size"] = [int(mean.shape[-2]), int(mean.shape[-1])]
    return out


def mean_image(description: dict) -> np.ndarray | None:
    """The mean image stored in a description (C, H, W float32), or None."""
    stored = description.get("mean_image")
    if not stored:
        return None
    values = np.frombuffer(base64.b64decode(stored["float32_le_base64"]), dtype="<f4")
    return values.reshape(stored["shape"]).astype(np.float32)


def _centre(array: np.ndarray, height: int, width: int) -> np.ndarray:
    h_off = (array.shape[-2] - height) // 2
    w_off = (array.shape[-1] - width) // 2
    return array[..., h_off:h_off + height, w_off:w_off + width]


def apply(pixels: np.ndarray, description: dict, *, input_shape=None, file: str | None = None) -> np.ndarray:
    """Raw pixels (N, C, H, W), in the model's channel order, to the net's input (float32).

    Subtracts the mean (image or values), crops the centre ``crop_size`` window, multiplies by
    ``scale`` (Caffe's TEST-phase DataTransformer).  ``input_shape`` (C, H, W) is checked at the end.
    """
    x = np.asarray(pixels, dtype=np.float32)
    mean = mean_image(description)
    crop = int(description.get("crop_size") or 0)
    if mean is not None:
        if mean.shape[0] != x.shape[1]:
            raise DataError(f"the input has {x.shape[1]} channels but the model's mean image has {mean.shape[0]}",
                            file=file)
        if mean.shape[-2:] != x.shape[-2:]:
            if mean.shape[-2] < x.shape[-2] or mean.shape[-1] < x.shape[-1]:
                raise DataError(f"the input is {x.shape[-2]}x{x.shape[-1]} but the model's mean image is "
                                f"{mean.shape[-2]}x{mean.shape[-1]}", file=file)
            mean = _centre(mean, x.shape[-2], x.shape[-1])
        x = x - mean[None]
    elif description.get("mean_value"):
        values = np.asarray(description["mean_value"], dtype=np.float32)
        if values.size not in (1, x.shape[1]):
            raise DataError(f"the model has {values.size} mean values for {x.shape[1]} channels", file=file)
        x = x - values.reshape(1, -1, 1, 1)
    if crop and (x.shape[-2] != crop or x.shape[-1] != crop):
        if x.shape[-2] < crop or x.shape[-1] < crop:
            raise DataError(f"the input is {x.shape[-2]}x{x.shape[-1]}, smaller than the model's crop "
                            f"{crop}x{crop}", file=file)
        x = _centre(x, crop, crop)
    scale = float(description.get("scale", 1.0))
    if scale != 1.0:
        x = x * np.float32(scale)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"after preprocessing the input has shape {list(x.shape[1:])} per item, but the model "
                        f"expects {list(input_shape)}", file=file)
    return x
