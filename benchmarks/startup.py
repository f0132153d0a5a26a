"""What a new process pays before it does any work: the compiled field, the package imports and the CLI.

    python benchmarks/startup.py [--repeats 3] [--loss logistic]

Every figure is the best of ``--repeats`` fresh processes run side by side in this one run (timings on a shared
machine are noisy; the best is the least disturbed), printed with its target:

- ``compile_field`` cold: a new process with an empty cache directory (``FLS_CACHE_DIR``), so it imports sympy,
  derives the field and stores the entry; warm: a new process that reads that entry (docs/design.md section 6,
  "The field cache"). Both are timed inside the process after ``import numpy`` (which every caller has paid
  already), from ``from fls.theory import compile_field`` to the returned field; the modules it loaded are
  checked (a warm call must not load sympy or torch). Target: warm < 0.2 s. The warm process's whole wall time
  (interpreter, numpy, fls) is printed below it.
- ``import fls.theory, fls.simulate``: wall time of ``python -c``, against ``python -c pass``; neither torch nor
  sympy may be loaded. This is the share of the CLI's start that theory/ and simulate/ decide.
- ``fls --help`` and ``fls --version``: wall time of the installed console script. Target: < 1 s each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMED_COMPILE = """
import json, sys, time
import numpy
start = time.perf_counter()
from fls.theory import compile_field
field = compile_field({loss!r})
seconds = time.perf_counter() - start
heavy = [name for name in ("sympy", "torch") if name in sys.modules]
print(json.dumps({{"seconds": seconds, "origin": field.source_origin, "heavy": heavy}}))
"""

IMPORTS = "import sys, fls.theory, fls.simulate; print([n for n in ('sympy', 'torch') if n in sys.modules])"


def _wall(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of one process running ``command`` and its standard output."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def _compile_field(loss: str, cache: Path, env: dict[str, str]) -> dict:
    """The in-process time of ``compile_field(loss)`` in a new process whose cache directory is ``cache``."""
    command = [sys.executable, "-c", TIMED_COMPILE.format(loss=loss)]
    wall, out = _wall(command, {**env, "FLS_CACHE_DIR": str(cache)})
    return {**json.loads(out), "wall": wall}


def _fls_script() -> str | None:
    """The ``fls`` console script of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("fls")
    return str(beside) if beside.exists() else shutil.which("fls")


def _row(name: str, seconds: float, target: str, note: str = "") -> None:
    print(f"{name:<44} {seconds:8.3f} s   target {target:<8} {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per figure (best is printed)")
    parser.add_argument("--loss", default="logistic", help="the loss whose field is compiled")
    args = parser.parse_args()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}

    with tempfile.TemporaryDirectory() as scratch:
        cold = [_compile_field(args.loss, Path(scratch) / f"cold{k}", env) for k in range(args.repeats)]
        warm_dir = Path(scratch) / "warm"
        _compile_field(args.loss, warm_dir, env)
        warm = [_compile_field(args.loss, warm_dir, env) for _ in range(args.repeats)]
    best_cold = min(cold, key=lambda r: r["seconds"])
    best_warm = min(warm, key=lambda r: r["seconds"])
    baselines, imports = [], []
    for _ in range(args.repeats):  # alternated, so that both see the same load
        baselines.append(_wall([sys.executable, "-c", "pass"], env)[0])
        imports.append(_wall([sys.executable, "-c", IMPORTS], env))
    baseline = min(baselines)

    print(f"startup, best of {args.repeats} fresh processes (loss {args.loss}, one BLAS thread)")
    print("-" * 100)
    _row("compile_field, cold (derive + store)", best_cold["seconds"], "-", f"[{best_cold['origin']}]")
    _row(
        "compile_field, warm (cache entry)",
        best_warm["seconds"],
        "< 0.2 s",
        f"[{best_warm['origin']}; loaded {best_warm['heavy'] or 'neither sympy nor torch'}]",
    )
    _row("  the warm process, start to exit", min(r["wall"] for r in warm), "-", "[python, numpy, fls]")
    print(f"{'  ratio cold / warm':<44} {best_cold['seconds'] / best_warm['seconds']:8.1f}")
    best_imports = min(seconds for seconds, _ in imports)
    _row("python -c pass", baseline, "-")
    _row(
        "python -c 'import fls.theory, fls.simulate'",
        best_imports,
        "< 1 s",
        f"[+{best_imports - baseline:.3f} s over python; loaded {imports[0][1].strip()}]",
    )
    script = _fls_script()
    if script is None:
        print("fls --help / --version: no `fls` console script found (pip install -e .)")
        return
    for flag in ("--help", "--version"):
        seconds = min(_wall([script, flag], env)[0] for _ in range(args.repeats))
        _row(f"fls {flag}", seconds, "< 1 s")


if __name__ == "__main__":
    main()
