"""The import rules of docs/architecture.md hold: every run-time import between parts of the package is one
the table allows, and the parts import each other in no circle."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "wuhai_iot"
ROW = re.compile(r"^\| `(\w+)` \|(.*)\|$")


def allowed_imports() -> dict[str, set[str]]:
    """The table "Who may import whom": part → the parts it may import."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    return {match[1]: set(re.findall(r"`(\w+)`", match[2])) for line in section.splitlines() if (match := ROW.match(line))}


def part_of(module: str) -> str | None:
    """The part a module of the package belongs to: its sub-package or top-level module (``hookspecs``, the
    plugin markers every plugin imports, is a part of its own). None for the package itself."""
    names = module.split(".")[1:]
    if names[:2] == ["plugins", "hookspecs"]:
        return "hookspecs"
    if not names or names[0] in ("__init__", "__main__"):
        return None
    return names[0]


def runtime_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of the package in a file, leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    annotations_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("wuhai_iot"):
            if node.module == "wuhai_iot":  # from wuhai_iot import events
                for alias in node.names:
                    if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir():
                        yield node.lineno, f"wuhai_iot.{alias.name}"
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names if alias.name.startswith("wuhai_iot."))


def import_arrows() -> dict[tuple[str, str], list[str]]:
    """(importing part, imported part) → where (file:line)."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = part_of(module)
        if source is None:
            continue
        for line, imported in runtime_imports(path):
            target = part_of(imported)
            if target is not None and target != source:
                arrows.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}:{line}")
    return arrows


def test_every_part_is_in_the_table() -> None:
    parts = {part_of(".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert parts - {None} <= set(allowed_imports()), "docs/architecture.md names no rule for these parts"


def test_every_import_is_allowed() -> None:
    allowed = allowed_imports()
    arrows = import_arrows()
    forbidden = [f"{source} → {target}: {', '.join(where)}" for (source, target), where in sorted(arrows.items())
                 if target not in allowed.get(source, set())]  # fmt: skip
    assert not forbidden, "imports docs/architecture.md does not allow:\n" + "\n".join(forbidden)
    assert ("web", "alarms") in arrows and ("pipeline", "storage") in arrows  # (the scan does see imports)


def test_the_parts_import_each_other_in_no_circle() -> None:
    arrows = import_arrows()
    graph: dict[str, set[str]] = {}
    for source, target in arrows:
        graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in graph.get(start, ()):
            if step == goal or (step not in seen and (seen.add(step) or reaches(step, goal, seen))):
                return True
        return False

    circles = sorted(f"{source} → {target} → … → {source}" for source, target in arrows if reaches(target, source, set()))
    assert not circles, "\n".join(circles)


def test_the_scan_ignores_annotations_and_sees_deferred_imports(tmp_path: Path) -> None:
    code = tmp_path / "example.py"
    code.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wuhai_iot.server import Platform\n"
        "def f():\n    from wuhai_iot.plugins import get_plugin_manager\nfrom wuhai_iot import events as ev\n",
        encoding="utf-8",
    )
    assert sorted(module for _, module in runtime_imports(code)) == ["wuhai_iot.events", "wuhai_iot.plugins"]
