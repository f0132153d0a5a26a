"""A grid of output multipliers c times seeds for one architecture and one data set: the runs of a deep c sweep.

Member (i, s) of the grid stands for the multiplier c_i (feature-learning strength 1 / c at a fixed init) and the
seed s (initialization, minibatch order, augmentation). Two knobs realize it (docs/train.md, "The c grid"):

- ``multiplier`` (the paper's protocol): f = c_i h at step eta_i / c_i from init scale alpha;
- ``init_scale``: f = h from init scale c_i^(1/L) alpha at step eta_i c_i^(2/L - 1), with L the homogeneity degree
  of the architecture (:meth:`simulate.train.architectures.Architecture.equivalent_init_scale`). For a homogeneous
  net this is the same run, parameters mapped by theta -> c_i^(1/L) theta, so the two grids agree to rounding:
  the (alpha, c) equivalence of docs/design.md section 2 for deep nets.

All members are trained together by :func:`simulate.train.deep.train_deep` (one vectorized ensemble, or groups of
``members_per_batch``); the result is one :class:`simulate.result.RunResult` per member, c-major (all seeds of
c_0 first), whose ``info`` adds ``grid_c``, ``grid_seed``, ``c_index`` and ``knob`` to what ``train_deep`` records.
The stop rule defaults to 99 % training accuracy, the practical protocol of the deep-network experiments;
``TargetRisk(eps)`` is the target-loss variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fls.simulate.result import RunResult
from fls.simulate.stopping import StopRule, TrainAccuracy
from fls.simulate.train.architectures import Architecture
from fls.simulate.train.deep import train_deep
from fls.simulate.train.ensemble import per_member
from fls.theory.validation import ParameterError, check_choice, check_positive

KNOBS = ("multiplier", "init_scale")
#: The default stop rule of a grid: 99 % of the training set classified correctly.
DEFAULT_STOP = TrainAccuracy(0.99)


def train_c_grid(
    data: Any,
    *,
    architecture: Architecture,
    c_values: Sequence[float],
    seeds: Sequence[int],
    eta: float | Sequence[float] = 1.0,
    alpha: float = 1.0,
    knob: str = "multiplier",
    stop: StopRule | None = DEFAULT_STOP,
    **train_options: Any,
) -> list[RunResult]:
    """Train every (c, seed) of the grid; one result per member, c-major (module docstring).

    Args:
        data: a data set as :func:`simulate.train.deep.train_deep` takes it (e.g. :mod:`simulate.realdata`).
        architecture: the network h.
        c_values: the multipliers c_i > 0; seeds: the seeds, the same for every c.
        eta: the base step, one for all c or one per c value (the multiplier run steps eta_i / c_i).
        alpha: the init scale of the multiplier runs.
        knob: ``multiplier`` or ``init_scale`` (needs a homogeneous architecture: no biases).
        stop: the stop rule (default 99 % training accuracy; ``TargetRisk`` for the target-loss variant).
        train_options: passed to ``train_deep`` (centered, batch_size, max_steps, save, device, dtype,
            members_per_batch, augmentation, autocast, loss, sync_every).
    """
    knob = check_choice("knob", knob, KNOBS)
    if len(c_values) == 0:
        raise ParameterError("c_values is empty; allowed: one positive value or more")
    c = per_member("c_values", c_values, len(c_values))
    if len(seeds) == 0:
        raise ParameterError("seeds is empty; allowed: one seed or more")
    base = per_member("eta", eta, len(c))
    alpha = check_positive("alpha", alpha)
    if knob == "multiplier":
        multipliers, scales, steps = c, np.full(len(c), alpha), base
    else:
        pairs = [architecture.equivalent_init_scale(ci, ei, alpha) for ci, ei in zip(c, base, strict=True)]
        multipliers, scales, steps = np.ones(len(c)), *np.array(pairs).T
    members = len(seeds)
    runs = train_deep(
        data,
        architecture=architecture,
        c=np.repeat(multipliers, members),
        eta=np.repeat(steps, members),
        alpha=np.repeat(scales, members),
        seeds=np.tile(np.asarray(seeds, dtype=np.int64), len(c)),
        stop=stop,
        **train_options,
    )
    for index, run in enumerate(runs):
        i, s = divmod(index, members)
        run.info.update(grid_c=float(c[i]), grid_seed=int(seeds[s]), c_index=i, knob=knob)
    return runs
