"""The Solver: Caffe's training loop (``Solver::Step``/``Solve``/``TestAll``/``Snapshot``/``Restore``).

One iteration (``step``), as ``Solver::Step``:

1. clear the gradients of the learnable blobs;
2. test, when ``test_interval`` > 0 and ``iter % test_interval == 0`` and (``iter > 0`` or
   ``test_initialization``): each test net runs ``test_iter[i]`` forward passes without gradients and
   every output blob is averaged element by element over them;
3. ``iter_size`` forward/backward passes (gradients add up); the iteration's loss is the mean of the
   pass losses, smoothed over ``average_loss`` iterations for display;
4. display every ``display`` iterations (the smoothed loss, every train-net output, the rate);
5. the update (:mod:`caffe_like.solver.updates`) at the rate of the lr policy for ``iter``;
6. ``iter += 1``; a snapshot every ``snapshot`` iterations (or on a ``snapshot`` signal); a ``stop``
   signal ends the loop.

``solve()`` runs ``step(max_iter - iter)``, writes a final snapshot if ``snapshot_after_train`` and
``iter`` is not a multiple of ``snapshot``, and, unless stopped early, one more display forward and one
more test when their intervals divide ``iter``.

A NaN or infinite loss stops training with a SolverError naming the iteration; the snapshot written
before it stays the last one (a snapshot is never written from non-finite weights or losses).

Speed options (all off by default; none changes what is computed beyond rounding):

* ``channels_last``: the nets keep 4-D blobs in NHWC memory order (:meth:`Net.to_channels_last`), which
  speeds up convolution and pooling on CPUs (docs/benchmarks.md);
* ``compile``: the train net's forward runs through ``torch.compile`` (the test nets stay eager); the
  first iteration pays the compilation (tens of seconds on a CPU), later ones run faster;
* ``amp`` (CUDA only): the train net's forward runs under ``torch.autocast`` (``"float16"``, the default
  for ``amp=True``, with a ``torch.amp.GradScaler`` whose scale the .solverstate keeps, or
  ``"bfloat16"`` without one); an iteration whose scaled gradients overflow applies no update (the
  iteration still counts, as with torch's GradScaler).  The update itself stays Caffe's, in float32.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import ShapeError, SolverError, SpecError, WeightsError
from ..net import Net
from ..spec.net import NetSpec
from ..spec.solver import SolverSpec
from . import extra_state, rng
from .losses import LossTracker, NonFiniteLoss
from .lr_policy import learning_rate
from .report import Report
from .snapshot_files import csv_log_path, learned_net_path, snapshot_paths, snapshot_prefix
from .updates import Updater, history_count

__all__ = ["Solver", "resolve_device"]


def resolve_device(device, solver_mode: str = "GPU", device_id: int = 0) -> torch.device:
    """``device`` if given; else ``cuda:<device_id>`` when ``solver_mode`` is GPU and CUDA is available;
    else the CPU."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise SpecError(f"invalid device {device!r}: {err}", fix="use cpu, cuda or cuda:N") from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise SpecError(f"device {device!r} was asked for, but CUDA is not available",
                            fix="use --device cpu, or install a CUDA build of torch")
        return chosen
    if solver_mode == "GPU" and torch.cuda.is_available():
        return torch.device("cuda", device_id if device_id < torch.cuda.device_count() else 0)
    return torch.device("cpu")


def share_trained_layers(target: Net, source: Net) -> None:
    """Caffe's ``ShareTrainedLayersWith``: every layer of ``target`` named like a layer of ``source``
    uses the same Parameter objects (learned blobs and BatchNorm statistics alike)."""
    layers = target.layer_dict()
    for name, source_layer in source.layer_dict().items():
        layer = layers.get(name)
        if layer is None:
            continue
        if len(layer.blobs) != len(source_layer.blobs):
            raise SpecError(f"incompatible number of blobs: {len(source_layer.blobs)} in the train net, "
                            f"{len(layer.blobs)} in the test net", layer=name,
                            fix="layers with the same name share their weights; rename one of them")
        for index, blob in enumerate(source_layer.blobs):
            if layer.blobs[index].shape != blob.shape:
                raise ShapeError(f"blob {index} has shape {list(blob.shape)} in the train net but "
                                 f"{list(layer.blobs[index].shape)} in the test net", layer=name,
                                 fix="layers with the same name share their weights; rename one of them")
            layer.blobs[index] = blob


_AMP_DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
               "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def amp_dtype(amp, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the ``amp`` option (False/None: none; True: float16); CUDA only."""
    if amp is None or amp is False:
        return None
    dtype = torch.float16 if amp is True else _AMP_DTYPES.get(str(amp).lower())
    if dtype is None:
        raise SpecError(f"unknown amp type {amp!r}", fix="use float16 (fp16) or bfloat16 (bf16)")
    if device.type != "cuda":
        raise SpecError(f"automatic mixed precision (amp) needs a CUDA device, but the solver runs on {device}",
                        fix="drop --amp, or train on a GPU (--device cuda)")
    return dtype


class _AmpSteps:
    """What ``torch.amp.GradScaler.step`` needs of an optimizer, around Caffe's update."""

    def __init__(self, updater: Updater) -> None:
        self.updater = updater
        self.param_groups = [{"params": list(updater.params)}]

    def step(self, rate: float, it: int) -> None:
        self.updater.apply(rate, it)


def _weight_list(weights) -> list[str]:
    if isinstance(weights, (str, Path)):
        return [w for w in str(weights).split(",") if w]
    return [str(w) for w in weights]


class Solver:
    """Trains a net as Caffe's solver does (see the module docstring and DESIGN §4, §9).

    Args:
        source: the solver, as a path (.prototxt/.yaml), a dict with the YAML's structure or a SolverSpec.
        device: where the nets run; None = ``cuda`` when ``solver_mode`` is GPU (the default) and CUDA is
            available, else ``cpu``.
        weights: .caffemodel files to fine-tune from (a list, or a comma-separated string): copied into
            the train and test nets by layer name.  None = the solver's own ``weights`` field.
        snapshot: a .solverstate to resume from (exclusive with ``weights``, as in Caffe).
        data_root: where data layers look for relative ``source`` paths (after the net's folder).
        max_iter: overrides the solver's ``max_iter`` (the ``poly`` policy uses it too).
        log: the CSV log path; None = ``<snapshot prefix>_log.csv`` (see :mod:`.report`); False = none.
        progress: tqdm bar; None = when standard error is a terminal.
        quiet: print no log lines.
        channels_last: keep 4-D blobs in channels_last (NHWC) memory order (see the module docstring).
        compile: run the train net's forward through ``torch.compile``.
        amp: automatic mixed precision on CUDA: True or "float16" (with loss scaling), "bfloat16".

    Attributes:
        net: the TRAIN net; ``test_nets``: the TEST nets, which share the train net's blobs by layer name.
        iter: updates applied so far; ``current_step``: the multistep policy's counter.
        test_inputs: per test net, the inputs fed to its Input layers when it is tested.
        action_request: a callable polled after every iteration and test batch, returning "stop",
            "snapshot" or None (the CLI sets it to a :class:`~caffe_like.solver.signals.SignalActions`).
        last_snapshot: the .solverstate written or restored last (None before).

    Seeding: ``random_seed >= 0`` seeds torch's generators (CPU and CUDA) and the fillers; a negative
    seed leaves torch's generators as they are.
    """

    def __init__(self, source, *, device=None, weights=None, snapshot=None, data_root=None,
                 max_iter: int | None = None, log=None, progress: bool | None = None,
                 quiet: bool = False, channels_last: bool = False, compile: bool = False,
                 amp: bool | str | None = False) -> None:
        spec = SolverSpec.load(source)
        self.spec = SolverSpec(copy.deepcopy(spec.param), file=spec.file, notes=spec.notes)
        self.param = p = self.spec.param
        if max_iter is not None:
            p.max_iter = int(max_iter)
        if snapshot is not None and weights:
            raise SpecError("give a snapshot to resume training or weights to fine-tune, but not both",
                            fix="--snapshot continues a run (its weights come from the .solverstate)")
        self.device = resolve_device(device, p.solver_mode, p.device_id)
        self.amp = amp_dtype(amp, self.device)
        seed = int(p.random_seed) if p.random_seed >= 0 else None
        if seed is not None:
            rng.seed_all(seed)
        options = {"data_root": str(data_root)} if data_root is not None else {}
        self.net = self._build(self.spec.train_net(), seed, options)
        self.test_nets = [self._build(spec_i, seed, options) for spec_i in self.spec.test_nets()]
        for test_net in self.test_nets:
            share_trained_layers(test_net, self.net)
        if channels_last:
            for net in (self.net, *self.test_nets):
                net.to_channels_last()
        self.test_inputs: list[dict] = [{} for _ in self.test_nets]
        self._learnables = self.net.learnable_params()
        self.updater = Updater(self._learnables, p)
        #: the train net's forward as the solver calls it (compiled with ``compile``)
        self._train_forward = torch.compile(self.net) if compile else self.net
        self._scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self._amp_steps = _AmpSteps(self.updater) if self._scaler is not None else None
        self._loss_weights = self.net.loss_weights
        self._test_loss_weights = [net.loss_weights for net in self.test_nets]
        self.iter = 0
        self.current_step = 0
        self.losses = LossTracker(p.average_loss)
        self.action_request = None
        self.last_snapshot: Path | None = None
        self.requested_early_exit = False
        self._check_every = 1 if self.device.type == "cpu" else 10
        if log is None:
            log = csv_log_path(self.spec)
        self.report = Report(Path(log) if log else None, progress=progress, quiet=quiet)
        if snapshot is not None:
            self.restore(snapshot)
        else:
            if weights is None:
                weights = [str(self.spec.resolve(w, must_exist=True)) for w in p.weights]
            for path in _weight_list(weights):
                self.load_weights(path)

    # -- API -----------------------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        """The learning rate the next update uses."""
        return learning_rate(self.param, self.iter, self.current_step)[0]

    def load_weights(self, path) -> None:
        """Fine-tune: copy a .caffemodel into the train and test nets by layer name (Caffe's CopyLayers)."""
        self.report.line(f"Finetuning from {path}")
        self.net.load_weights(path)
        for net in self.test_nets:
            with warnings.catch_warnings():  # the train net's own layers (its Data layer) are expected here
                warnings.simplefilter("ignore", UserWarning)
                net.load_weights(path)

    def step(self, iters: int, **inputs) -> None:
        """Run ``iters`` iterations.  ``inputs`` feed the train net's Input layers in every pass."""
        if int(iters) < 0:
            raise ValueError(f"step() needs a number of iterations >= 0, got {iters}")
        p = self.param
        feed = self._feed(inputs)
        stop_iter = self.iter + int(iters)
        self.requested_early_exit = False
        timer, last_display = time.perf_counter(), self.iter
        self.report.open_bar(self.iter, stop_iter)
        try:
            while self.iter < stop_iter:
                self._zero_grads()
                if p.test_interval and self.iter % p.test_interval == 0 and (self.iter > 0 or p.test_initialization):
                    self.test_all()
                    if self.requested_early_exit:
                        break
                display = bool(p.display) and self.iter % p.display == 0
                self.losses.add(self.iter, self._forward_backward(feed))
                if display or self.iter % self._check_every == 0:
                    self._flush_losses()
                if display:
                    lapse = time.perf_counter() - timer
                    per_s = (self.iter - last_display) / (lapse or 1.0)
                    self.report.train(self.iter, self.losses.smoothed, per_s, lapse, p.display,
                                      self._outputs(self.net, self._loss_weights))
                    timer, last_display = time.perf_counter(), self.iter
                rate, self.current_step = learning_rate(p, self.iter, self.current_step)
                if display:
                    self.report.learning_rate(self.iter, rate)
                if self._scaler is not None:
                    self._scaler.step(self._amp_steps, rate, self.iter)  # no update when grads overflowed
                    self._scaler.update()
                else:
                    self.updater.apply(rate, self.iter)
                self.iter += 1
                self.report.advance()
                request = self._poll()
                if (p.snapshot and self.iter % p.snapshot == 0) or request == "snapshot":
                    self.snapshot()
                if request == "stop":
                    self.requested_early_exit = True
                    break
            self._flush_losses()
        finally:
            self.report.close_bar()

    def solve(self, **inputs) -> None:
        """Train up to ``max_iter`` (Caffe's ``Solve``; see the module docstring)."""
        p = self.param
        self.report.line(f"Solving {self.net.name}")
        self.report.line(f"Learning Rate Policy: {p.lr_policy}")
        self.step(max(0, p.max_iter - self.iter), **inputs)
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            if snapshot_prefix(self.spec) is not None:
                self.snapshot()
            else:
                self.report.line("No snapshot written: the solver has no snapshot_prefix and no file")
        if self.requested_early_exit:
            self.report.line("Optimization stopped early.")
            return
        if p.display and self.iter % p.display == 0:
            with torch.no_grad():
                self.net(**self._feed(inputs))
                loss = float(self.net.loss)
            self.losses.add_value(loss)
            self.report.final_loss(self.iter, self.losses.smoothed)
        if p.test_interval and self.iter % p.test_interval == 0:
            self.test_all()
        self.report.line("Optimization Done.")

    def test_all(self) -> list[dict]:
        """Test every test net (Caffe's ``TestAll``); returns each net's averaged outputs."""
        results = []
        for index in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            results.append(self.test(index))
        return results

    def test(self, index: int = 0, **inputs) -> dict:
        """Run test net ``index`` for ``test_iter[index]`` batches; returns {output: mean} (a float for a
        one-element blob, else an array of the blob's shape), printed and logged as Caffe does.
        ``inputs`` (else ``test_inputs[index]``) feed its Input layers."""
        p = self.param
        net = self.test_nets[index]
        count = int(p.test_iter[index])
        feed = self._feed(inputs or self.test_inputs[index])
        self.report.line(f"Iteration {self.iter}, Testing net (#{index})")
        sums: dict[str, torch.Tensor] = {}
        loss = None
        with torch.no_grad():
            for _ in range(count):
                request = self._poll()
                while request is not None:
                    if request == "snapshot":
                        self.snapshot()
                    else:
                        self.requested_early_exit = True
                    request = self._poll()
                if self.requested_early_exit:
                    self.report.line("Test interrupted.")
                    return {}
                outputs = net(**feed)
                for name, value in outputs.items():
                    value = value.detach().to(torch.float64)
                    sums[name] = sums[name] + value if name in sums else value
                if p.test_compute_loss:
                    loss = net.loss.detach().double() if loss is None else loss + net.loss.detach().double()
        means = {name: (total / count).cpu().numpy() for name, total in sums.items()}
        weights = self._test_loss_weights[index]
        self.report.test(self.iter, index,
                         [(name, mean.reshape(-1).tolist(), weights.get(name, 0.0)) for name, mean in means.items()],
                         float(loss) / count if loss is not None else None)
        return {name: float(mean.reshape(-1)[0]) if mean.size == 1 else mean for name, mean in means.items()}

    # -- snapshots -----------------------------------------------------------------------------------

    def snapshot(self) -> Path:
        """Write ``<prefix>_iter_<iter>.caffemodel`` and ``.solverstate`` (atomically, each); returns the
        .solverstate path.  Refuses (SolverError) when the loss or the weights are not finite."""
        from ..weights import SolverStateData, write_solverstate

        self._flush_losses()
        self._check_finite()
        prefix = snapshot_prefix(self.spec)
        if prefix is None:
            raise SolverError("cannot snapshot: the solver has no snapshot_prefix (and no file to derive it from)",
                              fix="set snapshot_prefix in the solver, e.g. snapshot_prefix: snapshots/lenet")
        model_path, state_path = snapshot_paths(prefix, self.iter)
        model_path.parent.mkdir(parents=True, exist_ok=True)
        self.report.line(f"Snapshotting to binary proto file {model_path}")
        self.net.save_weights(model_path)
        history = [blob.detach().cpu().numpy() for blob in self.updater.history_blobs()]
        state = SolverStateData(iter=self.iter, learned_net=model_path.name, history=history,
                                current_step=self.current_step, extra=extra_state.encode(self._extra()))
        self.report.line(f"Snapshotting solver state to binary proto file {state_path}")
        write_solverstate(state_path, state)
        self.last_snapshot = state_path
        return state_path

    def restore(self, path) -> None:
        """Resume from a .solverstate (Caffe's or caffe_like's): iteration, multistep step, history, the
        weights of its ``learned_net`` (relative to the state's folder), and, when the state has
        caffe_like's extension, the random generators, the loss window and the layers' extra states."""
        from ..weights import read_solverstate

        path = Path(path)
        self.report.line(f"Restoring previous solver status from {path}")
        state = read_solverstate(path)
        blobs = self.updater.history_blobs()
        expected = history_count(self.param.type, len(self._learnables))
        if len(state.history) != expected:
            raise WeightsError(f"the solver state holds {len(state.history)} history blobs, but a {self.param.type} "
                               f"solver for this net needs {expected}", file=str(path),
                               fix="resume with the solver type and net that wrote the state")
        for index, (blob, array) in enumerate(zip(blobs, state.history)):
            if array.size != blob.numel():
                raise WeightsError(f"history blob {index} has {array.size} values, the net's blob "
                                   f"{list(blob.shape)} needs {blob.numel()}", file=str(path),
                                   fix="resume with the net that wrote the state")
        if state.learned_net:
            self.net.load_weights(learned_net_path(path, state.learned_net))
        self.updater.load_history(state.history)
        self.iter = int(state.iter)
        self.current_step = int(state.current_step)
        if state.extra:
            self._load_extra(extra_state.decode(state.extra, file=str(path)), path)
        self.last_snapshot = path
        self.report.resume_at(self.iter)

    def _extra(self) -> dict:
        extra = {
            "rng": rng.capture(self.device),
            "loss_window": list(self.losses.window),
            "train_net": self.net.extra_states(),
            "test_nets": [net.extra_states() for net in self.test_nets],
        }
        if self._scaler is not None:
            extra["amp_scaler"] = self._scaler.state_dict()
        return extra

    def _load_extra(self, extra: dict, path: Path) -> None:
        try:
            self.losses.window.clear()
            self.losses.window.extend(float(v) for v in extra["loss_window"])
            self.net.load_extra_states(extra["train_net"])
            for net, states in zip(self.test_nets, extra["test_nets"]):
                net.load_extra_states(states)
            rng.restore(extra["rng"], self.device)
            if self._scaler is not None and extra.get("amp_scaler"):
                self._scaler.load_state_dict(extra["amp_scaler"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise WeightsError(f"the caffe_like part of the solver state cannot be applied: "
                               f"{type(err).__name__}: {err}", file=str(path),
                               fix="resume with the solver and net that wrote the state") from None

    # -- internals -----------------------------------------------------------------------------------

    def _build(self, spec: NetSpec, seed: int | None, options: dict) -> Net:
        """A net built on the CPU (fillers draw there) for ``spec``'s NetState, then moved to the device."""
        net = Net(spec, seed=seed, options=options)
        return net.to(self.device) if self.device.type != "cpu" else net

    def _feed(self, inputs: dict) -> dict:
        """Inputs as tensors on the device, converted once for all passes."""
        feed = {}
        for name, value in inputs.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            feed[name] = tensor.to(self.device)
        return feed

    def _zero_grads(self) -> None:
        for learnable in self._learnables:
            learnable.param.grad = None

    def _forward_backward(self, feed: dict) -> torch.Tensor:
        """``iter_size`` forward/backward passes; the mean loss (a 0-d device tensor)."""
        total = None
        for _ in range(self.param.iter_size):
            if self.amp is not None:
                with torch.autocast(self.device.type, dtype=self.amp):
                    self._train_forward(**feed)
            else:
                self._train_forward(**feed)
            loss = self.net.loss
            if loss.requires_grad:
                (self._scaler.scale(loss) if self._scaler is not None else loss).backward()
            loss = loss.detach()
            total = loss if total is None else total + loss
        return total / self.param.iter_size if self.param.iter_size > 1 else total

    def _flush_losses(self) -> None:
        try:
            self.losses.flush()
        except NonFiniteLoss as bad:
            last = (f"the last good snapshot is {self.last_snapshot}" if self.last_snapshot is not None
                    else "no snapshot was written")
            raise SolverError(f"the loss is {bad.value} at iteration {bad.iteration}; training stopped "
                              f"({last})", fix="lower base_lr, or set clip_gradients") from None

    def _check_finite(self) -> None:
        tensors = [lp.param for lp in self._learnables] + self.updater.history_blobs()
        if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            last = (f"the last good snapshot is {self.last_snapshot}" if self.last_snapshot is not None
                    else "no snapshot was written")
            raise SolverError(f"the weights are not finite at iteration {self.iter}; training stopped ({last})",
                              fix="lower base_lr, or set clip_gradients")

    def _poll(self) -> str | None:
        return self.action_request() if self.action_request is not None else None

    @staticmethod
    def _outputs(net: Net, weights: dict) -> list[tuple[str, list[float], float]]:
        return [(name, net.blobs[name].detach().reshape(-1).tolist(), weights.get(name, 0.0))
                for name in net.output_names]
