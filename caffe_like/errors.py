"""The caffe_like error hierarchy.

Every error a user can cause (a malformed net file, an unknown layer type, a shape mismatch, a corrupt
weights file, a missing dataset) is a :class:`CaffeLikeError`.  An error carries *where* it happened
(file, line, column, layer) and *how to fix it*, and renders them into one readable message::

    lenet.prototxt:12:5: layer 'conv1' (Convolution): unknown field 'num_ouput' in convolution_param
      fix: did you mean 'num_output'?

The CLI prints ``str(error)`` without a traceback and exits with :attr:`CaffeLikeError.exit_code`
(2 for bad input, 1 for other failures).
"""

from __future__ import annotations

__all__ = [
    "CaffeLikeError",
    "SpecError",
    "ShapeError",
    "WeightsError",
    "DataError",
    "SolverError",
    "ExportError",
    "did_you_mean",
]


class CaffeLikeError(Exception):
    """Base class of every error caffe_like raises on purpose.

    Args:
        message: what is wrong, in one sentence.
        file: the file the problem is in, if any.
        line, column: 1-based position in ``file`` where known.
        layer: name of the layer concerned, if any.
        layer_type: its Caffe type, if known.
        fix: how to fix it (one short sentence), if known.
    """

    #: process exit status the CLI uses for this error: 2 = bad input, 1 = other failure.
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        layer: str | None = None,
        layer_type: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        self.layer = layer
        self.layer_type = layer_type
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        who = ""
        if self.layer is not None:
            who = f"layer '{self.layer}'"
            if self.layer_type:
                who += f" ({self.layer_type})"
            who += ": "
        text = f"{where}{who}{self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def located(self, **where) -> CaffeLikeError:
        """Return this error with missing location fields (file, line, column, layer, ...) filled in."""
        for key, value in where.items():
            if getattr(self, key, None) is None and value is not None:
                setattr(self, key, value)
        self.args = (self._render(),)
        return self

    def __str__(self) -> str:
        return self._render()


class SpecError(CaffeLikeError):
    """A net or solver definition (prototxt/YAML/dict) is malformed or inconsistent."""


class ShapeError(CaffeLikeError):
    """Blob shapes do not fit a layer (found at build time or when data flows)."""


class WeightsError(CaffeLikeError):
    """A .caffemodel/.solverstate/binaryproto file is corrupt or does not fit the net."""


class DataError(CaffeLikeError):
    """A dataset is missing, corrupt or of the wrong format."""


class SolverError(CaffeLikeError):
    """Training cannot go on (for example a NaN loss); the last good snapshot is kept."""

    exit_code = 1


class ExportError(CaffeLikeError):
    """A net cannot be exported to ONNX or an exported model cannot be run."""


def did_you_mean(word: str, choices, *, n: int = 1) -> str | None:
    """Return a 'did you mean ...?' hint for ``word`` among ``choices``, or None if nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            close = [lowered[word.lower()]]
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
