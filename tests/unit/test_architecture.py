"""The layering of shared/DESIGN.md, checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gortc"
DRIVERS = {
    "aiohttp",
    "aiohttp_session",
    "aiosqlite",
    "sqlite3",
    "redis",
    "aiortc",
    "av",
    "jwt",
    "bcrypt",
    "aiosmtplib",
}
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE
)


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", ["entities", "usecases"])
def test_inner_layers_import_no_framework_or_driver(layer: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_roots(path) & DRIVERS)
        for path in modules(layer)
        if imported_roots(path) & DRIVERS
    }
    assert offenders == {}


def test_entities_depend_on_nothing_of_ours_but_entities() -> None:
    for path in modules("entities"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gortc"):
                assert node.module.startswith("gortc.entities"), (path.name, node.module)


def test_sql_lives_only_in_repositories() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "repositories" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and SQL.search(node.value):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
