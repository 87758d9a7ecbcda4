"""MetricsWriter (JSONL + TensorBoard), ProgressBar, plot_metrics, Registry."""

import glob
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax.training import MetricsWriter, ProgressBar, Registry, plot_metrics, read_jsonl


def _events(path):
    """The event protos of a TensorBoard event file (records: length, crc, data, crc)."""
    from tensorboardX.proto import event_pb2

    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos < len(data):
        (length,) = np.frombuffer(data[pos : pos + 8], dtype="<u8")
        ev = event_pb2.Event()
        ev.ParseFromString(data[pos + 12 : pos + 12 + int(length)])
        out.append(ev)
        pos += 12 + int(length) + 4
    return out


def test_jsonl_and_tensorboard(tmp_path):
    with MetricsWriter(tmp_path) as w:
        rec = w.write(1, {"loss": jnp.float32(0.5), "acc": np.float64(0.25), "n": jnp.int32(3)})
        w.write(2, {"loss": jnp.asarray([1.5]), "flag": True})
    assert rec["loss"] == 0.5 and rec["n"] == 3 and isinstance(rec["n"], int)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(l) for l in lines]
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["loss"] == 0.5 and rows[0]["acc"] == 0.25 and rows[0]["n"] == 3
    assert rows[1]["loss"] == 1.5 and rows[1]["flag"] is True
    assert all(r["time"] > 1.6e9 and r["elapsed"] >= 0 for r in rows)

    # TensorBoard events, parsed with the protobufs tensorboardX ships.
    files = glob.glob(os.path.join(tmp_path, "tb", "events.out.tfevents.*"))
    assert len(files) == 1
    scalars = {}
    for ev in _events(files[0]):
        for v in ev.summary.value:
            scalars[(v.tag, ev.step)] = v.simple_value
    assert scalars[("loss", 1)] == pytest.approx(0.5)
    assert scalars[("loss", 2)] == pytest.approx(1.5)
    assert scalars[("n", 1)] == pytest.approx(3.0)
    assert ("flag", 2) not in scalars  # booleans go only to JSONL


def test_append_resume_and_torn_line(tmp_path):
    w = MetricsWriter(tmp_path, use_tensorboard=False)
    w.write(1, {"loss": 1.0})
    w.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')  # killed mid-write
    w = MetricsWriter(tmp_path, use_tensorboard=False)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write("\n")
    w.write(3, {"loss": 3.0})
    w.close()
    assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "metrics.jsonl")] == [(1, 1.0), (3, 3.0)]
    assert not glob.glob(os.path.join(tmp_path, "tb", "*"))


def test_resumed_writer_drops_rows_after_the_checkpoint(tmp_path):
    # Was: a run killed between checkpoints and resumed logged those steps twice.
    w = MetricsWriter(tmp_path)
    for step in (-2, 0, 1, 2, 3, 4):  # (negative: warm-up phases such as SFT)
        w.write(step, {"loss": float(step)})
    w.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')  # killed mid-write
    w = MetricsWriter(tmp_path, append=True, drop_after=2)  # resumed from step 2's checkpoint
    w.write(3, {"loss": 30.0})
    w.close()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["loss"]) for r in rows] == [(-2, -2.0), (0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]
    # TensorBoard purges the old events from step 3 on when the new file starts with this.
    newest = max(glob.glob(os.path.join(tmp_path, "tb", "events.out.tfevents.*")), key=os.path.getmtime)
    starts = [ev.step for ev in _events(newest) if ev.HasField("session_log")]
    assert starts == [3]
    # A fresh run truncates.
    w = MetricsWriter(tmp_path, use_tensorboard=False, append=False)
    w.write(1, {"loss": 7.0})
    w.close()
    assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "metrics.jsonl")] == [(1, 7.0)]


def test_writer_rejects_arrays_and_reserved_names(tmp_path):
    w = MetricsWriter(tmp_path, use_tensorboard=False)
    with pytest.raises(ValueError, match=r"metric 'v' has shape \(3,\); only scalars"):
        w.write(1, {"v": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"'time' is reserved"):
        w.write(1, {"time": 1.0})
    w.close()


def test_non_finite_values_stay_valid_json(tmp_path):
    w = MetricsWriter(tmp_path, use_tensorboard=False)
    w.write(1, {"loss": float("nan"), "big": float("inf")})
    w.close()
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row["loss"] is None and row["big"] == 1e308


def test_progress_bar_shows_chosen_metrics(capsys):
    with ProgressBar(3, keys=("loss", "reward"), desc="train") as bar:
        bar.update(1, {"loss": jnp.float32(0.125), "other": 1.0})
        assert bar._bar.n == 1
        assert bar._bar.postfix == "loss=0.125"
        bar.update(2, {"reward": np.float32(2.0)})
        assert bar._bar.n == 3
        bar.write("[x] a line above the bar")
    assert "[x] a line above the bar\n" in capsys.readouterr().out
    off = ProgressBar(3, enabled=False)
    off.update(1, {"loss": 1.0})  # does nothing
    off.write("[x] printed without a bar")
    assert capsys.readouterr().out == "[x] printed without a bar\n"
    off.close()


def test_plot_metrics(tmp_path):
    w = MetricsWriter(tmp_path, use_tensorboard=False)
    for s in range(5):
        w.write(s, {"loss": 1.0 / (s + 1)} | ({"eval": float(s)} if s % 2 == 0 else {}))
    w.close()
    out = plot_metrics(tmp_path / "metrics.jsonl", ["loss", "eval"], tmp_path / "p" / "m.png", title="t")
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[0] == 2 * 220 and img.shape[1] == 600  # two subplots at 100 dpi
    with pytest.raises(ValueError, match=r"metric 'acc' is not in .*present: \['eval', 'loss'\]"):
        plot_metrics(tmp_path / "metrics.jsonl", ["acc"], tmp_path / "x.png")


def test_registry():
    reg = Registry("loss")

    @reg.register("a")
    def a():
        return 1

    reg.register("b", lambda: 2)
    assert reg.get("a")() == 1 and reg.get("b")() == 2
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2
    with pytest.raises(ValueError, match=r"unknown loss 'c'; known: \['a', 'b'\]"):
        reg.get("c")
    with pytest.raises(ValueError, match=r"loss 'a' is already registered"):
        reg.register("a", lambda: 3)
    reg.register("a", lambda: 3, overwrite=True)
    assert reg.get("a")() == 3
    with pytest.raises(ValueError, match=r"non-empty string"):
        reg.register("", a)
