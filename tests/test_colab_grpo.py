"""The GRPO arithmetic notebook: its paired script runs at smoke size, and the notebook holds
the same code with outputs stripped."""

import os
import runpy

import matplotlib
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_REPO, "colab", "grpo_arithmetic.py")
_NOTEBOOK = os.path.join(_REPO, "colab", "grpo_arithmetic.ipynb")


# Wiring and bookkeeping, not speed: less optimised, faster compiles (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fast_compiles")


def test_notebook_matches_script_and_is_stripped():
    jupytext = pytest.importorskip("jupytext")
    script = jupytext.read(_SCRIPT)
    notebook = jupytext.read(_NOTEBOOK)
    assert [c.source for c in script.cells] == [c.source for c in notebook.cells]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None
    # The first code cell installs the package, guarded so it is a no-op when installed.
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert "pip" in first_code.source and "find_spec" in first_code.source


def test_script_runs_at_smoke_size(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    monkeypatch.setenv("SYMBIOSIS_NOTEBOOK_SIZE", "smoke")
    monkeypatch.setenv("SYMBIOSIS_REPO", _REPO)
    monkeypatch.setenv("SYMBIOSIS_WORKDIR", str(tmp_path / "run"))
    namespace = runpy.run_path(_SCRIPT, run_name="__main__")
    result = namespace["result"]
    assert 0.0 <= result["before/pass@1"] <= 1.0 and 0.0 <= result["after/pass@1"] <= 1.0
    assert [r["step"] for r in namespace["evals"]] == [0, 1, 2]
    assert [r["step"] for r in namespace["train_rows"]] == [1, 2]
    assert all(v > 0 for v in namespace["phases"].values())
    # The verifier cell: the right answer passes, its digits reversed and garbage do not.
    problem, task = namespace["problem"], namespace["task"]
    assert task.verify(problem, problem.answer).passed
    assert not task.verify(problem, "garbage").passed
    assert problem.answer != problem.answer[::-1]  # (the seeded problem's answer is not a palindrome)
    assert not task.verify(problem, problem.answer[::-1]).passed
    assert os.path.exists(tmp_path / "run" / "metrics.jsonl")
