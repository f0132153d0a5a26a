"""Batched discrete training of an ensemble of two-layer ReLU networks (docs/design.md section 4, ``train``).

Member e has its own parameters W_e (m, d), v_e (m,) (and hidden biases b_e (m,)), output multiplier c_e, step
size eta_e and minibatch seed, and is trained on a shared data set (X, y) or on its own (X_e, y_e). One step of
full-batch GD is

    theta_{k+1} = theta_k - eta_e * grad R_e(theta_k),   R_e = (1/n) sum_i w_i l(f_e(x_i), y_i),
    f_e(x) = c_e sum_j v_ej relu(<w_ej, x> + b_ej),

with the normalized sample weights w_i (mean 1; all 1 without ``sample_weight``, :mod:`theory.losses`) and real
targets y_i under the squared loss. Biases are trained as the bias-free network on (x, 1) with rows (w_j, b_j)
(:mod:`theory.augment`: the same parameters, risk and gradient),
with relu'(0) = 0; SGD replaces R_e by the mean over the member's minibatch (see :mod:`simulate.train.batches`).
The network, the loss and the gradient are the ones compiled in :mod:`theory.compiled` (one formula for every
engine): one call gives -grad R_e and the outputs the stopping rule needs, written into preallocated buffers,
1.2 times faster than torch autograd through the same network at E = 64, n = 200, d = 100, m = 256
(``benchmarks/train.py`` measures both). All members go through one batched computation (the ensemble axis is
the leading tensor axis), and each member stops by the rule of :mod:`simulate.stopping`, as
:mod:`simulate.train.loop` describes. A discrete run reports gradient-flow time
t = k * eta_e.

Precision: float64 by default; an ensemble member equals a separate single-model torch run with the same
initialization and seed to rounding (tests check 1e-12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fls.simulate.result import RunResult
from fls.simulate.stopping import Evaluation, StopRule
from fls.simulate.train.batches import MinibatchSampler
from fls.simulate.train.device import placement
from fls.simulate.train.loop import MemberRecord, run_members
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.augment import augment_inputs, augment_weights, split_weights
from fls.theory.compiled import CompiledField, compile_field
from fls.theory.losses import as_sample_weight, as_targets, is_binary
from fls.theory.validation import ParameterError, as_array, check_int, check_positive


class TwoLayerEnsemble:
    """The two-layer family for :func:`simulate.train.loop.run_members`: parameters (E, m, d), (E, m) on one device."""

    def __init__(
        self,
        W: torch.Tensor,
        v: torch.Tensor,
        c: torch.Tensor,
        X: torch.Tensor,
        y: torch.Tensor,
        field: CompiledField,
        weights: torch.Tensor | None = None,
        binary: bool = True,
    ) -> None:
        """``binary``: whether y holds labels in {-1, +1} (then evaluations carry the positive-class mask)."""
        self.W, self.v = W.detach().clone(), v.detach().clone()
        self.c, self.X, self.y, self.field, self.weights = c, X, y, field, weights
        self.shared_data = X.ndim == 2
        self.binary = binary
        self.initial_invariant = self._invariant()
        self._descent = (
            torch.empty_like(self.W),
            torch.empty_like(self.v),
        )  # -grad R_e, written by the field

    def _invariant(self) -> torch.Tensor:
        """v_j^2 - ||w_j||^2 (- b_j^2: W holds the rows (w_j, b_j)) per neuron, (E, m): conserved by gradient
        flow, drifts at O(eta^2) per GD step."""
        return self.v**2 - (self.W**2).sum(-1)

    def _batch(
        self, indices: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if indices is None:
            return self.X, self.y, self.weights
        w = self.weights
        if self.shared_data:
            return self.X[indices], self.y[indices], None if w is None else w[indices]
        rows = torch.arange(indices.shape[0], device=indices.device)[:, None]
        return self.X[rows, indices], self.y[rows, indices], None if w is None else w[rows, indices]

    def _evaluation(self, f: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> Evaluation:
        margins = y * f
        positive = (y > 0).expand_as(margins) if self.binary else None
        losses = self.field.losses(f, y)
        return Evaluation(losses if weights is None else losses * weights, margins > 0, positive, weights)

    def loss_and_gradient(self, indices: torch.Tensor | None) -> Evaluation:
        X, y, w = self._batch(indices)
        weighting = {} if w is None else {"weights": w}
        *_, f = self.field.field_and_output(self.W, self.v, X, y, self.c, out=self._descent, **weighting)
        return self._evaluation(f, y, w)

    def evaluate(self) -> Evaluation:
        return self._evaluation(self.field.output(self.W, self.v, self.X, self.c), self.y, self.weights)

    def metrics(self) -> dict[str, torch.Tensor]:
        return {"invariant_deviation": (self._invariant() - self.initial_invariant).abs().amax(-1)}

    def update(self, step_sizes: torch.Tensor) -> None:
        descent_W, descent_v = self._descent
        self.W.addcmul_(descent_W, step_sizes[:, None, None])
        self.v.addcmul_(descent_v, step_sizes[:, None])

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {"W": self.W.clone(), "v": self.v.clone()}

    def keep(self, rows: torch.Tensor) -> None:
        self.W, self.v = self.W[rows], self.v[rows]
        self._descent = (torch.empty_like(self.W), torch.empty_like(self.v))
        self.c, self.initial_invariant = self.c[rows], self.initial_invariant[rows]
        if not self.shared_data:
            self.X, self.y = self.X[rows], self.y[rows]
            self.weights = None if self.weights is None else self.weights[rows]

    def export(self, row: int) -> dict[str, np.ndarray]:
        return {
            "W": self.W[row].cpu().numpy().astype(np.float64),
            "v": self.v[row].cpu().numpy().astype(np.float64),
        }


def per_member(name: str, value: Any, size: int, *, integer: bool = False) -> np.ndarray:
    """A scalar (or one-element sequence) or a length-``size`` sequence as ``size`` per-member values: positive
    reals, or integers >= 0 when ``integer``."""
    values = np.ravel(np.asarray(value))
    if values.size == 1:
        values = np.repeat(values, size)
    if values.shape != (size,):
        raise ParameterError(f"{name} has {values.size} values; allowed: one, or one per member ({size})")
    if integer:
        return np.array([check_int(name, x, minimum=0) for x in values.tolist()], dtype=np.int64)
    return np.array([check_positive(name, x) for x in values.tolist()])


def _check_data(
    X: Any, y: Any, sample_weight: Any, size: int, dim: int, loss: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """X (n, d) with y (n,) and sample_weight (n,) or None, shared by all members, or X (E, n, d) with y (E, n)
    and sample_weight (E, n) or None, one data set per member; targets checked for ``loss``, weights normalized
    per data set."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = as_array("X", X, ndim=2, shape=(None, dim))
        y = as_targets("y", y, loss=loss, n=X.shape[0])
        return X, y, as_sample_weight(sample_weight, X.shape[0])
    X = as_array("X", X, ndim=3, shape=(size, None, dim))
    y = as_array("y", y, ndim=2, shape=(size, X.shape[1]))
    as_targets("y", y.reshape(-1), loss=loss)
    if sample_weight is None:
        return X, y, None
    omega = as_array("sample_weight", sample_weight, ndim=2, shape=(size, X.shape[1]))
    return X, y, np.stack([as_sample_weight(row, X.shape[1]) for row in omega])


def init_ensemble(
    width: int,
    dim: int,
    *,
    alphas: Sequence[float],
    seeds: Sequence[int],
    scheme: str = "random_sign",
    bias: bool = False,
) -> tuple[np.ndarray, ...]:
    """Stacked initializations (W0 (E, m, d), v0 (E, m)) of members with scales ``alphas`` and ``seeds``; with
    ``bias``, (W0, v0, b0) with the hidden biases b0 (E, m).

    Member e is :func:`simulate.initialization.init_params` (width, dim, alpha=alphas[e], scheme, seed=seeds[e],
    bias).
    """
    from fls.simulate.initialization import init_params

    if len(alphas) != len(seeds):
        raise ParameterError(
            f"alphas and seeds must have the same length; got {len(alphas)} and {len(seeds)}"
        )
    members = [
        init_params(width, dim, alpha=a, scheme=scheme, seed=s, bias=bias)
        for a, s in zip(alphas, seeds, strict=True)
    ]
    return tuple(np.stack(arrays) for arrays in zip(*members, strict=True))


def train_ensemble(
    W0: Any,
    v0: Any,
    X: Any,
    y: Any,
    *,
    eta: float | Sequence[float],
    max_steps: int | Sequence[int],
    c: float | Sequence[float] = 1.0,
    stop: StopRule | None = None,
    batch_size: int | None = None,
    seeds: int | Sequence[int] = 0,
    loss: str = "logistic",
    save: SaveSchedule | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    sync_every: int = 32,
    info: Sequence[Mapping[str, Any]] | None = None,
    b0: Any = None,
    sample_weight: Any = None,
) -> list[RunResult]:
    """Train E two-layer networks in one batched computation; return one :class:`RunResult` per member.

    Args:
        W0, v0: initial parameters, shapes (E, m, d) and (E, m) (see :func:`init_ensemble`).
        X, y: training data, (n, d) and (n,) shared by all members, or (E, n, d) and (E, n); labels in {-1, +1}
            for a margin loss, real targets for ``squared``.
        eta: step size, one for all or one per member. c: output multiplier, likewise.
        max_steps: step budget (one or per member); a member that reaches it ends with status ``t_max`` when
            ``stop`` is None and ``not_reached`` otherwise.
        stop: a :class:`~simulate.stopping.StopRule` (e.g. ``TargetRisk(eps)``), or None to run the budget.
        batch_size: None for full-batch GD (engine ``train-gd``), else SGD minibatches of that size
            (``train-sgd``) drawn from ``seeds`` (one per member or one for all).
        loss: ``logistic``, ``exponential`` or ``squared`` (the losses :mod:`theory.compiled` knows).
        save: the steps whose risk (and, with ``states``, parameters) the results record (default: every step).
        device, dtype: ``cpu`` or ``cuda``; ``float64`` (default) or ``float32``.
        sync_every: steps between reads of the stop flags by the host (a larger value means fewer device
            synchronizations; the stopping step stays exact).
        info: optional per-member metadata (alpha, seed, scheme, ...) copied into each result's ``info``.
        b0: initial hidden biases (E, m), or None for bias-free networks; results then carry ``b`` (and ``b_t``).
        sample_weight: per-sample weights, (n,) or (E, n) like y, >= 0 (normalized to mean 1), or None.

    Each result has t = k * eta_e at the saved steps k, the risk there, ``rhs_evals`` = gradient evaluations,
    ``invariant_drift`` = max over saved steps of max_j |Delta(v_j^2 - ||w_j||^2 - b_j^2)|, and ``wall_time`` = the
    batch's wall time divided by E. Diverged members (NaN or inf) end with status ``diverged``.
    """
    W0 = as_array("W0", W0, ndim=3)
    size, width, dim = W0.shape
    v0 = as_array("v0", v0, ndim=2, shape=(size, width))
    X, y, weights = _check_data(X, y, sample_weight, size, dim, loss)
    if stop is not None:
        stop.check_labels(y.reshape(-1))
    biased = b0 is not None
    if biased:
        W0, X = augment_weights(W0, as_array("b0", b0, ndim=2, shape=(size, width))), augment_inputs(X)
    etas = per_member("eta", eta, size)
    cs = per_member("c", c, size)
    budgets = per_member("max_steps", max_steps, size, integer=True)
    seed_values = per_member("seeds", seeds, size, integer=True)
    if info is not None and len(info) != size:
        raise ParameterError(f"info has {len(info)} entries; allowed: one per member ({size})")
    where = placement(device, dtype)
    sync_every = check_int("sync_every", sync_every)
    n = X.shape[-2]
    sampler = None if batch_size is None else MinibatchSampler(seed_values.tolist(), n, batch_size)
    family = TwoLayerEnsemble(
        where.tensor(W0),
        where.tensor(v0),
        where.tensor(cs),
        where.tensor(X),
        where.tensor(y),
        compile_field(loss, biased),
        None if weights is None else where.tensor(weights),
        is_binary(y),
    )
    records, wall = run_members(
        family,
        step_sizes=where.tensor(etas),
        budgets=budgets,
        rule=stop,
        schedule=SaveSchedule.every(1) if save is None else save,
        sampler=sampler,
        sync_every=sync_every,
    )
    engine = "train-gd" if batch_size is None else "train-sgd"
    common = {"loss": loss, "batch_size": batch_size, "stop": repr(stop), "bias": biased, **where.describe()}
    return [
        _result(
            record,
            engine,
            etas[e],
            wall / size,
            biased,
            {
                "member": e,
                "eta": float(etas[e]),
                "c": float(cs[e]),
                "seed": int(seed_values[e]),
                **common,
                **(dict(info[e]) if info is not None else {}),
            },
        )
        for e, record in enumerate(records)
    ]


def _result(
    record: MemberRecord, engine: str, eta: float, wall: float, biased: bool, info: dict[str, Any]
) -> RunResult:
    """One member's result; with biases the trained rows (w_j, b_j) are split into W and b."""
    steps = record.history["step"]
    W, W_t = record.final["W"], None if record.states is None else np.stack([s["W"] for s in record.states])
    b = b_t = None
    if biased:
        W, b = split_weights(W)
        W_t, b_t = (None, None) if W_t is None else split_weights(W_t)
    return RunResult(
        status=record.status,
        message=record.message,
        engine=engine,
        t_stop=record.steps * eta,
        W=W,
        v=record.final["v"],
        b=b,
        b_t=b_t,
        t=steps * eta,
        risk=record.history["risk"],
        W_t=W_t,
        v_t=None if record.states is None else np.stack([s["v"] for s in record.states]),
        rhs_evals=record.steps,
        invariant_drift=float(np.nanmax(record.history["invariant_deviation"], initial=0.0)),
        wall_time=wall,
        info={**info, "steps": record.steps, "train_accuracy": record.history["train_accuracy"]},
    )
