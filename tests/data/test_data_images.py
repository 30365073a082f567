"""ImageData: list files, BGR decoding, OpenCV-style bilinear resizing, shuffling, skipping."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from caffe_like.data import images
from caffe_like.errors import DataError

from datahelp import batches, data_net


@pytest.fixture
def image_folder(tmp_path):
    """6 RGB PNGs of 5×7 (img0..img5, one with a space in its name) and a list file."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(6, 5, 7, 3), dtype=np.uint8)
    names = []
    for i, rgb in enumerate(pixels):
        name = f"img {i}.png" if i == 2 else f"img{i}.png"
        Image.fromarray(rgb).save(folder / name)
        names.append(name)
    (tmp_path / "list.txt").write_text("".join(f"{n} {10 + i}\n" for i, n in enumerate(names)) + "\n")
    return tmp_path, pixels


def image_layer(**param):
    return {"type": "ImageData", "image_data_param": {"source": "list.txt", "root_folder": "imgs/", **param}}


def test_bgr_order_labels_and_wrap(image_folder):
    root, pixels = image_folder
    net = data_net(image_layer(batch_size=4), data_root=str(root))
    assert net.blob_shapes == {"data": (4, 3, 5, 7), "label": (4,)}
    (d0, l0), (d1, l1) = batches(net, 2)
    assert l0.tolist() == [10, 11, 12, 13] and l1.tolist() == [14, 15, 10, 11]
    np.testing.assert_array_equal(d0, pixels[:4, :, :, ::-1].transpose(0, 3, 1, 2))  # BGR planes


def test_gray_resize_and_transform(image_folder):
    root, pixels = image_folder
    net = data_net({**image_layer(batch_size=2, is_color=False, new_height=10, new_width=3),
                    "transform_param": {"scale": 0.5}}, phase="TEST", data_root=str(root))
    assert net.blob_shapes["data"] == (2, 1, 10, 3)
    (data, _), = batches(net, 1)
    gray = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in pixels[:2]])[:, None]
    want = np.stack([images.resize_linear(g, 10, 3) for g in gray]).astype(np.float32) * 0.5
    np.testing.assert_array_equal(data, want)


def test_resize_matches_opencv_inter_linear_by_hand():
    row = np.array([[[0, 100]]], dtype=np.uint8)
    assert images.resize_linear(row, 1, 4)[0, 0].tolist() == [0, 25, 75, 100]  # cv2.resize's values
    row = np.array([[[0, 10, 20, 30]]], dtype=np.uint8)
    assert images.resize_linear(row, 1, 2)[0, 0].tolist() == [5, 25]  # 2 taps, not an antialiased mean
    assert images.resize_linear(np.array([[[0, 1]]], np.uint8), 1, 4)[0, 0].tolist() == [0, 0, 1, 1]
    col = np.array([[[0], [100]]], dtype=np.uint8)
    assert images.resize_linear(col, 4, 1)[0, :, 0].tolist() == [0, 25, 75, 100]
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(3, 9, 11), dtype=np.uint8)
    up = images.resize_linear(img, 18, 22)  # exact 2× upscale: every output between its neighbours
    assert up.dtype == np.uint8 and up.shape == (3, 18, 22)
    assert up.min() >= img.min() and up.max() <= img.max()


def test_resize_equals_opencv_when_installed():
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (optional cross-check)")
    rng = np.random.default_rng(1)
    for trial in range(40):
        h, w, out_h, out_w = (int(v) for v in rng.integers(1, 120, 4))
        if trial % 8 == 0:
            out_h, out_w = max(h // 2, 1), max(w // 2, 1)
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        want = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR).reshape(out_h, out_w, 3)
        got = images.resize_linear(img.transpose(2, 0, 1), out_h, out_w).transpose(1, 2, 0)
        np.testing.assert_array_equal(got, want)


def test_shuffle_each_epoch_and_rand_skip(image_folder):
    root, _ = image_folder
    net = data_net(image_layer(batch_size=3, shuffle=True), data_root=str(root))
    labels = np.concatenate([b[1] for b in batches(net, 4)]).reshape(2, 6)
    for epoch in labels:
        assert sorted(epoch.tolist()) == list(range(10, 16))
    skipped = data_net(image_layer(batch_size=1, rand_skip=5), data_root=str(root))
    skip = skipped.layer_dict()["d"].get_extra_state()["position"]
    assert batches(skipped, 1)[0][1].tolist() == [10 + skip]


def test_crop_mirror_and_resume(image_folder):
    root, _ = image_folder
    layer = {**image_layer(batch_size=2, shuffle=True, rand_skip=4),
             "transform_param": {"crop_size": 4, "mirror": True}}
    net = data_net(layer, data_root=str(root))
    batches(net, 2)
    state = net.layer_dict()["d"].get_extra_state()
    rest = batches(net, 4)
    again = data_net(layer, data_root=str(root))
    again.layer_dict()["d"].set_extra_state(state)
    for a, b in zip(batches(again, 4), rest):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_list_errors(tmp_path, image_folder):
    root, _ = image_folder
    (root / "bad.txt").write_text("imgs/img0.png 1\njust-a-path\n")
    with pytest.raises(DataError, match="line 2 is not 'path label'"):
        images.read_list(root / "bad.txt")
    (root / "missing.txt").write_text("nowhere.png 3\n")
    with pytest.raises(DataError, match="'nowhere.png', was not found"):
        data_net({"type": "ImageData", "image_data_param": {"source": str(root / "missing.txt")}})
    with pytest.raises(DataError, match="both be 0"):
        data_net(image_layer(new_height=4), data_root=str(root))
    with pytest.raises(DataError, match="rand_skip drew"):
        # data_seed 1 draws a skip far past the end of the 6-line list
        data_net(image_layer(rand_skip=10**9), data_root=str(root), data_seed=1)
