"""The hook reference of docs/plugins.md, generated from the hook specifications' docstrings.

``python -m wuhai_iot.plugins.reference docs/plugins.md`` rewrites the part of the file between the two
markers; tests/test_plugins.py fails when the file and the docstrings differ.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wuhai_iot.plugins import hookspecs

BEGIN = "<!-- hook reference: generated from wuhai_iot/plugins/hookspecs.py (python -m wuhai_iot.plugins.reference docs/plugins.md) -->"
END = "<!-- end of the hook reference -->"
MAY_AWAIT = "Awaitable[None] | None"


def hook_specs() -> list[Callable[..., Any]]:
    """The hook specifications in the order they are written."""
    return [value for value in vars(hookspecs).values() if hasattr(value, "wuhai_iot_spec")]


def _signature(spec: Callable[..., Any]) -> str:
    signature = inspect.signature(spec)
    text = f"{spec.__name__}({', '.join(signature.parameters)})"
    returns = str(signature.return_annotation).replace('"', "").replace("'", "")
    if returns not in ("None", MAY_AWAIT):
        text += f" -> {returns}"
    return f"`{text}`" + (" — may return an awaitable." if returns == MAY_AWAIT else "")


def hook_reference() -> str:
    """The reference in Markdown: one section per hook, its signature and its docstring."""
    parts = [BEGIN]
    for spec in hook_specs():
        parts.append(f"### {spec.__name__}\n\n{_signature(spec)}\n\n{inspect.getdoc(spec)}")
    parts.append(END)
    return "\n\n".join(parts) + "\n"


def with_reference(document: str) -> str:
    """``document`` with the part between the markers replaced by the current reference."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if not pattern.search(document):
        raise ValueError("the document has no hook reference markers")
    return pattern.sub(lambda _: hook_reference(), document)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("docs/plugins.md")
    path.write_text(with_reference(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
