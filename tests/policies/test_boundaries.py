"""The policies package stands alone: it never imports connector or identity, and imports cleanly by itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "policies"


def test_no_imports_of_connector_or_identity() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(PACKAGE.parent)}: {n}" for n in names
                          if n.split(".")[0] in ("connector", "identity")]
    assert offenders == []


def test_engine_imports_alone_in_a_fresh_interpreter() -> None:
    code = ("import sys, policies; from policies import evaluate, parse_policy; "
            "assert not any(m.split('.')[0] in ('connector', 'identity') for m in sys.modules), 'leak'")
    done = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
