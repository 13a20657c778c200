"""Layers of ``workflows/`` import downwards: the compiler stands on the Argo spec layer, not on the engine."""

from __future__ import annotations

import subprocess
import sys


def test_the_compiler_and_its_linter_load_no_engine_module() -> None:
    probe = (
        "import sys, workflows.compiler.lint, workflows.compiler._graph\n"
        "print(sorted(m for m in sys.modules if m.startswith('workflows.engine')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout


def test_the_depends_grammar_lives_in_the_spec_layer_and_the_old_path_still_works() -> None:
    from workflows.engine import depends as old
    from workflows.spec import depends as spec

    assert old.parse_depends is spec.parse_depends and old.DependsSyntaxError is spec.DependsSyntaxError
