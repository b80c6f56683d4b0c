"""The layer rule of docs/architecture.md, checked on the import graph.

Bottom up: foundations (``tactkit/*.py``, ``tactkit/store``), ``sensors``, ``policies``,
``real``, ``sim``, ``teleop``, ``experiments``, ``cli``. A module may import its own layer and
the layers below it, nowhere else: imports inside functions count, and so do module paths
written as strings (``importlib.import_module("tactkit.x")``, registry entries
``"tactkit.x.y:Class"``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tactkit

LAYERS = ("foundations", "sensors", "policies", "real", "sim", "teleop", "experiments", "cli")
_MODULE_STRING = re.compile(r"^tactkit(\.[A-Za-z_][A-Za-z0-9_]*)+(:[A-Za-z_][A-Za-z0-9_]*)?$")


def layer_of(module: str) -> str | None:
    """Layer of a dotted module name (None outside tactkit)."""
    parts = module.split(".")
    if parts[0] != "tactkit":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "foundations"


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) for every absolute import and every tactkit module path in a string."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            out.append((node.lineno, node.value.split(":")[0]))
    return out


def upward_imports(package_dir: Path) -> list[str]:
    """``path:line: <layer> imports <module> (<higher layer>)`` for every violation."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        own = layer_of(".".join(p for p in parts if p != "__init__"))
        for line, module in imported_modules(path.read_text()):
            other = layer_of(module)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                found.append(f"{path}:{line}: {own} imports {module} ({other})")
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports(Path(tactkit.__file__).parent) == []


def test_the_check_finds_lazy_and_string_imports_up_the_layers(tmp_path: Path) -> None:
    pkg = tmp_path / "tactkit"
    (pkg / "real").mkdir(parents=True)
    (pkg / "sim").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "real" / "__init__.py").write_text("")
    (pkg / "sim" / "__init__.py").write_text("import tactkit.real\n")  # down: allowed
    (pkg / "real" / "evaluation.py").write_text(
        "import numpy\n\ndef run():\n    from tactkit.sim.tasks import make_task\n    return make_task\n"
        "KIND = 'tactkit.experiments.quickstart:Quickstart'\n"
    )
    found = upward_imports(pkg)
    assert len(found) == 2, found
    assert "real imports tactkit.sim.tasks (sim)" in found[0]
    assert "real imports tactkit.experiments.quickstart (experiments)" in found[1]
