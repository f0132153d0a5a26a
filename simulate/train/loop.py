"""The member loop shared by the discrete engines: batched steps, per-member stopping, freezing and recording.

Each step k, for every member e still running (theta_k its parameters):

1. evaluate the training set at theta_k (for full-batch GD this is the forward pass of the gradient itself);
2. stop the member if its loss is not finite (status ``diverged``), if the stop rule holds (``target_reached``:
   the first checked k with R(theta_k) <= eps), or if k is its step budget (``t_max`` without a rule,
   ``not_reached`` with one, docs/design.md section 2);
3. otherwise take the step theta_{k+1} = theta_k - lr_e * grad R_batch(theta_k).

A stopped member is frozen (its step size is multiplied by 0, so its parameters stay bit for bit the same) and
recorded; the others go on. All of this happens on the device without reading values back; every
``sync_every`` steps the host collects the records and, once at most half of the batch is still running,
compacts the batch to the running members so that finished members stop costing compute.

The model-specific half of an engine is a :class:`Family`; this module never looks at parameters directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from fls.simulate.stopping import Evaluation, StopRule
from fls.simulate.train.batches import MinibatchSampler
from fls.simulate.train.schedule import SaveSchedule

RUNNING, TARGET, DIVERGED, BUDGET = 0, 1, 2, 3


class Family(Protocol):
    """A batch of members of one model family (two-layer ensemble, deep nets) that the loop can step."""

    def loss_and_gradient(self, indices: torch.Tensor | None) -> Evaluation:
        """Forward pass at the current parameters on the minibatch ``indices`` (E, b) (all samples when None),
        backward pass storing the gradients of each member's mean loss; returns the batch evaluation."""

    def evaluate(self) -> Evaluation:
        """Evaluation on the full training set, no gradient."""

    def metrics(self) -> dict[str, torch.Tensor]:
        """Extra per-member metrics (E,) recorded at the saved steps (test accuracy, invariant drift, ...)."""

    def update(self, step_sizes: torch.Tensor) -> None:
        """theta_e -= step_sizes[e] * grad_e for every member (0 keeps a member frozen)."""

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of the current parameters, each with the member axis first."""

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members at positions ``rows`` of the current batch, in that order."""

    def export(self, row: int) -> dict[str, np.ndarray]:
        """The parameters of the member at position ``row``, as numpy arrays."""


@dataclass
class MemberRecord:
    """What the loop knows about one member when it has stopped."""

    status: str
    message: str
    steps: int
    history: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    final_metrics: dict[str, float]
    states: list[dict[str, np.ndarray]] | None = None


@dataclass
class _Pending:
    """Host-side records of a member that is still in the batch."""

    chunks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    states: list[dict[str, np.ndarray]] = field(default_factory=list)

    def append(self, name: str, values: np.ndarray) -> None:
        self.chunks.setdefault(name, []).append(values)


def _status(code: int, step: int, rule: StopRule | None) -> tuple[str, str]:
    if code == TARGET:
        return "target_reached", f"{rule!r} held first at step {step}"
    if code == DIVERGED:
        return "diverged", f"the training loss became NaN or inf at step {step}"
    if rule is None:
        return "t_max", f"ran the full budget of {step} steps"
    return "not_reached", f"{rule!r} did not hold within the budget of {step} steps"


def run_members(
    family: Family,
    *,
    step_sizes: torch.Tensor,
    budgets: Sequence[int],
    rule: StopRule | None,
    schedule: SaveSchedule,
    sampler: MinibatchSampler | None = None,
    sync_every: int = 32,
) -> tuple[list[MemberRecord], float]:
    """Run every member to its stop; return one record per member and the wall time of the whole batch."""
    device = step_sizes.device
    budgets = np.asarray(budgets, dtype=np.int64)
    rows_to_ids = np.arange(len(budgets))
    budget_t = torch.as_tensor(budgets, device=device)
    budget_steps = set(budgets.tolist())
    code = torch.zeros(len(budgets), dtype=torch.int64, device=device)
    stop = torch.full((len(budgets),), -1, dtype=torch.int64, device=device)
    pending = [_Pending() for _ in budgets]
    records: list[MemberRecord | None] = [None] * len(budgets)
    window: list[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]] = []
    names: list[str] = []
    start = time.perf_counter()
    for k in range(int(budgets.max()) + 1):
        check = rule is not None and rule.due(k)
        record = schedule.due(k)
        if sampler is None:
            batch = family.loss_and_gradient(None)
            full = batch
        else:
            full = family.evaluate() if (check or record or k in budget_steps) else None
            batch = family.loss_and_gradient(sampler.indices(k).to(device))
        metrics = {} if full is None else {"risk": full.risk, "train_accuracy": full.accuracy}
        if record:
            metrics.update(family.metrics())
        window.append((k, metrics, family.snapshot() if record and schedule.states else None))
        names = names or sorted(metrics)  # step 0 is always recorded and evaluated: it fixes the columns

        running = code == RUNNING
        finite = torch.isfinite(batch.risk) & (torch.isfinite(full.risk) if full is not None else True)
        newly_diverged = running & ~finite
        hit = running & finite & rule.reached(full) if check else torch.zeros_like(running)
        at_budget = running & finite & ~hit & (budget_t == k)
        # the three events are disjoint subsets of the running members (code 0)
        code = code + DIVERGED * newly_diverged + TARGET * hit + BUDGET * at_budget
        stop = torch.where(newly_diverged | hit | at_budget, k, stop)
        family.update(step_sizes * (code == RUNNING))

        if (k + 1) % sync_every == 0 or k == budgets.max():
            code_h, stop_h = code.cpu().numpy(), stop.cpu().numpy()
            _collect(
                window,
                names,
                torch.full_like(step_sizes, float("nan")),
                code_h,
                stop_h,
                rows_to_ids,
                pending,
                schedule,
            )
            window = []
            finished = [
                r for r in range(len(rows_to_ids)) if code_h[r] != RUNNING and records[rows_to_ids[r]] is None
            ]
            if finished:
                final_metrics = {name: value.cpu().numpy() for name, value in family.metrics().items()}
                for r in finished:
                    member = rows_to_ids[r]
                    records[member] = _finish(
                        pending[member],
                        family.export(r),
                        {n: float(v[r]) for n, v in final_metrics.items()},
                        int(code_h[r]),
                        int(stop_h[r]),
                        rule,
                        schedule.states,
                    )
            alive = np.flatnonzero(code_h == RUNNING)
            if len(alive) == 0:
                break
            if len(alive) <= len(rows_to_ids) // 2:
                rows = torch.as_tensor(alive, device=device)
                family.keep(rows)
                if sampler is not None:
                    sampler.keep(alive)
                rows_to_ids, code, stop = rows_to_ids[alive], code[rows], stop[rows]
                step_sizes, budget_t = step_sizes[rows], budget_t[rows]
    return [r for r in records if r is not None], time.perf_counter() - start


def _collect(
    window: list[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]],
    names: list[str],
    missing: torch.Tensor,
    code: np.ndarray,
    stop: np.ndarray,
    rows_to_ids: np.ndarray,
    pending: list[_Pending],
    schedule: SaveSchedule,
) -> None:
    """Move the records of the last steps to the host: due steps up to each member's stop, and the stop itself.

    A metric not evaluated at a step (SGD evaluates the full training set only when a record or a rule needs it)
    is recorded as NaN (``missing``, one per member).
    """
    steps = np.array([k for k, _, _ in window])
    values = {name: torch.stack([m.get(name, missing) for _, m, _ in window]).cpu().numpy() for name in names}
    due = np.array([schedule.due(int(k)) for k in steps])
    stopped = code != RUNNING
    keep = (due[:, None] & (~stopped[None, :] | (steps[:, None] <= stop[None, :]))) | (
        steps[:, None] == stop[None, :]
    )
    for r, member in enumerate(rows_to_ids):
        take = np.flatnonzero(keep[:, r])
        if len(take) == 0:
            continue
        pending[member].append("step", steps[take])
        for name in names:
            pending[member].append(name, values[name][take, r])
        if schedule.states:
            for i in take:
                snap = window[i][2]
                if snap is not None and steps[i] != stop[r]:
                    pending[member].states.append({n: t[r].detach().cpu().numpy() for n, t in snap.items()})


def _finish(
    pending: _Pending,
    final: dict[str, np.ndarray],
    final_metrics: dict[str, float],
    code: int,
    step: int,
    rule: StopRule | None,
    states: bool,
) -> MemberRecord:
    """Close a member's record; the stop step's missing metrics are filled from its (frozen) final state."""
    history = {name: np.concatenate(chunks) for name, chunks in pending.chunks.items()}
    for name, value in final_metrics.items():
        column = history.setdefault(name, np.full(len(history["step"]), np.nan))
        if np.isnan(column[-1]):
            column[-1] = value
    status, message = _status(code, step, rule)
    return MemberRecord(
        status=status,
        message=message,
        steps=step,
        history=history,
        final=final,
        final_metrics=final_metrics,
        states=[*pending.states, final] if states else None,
    )
