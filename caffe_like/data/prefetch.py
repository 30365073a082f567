"""Background prefetching: a thread produces the next batches into a small queue.

Caffe's ``BasePrefetchingDataLayer`` keeps ``data_param.prefetch`` (default 4) batches in flight, read
and transformed by an internal thread, so the net rarely waits.  :class:`Prefetcher` does the same with
a Python thread: the reading and NumPy work release the GIL, so on 2 cores it overlaps the model.

* ``get()`` returns batches in production order; an exception raised in the thread is re-raised in the
  caller as a :class:`~caffe_like.errors.DataError` (a CaffeLikeError is re-raised as it is), and again on
  every later ``get()``.
* ``close()`` stops the thread and waits for it (a batch being produced is finished and dropped).  A
  prefetcher still running when the interpreter exits is closed by an ``atexit`` hook.
* The thread refills in bursts: once the queue is full it sleeps until the consumer has drained it to
  half (``depth // 2``), then makes the missing batches in a row.  Every wake-up of the thread costs a
  GIL hand-over and a context switch, which on a busy 2-core machine can delay the model by a
  scheduler tick; bursts halve their number.

The thread holds only the ``produce`` callable, the queue and a stop flag, never its owner, so an owner
that goes away can close it from a ``weakref.finalize``.
"""

from __future__ import annotations

import atexit
import collections
import threading
import weakref
from collections.abc import Callable

from ..errors import CaffeLikeError, DataError

__all__ = ["Prefetcher"]

_LIVE: weakref.WeakSet = weakref.WeakSet()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Shared:
    """What the thread and the consumer share (the thread never sees the Prefetcher itself)."""

    def __init__(self, depth: int) -> None:
        self.items: collections.deque = collections.deque()
        self.cond = threading.Condition()
        self.depth = max(1, int(depth))
        self.low = self.depth // 2
        self.stop = False


def _run(produce: Callable[[], object], shared: _Shared) -> None:
    cond = shared.cond
    while True:
        with cond:
            while not shared.stop and len(shared.items) >= shared.depth:
                cond.wait()
            if shared.stop:
                return
        try:
            item = produce()
        except BaseException as err:  # noqa: BLE001 - everything goes to the consumer
            item = _Failure(err)
        with cond:
            if shared.stop:
                return
            shared.items.append(item)
            cond.notify_all()
        if isinstance(item, _Failure):
            return


class Prefetcher:
    """Runs ``produce()`` in a background thread, keeping up to ``depth`` results ready.

    Args:
        produce: makes the next item (called only from the thread).
        depth: how many finished items may wait (Caffe's prefetch count); at least 1.
        name: the thread's name (for debuggers).
    """

    def __init__(self, produce: Callable[[], object], depth: int = 4, name: str = "caffe_like-prefetch") -> None:
        self._shared = _Shared(depth)
        self._thread = threading.Thread(target=_run, args=(produce, self._shared), name=name, daemon=True)
        self._failure: _Failure | None = None
        self._thread.start()
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def get(self):
        """The next item (blocks until the thread has made it)."""
        if self._failure is not None:
            self._raise(self._failure)
        shared = self._shared
        with shared.cond:
            if shared.stop:
                raise DataError("the prefetcher is closed")
            while not shared.items:
                if not self._thread.is_alive():
                    raise DataError("the data prefetch thread stopped unexpectedly")
                shared.cond.wait(0.5)
            item = shared.items.popleft()
            if len(shared.items) <= shared.low:
                shared.cond.notify_all()
        if isinstance(item, _Failure):
            self._failure = item
            self._raise(item)
        return item

    @staticmethod
    def _raise(failure: _Failure):
        err = failure.error
        if isinstance(err, CaffeLikeError):
            raise err
        raise DataError(f"reading data failed in the prefetch thread: {type(err).__name__}: {err}") from err

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it; pending items are dropped.  Safe to call twice."""
        shared = self._shared
        with shared.cond:
            shared.stop = True
            shared.items.clear()
            shared.cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        _LIVE.discard(self)


@atexit.register
def _close_all() -> None:
    for prefetcher in list(_LIVE):
        prefetcher.close(timeout=2.0)
