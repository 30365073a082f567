"""Seeding and saving the random generators that training draws from.

Caffe seeds one generator (``Caffe::set_random_seed(random_seed)``) that fillers, Dropout and the data
transformations share.  caffe_like's layers draw from torch's global generators (Dropout: the generator of
the device the net runs on), NumPy's and Python's global generators (data pipelines), or generators of
their own, which they save themselves through ``get_extra_state()``.  A snapshot stores all the global
ones, so that a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_all", "capture", "restore"]


def seed_all(seed: int) -> None:
    """Seed torch's CPU and CUDA generators (``torch.manual_seed``), as Caffe seeds its generator."""
    torch.manual_seed(seed)


def capture(device: torch.device) -> dict:
    """The states of torch's CPU generator, the CUDA generator of ``device`` (if CUDA), NumPy's legacy
    global generator and Python's ``random``."""
    state = {
        "torch_cpu": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(device)
        state["cuda_device"] = device.index if device.index is not None else torch.cuda.current_device()
    return state


def restore(state: dict, device: torch.device) -> None:
    """Set the generators back to a :func:`capture` (a CUDA state is restored only when running on CUDA)."""
    torch.set_rng_state(state["torch_cpu"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"].cpu(), device)
