"""The connect four AlphaZero notebook: its paired script runs at smoke size, and the
notebook holds the same code with outputs stripped."""

import os
import runpy

import matplotlib
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_REPO, "colab", "alphazero_connect4.py")
_NOTEBOOK = os.path.join(_REPO, "colab", "alphazero_connect4.ipynb")


def test_notebook_matches_script_and_is_stripped():
    jupytext = pytest.importorskip("jupytext")
    script = jupytext.read(_SCRIPT)
    notebook = jupytext.read(_NOTEBOOK)
    assert [c.source for c in script.cells] == [c.source for c in notebook.cells]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None


def test_script_runs_at_smoke_size(tmp_path, monkeypatch, fast_compiles):  # wiring, not speed
    matplotlib.use("Agg")
    monkeypatch.setenv("SYMBIOSIS_NOTEBOOK_SIZE", "smoke")
    monkeypatch.setenv("SYMBIOSIS_REPO", _REPO)
    monkeypatch.setenv("SYMBIOSIS_WORKDIR", str(tmp_path / "run"))
    namespace = runpy.run_path(_SCRIPT, run_name="__main__")
    assert namespace["result"]["iteration"] == 2
    rows = namespace["rows"]
    assert [r["step"] for r in rows] == [1, 2]
    assert 0.0 <= rows[-1]["eval/random/win_rate"] <= 1.0
    states, rewards = namespace["states"], namespace["rewards"]
    assert len(states) == len(namespace["actions"]) + 1 >= 8  # a connect four game lasts 7+ moves
    assert sorted(rewards.tolist()) in ([-1.0, 1.0], [0.0, 0.0])
    assert os.path.exists(tmp_path / "run" / "metrics.jsonl")
