"""The store's modules talk through public names: the layout module owns the on-disk layout."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tactkit.store

STORE = Path(tactkit.store.__file__).parent


def test_store_modules_import_no_private_names_of_each_other():
    offenders = []
    for path in sorted(STORE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tactkit"):
                offenders += [f"{path.name}: from {node.module} import {a.name}"
                              for a in node.names if a.name.startswith("_") and a.name != "_paths"]
        # a private name reached through the store, the index or another store module
        receivers = r"store|index|layout|recorder|recovery|integrity|chunks|episode_store"
        for m in re.finditer(rf"\b({receivers})\._(?!paths\b)[a-z]\w*", path.read_text()):
            offenders.append(f"{path.name}: {m.group(0)}")
    assert offenders == []


def test_test_only_code_is_not_in_the_package():
    assert not (STORE / "sampler_reference.py").exists()
    assert not (STORE / "torch_dataset.py").exists()
