"""Public names of a package imported from their modules on first access (PEP 562).

``import fls.theory`` or ``import fls.simulate`` must not import sympy or torch (about 2 s and 3.4 s per process
here): a package ``__init__`` therefore lists where each public name lives and lets this module import it when it
is first used, keeping ``from fls.simulate import make_data``, ``__all__`` and ``dir()`` as they were
(docs/design.md section 1).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__`` and the module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``exports`` maps the (absolute) name of each defining module to the public names it gives the package. A name
    is imported on first access and then stored in the package, so later accesses are plain attribute lookups.
    """
    origins = {name: module for module, names in exports.items() for name in names}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in origins:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origins[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *origins})

    return sorted(origins), __getattr__, __dir__
