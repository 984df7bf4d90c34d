"""Find, in tap_analytics/'s source, every private or final singer-sdk member the tap uses.

A use is: an attribute `_x` read, set or called that an SDK class defines (on `self` when the
tap class inherits it from the SDK; on any other object when no tap class defines `_x` of its
own); a method of a tap class that overrides an SDK member that is private or `typing.final`;
or a name imported from a private SDK module (`singer_sdk.helpers._state`) or a private name
imported from any SDK module. Calling a public final method (`stream.sync()`) is public API and
is not a use. The sandbox is a separate program and is not scanned.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import typing as t
from dataclasses import dataclass
from pathlib import Path

import singer_sdk

import tap_analytics

PACKAGE = Path(tap_analytics.__file__).resolve().parent
SDK_ROOT = Path(singer_sdk.__file__).resolve().parent


@dataclass(frozen=True)
class Use:
    """One place the tap uses an SDK member: the member's pin name and where it is used."""

    name: str  # `_request`, `sync_all` or `singer_sdk.helpers._state.write_...`
    where: str  # `tap_analytics/pages.py:55`
    owner: str  # the SDK class (or module) that defines it, for the failure message


def is_private(name: str) -> bool:
    """Tell whether a name is private (`_x`), not a dunder."""
    return name.startswith("_") and not name.startswith("__")


def assigned_names(tree: ast.AST) -> set[str]:
    """Names a class's source defines: methods, class attributes and `self.x = ...` targets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                names.add(target.attr)
    return names


@functools.cache
def sdk_private_names() -> dict[str, frozenset[str]]:
    """Every private name any SDK class defines, with the names of the classes that do."""
    found: dict[str, set[str]] = {}
    for path in SDK_ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            for name in filter(is_private, assigned_names(cls)):
                found.setdefault(name, set()).add(cls.name)
    return {name: frozenset(owners) for name, owners in found.items()}


def sdk_bases(cls: type) -> list[type]:
    """The SDK classes in a class's MRO, nearest first."""
    return [base for base in cls.__mro__[1:] if base.__module__.startswith("singer_sdk")]


_DEFINED: dict[type, frozenset[str]] = {}


def defined_by_sdk_class(cls: type) -> frozenset[str]:
    """The names an SDK class's own source defines."""
    if cls not in _DEFINED:
        try:
            tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls)))
        except (OSError, TypeError):  # a class made at run time (typing.Generic and the like)
            _DEFINED[cls] = frozenset(vars(cls))
        else:
            _DEFINED[cls] = frozenset(assigned_names(tree))
    return _DEFINED[cls]


def inherited_from_sdk(cls: type, name: str) -> type | None:
    """The nearest SDK base that defines `name`, if any."""
    return next((base for base in sdk_bases(cls) if name in defined_by_sdk_class(base)), None)


def is_final(owner: type, name: str) -> bool:
    """Tell whether an SDK class marks a member with typing.final."""
    member = vars(owner).get(name)
    function = member.fget if isinstance(member, property) else member
    return bool(getattr(function, "__final__", False))


def tap_modules() -> list[tuple[Path, str]]:
    """Every module of the tap (the sandbox left out), with its dotted name."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "sandbox" not in parts:
            modules.append((path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)))
    return modules


def classes_by_node(tree: ast.Module, module: str) -> dict[ast.ClassDef, type]:
    """The run-time class of each top-level class statement of a tap module."""
    loaded = importlib.import_module(module)
    found = {}
    for node in tree.body:
        value = getattr(loaded, node.name, None) if isinstance(node, ast.ClassDef) else None
        if isinstance(node, ast.ClassDef) and inspect.isclass(value):
            found[node] = value
    return found


def own_private_names() -> set[str]:
    """Private names tap classes define for themselves (no SDK base defines them)."""
    names: set[str] = set()
    for path, module in tap_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, cls in classes_by_node(tree, module).items():
            names |= {
                name
                for name in filter(is_private, assigned_names(node))
                if inherited_from_sdk(cls, name) is None
            }
    return names


def import_uses(tree: ast.Module, where: str) -> list[Use]:
    """Names imported from a private SDK module, or private names imported from the SDK."""
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("singer_sdk"):
            continue
        module = t.cast("str", node.module)
        for alias in node.names:
            if any(map(is_private, module.split("."))) or is_private(alias.name):
                dotted = f"{module}.{alias.name}"
                uses.append(Use(dotted, f"{where}:{node.lineno}", module))
    return uses


def class_uses(node: ast.ClassDef, cls: type, where: str) -> list[Use]:
    """Overrides of private or final SDK members, and `self._x` the SDK defines."""
    uses = []
    for item in ast.walk(node):
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            base = inherited_from_sdk(cls, item.name)
            if base is not None and (is_private(item.name) or is_final(base, item.name)):
                uses.append(Use(item.name, f"{where}:{item.lineno}", base.__name__))
        elif (
            isinstance(item, ast.Attribute)
            and isinstance(item.value, ast.Name)
            and item.value.id in {"self", "cls"}
            and is_private(item.attr)
        ):
            base = inherited_from_sdk(cls, item.attr)
            if base is not None:
                uses.append(Use(item.attr, f"{where}:{item.lineno}", base.__name__))
    return uses


def other_uses(tree: ast.Module, where: str, own: set[str]) -> list[Use]:
    """`x._y` on objects other than self, where an SDK class defines `_y` and no tap class."""
    sdk = sdk_private_names()
    return [
        Use(node.attr, f"{where}:{node.lineno}", "/".join(sorted(sdk[node.attr])))
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        and node.attr in sdk
        and node.attr not in own
    ]


def sdk_uses() -> list[Use]:
    """Every use of a private or final SDK member in tap_analytics/, in file order."""
    own = own_private_names()
    uses: list[Use] = []
    for path, module in tap_modules():
        where = path.relative_to(PACKAGE.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses += import_uses(tree, where)
        for node, cls in classes_by_node(tree, module).items():
            uses += class_uses(node, cls, where)
        uses += other_uses(tree, where, own)
    return uses
