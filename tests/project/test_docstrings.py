"""Every public class and function of the package says in one line what it is for."""

from __future__ import annotations

import ast

from support import REPO


def _public_definitions_without_docstring() -> list[str]:
    missing = []
    for path in sorted((REPO / "exporter" / "ringwatch").rglob("*.py")):
        tree = ast.parse(path.read_text())
        stack: list[tuple[ast.AST, str]] = [(tree, "")]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    continue
                if child.name.startswith("_"):
                    continue
                if not ast.get_docstring(child):
                    missing.append(f"{path.relative_to(REPO)}:{child.lineno} {prefix}{child.name}")
                if isinstance(child, ast.ClassDef):
                    stack.append((child, f"{prefix}{child.name}."))
    return missing


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = _public_definitions_without_docstring()
    assert not missing, "\n".join(missing)
