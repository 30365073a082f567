"""Caffe's ``DataTransformer``, vectorized over a batch with NumPy.

Per image, exactly as ``data_transformer.cpp`` (BVLC master):

1. ``do_mirror = mirror && Rand(2)`` — **random in every phase**, TEST included (Caffe's trap);
2. the crop offset: TRAIN draws ``h_off = Rand(H − crop + 1)`` then ``w_off = Rand(W − crop + 1)``;
   TEST takes the centre ``((H − crop) / 2, (W − crop) / 2)`` (integer division); no crop: (0, 0);
3. ``out[c, h, w'] = (pixel[c, h_off + h, w_off + w] − mean) · scale`` with ``w' = crop − 1 − w`` when
   mirrored: **the mean is subtracted first, then the result is scaled**.  ``mean_file`` (a BlobProto of
   the **uncropped** size) is indexed at the source pixel, i.e. cropped at the same offset and *before*
   mirroring; ``mean_value`` gives one value for every channel or one per channel.

``Rand(n)`` is Caffe's ``rng() % n`` on a Mersenne Twister (``boost::mt19937``, here NumPy's MT19937
seeded with the standard ``init_genrand``), drawn in Caffe's order: per image the mirror draw (only when
``mirror``), then the two crop draws (only in TRAIN with a crop).  The arithmetic is done in the net's
precision (float32, or float64 for double nets), with ``scale`` and the means rounded to float32 first as
Caffe stores them, so float32 results equal Caffe's bit for bit.

The generator's state is part of a data layer's resumable state (:meth:`DataTransformer.rng_state`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import DataError

__all__ = ["DataTransformer", "mt19937"]


def mt19937(seed: int) -> np.random.MT19937:
    """A Mersenne Twister seeded as ``std::mt19937(seed)`` / ``boost::mt19937(seed)`` (init_genrand)."""
    generator = np.random.MT19937()
    generator.state = np.random.RandomState(int(seed) & 0xFFFFFFFF).get_state(legacy=False)
    return generator


class DataTransformer:
    """Crop, mirror, ``(x − mean) · scale`` as Caffe (see the module docstring).

    Args:
        param: the layer's TransformationParameter (``scale``, ``mirror``, ``crop_size``, ``mean_value``;
            the mean file's contents are passed as ``mean``).
        phase: "TRAIN" or "TEST" (random or centre crop).
        mean: the mean file's blob, (C, H, W) or (1, C, H, W), or None.
        seed: seed of the transformer's MT19937 (only drawn from when ``mirror`` or a TRAIN crop).
        dtype: NumPy dtype of the output (float32 or float64).
    """

    def __init__(self, param, phase: str, *, mean: np.ndarray | None = None, seed: int = 0,
                 dtype=np.float32) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"DataTransformer computes in float32 or float64, not {self.dtype}")
        self.scale = self.dtype.type(np.float32(param.scale))
        self.mirror = bool(param.mirror)
        self.crop = int(param.crop_size)
        self.train = phase == "TRAIN"
        mean_values = [float(v) for v in param.mean_value]
        if mean is not None and mean_values:
            raise DataError("mean_file and mean_value cannot both be given (Caffe refuses it)",
                            fix="keep one of them")
        self.mean: np.ndarray | None = None
        if mean is not None:
            mean = np.asarray(mean)
            if mean.ndim == 4 and mean.shape[0] == 1:
                mean = mean[0]
            if mean.ndim != 3:
                raise DataError(f"the mean file must hold a 1×C×H×W blob, got shape {list(mean.shape)}")
            self.mean = mean.astype(np.float32).astype(self.dtype)
        self.mean_values = (np.asarray(mean_values, dtype=np.float32).astype(self.dtype)
                            if mean_values else None)
        self._draws = int(self.mirror) + 2 * int(self.train and self.crop > 0)
        self._rng = mt19937(seed)

    # -- shapes ------------------------------------------------------------------------------------

    def check(self, shape: Sequence[int]) -> None:
        """Raise a DataError if a C×H×W input cannot be transformed (Caffe's CHECKs)."""
        c, h, w = (int(d) for d in shape)
        if self.crop and (h < self.crop or w < self.crop):
            raise DataError(f"crop_size {self.crop} is larger than the {h}×{w} image",
                            fix="lower crop_size, or resize the images")
        if self.mean is not None and tuple(self.mean.shape) != (c, h, w):
            raise DataError(f"the mean file's blob is {'×'.join(map(str, self.mean.shape))} but the images are "
                            f"{c}×{h}×{w} (Caffe indexes the mean at the uncropped source pixel)",
                            fix="use a mean file computed on these images (compute_image_mean), or mean_value")
        if self.mean_values is not None and len(self.mean_values) not in (1, c):
            raise DataError(f"{len(self.mean_values)} mean_value entries for {c}-channel images",
                            fix="give one mean_value, or one per channel")

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """C×H×W of the output for a C×H×W input."""
        self.check(shape)
        c, h, w = (int(d) for d in shape)
        return (c, self.crop, self.crop) if self.crop else (c, h, w)

    # -- random state ------------------------------------------------------------------------------

    def rng_state(self, plain: bool = True) -> dict:
        """The MT19937 state: {"key": [624 ints], "pos": int} (``plain=False``: the key as a uint32 array,
        cheaper to take after every batch)."""
        state = self._rng.state["state"]
        key = state["key"].copy()
        return {"key": key.tolist() if plain else key, "pos": int(state["pos"])}

    def set_rng_state(self, state: dict) -> None:
        key = np.asarray(state["key"], dtype=np.uint32)
        if key.shape != (624,):
            raise DataError("a transformer RNG state needs 624 key words")
        self._rng.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": int(state["pos"])}}

    @property
    def uses_rng(self) -> bool:
        return self._draws > 0

    # -- the transform -----------------------------------------------------------------------------

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Transform a batch: a (B, C, H, W) array, or a list of (C, H, W) arrays (sizes may differ
        when cropping).  Returns (B, C, h, w) in ``self.dtype``."""
        n = len(images)
        raw = self._rng.random_raw(n * self._draws).reshape(n, self._draws) if self._draws else None
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return self._batch(images, raw)
        first = images[0].shape
        if all(im.shape == first for im in images):
            return self._batch(np.stack(images), raw)
        if not self.crop:
            sizes = sorted({"×".join(map(str, im.shape)) for im in images})
            raise DataError(f"the images of one batch have different sizes ({', '.join(sizes)}); Caffe needs "
                            "them equal unless they are cropped", fix="set new_height/new_width or crop_size")
        return np.concatenate([self._batch(im[None], None if raw is None else raw[i:i + 1])
                               for i, im in enumerate(images)])

    def _batch(self, x: np.ndarray, raw: np.ndarray | None) -> np.ndarray:
        b, c, h, w = x.shape
        self.check((c, h, w))
        col = 0
        do_mirror = None
        if self.mirror:
            do_mirror = (raw[:, col] % 2).astype(bool)
            col += 1
        mean = self.mean
        if self.crop:
            size = self.crop
            if self.train:
                h_off = (raw[:, col] % np.uint64(h - size + 1)).astype(np.intp)
                w_off = (raw[:, col + 1] % np.uint64(w - size + 1)).astype(np.intp)
                windows = sliding_window_view(x, (size, size), axis=(2, 3))
                x = windows[np.arange(b), :, h_off, w_off]
                if mean is not None:
                    mean = sliding_window_view(mean, (size, size), axis=(1, 2))[:, h_off, w_off].transpose(1, 0, 2, 3)
            else:
                top, left = (h - size) // 2, (w - size) // 2
                x = x[:, :, top:top + size, left:left + size]
                if mean is not None:
                    mean = mean[:, top:top + size, left:left + size]
        out = x.astype(self.dtype)  # always a fresh array
        if mean is not None:
            out -= mean
        elif self.mean_values is not None:
            out -= self.mean_values[:, None, None] if len(self.mean_values) == c else self.mean_values[0]
        if self.scale != 1:
            out *= self.scale
        if do_mirror is not None and do_mirror.any():
            out[do_mirror] = out[do_mirror][..., ::-1]
        return out
