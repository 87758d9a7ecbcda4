"""Plots of ``metrics.jsonl`` files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from symbiosis_jax.training.metrics import read_jsonl

__all__ = ["plot_metrics"]


def plot_metrics(
    jsonl_path: str | os.PathLike,
    keys: Sequence[str],
    out_png: str | os.PathLike,
    *,
    title: str | None = None,
) -> str:
    """Plots each metric in ``keys`` against ``step``, one subplot per key.

    Rows without a key are skipped for that key (metrics logged at different
    intervals, e.g. eval every N steps, share one file).

    Args:
        jsonl_path: a ``metrics.jsonl`` written by ``MetricsWriter``.
        keys: metric names; a key absent from every row raises ``ValueError``.
        out_png: output image path (parent directories are created).
        title: optional figure title.

    Returns:
        ``out_png`` as a string.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    keys = list(keys)
    if not keys:
        raise ValueError("keys is empty: give at least one metric name to plot.")
    rows = read_jsonl(jsonl_path)
    series = {}
    for k in keys:
        pts = [(r["step"], r[k]) for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if not pts:
            present = sorted({n for r in rows for n in r} - {"step", "time", "elapsed"})
            raise ValueError(f"metric {k!r} is not in {os.fspath(jsonl_path)}; present: {present}.")
        series[k] = pts
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], keys):
        steps, values = zip(*series[k])
        ax.plot(steps, values, marker="." if len(steps) < 50 else None)
        ax.set_ylabel(k)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = os.fspath(out_png)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
