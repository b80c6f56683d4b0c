"""Every config a doc names exists (issue 19, item 4): docs/controller.md once told users to
run `--sensor gelsight_left`, which no config provides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tactkit.config import config_dir

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
NAME = r"([a-z][a-z0-9_]*)(?=[\s`'\")|]|$)"

#: (pattern on a `tactkit ...` command line, config kind; None: decided by the command)
PATTERNS = [
    (re.compile(r"--sensors? " + NAME), "sensor"),
    (re.compile(r"tactkit sensors (?:check|view|record|publish) " + NAME), "sensor"),
    (re.compile(r"--robot " + NAME), "robot"),
    (re.compile(r"--robot sim:" + NAME), "task"),
    (re.compile(r"tactkit (?:sim (?:demos|view)|eval|demo) .*?--task " + NAME), "task"),
    (re.compile(r"\bsize=" + NAME), "size"),
    (re.compile(r"--config " + NAME), None),
]
FILES = re.compile(r"configs/(policy|robot|sensor|task|teleop)/([a-z0-9_]+)\.yaml")


def references(text: str) -> list[tuple[str, str, str]]:
    """(kind, name, line) of every config a doc's commands and paths name."""
    out = []
    for line in text.splitlines():
        for kind, name in FILES.findall(line):
            out.append((kind, name, line))
        if "tactkit " not in line:
            continue
        for pattern, kind in PATTERNS:
            for name in pattern.findall(line):
                if kind is None:
                    kind = "teleop" if "tactkit teleop" in line else "policy"
                if kind == "size":
                    kind, name = "policy", f"size_{name}"
                out.append((kind, name, line))
    return out


def test_the_scanner_sees_what_the_issue_saw():
    refs = references("tactkit control --policy runs/dp --robot flexiv --sensor gelsight_left\n"
                      "tactkit train dp --data X --config dp_tactile size=tiny\n"
                      "tactkit teleop --robot sim:wipe --config default --sensors NAME")
    assert {(k, n) for k, n, _ in refs} == {("robot", "flexiv"), ("sensor", "gelsight_left"),
                                            ("policy", "dp_tactile"), ("policy", "size_tiny"),
                                            ("task", "wipe"), ("teleop", "default")}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_config_a_doc_names_exists(doc):
    missing = [f"{kind}/{name}.yaml  <- {line.strip()}" for kind, name, line in references(doc.read_text())
               if not (config_dir() / kind / f"{name}.yaml").is_file()]
    assert not missing, f"{doc.name} names configs that do not exist:\n" + "\n".join(missing)
