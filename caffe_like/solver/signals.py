"""Caffe's ``SignalHandler`` (``util/signal_handler.cpp``): SIGINT and SIGHUP become solver actions.

``caffe train`` installs it with ``-sigint_effect`` (default ``stop``) and ``-sighup_effect`` (default
``snapshot``); each effect is ``stop``, ``snapshot`` or ``none``.  The solver polls the pending action
after every iteration and before every test batch:

* ``snapshot``: write a snapshot and go on;
* ``stop``: leave the training loop; ``solve()`` then writes the final snapshot (when
  ``snapshot_after_train``, the default, and the iteration is not one that was just snapshotted), so
  Ctrl-C saves the work done, then stops;
* ``none``: the signal is ignored.

caffe_like addition: a second SIGINT while a ``stop`` is still pending raises KeyboardInterrupt, so a
run stuck outside the loop can still be interrupted.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["SignalActions", "EFFECTS"]

EFFECTS = ("stop", "snapshot", "none")


class SignalActions:
    """A context manager that installs the handlers; calling it returns the pending action (or None)."""

    def __init__(self, sigint_effect: str = "stop", sighup_effect: str = "snapshot") -> None:
        for name, effect in (("sigint", sigint_effect), ("sighup", sighup_effect)):
            if effect not in EFFECTS:
                raise ValueError(f"invalid {name} effect {effect!r}; choose one of {', '.join(EFFECTS)}")
        self.effects = {signal.SIGINT: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self._pending: list[str] = []
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        effect = self.effects[signum]
        if effect == "none":
            return
        if signum == signal.SIGINT and effect == "stop" and "stop" in self._pending:
            raise KeyboardInterrupt
        self._pending.append(effect)

    def __call__(self) -> str | None:
        """The oldest pending action ("stop" or "snapshot"), or None."""
        return self._pending.pop(0) if self._pending else None

    def __enter__(self) -> SignalActions:
        if threading.current_thread() is threading.main_thread():
            for signum in self.effects:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
