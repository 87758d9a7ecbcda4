"""Metrics to ``metrics.jsonl`` and TensorBoard, plus a tqdm bar showing chosen metrics.

``metrics.jsonl`` has one JSON object per ``write`` call::

    {"step": 10, "time": 1764130000.1, "elapsed": 12.3, "loss": 0.25, ...}

``time`` is Unix wall time and ``elapsed`` seconds since the writer was opened.
TensorBoard files are written with tensorboardX (no TensorFlow needed). Only
process 0 writes; other processes get a writer that does nothing, so loops call
it unconditionally.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["MetricsWriter", "ProgressBar", "to_python_scalars", "read_jsonl"]


def _scalar(name: str, v: Any) -> float | int | bool | str:
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)):
        return v
    arr = np.asarray(jax.device_get(v))
    if arr.size != 1:
        raise ValueError(
            f"metric {name!r} has shape {arr.shape}; only scalars can be written "
            "(reduce it first, e.g. with .mean())."
        )
    x = arr.reshape(()).item()
    return x


def to_python_scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Converts jax/numpy scalars in ``metrics`` to Python numbers (one device fetch)."""
    fetched = jax.device_get(dict(metrics))
    return {k: _scalar(k, v) for k, v in fetched.items()}


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else (1e308 if x > 0 else -1e308)
    return x


class MetricsWriter:
    """Writes scalar metrics per step to ``<workdir>/metrics.jsonl`` and TensorBoard.

    Args:
        workdir: directory (created if missing).
        use_tensorboard: also write TensorBoard event files to ``workdir/tb``.
        filename: JSONL file name inside ``workdir``.
        append: keep the existing lines (default); otherwise truncate.
        drop_after: with ``append``, first remove the lines of steps after this
            one (and, in TensorBoard, the events after it): a run resumed from
            the checkpoint of step ``drop_after`` writes those steps again.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        *,
        use_tensorboard: bool = True,
        filename: str = "metrics.jsonl",
        append: bool = True,
        drop_after: int | None = None,
    ):
        self.workdir = os.fspath(workdir)
        self.path = os.path.join(self.workdir, filename)
        self._active = jax.process_index() == 0
        self._start = time.time()
        self._file = None
        self._tb = None
        if not self._active:
            return
        os.makedirs(self.workdir, exist_ok=True)
        if append and drop_after is not None and os.path.exists(self.path):
            kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= drop_after]
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:  # replaced whole: never half-written
                f.writelines(json.dumps(r) + "\n" for r in kept)
            os.replace(tmp, self.path)
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        if use_tensorboard:
            from tensorboardX import SummaryWriter  # light, but only needed here

            purge = drop_after + 1 if append and drop_after is not None else None
            self._tb = SummaryWriter(logdir=os.path.join(self.workdir, "tb"), purge_step=purge)

    def write(self, step: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Writes one record.

        Args:
            step: training step (int-like).
            metrics: name -> scalar (Python, numpy or jax, any dtype). Non-scalar
                arrays raise ``ValueError``.

        Returns:
            The record written (Python scalars, with ``step``, ``time``, ``elapsed``).
        """
        values = to_python_scalars(metrics)
        now = time.time()
        record = {"step": int(step), "time": now, "elapsed": now - self._start}
        for k, v in values.items():
            if k in record:
                raise ValueError(f"metric name {k!r} is reserved (step, time, elapsed).")
            record[k] = v
        if not self._active:
            return record
        self._file.write(json.dumps({k: _json_safe(v) for k, v in record.items()}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, global_step=int(step))
        return record

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flushes and closes the files; further writes raise."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._active = False

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads a ``metrics.jsonl`` file into a list of dicts (skipping a torn last line)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a run killed mid-write leaves a partial last line
    return rows


class ProgressBar:
    """A tqdm bar over steps whose postfix shows chosen metrics.

    Args:
        total: number of steps; None: no total (a run that stops on a time limit), so no ETA.
        keys: metric names to show (others are ignored).
        initial: starting step (when resuming).
        enabled: False gives a bar that does nothing (and off process 0 it is off).
        desc: bar label.
    """

    def __init__(
        self,
        total: int | None,
        *,
        keys: Sequence[str] = ("loss",),
        initial: int = 0,
        enabled: bool = True,
        desc: str | None = None,
    ):
        self.keys = tuple(keys)
        self._bar = None
        if enabled and jax.process_index() == 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)

    def update(self, n: int = 1, metrics: Mapping[str, Any] | None = None) -> None:
        """Advances by ``n`` steps and shows the chosen metrics present in ``metrics``."""
        if self._bar is None:
            return
        if metrics:
            shown = {k: metrics[k] for k in self.keys if k in metrics}
            if shown:
                values = to_python_scalars(shown)
                self._bar.set_postfix(
                    {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in values.items()},
                    refresh=False,
                )
        self._bar.update(n)

    def write(self, line: str) -> None:
        """Prints ``line`` above the bar (plain ``print`` when the bar is off; nothing off process 0)."""
        if self._bar is not None:
            self._bar.write(line)
        elif jax.process_index() == 0:
            print(line, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
