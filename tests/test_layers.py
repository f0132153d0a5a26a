"""The architecture holds (docs/design.md sections 1 and 5): the import-linter contracts of pyproject.toml
pass (theory -> simulate -> compare, and the layers of compare/), no module of compare/ is over 500 lines, and
package code imports project modules only at module level (a function-level import hides an upward dependency
from the contracts)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "simulate", "compare")
MAX_LINES = 500


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.fixture(scope="module")
def staged_tree(tmp_path_factory):
    """The source tree as the installed package lays it out (fls/theory, fls/simulate, fls/compare), made of
    links, for lint-imports, which reads packages from the file system."""
    root = tmp_path_factory.mktemp("layout")
    (root / "fls").mkdir()
    (root / "fls" / "__init__.py").symlink_to(ROOT / "fls" / "__init__.py")
    for package in PACKAGES:
        (root / "fls" / package).symlink_to(ROOT / package, target_is_directory=True)
    return root


def test_the_import_contracts_hold(staged_tree):
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert linter is not None, "lint-imports is missing: pip install -e '.[dev]' (import-linter)"
    result = subprocess.run(
        [linter, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        check=False,
        cwd=staged_tree,
        env={"PYTHONPATH": str(staged_tree), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_no_module_of_compare_is_over_500_lines():
    package = "compare"
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules(package)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _function_level_project_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").split(".")[0] == "fls":
                found.append(f"{path.name}:{inner.lineno} from {inner.module}")
            elif isinstance(inner, ast.Import) and any(a.name.split(".")[0] == "fls" for a in inner.names):
                found.append(f"{path.name}:{inner.lineno} import")
    return found


def test_compare_imports_project_modules_only_at_module_level():
    found = [hit for path in _modules("compare") for hit in _function_level_project_imports(path)]
    assert not found, found


def test_the_function_level_import_check_finds_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import fls.theory\n\n\ndef f():\n    from fls.compare import claims\n    import numpy\n"
    )
    assert _function_level_project_imports(sample) == ["sample.py:5 from fls.compare"]
