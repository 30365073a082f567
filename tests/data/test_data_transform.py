"""Caffe's DataTransformer: hand-computed cases, and bit-exactness against a literal port of Caffe's loop.

The random draws are checked against the published MT19937 sequence: seeded with 5489 (the reference
seed of std::mt19937 / boost::mt19937) its first outputs are 3499211612, 581869302, 3890346734,
3586334585, 545404204, 4161255391, ...; Caffe's Rand(n) is output % n.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from caffe_like.data.transform import DataTransformer, mt19937
from caffe_like.errors import DataError

MT_5489 = [3499211612, 581869302, 3890346734, 3586334585, 545404204, 4161255391, 3922919429, 949333985,
           2715962298, 1323567403]


def param(scale=1.0, mirror=False, crop_size=0, mean_value=()):
    return SimpleNamespace(scale=scale, mirror=mirror, crop_size=crop_size, mean_value=list(mean_value))


def test_mt19937_is_the_standard_generator():
    assert mt19937(5489).random_raw(10).tolist() == MT_5489


def test_mean_subtracted_before_scaling():
    x = np.array([[[[10, 20], [30, 40]]]], dtype=np.uint8)
    out = DataTransformer(param(scale=0.5, mean_value=[5]), "TEST")(x)
    np.testing.assert_array_equal(out, [[[[2.5, 7.5], [12.5, 17.5]]]])  # (x - 5) * 0.5, not x * 0.5 - 5
    assert out.dtype == np.float32


def test_per_channel_and_single_mean_value():
    x = np.full((1, 3, 1, 2), 10, dtype=np.uint8)
    out = DataTransformer(param(mean_value=[1, 2, 3]), "TEST")(x)
    np.testing.assert_array_equal(out[0, :, 0, 0], [9, 8, 7])
    out = DataTransformer(param(scale=2.0, mean_value=[4]), "TEST")(x)
    np.testing.assert_array_equal(out, np.full((1, 3, 1, 2), 12.0))
    with pytest.raises(DataError, match="2 mean_value entries for 3-channel"):
        DataTransformer(param(mean_value=[1, 2]), "TEST")(x)


def test_mean_file_and_mean_value_are_exclusive():
    with pytest.raises(DataError, match="cannot both"):
        DataTransformer(param(mean_value=[1]), "TEST", mean=np.zeros((1, 1, 2, 2)))


def test_centre_crop_in_test():
    x = np.arange(30, dtype=np.uint8).reshape(1, 1, 5, 6)
    out = DataTransformer(param(crop_size=3), "TEST")(x)
    np.testing.assert_array_equal(out[0, 0], x[0, 0, 1:4, 1:4])  # offsets (5-3)//2 = 1, (6-3)//2 = 1
    out = DataTransformer(param(crop_size=2), "TEST")(x)
    np.testing.assert_array_equal(out[0, 0], x[0, 0, 1:3, 2:4])  # (5-2)//2 = 1, (6-2)//2 = 2


def test_mirror_is_random_in_test_too():
    x = np.arange(4 * 3, dtype=np.uint8).reshape(4, 1, 1, 3)
    out = DataTransformer(param(mirror=True), "TEST", seed=5489)(x)
    flips = [v % 2 == 1 for v in MT_5489[:4]]  # one Rand(2) per image: F, F, F, T
    assert flips == [False, False, False, True]
    for i, flip in enumerate(flips):
        np.testing.assert_array_equal(out[i, 0, 0], x[i, 0, 0, ::-1] if flip else x[i, 0, 0])


def test_random_crop_and_mirror_in_train_with_mean_file():
    """Draw order per image: Rand(2) for the mirror, then Rand(H-c+1), Rand(W-c+1).  The mean file is
    indexed at the source pixel (cropped at the same offset) before mirroring."""
    x = (np.arange(2 * 12, dtype=np.uint8).reshape(2, 1, 3, 4) * 3)
    mean = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4) / 4  # legacy 1×C×H×W blob
    out = DataTransformer(param(scale=0.5, mirror=True, crop_size=2), "TRAIN", mean=mean, seed=5489)(x)
    # image 0: mirror 3499211612 % 2 = 0, h = 581869302 % 2 = 0, w = 3890346734 % 3 = 2
    # image 1: mirror 3586334585 % 2 = 1, h = 545404204 % 2 = 0, w = 4161255391 % 3 = 1
    assert (MT_5489[0] % 2, MT_5489[1] % 2, MT_5489[2] % 3) == (0, 0, 2)
    assert (MT_5489[3] % 2, MT_5489[4] % 2, MT_5489[5] % 3) == (1, 0, 1)
    m = mean[0, 0]
    want0 = (x[0, 0, 0:2, 2:4].astype(np.float32) - m[0:2, 2:4]) * np.float32(0.5)
    want1 = ((x[1, 0, 0:2, 1:3].astype(np.float32) - m[0:2, 1:3]) * np.float32(0.5))[:, ::-1]
    np.testing.assert_array_equal(out[0, 0], want0)
    np.testing.assert_array_equal(out[1, 0], want1)


def test_mean_file_shape_must_match_the_uncropped_image():
    t = DataTransformer(param(crop_size=2), "TEST", mean=np.zeros((1, 1, 2, 2)))
    with pytest.raises(DataError, match="uncropped"):
        t(np.zeros((1, 1, 3, 3), dtype=np.uint8))


def test_crop_larger_than_image():
    with pytest.raises(DataError, match="crop_size 5 is larger"):
        DataTransformer(param(crop_size=5), "TEST").output_shape((1, 4, 8))


def test_no_draws_without_mirror_or_train_crop():
    t = DataTransformer(param(crop_size=2), "TEST", seed=1)
    before = t.rng_state()
    t(np.zeros((3, 1, 4, 4), dtype=np.uint8))
    assert t.rng_state() == before and not t.uses_rng


def caffe_loop(x, p, phase, mean, rng):
    """A literal port of Caffe's DataTransformer::Transform(Datum) for one image (the oracle)."""
    c_, h_, w_ = x.shape
    crop = p.crop_size
    scale = np.float32(p.scale)
    do_mirror = p.mirror and (int(rng.random_raw()) % 2) == 1
    height, width, h_off, w_off = h_, w_, 0, 0
    if crop:
        height = width = crop
        if phase == "TRAIN":
            h_off = int(rng.random_raw()) % (h_ - crop + 1)
            w_off = int(rng.random_raw()) % (w_ - crop + 1)
        else:
            h_off, w_off = (h_ - crop) // 2, (w_ - crop) // 2
    out = np.zeros((c_, height, width), np.float32)
    mv = [np.float32(v) for v in p.mean_value]
    if len(mv) == 1:
        mv = mv * c_
    for c in range(c_):
        for h in range(height):
            for w in range(width):
                pixel = np.float32(x[c, h_off + h, w_off + w])
                ww = width - 1 - w if do_mirror else w
                if mean is not None:
                    value = (pixel - np.float32(mean[c, h_off + h, w_off + w])) * scale
                elif mv:
                    value = (pixel - mv[c]) * scale
                else:
                    value = pixel * scale
                out[c, h, ww] = value
    return out


@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
@pytest.mark.parametrize("case", ["mean_file", "mean_values", "plain"])
def test_bit_exact_against_caffes_loop(phase, case):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(6, 3, 7, 6), dtype=np.uint8)
    mean = rng.uniform(0, 255, size=(3, 7, 6)).astype(np.float32) if case == "mean_file" else None
    p = param(scale=0.00390625 if case != "plain" else 0.017, mirror=True, crop_size=5,
              mean_value=[104.0, 117.0, 123.0] if case == "mean_values" else ())
    got = DataTransformer(p, phase, mean=mean, seed=42)(x)
    oracle_rng = mt19937(42)
    want = np.stack([caffe_loop(im, p, phase, mean, oracle_rng) for im in x])
    np.testing.assert_array_equal(got, want)


def test_images_of_different_sizes_with_crop():
    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 256, size=(1, 5, 6), dtype=np.uint8), rng.integers(0, 256, size=(1, 8, 4), dtype=np.uint8)]
    p = param(mirror=True, crop_size=3)
    got = DataTransformer(p, "TRAIN", seed=9)(ims)
    oracle = mt19937(9)
    want = np.stack([caffe_loop(im, p, "TRAIN", None, oracle) for im in ims])
    np.testing.assert_array_equal(got, want)
    with pytest.raises(DataError, match="different sizes"):
        DataTransformer(param(), "TRAIN")(ims)


def test_float64_output_and_rng_state_round_trip():
    x = np.arange(2 * 16, dtype=np.uint8).reshape(2, 1, 4, 4)
    t = DataTransformer(param(scale=0.1, mirror=True, crop_size=2), "TRAIN", seed=5, dtype=np.float64)
    state = t.rng_state()
    first = t(x)
    assert first.dtype == np.float64
    unscaled = DataTransformer(param(mirror=True, crop_size=2), "TRAIN", seed=5, dtype=np.float64)(x)
    np.testing.assert_array_equal(first, unscaled * np.float64(np.float32(0.1)))  # Caffe's float scale, in double
    t.set_rng_state(state)
    np.testing.assert_array_equal(t(x), first)
