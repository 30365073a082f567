"""Batches from a record source: reading order, transformation, and a resumable position.

The reading order is a pure function of one integer, the **position** (records consumed so far,
counting a ``rand_skip`` as consumed): record ``position % N`` in order, wrapping around as Caffe's data
layers do; with ``shuffle``, record ``perm(epoch)[position % N]`` where ``epoch = position // N`` and
``perm(e)`` is a permutation drawn from a generator seeded with (seed, e) — a fresh order every epoch,
as Caffe's ImageData reshuffles at each wrap.  So the whole reading state is ``position`` plus the
transformer's random state (and the shuffle seed, so that a net rebuilt with another seed resumes the
saved order): :meth:`BatchLoader.state` / :meth:`BatchLoader.set_state`.

Every :class:`Batch` carries the state *after* it, so a consumer that takes batches from a read-ahead
queue knows the state of what it actually consumed.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .source import RecordSource
from .transform import DataTransformer

__all__ = ["Batch", "Order", "BatchLoader", "STATE_FORMAT", "plain_state"]

STATE_FORMAT = "caffe_like.data/1"


@dataclass
class Batch:
    """One batch: transformed data (B, C, h, w), labels (B,) int64 or None, the reader state after it."""

    data: np.ndarray
    labels: np.ndarray | None
    state: dict


def plain_state(state: dict) -> dict:
    """A reading state with every value a plain Python value (JSON-able)."""
    rng = state.get("transform_rng")
    if rng is not None:
        rng = {"key": [int(k) for k in rng["key"]], "pos": int(rng["pos"])}
    return {**state, "transform_rng": rng}


class Order:
    """Which record each position reads (see the module docstring).

    ``stride``/``offset`` shard the sequence as Caffe's multi-GPU ``DataLayer::Skip`` does: solver
    ``rank`` of ``count`` keeps the records whose running offset ``% count == rank``, so this reader's
    position p reads the global position ``p·stride + offset``.
    """

    def __init__(self, count: int, *, shuffle: bool = False, seed: int = 0, stride: int = 1, offset: int = 0) -> None:
        if count <= 0:
            raise DataError("the dataset holds no records")
        self.count = count
        self.shuffle = shuffle
        self.seed = int(seed)
        self.stride = int(stride)
        self.offset = int(offset)
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        perm = self._cache.get(epoch)
        if perm is None:
            perm = np.random.Generator(np.random.PCG64([self.seed, epoch])).permutation(self.count)
            self._cache = {epoch: perm, **{e: p for e, p in self._cache.items() if e == epoch - 1}}
        return perm

    def indices(self, start: int, n: int) -> np.ndarray:
        positions = np.arange(start, start + n, dtype=np.int64) * self.stride + self.offset
        within = positions % self.count
        if not self.shuffle:
            return within
        epochs = positions // self.count
        out = np.empty(n, dtype=np.int64)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            out[mask] = self.permutation(int(epoch))[within[mask]]
        return out


class BatchLoader:
    """Reads, orders and transforms batches from a :class:`RecordSource`.

    Args:
        source: the records.
        transformer: Caffe's DataTransformer (None: records are returned as float arrays, untransformed).
        batch_size: records per batch.
        shuffle, seed: the reading order (see the module docstring).
        start: the initial position (a ``rand_skip``).
        labels: whether batches carry labels.
        shard: (rank, count) to read every count-th record from the rank-th, as Caffe's multi-GPU Skip().
    """

    def __init__(self, source: RecordSource, transformer: DataTransformer | None, batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, start: int = 0, labels: bool = True,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.source = source
        self.transformer = transformer
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.position = int(start)
        self.labels = labels
        self.shard = (int(shard[0]), int(shard[1]))
        self._order: Order | None = None
        self._lock = threading.Lock()  # held while a batch is made, so a copy never sees half a step

    def __deepcopy__(self, memo):
        with self._lock:
            clone = copy.copy(self)
            clone.transformer = copy.deepcopy(self.transformer, memo)
            clone._order = None
            clone._lock = threading.Lock()
        return clone

    @property
    def order(self) -> Order:
        if self._order is None:
            rank, count = self.shard
            self._order = Order(len(self.source), shuffle=self.shuffle, seed=self.seed, stride=count, offset=rank)
        return self._order

    # -- state -------------------------------------------------------------------------------------

    def state(self, plain: bool = True) -> dict:
        """The reading state: plain values (JSON-able), or with ``plain=False`` the RNG key as an array
        (what each Batch carries; :func:`plain_state` converts it)."""
        uses_rng = self.transformer is not None and self.transformer.uses_rng
        rng = self.transformer.rng_state(plain) if uses_rng else None
        return {"format": STATE_FORMAT, "position": self.position, "order_seed": self.seed, "transform_rng": rng}

    def set_state(self, state: dict) -> None:
        if not isinstance(state, dict) or "position" not in state:
            raise DataError(f"not a data layer state: {type(state).__name__} (expected a dict with 'position')")
        self.position = int(state["position"])
        if state.get("order_seed") is not None and int(state["order_seed"]) != self.seed:
            self.seed = int(state["order_seed"])  # the shuffled order of the run that saved the state
            self._order = None
        rng = state.get("transform_rng")
        if rng is not None and self.transformer is not None:
            self.transformer.set_rng_state(rng)

    # -- reading -----------------------------------------------------------------------------------

    def next_batch(self) -> Batch:
        with self._lock:
            return self._next_batch()

    def _next_batch(self) -> Batch:
        indices = self.order.indices(self.position, self.batch_size)
        images, labels = self.source.read(indices)
        if self.transformer is not None:
            data = self.transformer(images)
        else:
            data = np.stack(images) if isinstance(images, list) else images
            data = data.astype(np.float32)
        self.position += self.batch_size
        return Batch(data=data, labels=labels if self.labels else None, state=self.state(plain=False))
