"""Run every run of a sweep config, in batches, on a local process pool or on Dask, into a resumable run store.

``run_sweep(config, store_dir)`` checks the config (compare.config; nothing runs if a key is wrong), skips the
runs the store already holds, groups the rest into batches of runs that share every key except model.alpha,
model.c and the seed (so the runner can train a batch as one ensemble), chunked to at most sweep.batch_size runs
and into at least as many batches as there are workers, and calls ``runner(batch)`` on each batch. Every
finished batch is committed to the store (compare.store) by the driver process as soon as it returns, so a
sweep stopped at any moment, by Ctrl-C or SIGKILL, resumes where it stopped when run again.

Failures never stop a sweep: a run the runner reports as diverged or failed is stored with its status; an
exception the runner raises for a whole batch (or a malformed result) stores every run of the batch with status
``failed`` and the error as its message. Failed runs are finished runs; ``retry_failed=True`` runs them again.

Where the batches run:

- ``workers=N`` (default: the number of usable CPUs): a pool of N processes started by a fork server (by
  ``spawn`` where there is none), so no state is inherited from the caller and the runner must be importable
  (a module-level function). Each worker computes on one thread: torch through
  simulate.train.device.configure_threads (1, or ``$FLS_TORCH_THREADS``), OpenMP, OpenBLAS and MKL through
  their environment variables (1 unless set); a worker exits by itself if the driver dies. ``workers=0`` runs
  the batches one after another in the calling process.
- ``scheduler="local:N"``: a Dask LocalCluster of N worker processes with one thread each, started and
  stopped by the sweep (``"local"``: N = ``workers`` or the number of CPUs).
- ``scheduler="tcp://host:8786"``: the Dask scheduler at that address, with whatever workers it has.

On a cluster, start workers with dask-jobqueue (``pip install 'fls[dist]'``) from a Python session that stays
open on the login node, and hand the scheduler's address to the sweep::

    from dask_jobqueue import SLURMCluster        # or PBSCluster, SGECluster, LSFCluster, ...
    cluster = SLURMCluster(cores=8, processes=8, memory="16GB", walltime="04:00:00")  # 8 one-thread workers/job
    cluster.scale(jobs=4)                         # or cluster.adapt(maximum_jobs=16)
    print(cluster.scheduler_address)              # then, in a shell: fls sweep my.toml --scheduler <address>
    # or, in the same session: run_sweep("my.toml", "store", scheduler=cluster.scheduler_address)

The workers need the same environment as the driver (fls installed; the job's ``python=`` option can point at
it) but not the store: only the driver reads and writes files. Use ``processes`` equal to ``cores`` so each
worker has one thread; Dask's nanny also starts workers with OMP/MKL/OpenBLAS threads set to 1.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from importlib import metadata
from multiprocessing import get_all_start_methods, get_context, parent_process
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fls.compare import provenance
from fls.compare.config import count_runs, expand_runs, load_config
from fls.compare.interrupt import Interrupt, SweepInterrupted
from fls.compare.lock import store_lock, writable_directory
from fls.compare.progress import SweepProgress
from fls.compare.runner import execute_batch
from fls.compare.store import RunStore, create_store
from fls.compare.vocabulary import THREAD_VARIABLES, group_key
from fls.simulate.result import STATUSES
from fls.simulate.train.device import configure_threads
from fls.theory.validation import ParameterError, check_int

Run = dict[str, Any]
#: What a worker returns for each run: the row to store and the run's trajectories.
Outcome = tuple[dict[str, Any], dict[str, np.ndarray]]
Runner = Callable[[list[Run]], Sequence[Any]]

#: Most runs a sweep makes without being told more (run_sweep's max_runs, `fls sweep --yes`).
MAX_RUNS = 1_000_000
#: Seconds the driver waits for a Dask scheduler to answer.
CONNECT_SECONDS = 10
#: Seconds between checks for a Ctrl-C while batches run in worker processes.
POLL_SECONDS = 0.2
#: A Dask scheduler address: PROTOCOL://HOST:PORT (tcp, tls, ucx, inproc, ...).
SCHEDULER_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/]+(:\d{1,5})?")
#: Statuses counted as failed by the progress bar.
FAILED_STATUSES = ("failed", "diverged")

try:
    VERSION = metadata.version("fls")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "unknown"


def make_batches(runs: Sequence[Run], batch_size: int, slots: int = 1) -> list[list[Run]]:
    """Group runs that share every key but the ensemble keys (:func:`compare.vocabulary.group_key`), then split
    each group into near-equal chunks.

    The chunk size is at most ``batch_size`` and at most ceil(len(runs) / slots), so ``slots`` workers all get
    work; chunks of a group differ in size by at most one. Groups and runs keep their order.
    """
    batch_size, slots = check_int("batch_size", batch_size), check_int("slots", slots)
    groups: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    size = max(1, min(batch_size, math.ceil(len(runs) / slots)))
    batches = []
    for group in groups.values():
        count = math.ceil(len(group) / size)
        batches += [group[i * len(group) // count : (i + 1) * len(group) // count] for i in range(count)]
    return batches


def _stored_row(run: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """run_id, the run's keys (these win over the runner's), then the runner's own columns."""
    row = {"run_id": run["run_id"], **{key: value for key, value in run.items() if key != "run_id"}}
    row.update({key: value for key, value in reported.items() if key not in row})
    return row


def _checked_outcome(run: Run, output: Any) -> Outcome:
    """A runner's RunOutput for ``run`` as (row, arrays); a malformed one raises ValueError."""
    row, arrays = dict(output.row), dict(output.arrays)
    if row.get("status") not in STATUSES:
        raise ValueError(
            f"runner returned status {row.get('status')!r} for run {run['run_id']}; allowed: {STATUSES}"
        )
    not_scalar = [key for key, value in row.items() if value is not None and not np.isscalar(value)]
    if not_scalar:
        raise ValueError(
            f"runner returned row values {not_scalar} for run {run['run_id']} that are not scalars"
        )
    trajectories = {str(key): np.asarray(values, dtype=np.float64) for key, values in arrays.items()}
    not_1d = [key for key, values in trajectories.items() if values.ndim != 1]
    if not_1d:
        raise ValueError(f"runner returned arrays {not_1d} for run {run['run_id']} that are not 1-D")
    return _stored_row(run, row), trajectories


def failed_outcomes(runs: Sequence[Run], message: str) -> list[Outcome]:
    """Every run of a batch recorded as failed with ``message``, no trajectories."""
    return [(_stored_row(run, {"status": "failed", "message": message}), {}) for run in runs]


def execute(runner: Runner, runs: list[Run]) -> list[Outcome]:
    """``runner(runs)`` as one outcome per run; an exception or a malformed result fails the whole batch."""
    try:
        outputs = list(runner(runs))
        if len(outputs) != len(runs):
            raise ValueError(f"runner returned {len(outputs)} outputs for a batch of {len(runs)} runs")
        return [_checked_outcome(run, output) for run, output in zip(runs, outputs)]
    except Exception as exc:  # noqa: BLE001 - a runner's failure is recorded, never raised
        return failed_outcomes(runs, f"{type(exc).__name__}: {exc}")


def execute_in_worker(runner: Runner, runs: list[Run]) -> list[Outcome]:
    """:func:`execute` in a worker process, with torch on its default thread count (one)."""
    configure_threads()
    return execute(runner, runs)


def _exit_with_driver() -> None:
    """Pool-worker initializer: ignore SIGINT (the driver decides what a Ctrl-C does, compare.interrupt) and
    end this worker as soon as the driver process that started it is gone.

    The driver holds the other end of the worker's parent sentinel (multiprocessing.parent_process(), the same
    for spawn and the fork server), which becomes ready when the driver exits or is killed; a watcher thread
    waits on it, so a SIGKILLed driver leaves no worker running.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    driver = parent_process()

    def watch() -> None:
        wait([driver.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-driver", daemon=True).start()


@contextmanager
def _one_thread_per_worker() -> Iterator[None]:
    """Set THREAD_VARIABLES to 1 (where unset) while worker processes start, so that they inherit it.

    BLAS and OpenMP libraries read these when they load, in the workers (or in the fork server they are copied
    from), before any code of ours runs there; without them each worker's OpenBLAS starts a thread per core,
    and two single-run workers fill two cores with threads that spin. Dask's nanny does the same for its
    workers. The variables are removed again once the workers have started.
    """
    added = {name: "1" for name in THREAD_VARIABLES if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            del os.environ[name]


def _pool_context(runner: Runner) -> BaseContext:
    """``forkserver`` where the platform has it, else ``spawn``: no state inherited from the driver either way.

    The fork server imports this module, torch's thread setup and the runner's module once, and every worker
    starts as a copy of it, instead of each worker importing them again.
    """
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    modules = [__name__, "fls.simulate.train.device", getattr(runner, "__module__", None)]
    context.set_forkserver_preload([name for name in modules if name and name != "__main__"])
    return context


class _Backend(Protocol):
    """Where batches run: ``slots`` batches at a time; ``results`` yields (batch, outcomes) as they finish,
    starting no new batch once ``interrupt`` is requested, and stops when its grace time has expired."""

    @property
    def slots(self) -> int: ...

    def results(
        self, runner: Runner, batches: list[list[Run]], interrupt: Interrupt
    ) -> Iterator[tuple[list[Run], list[Outcome]]]: ...

    def close(self, cancel: bool) -> None: ...


class _InProcess:
    slots = 1

    def results(
        self, runner: Runner, batches: list[list[Run]], interrupt: Interrupt
    ) -> Iterator[tuple[list[Run], list[Outcome]]]:
        for batch in batches:
            if interrupt.requested:
                return
            yield batch, execute(runner, batch)

    def close(self, cancel: bool) -> None:
        pass


class _ProcessPool:
    def __init__(self, workers: int, runner: Runner) -> None:
        self.slots = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=_pool_context(runner), initializer=_exit_with_driver)

    def results(
        self, runner: Runner, batches: list[list[Run]], interrupt: Interrupt
    ) -> Iterator[tuple[list[Run], list[Outcome]]]:
        """Batches are submitted ``slots`` at a time, so a Ctrl-C finds only running batches to wait for."""
        queued, futures = list(reversed(batches)), {}
        while queued or futures:
            with _one_thread_per_worker():  # the workers (and the fork server) start at the first submission
                while queued and len(futures) < self.slots and not interrupt.requested:
                    batch = queued.pop()
                    futures[self._pool.submit(execute_in_worker, runner, batch)] = batch
            if interrupt.expired() or not futures:
                return
            finished, _ = wait_futures(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            yield from self._outcomes(futures, finished)

    def _outcomes(
        self, futures: dict[Any, list[Run]], finished: set[Any]
    ) -> Iterator[tuple[list[Run], list[Outcome]]]:
        for future in finished:
            batch = futures.pop(future)
            try:
                yield batch, future.result()
            except BrokenProcessPool as exc:
                raise RuntimeError(
                    "a worker process died (out of memory, a crash in native code, or a script that starts the "
                    "sweep without `if __name__ == '__main__':`); the finished batches are stored, run the sweep "
                    "again to resume"
                ) from exc
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be unpickled
                yield batch, failed_outcomes(batch, f"worker error: {type(exc).__name__}: {exc}")

    def close(self, cancel: bool) -> None:
        if cancel:  # end the running batches now, not when they finish (the executor has no public way)
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        # joined even so: a manager thread alive at exit races CPython 3.11's exit hook ("Bad file descriptor")
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class _Dask:
    def __init__(self, address: str | None, workers: int) -> None:
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address is None:
            self._cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            address = self._cluster.scheduler_address
        try:
            self._client = Client(address, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise ParameterError(
                f"scheduler = {address!r} did not answer within {CONNECT_SECONDS} s ({type(exc).__name__}); "
                "allowed: the address of a running Dask scheduler (its dashboard or scheduler log shows it)"
            ) from None
        dashboard = self._client.dashboard_link if self._cluster is None else None
        print(
            f"fls: Dask scheduler {address}" + (f", dashboard {dashboard}" if dashboard else ""),
            file=sys.stderr,
        )

    @property
    def slots(self) -> int:
        return max(1, sum(self._client.nthreads().values()))

    def results(
        self, runner: Runner, batches: list[list[Run]], interrupt: Interrupt
    ) -> Iterator[tuple[list[Run], list[Outcome]]]:
        """On Ctrl-C the batches not yet finished are cancelled (the cluster schedules them, not the driver)."""
        from dask.distributed import as_completed as dask_completed

        futures = {
            self._client.submit(
                execute_in_worker, runner, batch, key=f"fls-batch-{batch[0]['run_id']}"
            ): batch
            for batch in batches
        }
        for future in dask_completed(futures):
            if interrupt.requested:
                self._client.cancel(list(futures))
                return
            batch = futures.pop(future)
            try:
                outcomes = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the batch crashed its workers
                outcomes = failed_outcomes(batch, f"worker error: {type(exc).__name__}: {exc}")
            future.release()
            yield batch, outcomes

    def close(self, cancel: bool) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _backend_factory(workers: int | None, scheduler: str | None, runner: Runner) -> Callable[[], _Backend]:
    """Check run_sweep's ``workers``, ``scheduler`` and ``runner``; return what starts the backend they name."""
    if workers is not None:
        workers = check_int("workers", workers, minimum=0)
    if scheduler is None:
        workers = usable_cpus() if workers is None else workers
        if workers == 0:
            return _InProcess
        try:
            pickle.dumps(runner)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise ParameterError(
                f"runner = {runner!r} cannot be sent to worker processes ({exc}); allowed: a module-level "
                "function, or workers=0 to run in this process"
            ) from exc
        return lambda: _ProcessPool(workers, runner)
    if not isinstance(scheduler, str):
        raise ParameterError(
            f"scheduler = {scheduler!r} has the wrong type; allowed: 'local', 'local:N' or a scheduler address"
        )
    if scheduler != "local" and not scheduler.startswith("local:"):
        if workers is not None:
            raise ParameterError(
                f"workers = {workers} applies to local workers, not to scheduler = {scheduler!r}; "
                "allowed: workers=None with a scheduler address (the cluster has its own size)"
            )
        if not SCHEDULER_ADDRESS.fullmatch(scheduler):
            raise ParameterError(
                f"scheduler = {scheduler!r} is not a scheduler address; allowed: 'local', 'local:N', or "
                "PROTOCOL://HOST:PORT such as tcp://node1:8786"
            )
        return lambda: _Dask(scheduler, 0)
    count = scheduler.partition(":")[2]
    if count and not (count.isdigit() and int(count) >= 1):
        raise ParameterError(
            f"scheduler = {scheduler!r} is out of range; allowed: 'local' or 'local:N' with N >= 1"
        )
    size = int(count) if count else (workers or usable_cpus())
    if workers is not None and workers != size:
        raise ParameterError(
            f"workers = {workers} disagrees with scheduler = {scheduler!r}; allowed: workers=None or {size}"
        )
    return lambda: _Dask(None, size)


def _failures(rows: Sequence[Mapping[str, Any]]) -> int:
    return sum(row.get("status") in FAILED_STATUSES for row in rows)


def _running(pending: Mapping[int, list[Run]], slots: int) -> int:
    """Runs executing now: backends start batches in submission order, ``slots`` at a time."""
    return sum(len(batch) for batch in list(pending.values())[:slots])


def run_sweep(
    config: str | os.PathLike[str] | Mapping[str, Any],
    store_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    runner: Runner | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    runs: Sequence[Run] | None = None,
    max_runs: int | None = MAX_RUNS,
) -> pd.DataFrame:
    """Run every run of ``config`` not yet in the store at ``store_dir``; return the store's run table.

    Args:
        config: a TOML path or a mapping of tables (compare.config); checked in full before anything runs.
        store_dir: the run store (created if missing; an existing one must hold the same sweep).
        workers: local worker processes (default: usable CPUs; 0: run in this process).
        scheduler: None (local pool), "local" or "local:N" (a Dask LocalCluster), or a Dask scheduler address.
        runner: called with each batch (a list of run dicts), returns one RunOutput (``.row``, ``.arrays``) per
            run in order; default compare.runner.execute_batch.
        progress: show a progress bar on stderr (when it is a terminal).
        retry_failed: run again the runs stored with status "failed".
        runs: the runs, already expanded from ``config`` by a family with a schema of its own (e.g. the deep
            runs of :mod:`compare.deep_config`); ``config`` is then that resolved config, which needs [sweep]
            name and batch_size, and every run a ``run_id``. None: ``config`` is checked and expanded here.
        max_runs: refuse a grid of more runs than this (counted before any run is made); None: no limit.
    """
    if runs is None:
        config = load_config(config, check_runs=False)
        total = count_runs(config)
        if max_runs is not None and total > check_int("max_runs", max_runs, minimum=1):
            sizes = " x ".join(str(len(values)) for values in config["grid"].values())
            raise ParameterError(
                f"the grid has {total} runs ({sizes}), more than max_runs = {max_runs}; allowed: a smaller grid, or "
                "a larger max_runs (`fls sweep --yes`) if you mean it"
            )
        runs = expand_runs(config)
    runner = execute_batch if runner is None else runner
    start_backend = _backend_factory(workers, scheduler, runner)
    with store_lock(writable_directory(store_dir)):
        store = create_store(store_dir, config)
        repair = store.repair()
        for problem in repair.problems:
            print(f"fls: {store.directory}: {problem}; its batch runs again", file=sys.stderr)
        if repair.quarantined:
            moved = ", ".join(repair.quarantined)
            print(f"fls: {store.directory}: moved to quarantine/: {moved}", file=sys.stderr)
        return _run_missing(config, runs, store, start_backend, runner, progress, retry_failed)


def _run_missing(
    config: Mapping[str, Any],
    runs: Sequence[Run],
    store: RunStore,
    start_backend: Callable[[], _Backend],
    runner: Runner,
    progress: bool,
    retry_failed: bool,
) -> pd.DataFrame:
    """The body of :func:`run_sweep` once the store is locked and repaired."""
    statuses, origin = store.statuses(), provenance.collect()
    retried = {run_id for run_id, status in statuses.items() if retry_failed and status == "failed"}
    todo = [run for run in runs if run["run_id"] not in statuses or run["run_id"] in retried]
    kept = [status for run_id, status in statuses.items() if run_id not in retried]
    bar = SweepProgress(
        total=len(runs),
        done=len(runs) - len(todo),
        failed=sum(status in FAILED_STATUSES for status in kept),
        name=config["sweep"]["name"],
        enabled=progress,
    )
    with bar, Interrupt() as interrupt:
        if todo:
            backend = start_backend()
            try:
                batches = make_batches(todo, config["sweep"]["batch_size"], backend.slots)
                pending = {id(batch): batch for batch in batches}
                bar.update(finished=0, failed=0, running=_running(pending, backend.slots))
                for batch, outcomes in backend.results(runner, batches, interrupt):
                    rows = [{**row, "fls_version": VERSION} for row, _ in outcomes]
                    store.write_batch(rows, [arrays for _, arrays in outcomes], origin)
                    del pending[id(batch)]
                    bar.update(
                        finished=len(rows), failed=_failures(rows), running=_running(pending, backend.slots)
                    )
            except BaseException:
                backend.close(cancel=True)
                raise
            backend.close(cancel=interrupt.requested)
    if interrupt.requested:
        raise SweepInterrupted(
            f"sweep stopped by Ctrl-C: {len(store.statuses())} of {len(runs)} runs stored in "
            f"{str(store.directory)!r}; run the same command again to resume (stored runs are kept)"
        )
    return store.table()
