"""Pieces shared by the side-by-side comparison scripts (`compare_rlvr.py`, `compare_alphazero.py`).

Seeds from the command line, run directories under one output folder, per-seed statistics, and
the JSON record of where and when a comparison ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any, Sequence

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_seeds(seeds: Sequence[int] | None) -> None:
    """Raises `ValueError` unless `seeds` is None (the config's seed) or distinct integers."""
    if seeds is None:
        return
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one integer seed (or None for the "
                         "config's seed).")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds={seeds} must all be integers.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds} repeats a seed.")


def parse_seeds(text: str | None) -> tuple[int, ...] | None:
    """`"0,1,2"` -> `(0, 1, 2)`; None -> None (the config's seed).

    Raises:
        ValueError: empty list, a value that is not an integer, or a repeated seed.
    """
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError(f"--seeds={text!r} is empty; give comma-separated integers, e.g. 0,1,2.")
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"--seeds={text!r} must be comma-separated integers, e.g. 0,1,2.") from None
    check_seeds(seeds)
    return seeds


def prepare_run_dirs(out: str, workdirs: Sequence[str], *, overwrite: bool) -> None:
    """Makes `out`; removes the run directories an earlier comparison left there when `overwrite`.

    Raises:
        ValueError: `out` is a file, or a run directory exists and `overwrite` is False.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out={out!r} is a file, not a directory; choose another --out.")
    existing = [w for w in workdirs if os.path.exists(w)]
    if existing and not overwrite:
        raise ValueError(f"run directories {existing} already exist; pass overwrite=True "
                         f"(--overwrite) to replace them, or choose another out={out!r}.")
    for w in existing:
        shutil.rmtree(w)
    os.makedirs(out, exist_ok=True)


def read_records(workdir: str) -> list:
    """The rows of a run's `metrics.jsonl`."""
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def seed_stats(per_seed: Sequence[tuple[int, float]]) -> dict:
    """`{"mean", "std" (sample std, 0 for one seed), "min", "max", "per_seed": {seed: value}}`.

    NaN values (a run that never reached something) are left out of mean/std/min/max, which
    are NaN when every value is; `per_seed` keeps them.
    """
    values = np.array([v for _, v in per_seed], dtype=np.float64)
    ok = values[np.isfinite(values)]
    nan = float("nan")
    return {
        "mean": float(np.mean(ok)) if ok.size else nan,
        "std": float(np.std(ok, ddof=1)) if ok.size > 1 else (0.0 if ok.size else nan),
        "min": float(np.min(ok)) if ok.size else nan,
        "max": float(np.max(ok)) if ok.size else nan,
        "per_seed": {str(s): float(v) for s, v in per_seed},
    }


def finite(x: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def write_json(path: str, payload: dict) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(finite(payload), f, indent=1, allow_nan=False)
    return path


def provenance() -> dict:
    """The code's commit and the load average, for the record."""
    try:
        commit = subprocess.run(["git", "-C", _REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"commit": commit or None, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
