"""fls: numerical verification of theoretical claims about feature-learning strength.

One import name for the three layers of the toolkit, each imported on first use so that ``import fls`` stays
cheap (see docs/design.md):

- ``fls.theory``: the sympy derivation of the two-layer ReLU gradient flow, its compiled field and its limits;
- ``fls.simulate``: data, initialization, the exact hybrid gradient-flow engine and batched training;
- ``fls.compare``: sweeps, the run store, metrics, regimes, claims, figures, the report and the ``fls`` CLI;
- ``fls.testing``: hypothesis strategies and reference checkers for derivations (docs/testing.md).

In the source tree the three layers are the top-level folders ``theory/``, ``simulate/`` and ``compare/``;
pyproject.toml maps them under this package.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.2.0"

__all__ = ["__version__", "compare", "simulate", "testing", "theory"]


def __getattr__(name: str) -> ModuleType:
    """Import ``fls.theory``, ``fls.simulate`` or ``fls.compare`` on first attribute access (PEP 562)."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fls' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
