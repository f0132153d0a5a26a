"""Ctrl-C during a sweep (compare.interrupt): the first one, sent to the whole process group as a terminal does,
stops scheduling, lets the running batches finish and commits them, and the driver exits within seconds with
status 130; a resume completes the table of an uninterrupted sweep."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fls.compare.config import expand_runs, load_config
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from tests.compare.test_sweep import KILL_CONFIG, fake_runner, trajectories

REPO = Path(__file__).resolve().parents[2]
#: The issue's bound on the exit after the first Ctrl-C, with batches of well under a second.
EXIT_BOUND_SECONDS = 10.0

_DRIVER = (
    "import sys\n"
    "from fls.compare.interrupt import SweepInterrupted\n"
    "from fls.compare.sweep import run_sweep\n"
    "from tests.compare.test_sweep import KILL_CONFIG, slow_runner\n"
    "try:\n"
    "    run_sweep(KILL_CONFIG, sys.argv[1], workers=2, runner=slow_runner, progress=False)\n"
    "except SweepInterrupted as exc:\n"
    "    print(exc)\n"
    "    sys.exit(130)\n"
)


def _stored(store: Path) -> int:
    try:
        return len(open_store(store).statuses())
    except Exception:  # noqa: BLE001 - not a store yet
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group is POSIX")
def test_the_first_ctrl_c_commits_the_running_batches_and_a_resume_completes_the_table(tmp_path):
    store = tmp_path / "store"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(store)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while _stored(store) < 3:
            assert driver.poll() is None and time.monotonic() < deadline, driver.stdout.read().decode()
            time.sleep(0.01)
        os.killpg(driver.pid, signal.SIGINT)
        interrupted = time.monotonic()
        output, _ = driver.communicate(timeout=60)
        took = time.monotonic() - interrupted
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    text = output.decode()
    total = len(expand_runs(load_config(KILL_CONFIG)))
    assert driver.returncode == 130, text
    assert took < EXIT_BOUND_SECONDS, f"exited {took:.1f} s after Ctrl-C"
    stored = _stored(store)
    assert 3 <= stored < total and f"{stored} of {total} runs stored" in text and "again to resume" in text
    assert "Traceback" not in text and not list(store.rglob(".tmp-*"))
    resumed = run_sweep(KILL_CONFIG, store, workers=0, runner=fake_runner, progress=False)
    reference = run_sweep(KILL_CONFIG, tmp_path / "reference", workers=0, runner=fake_runner, progress=False)
    pd.testing.assert_frame_equal(resumed, reference)
    pd.testing.assert_frame_equal(trajectories(store), trajectories(tmp_path / "reference"))
