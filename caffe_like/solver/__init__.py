"""Caffe's solvers: learning-rate policies, the update rules and the training loop.

    from caffe_like.solver import Solver
    solver = Solver("lenet_solver.prototxt")
    solver.solve()                      # or solver.step(100); solver.step(1, data=x, label=y)

Modules: :mod:`.lr_policy` (rates), :mod:`.updates` (clip, normalize, regularize, SGD ... Adam),
:mod:`.solver` (the loop, testing, snapshots), :mod:`.losses` (NaN check, smoothing), :mod:`.report`
(log lines, tqdm, CSV), :mod:`.snapshot_files` (file names), :mod:`.extra_state` and :mod:`.rng` (what a
bit-exact resume needs beyond Caffe's SolverState), :mod:`.signals` (SIGINT/SIGHUP effects).
"""

from .lr_policy import POLICIES, learning_rate
from .solver import Solver
from .updates import RULES, Updater

__all__ = ["Solver", "learning_rate", "POLICIES", "Updater", "RULES"]
