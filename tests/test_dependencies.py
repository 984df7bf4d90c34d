"""Every distribution the tap imports is declared in pyproject.toml, and nothing else."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tap_analytics"


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imports(package: Path) -> list[tuple[str, str]]:
    """Every module imported in a package's files (dotted), with the file that imports it."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [(name, path.relative_to(ROOT).as_posix()) for name in names]
    return found


def imported_modules() -> dict[str, str]:
    """Top-level modules imported anywhere in tap_analytics/, each with one file that does."""
    found: dict[str, str] = {}
    for name, where in imports(PACKAGE):
        found.setdefault(name.split(".")[0], where)
    return found


def declared() -> set[str]:
    """The distributions pyproject.toml's [project] dependencies name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        normalized(re.split(r"[\s\[<>=~!;]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }


def test_every_imported_distribution_is_declared_and_every_declared_one_imported() -> None:
    distributions = packages_distributions()
    third_party = {
        module: where
        for module, where in imported_modules().items()
        if module not in sys.stdlib_module_names and module not in {"__future__", "tap_analytics"}
    }
    unknown = sorted(module for module in third_party if module not in distributions)
    assert not unknown, f"imported but installed by no distribution: {unknown}"
    imported = {
        normalized(distributions[module][0]): f"{module} ({where})"
        for module, where in third_party.items()
    }
    missing = {name: why for name, why in imported.items() if name not in declared()}
    assert not missing, f"add to [project] dependencies in pyproject.toml: {missing}"
    unused = declared() - set(imported)
    assert not unused, (
        f"declared in pyproject.toml but imported nowhere in tap_analytics/: {unused}"
    )


def test_the_sandbox_imports_only_itself_and_the_standard_library() -> None:
    # It stands for an API the tap does not control: sharing code would hide disagreements.
    foreign = [
        f"{name} ({where})"
        for name, where in imports(PACKAGE / "sandbox")
        if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}
        and not name.startswith("tap_analytics.sandbox")
    ]
    assert not foreign, f"the sandbox imports what is neither its own nor stdlib: {foreign}"
