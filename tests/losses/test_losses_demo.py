"""The losses demo runs, shows the known limits, and answers --help without running."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np

_DEMO = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "losses_demo.py"


def test_demo_runs_and_shows_known_limits(capsys):
    spec = importlib.util.spec_from_file_location("losses_demo", _DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    results = demo.main(seed=0)
    assert len(results) == 17
    assert all(np.isfinite(v) for v in results.values())
    np.testing.assert_allclose(results["dpo (policy==ref)"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(results["gspo"], results["gspo_token"], rtol=1e-5, atol=1e-7)
    assert "ratio_min=1.0000  ratio_max=1.0000" in capsys.readouterr().out


def test_help_prints_usage_and_runs_nothing():
    # Was: --help was ignored and the whole demo ran.
    out = subprocess.run([sys.executable, str(_DEMO), "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("usage: losses_demo.py") and "--seed" in out
    assert "loss=" not in out
