"""Deep networks trained with an output multiplier c, the feature-learning-strength knob.

The trained function is

    f(x) = c * h(x; theta)                      or, centered,   f(x) = c * (h(x; theta) - h(x; theta_0)),

with h one of the networks of :mod:`simulate.train.architectures` (MLP, small CNN, VGG-style stack, small ResNet)
initialized by torch's default scheme and then scaled by ``alpha`` (theta_0 = alpha * theta_default), and theta_0
a frozen copy of the initialization (its outputs on the training and test sets are computed once: the copy never
changes, so this equals evaluating it at every step; it is evaluated on each batch instead where a sample's
output depends on the batch: augmented batches, and batch norm with minibatches).
Plain SGD (or full-batch GD) on the mean cross-entropy (classes) or logistic loss (labels +-1) uses the step

    eta / c.

Why eta / c (docs/design.md section 2): for a bias-free two-layer net h is 2-homogeneous, h(s theta) = s^2 h(theta),
so c h(theta) = h(sqrt(c) theta). A GD step on theta with multiplier c and step eta / c, mapped by
theta -> sqrt(c) theta, is a GD step with multiplier 1 and step eta from init scale sqrt(c) alpha. Hence
"multiplier c at step eta / c" equals "init scale sqrt(c) alpha at step eta", step for step, and curves depend on
c alpha^2 = 1 / FLS only. For an L-homogeneous net the same argument gives init scale c^(1/L) alpha and step
eta c^(2/L - 1) (:meth:`Architecture.equivalent_init_scale`, whose table lists L for every architecture).

Members of an ensemble differ in c, eta, alpha and seed (initialization, minibatch order, augmentation) and are
trained in one vectorized computation: their parameters are stacked along a leading axis and the network is
applied with ``torch.func.vmap`` over ``functional_call`` (measured against a Python loop over the members in
``benchmarks/deep.py``). Each member stops by its own rule (:mod:`simulate.train.loop`); test accuracy is recorded
at the saved steps and at the stop, giving the peak and the final test accuracy.

Precision: float64 by default, where a member equals a separate module trained with ``torch.optim.SGD`` to 1e-10
(tests); ``autocast="bfloat16"`` runs the forward and backward passes under torch's bfloat16 autocast on float32
parameters (8 significant bits per product; for GPU throughput; the CPU has the same autocast path).

``docs/digits_c_sweep.py`` uses this runner to draw the peak test accuracy against c on scikit-learn's digits
(docs/train.md); :func:`simulate.train.grid.train_c_grid` runs a grid of c values and seeds.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import nn

from fls.simulate.result import RunResult
from fls.simulate.stopping import ZERO_TRAIN_ERROR, Evaluation, StopRule
from fls.simulate.train.architectures import MLP, Architecture, SmallCNN
from fls.simulate.train.augment import Augmentation, Augmenter
from fls.simulate.train.batches import MinibatchSampler
from fls.simulate.train.device import placement
from fls.simulate.train.ensemble import per_member
from fls.simulate.train.loop import MemberRecord, run_members
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError, as_array, check_choice, check_int

# MLP and SmallCNN live in simulate.train.architectures; simulate.train re-exports them from here.
__all__ = ["MLP", "Architecture", "DeepEnsemble", "SmallCNN", "train_deep"]

LOSSES = ("auto", "logistic", "cross_entropy")
AUTOCAST = ("none", "bfloat16")
#: The architecture of a run that names none (the MLP of :class:`Architecture`'s defaults).
DEFAULT_ARCHITECTURE = Architecture()


class DeepEnsemble:
    """The deep-network family for :func:`simulate.train.loop.run_members`: stacked parameters, vmapped forward."""

    def __init__(
        self,
        nets: Sequence[nn.Module],
        c: torch.Tensor,
        X: torch.Tensor,
        y: torch.Tensor,
        X_test: torch.Tensor,
        y_test: torch.Tensor,
        *,
        binary: bool,
        centered: bool,
        augmenter: Augmenter | None = None,
        autocast: bool = False,
        eval_batch: int | None = None,
    ) -> None:
        params, _ = torch.func.stack_module_state(list(nets))
        self.params = {
            name: p.detach().to(c.device, c.dtype).requires_grad_(True) for name, p in params.items()
        }
        template = copy.deepcopy(nets[0]).to("meta")

        def apply(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(template, p, (x,))

        self._shared = torch.vmap(apply, in_dims=(0, None))
        self._own = torch.vmap(apply, in_dims=(0, 0))
        self.c, self.X, self.y, self.X_test, self.y_test, self.binary = c, X, y, X_test, y_test, binary
        self.centered, self.augmenter, self.autocast, self.eval_batch = (
            centered,
            augmenter,
            autocast,
            eval_batch,
        )
        self._logistic = compile_field("logistic").losses if binary else None
        # theta_0, kept where h0 must be evaluated on each batch: augmented inputs, or batch norm, whose
        # statistics make a sample's output depend on the minibatch it is in
        batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets[0].modules())
        self.initial = (
            {name: p.detach().clone() for name, p in self.params.items()}
            if centered and (augmenter is not None or batch_norm)
            else None
        )
        with torch.no_grad():
            zero = torch.zeros((), dtype=c.dtype, device=c.device)
            self.h0 = self._h_all(self.params, X) if centered else zero
            self.h0_test = self._h_all(self.params, X_test) if centered else zero
        self._grads: tuple[torch.Tensor, ...] | None = None

    def _h(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """h of every member on shared inputs x (n, D) or on its own x (E, n, D): (E, n) or (E, n, K)."""
        context = (
            torch.autocast(self.c.device.type, dtype=torch.bfloat16)
            if self.autocast
            else contextlib.nullcontext()
        )
        with context:
            out = self._shared(params, x) if x.ndim == 2 else self._own(params, x)
        out = out.to(self.c.dtype)
        return out[..., 0] if self.binary else out

    def _h_all(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """h on a whole evaluation set x (n, D), in chunks of ``eval_batch`` samples (memory: the activations of
        E members on n images at once can exceed a device's)."""
        size = max(1, x.shape[0] if self.eval_batch is None else self.eval_batch)
        return torch.cat(
            [self._h(params, x[i : i + size]) for i in range(0, max(1, x.shape[0]), size)], dim=1
        )

    def _f(self, h: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """f = c (h - offset), with offset h0 (centered) or 0."""
        scale = self.c[:, None] if self.binary else self.c[:, None, None]
        return scale * (h - offset)

    def _losses(self, f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses and correctness, (E, b) each."""
        if self.binary:
            return self._logistic(f, y), (y * f).detach() > 0
        targets = y.expand(f.shape[:-1])
        losses = nn.functional.cross_entropy(f.flatten(0, 1), targets.flatten(), reduction="none")
        return losses.view(targets.shape), f.detach().argmax(-1) == targets

    def _evaluation(self, losses: torch.Tensor, correct: torch.Tensor, y: torch.Tensor) -> Evaluation:
        positive = (y > 0).expand_as(correct) if self.binary else None
        return Evaluation(losses.detach(), correct, positive)

    def loss_and_gradient(self, indices: torch.Tensor | None) -> Evaluation:
        x, y, offset = (self.X, self.y, self.h0) if indices is None else self._minibatch(indices)
        if self.augmenter is not None:
            x = self.augmenter(x if x.ndim == 3 else x.expand(len(self.c), *x.shape))
        if self.initial is not None and (indices is not None or self.augmenter is not None):
            with torch.no_grad():
                offset = self._h(self.initial, x)
        losses, correct = self._losses(self._f(self._h(self.params, x), offset), y)
        self._grads = torch.autograd.grad(losses.mean(-1).sum(), tuple(self.params.values()))
        return self._evaluation(losses, correct, y)

    def _minibatch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.arange(indices.shape[0], device=indices.device)[:, None]
        return self.X[indices], self.y[indices], self.h0 if self.h0.ndim == 0 else self.h0[rows, indices]

    def evaluate(self) -> Evaluation:
        with torch.no_grad():
            f = self._f(self._h_all(self.params, self.X), self.h0)
            return self._evaluation(*self._losses(f, self.y), self.y)

    def metrics(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            _, correct = self._losses(
                self._f(self._h_all(self.params, self.X_test), self.h0_test), self.y_test
            )
        return {"test_accuracy": correct.to(self.c.dtype).mean(-1)}

    def update(self, step_sizes: torch.Tensor) -> None:
        with torch.no_grad():
            for parameter, grad in zip(self.params.values(), self._grads, strict=True):
                parameter.addcmul_(grad, -step_sizes.view(-1, *[1] * (grad.ndim - 1)))

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.params.items()}

    def keep(self, rows: torch.Tensor) -> None:
        self.params = {name: p.detach()[rows].requires_grad_(True) for name, p in self.params.items()}
        self.c = self.c[rows]
        if self.h0.ndim:
            self.h0, self.h0_test = self.h0[rows], self.h0_test[rows]
        if self.initial is not None:
            self.initial = {name: p[rows] for name, p in self.initial.items()}
        if self.augmenter is not None:
            self.augmenter.keep(rows.cpu().numpy())

    def export(self, row: int) -> dict[str, np.ndarray]:
        return {name: p[row].detach().cpu().numpy().astype(np.float64) for name, p in self.params.items()}


def _resolve_loss(loss: str, y: np.ndarray) -> str:
    """``auto`` becomes ``logistic`` for labels in {-1, +1} and ``cross_entropy`` otherwise."""
    loss = check_choice("loss", loss, LOSSES)
    if loss == "auto":
        return "logistic" if np.all(np.isin(y, (-1.0, 1.0))) else "cross_entropy"
    return loss


def _labels(name: str, y: np.ndarray, loss: str) -> np.ndarray:
    """Labels as float +-1 (logistic) or int classes 0 ... K-1 (cross-entropy; -1/+1 labels become 0/1)."""
    binary = bool(np.all(np.isin(y, (-1.0, 1.0))))
    if loss == "logistic":
        if not binary:
            raise ParameterError(
                f"{name} must contain only -1 and +1 for loss 'logistic'; allowed: 'cross_entropy'"
            )
        return y
    classes = (y > 0).astype(np.float64) if binary else y
    if np.any(classes != np.round(classes)) or np.any(classes < 0):
        raise ParameterError(
            f"{name} must hold integer classes 0 ... K-1 (or -1/+1) for loss 'cross_entropy'"
        )
    return classes.astype(np.int64)


def _check_autocast(autocast: str, dtype: torch.dtype) -> bool:
    """Whether to run under bfloat16 autocast; autocast keeps float32 parameters, so it needs dtype float32."""
    if check_choice("autocast", autocast, AUTOCAST) == "none":
        return False
    if dtype != torch.float32:
        raise ParameterError(
            f"autocast = {autocast!r} needs dtype = 'float32' (float32 parameters, bfloat16 products); "
            f"got dtype = {str(dtype).removeprefix('torch.')!r}"
        )
    return True


def train_deep(
    data: Any,
    *,
    architecture: Architecture = DEFAULT_ARCHITECTURE,
    c: float | Sequence[float] = 1.0,
    eta: float | Sequence[float] = 0.1,
    alpha: float | Sequence[float] = 1.0,
    seeds: int | Sequence[int] = 0,
    centered: bool = False,
    loss: str = "auto",
    batch_size: int | None = None,
    stop: StopRule | None = ZERO_TRAIN_ERROR,
    max_steps: int | Sequence[int] = 10_000,
    save: SaveSchedule | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float64",
    members_per_batch: int | None = None,
    sync_every: int = 32,
    augmentation: Augmentation | None = None,
    autocast: str = "none",
    eval_batch: int | None = None,
) -> list[RunResult]:
    """Train deep nets f = c h (or c (h - h0)) at step eta / c; one :class:`RunResult` per member.

    Args:
        data: an object with X (n, D), y, X_test, y_test (e.g. :mod:`simulate.realdata`); ``data.params
            ["input_shape"]``, when present, gives the convolutional networks their (C, L) or (C, H, W) shape.
        architecture: the network h (:class:`Architecture`).
        c, eta, alpha, seeds: per-member multiplier, base step (the step taken is eta / c), init scale, and seed
            (initialization, minibatch order and augmentation); scalars are shared, sequences give one member
            each (equal lengths, or length 1).
        centered: train c (h - h0) with h0 the frozen initial network.
        loss: ``logistic`` (labels +-1, one output), ``cross_entropy`` (classes) or ``auto`` (by the labels).
        batch_size: None for full-batch GD, else SGD minibatches.
        stop: stop rule (default: zero training error); max_steps: step budget.
        save: steps at which risk, train and test accuracy are recorded (plus step 0 and the stop); default
            every 10 steps.
        device, dtype: where and in what precision (:mod:`simulate.train.device`); the data sets are moved to
            the device once and stay there.
        members_per_batch: train the members in consecutive groups of this size (memory); None = all at once.
        augmentation: random crops and flips of the images of every gradient step (:mod:`simulate.train.augment`;
            images (C, H, W) only); evaluations use the images as they are.
        autocast: ``none`` or ``bfloat16`` (torch's autocast on the device; needs dtype float32).
        eval_batch: evaluate the full training and test sets (risk, accuracies, stop rule, h0) in chunks of this
            many samples (None: all at once). With batch norm the statistics are then those of each chunk.

    Each result: W = first-layer weight reshaped to (fan_out, -1), v = last-layer weight flattened, t = k eta / c,
    and ``info`` with ``peak_test_accuracy`` (max over the recorded steps up to the stop), ``final_test_accuracy``
    (at the stop), the curves ``test_accuracy`` and ``train_accuracy``, the final ``state`` (parameter arrays by
    name) and the member's settings.
    """
    X = as_array("X", data.X, ndim=2)
    X_test = as_array("X_test", data.X_test, ndim=2, shape=(None, X.shape[1]))
    y = as_array("y", data.y, ndim=1, shape=(X.shape[0],))
    loss = _resolve_loss(loss, y)
    binary = loss == "logistic"
    y = _labels("y", y, loss)
    y_test = _labels("y_test", as_array("y_test", data.y_test, ndim=1, shape=(X_test.shape[0],)), loss)
    outputs = 1 if binary else int(max(y.max(), y_test.max())) + 1
    input_shape = tuple(getattr(data, "params", {}).get("input_shape", (X.shape[1],)))
    size = max(np.size(c), np.size(eta), np.size(alpha), np.size(seeds), np.size(max_steps))
    settings = {
        "c": per_member("c", c, size),
        "eta": per_member("eta", eta, size),
        "alpha": per_member("alpha", alpha, size),
        "seed": per_member("seeds", seeds, size, integer=True),
    }
    budgets = per_member("max_steps", max_steps, size, integer=True)
    group = size if members_per_batch is None else check_int("members_per_batch", members_per_batch)
    where = placement(device, dtype)
    mixed = _check_autocast(autocast, where.dtype)
    tensors = (
        where.tensor(X),
        where.tensor(y) if binary else where.index(y),
        where.tensor(X_test),
        where.tensor(y_test) if binary else where.index(y_test),
    )
    results: list[RunResult] = []
    for start in range(0, size, group):
        members = range(start, min(start + group, size))
        nets = [
            architecture.build(
                input_shape, outputs, seed=int(settings["seed"][e]), alpha=settings["alpha"][e]
            )
            for e in members
        ]
        family = DeepEnsemble(
            nets,
            where.tensor(settings["c"][members]),
            *tensors,
            binary=binary,
            centered=centered,
            augmenter=None
            if augmentation is None
            else Augmenter(augmentation, settings["seed"][members].tolist(), input_shape),
            autocast=mixed,
            eval_batch=None if eval_batch is None else check_int("eval_batch", eval_batch),
        )
        sampler = (
            None
            if batch_size is None
            else MinibatchSampler(settings["seed"][members].tolist(), len(y), batch_size)
        )
        step_sizes = settings["eta"][members] / settings["c"][members]
        records, wall = run_members(
            family,
            step_sizes=where.tensor(step_sizes),
            budgets=budgets[members],
            rule=stop,
            schedule=SaveSchedule.every(10) if save is None else save,
            sampler=sampler,
            sync_every=check_int("sync_every", sync_every),
        )
        for e, record in zip(members, records, strict=True):
            info = {name: values[e].item() for name, values in settings.items()}
            info.update(
                architecture=asdict(architecture),
                centered=centered,
                loss=loss,
                batch_size=batch_size,
                step_size=float(step_sizes[e - start]),
                stop=repr(stop),
                augmentation=None if augmentation is None else asdict(augmentation),
                autocast=autocast,
                **where.describe(),
            )
            results.append(
                _result(record, batch_size, float(step_sizes[e - start]), wall / len(members), info)
            )
    return results


def _result(
    record: MemberRecord, batch_size: int | None, step: float, wall: float, info: dict[str, Any]
) -> RunResult:
    names = list(record.final)
    first, last = record.final[names[0]], record.final[names[-1]]
    test = record.history["test_accuracy"]
    return RunResult(
        status=record.status,
        message=record.message,
        engine="train-deep-gd" if batch_size is None else "train-deep-sgd",
        t_stop=record.steps * step,
        W=first.reshape(first.shape[0], -1),
        v=last.reshape(-1),
        t=record.history["step"] * step,
        risk=record.history["risk"],
        rhs_evals=record.steps,
        wall_time=wall,
        info={
            **info,
            "steps": record.steps,
            "peak_test_accuracy": float(np.nanmax(test)),
            "final_test_accuracy": float(test[-1]),
            "test_accuracy": test,
            "train_accuracy": record.history["train_accuracy"],
            "state": record.final,
        },
    )
