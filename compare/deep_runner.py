"""The runner of the deep family: train one batch of a deep c sweep as one ensemble and return its rows
(docs/deep.md; docs/design.md section 5, "The layers").

A batch holds runs of :mod:`compare.deep_config` that differ only in ``model.c`` and the seed (the sweep groups
them so, :func:`compare.vocabulary.group_key`). :func:`run_deep_batch` loads the data set once per process,
builds the architecture, and trains every run with :func:`simulate.train.deep.train_deep`:

- ``knob = "multiplier"`` (the paper's protocol): f = c h from init scale alpha at step eta_c / c;
- ``knob = "init_scale"``: f = h from init scale c^(1/L) alpha at step eta_c c^(2/L - 1), L the homogeneity
  degree (:meth:`simulate.train.architectures.Architecture.equivalent_init_scale`), the same run up to
  theta -> c^(1/L) theta (claim (b) of :mod:`compare.deep_claims`),

with the base step eta_c = eta / max(1, c) when ``train.large_c_step`` (else eta). Members are trained in
vmapped groups of :func:`members_per_batch`. Each row: status, message, engine, steps, t_stop, step_size,
peak_test_accuracy, final_test_accuracy, final_train_accuracy, final_risk, theta_norm (the norm of the final
parameters in the init-scale parametrization: times c^(1/L) for a multiplier run of a homogeneous net, so the
two knobs' runs compare directly), the batch's training seconds and the device; arrays: ``step``, ``risk``,
``train_accuracy``, ``test_accuracy`` at the recorded steps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np

from fls.compare.deep_config import parse_widths
from fls.compare.runner import RunOutput
from fls.simulate.data import Dataset
from fls.simulate.realdata import load_cifar10, load_digits, load_fashion_mnist, load_mnist1d
from fls.simulate.stopping import StopRule, TargetRisk, TrainAccuracy
from fls.simulate.train.architectures import Architecture
from fls.simulate.train.augment import Augmentation
from fls.simulate.train.deep import train_deep
from fls.simulate.train.schedule import SaveSchedule

#: Members per vmapped ensemble on the CPU by architecture: batching pays for the MLP (one batched matrix
#: product per layer, 1.95x a loop of modules) and not for the convolutional nets, whose vmapped (grouped)
#: convolutions run 0.4-0.84x a loop there (docs/train.md, "Deep ensembles"); 0 = the whole batch.
CPU_MEMBERS = {"mlp": 0, "cnn": 1, "vgg": 1, "resnet": 1}


def members_per_batch(run: Mapping[str, Any], size: int) -> int:
    """Members trained together: the config's ``train.members_per_batch``, or, when 0, the whole batch on a
    GPU (one member batch per GPU worker) and :data:`CPU_MEMBERS` on the CPU."""
    chosen = int(run["train.members_per_batch"])
    if chosen == 0 and str(run["train.device"]) == "cpu":
        chosen = CPU_MEMBERS[run["model.architecture"]]
    return size if chosen == 0 else min(chosen, size)


@cache
def deep_dataset(name: str, task: str, root: str, n_train: int, n_test: int) -> Dataset:
    """The data set of a run (loaded once per worker process), its first ``n_train`` / ``n_test`` images (0 =
    all)."""
    if name == "cifar10":
        return load_cifar10(root, task, n_train=n_train or None, n_test=n_test or None)
    if name == "fashion_mnist":
        return load_fashion_mnist(task, root=root or None, n_train=n_train or None, n_test=n_test or None)
    data = load_digits(task) if name == "digits" else load_mnist1d(task)
    keep, keep_test = n_train or len(data.y), n_test or len(data.y_test)
    return replace(
        data, X=data.X[:keep], y=data.y[:keep], X_test=data.X_test[:keep_test], y_test=data.y_test[:keep_test]
    )


def architecture_of(run: Mapping[str, Any]) -> Architecture:
    """The network h a run names."""
    return Architecture(
        run["model.architecture"],
        parse_widths("model.widths", run["model.widths"]),
        depth=int(run["model.depth"]),
        batch_norm=bool(run["model.batch_norm"]),
    )


def stop_rule_of(run: Mapping[str, Any]) -> StopRule | None:
    """The run's stop rule: 99 % (``stop.accuracy``) train accuracy, the target loss ``stop.eps``, or none;
    checked every ``stop.every`` steps."""
    every = int(run["stop.every"])
    if run["stop.rule"] == "accuracy":
        return TrainAccuracy(float(run["stop.accuracy"]), every=every)
    if run["stop.rule"] == "risk":
        return TargetRisk(float(run["stop.eps"]), every=every)
    return None


def member_settings(run: Mapping[str, Any], architecture: Architecture) -> tuple[float, float, float, float]:
    """(multiplier, base step, init scale, theta_norm factor) of a run under its knob (module docstring)."""
    c, alpha = float(run["model.c"]), float(run["model.alpha"])
    eta = float(run["train.eta"]) / (max(1.0, c) if run["train.large_c_step"] else 1.0)
    degree = architecture.degree
    factor = c ** (1.0 / degree) if degree else float("nan")
    if run["model.knob"] == "multiplier":
        return c, eta, alpha, factor
    scale, step = architecture.equivalent_init_scale(c, eta, alpha)
    return 1.0, step, scale, 1.0


def run_deep_batch(runs: Sequence[Mapping[str, Any]]) -> list[RunOutput]:
    """Train one batch of deep runs (module docstring); one :class:`RunOutput` per run, in order."""
    first = runs[0]
    data = deep_dataset(
        first["data.name"],
        first["data.task"],
        first["data.root"],
        int(first["data.n_train"]),
        int(first["data.n_test"]),
    )
    architecture = architecture_of(first)
    settings = np.array([member_settings(run, architecture) for run in runs])
    batch_size = int(first["train.batch_size"]) or None
    start = time.perf_counter()
    results = train_deep(
        data,
        architecture=architecture,
        c=settings[:, 0],
        eta=settings[:, 1],
        alpha=settings[:, 2],
        seeds=[int(run["seed"]) for run in runs],
        centered=bool(first["model.centered"]),
        batch_size=batch_size,
        stop=stop_rule_of(first),
        max_steps=int(first["train.max_steps"]),
        save=SaveSchedule.every(int(first["train.save_every"])),
        device=first["train.device"],
        dtype=first["train.dtype"],
        members_per_batch=members_per_batch(first, len(runs)),
        augmentation=Augmentation() if first["train.augmentation"] else None,
        autocast=first["train.autocast"],
        eval_batch=int(first["train.eval_batch"]) or None,
    )
    seconds = time.perf_counter() - start
    outputs = []
    for result, factor in zip(results, settings[:, 3], strict=True):
        info = result.info
        theta = np.sqrt(sum(float(np.sum(np.square(p))) for p in info["state"].values()))
        row = {
            "status": result.status,
            "message": result.message,
            "engine": result.engine,
            "steps": int(info["steps"]),
            "t_stop": float(result.t_stop),
            "step_size": float(info["step_size"]),
            "peak_test_accuracy": float(info["peak_test_accuracy"]),
            "final_test_accuracy": float(info["final_test_accuracy"]),
            "final_train_accuracy": float(info["train_accuracy"][-1]),
            "final_risk": float(result.risk[-1]),
            "theta_norm": float(theta * factor),
            "train_seconds": seconds,
            "device": str(info["device"]),
        }
        step = result.t / info["step_size"] if info["step_size"] > 0 else np.arange(len(result.t))
        arrays = {
            "step": np.rint(step),
            "risk": result.risk,
            "train_accuracy": info["train_accuracy"],
            "test_accuracy": info["test_accuracy"],
        }
        outputs.append(RunOutput(row, arrays))
    return outputs
