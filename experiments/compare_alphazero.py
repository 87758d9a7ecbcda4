r"""AlphaZero ablations side by side: one config, named sets of overrides ("arms"), several seeds.

Run:
    python experiments/compare_alphazero.py                   # tic-tac-toe: gumbel, puct, gumbel + reuse
    python experiments/compare_alphazero.py --seeds=0,1,2 --eval_every=10 --out=runs/compare_az
    python experiments/compare_alphazero.py --arm=gumbel --arm="sims8:search.num_simulations=8,search.num_nodes=9"
    python experiments/compare_alphazero.py --config=configs/alphazero_connect4.py --iterations=100 --eval_every=50 \
        --arm=gumbel --arm="puct:search.algorithm=puct"

An arm is `NAME` (the config as it is) or `NAME:field=value,field=value`: dotted config fields,
typed from the existing field as on `experiments/train.py`'s command line (`--config.field=value`).
`--set=field=value,...` applies to every arm. The default arms, for the default tic-tac-toe config
(32 simulations): `gumbel` (the config), `puct` (`search.algorithm=puct`) and `gumbel_reuse`
(`search.reuse_tree=True,search.num_nodes=97`: self-play keeps the played move's subtree).

Each (seed, arm) is a full run of the loop in `<out>/<arm>/seed<seed>/` (seeds outer, arms inner,
so an interrupted comparison has whole seeds). After each run it prints one line and rewrites,
from all runs so far:

* `<out>/comparison.md`: per arm, over seeds, from the runs' evaluations: tic-tac-toe's losing lines
  against every reply (first / second player) at the end and the first iteration from which no
  evaluation finds one ("solved at"), with the wall time then; each opponent's final win and loss
  rates; the final training loss and game length; wall and process CPU seconds;
* `<out>/comparison.json`: the same numbers per run and per arm;
* `<out>/comparison.png`: losing lines against iteration and wall time, and win / loss rates
  against each opponent by iteration: the mean over seeds thick, each seed thin.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import re
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)
for _path in (_REPO, _HERE):  # the package and comparison.py beside this file
    if _path not in sys.path:
        sys.path.insert(0, _path)

import comparison  # noqa: E402

DEFAULT_CONFIG = os.path.join(_REPO, "configs", "alphazero_tictactoe.py")
DEFAULT_ARMS = ("gumbel", "puct:search.algorithm=puct",
                "gumbel_reuse:search.reuse_tree=True,search.num_nodes=97")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclasses.dataclass(frozen=True)
class Arm:
    """One side of the comparison: a name (its folder) and dotted config overrides."""

    name: str
    overrides: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        return self.name + (" (" + ", ".join(f"{k}={v}" for k, v in self.overrides) + ")"
                            if self.overrides else "")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One finished run: the arm, the seed, where it ran, its metrics rows, its wall time."""

    arm: str
    seed: int
    workdir: str
    records: list
    seconds: float


def _split_top_level(text: str) -> list[str]:
    """Splits on commas outside brackets: `"a=1,b=(2, 3)"` -> `["a=1", "b=(2, 3)"]`."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_overrides(text: str, *, what: str) -> tuple[tuple[str, str], ...]:
    """`"search.algorithm=puct,train.batch_size=128"` -> `(("search.algorithm", "puct"), ...)`.

    Raises:
        ValueError: an item without `=`, or an empty field name (`what` names the flag).
    """
    out = []
    for item in _split_top_level(text):
        field, eq, value = item.partition("=")
        if not eq or not field.strip():
            raise ValueError(f"{what}: {item!r} is not field=value (e.g. search.algorithm=puct).")
        out.append((field.strip(), value.strip()))
    return tuple(out)


def parse_arm(text: str) -> Arm:
    """`"NAME"` or `"NAME:field=value,field=value"` -> `Arm`.

    Raises:
        ValueError: an empty name, a name that is not a folder name (letters, digits, `_.-`),
            or a malformed override.
    """
    name, _, rest = str(text).partition(":")
    name = name.strip()
    if not _NAME.match(name) or not name.strip("."):  # "." and ".." are not folders of their own
        raise ValueError(f"--arm={text!r}: the arm's name {name!r} must be letters, digits, _ . -"
                         " (it names the arm's folder), e.g. --arm=puct:search.algorithm=puct.")
    return Arm(name, parse_overrides(rest, what=f"--arm={text!r}"))


def _train_entry():
    """`experiments/train.py` as a module (its command-line parsing types the overrides)."""
    module = sys.modules.get("_symbiosis_train_entry")
    if module is None:
        spec = importlib.util.spec_from_file_location("_symbiosis_train_entry",
                                                      os.path.join(_HERE, "train.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["_symbiosis_train_entry"] = module
    return module


def make_config(config: str, arm: Arm, *, seed: int | None, common: Sequence[tuple[str, str]] = (),
                iterations: int | None = None, eval_every: int | None = None):
    """The config of one run: `config` (`path.py[:variant]`), `common` then the arm's overrides,
    the seed, the run length and the evaluation interval. Validated; nothing is compiled.

    Checkpoints only at the end, no progress bar, and training rows logged at every evaluation
    (so each evaluation has its wall time).
    """
    argv = ["compare_alphazero", f"--config={config}"]
    argv += [f"--config.{k}={v}" for k, v in (*common, *arm.overrides)]
    try:
        cfg = _train_entry().parse_argv(argv).config
    except ValueError as e:
        raise ValueError(f"arm {arm.name!r}: {e}") from None
    if cfg.get("loop") != "alphazero":
        raise ValueError(f"--config={config} has loop={cfg.get('loop')!r}; compare_alphazero "
                         "compares runs of the alphazero loop (configs/alphazero_*.py).")
    if seed is not None:
        cfg.seed = int(seed)
    if iterations is not None:
        cfg.train.num_iterations = int(iterations)
    if eval_every is not None:
        cfg.eval.every = int(eval_every)
    n = int(cfg.train.num_iterations)
    cfg.logging.checkpoint_every = max(n, 1)
    cfg.logging.progress_bar = False
    if cfg.eval.every:
        cfg.logging.log_every = math.gcd(int(cfg.logging.log_every), int(cfg.eval.every))
    from symbiosis_jax.loops import alphazero

    try:
        alphazero.validate_config(cfg)
    except ValueError as e:
        raise ValueError(f"arm {arm.name!r}: {e}") from None
    return cfg


def check_args(*, arms: Sequence[Arm], iterations: int | None, eval_every: int | None) -> None:
    """Raises `ValueError` naming the argument, before anything is built."""
    if not arms:
        raise ValueError("arms is empty; give one or more --arm=NAME[:field=value,...].")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arms {names} repeat a name; each arm needs its own (it names a folder).")
    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, int)
                                   or iterations < 1):
        raise ValueError(f"iterations={iterations!r} must be an integer >= 1 (or None for the "
                         "config's).")
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(eval_every, int)
                                   or eval_every < 0):
        raise ValueError(f"eval_every={eval_every!r} must be an integer >= 0 (0: no evaluation).")


def plan(*, config: str, arms: Sequence[Arm], seeds: Sequence[int] | None,
         common: Sequence[tuple[str, str]] = (), iterations: int | None = None,
         eval_every: int | None = None) -> list:
    """Every run's config, validated: `[(seed, arm, config)]`, seeds outer, arms inner."""
    check_args(arms=arms, iterations=iterations, eval_every=eval_every)
    comparison.check_seeds(seeds)
    planned = []
    for seed in (seeds if seeds is not None else (None,)):
        for arm in arms:
            cfg = make_config(config, arm, seed=seed, common=common, iterations=iterations,
                              eval_every=eval_every)
            planned.append((int(cfg.seed), arm, cfg))
    return planned


def run_all(*, out: str, config: str = DEFAULT_CONFIG, arms: Sequence[Arm] | None = None,
            seeds: Sequence[int] | None = None, common: Sequence[tuple[str, str]] = (),
            iterations: int | None = None, eval_every: int | None = None,
            overwrite: bool = False, on_run: Callable[[list], None] | None = None) -> list:
    """Runs every (seed, arm); returns the `RunResult`s in run order.

    Args:
        out: output root; run `(arm, seed)` goes to `<out>/<arm>/seed<seed>/`.
        config: `path/to/config.py[:variant]` (an AlphaZero config).
        arms: the arms (default `DEFAULT_ARMS`).
        seeds: seeds to run; None runs the config's own seed.
        common: overrides applied to every arm, before the arm's own.
        iterations: `train.num_iterations` of every run; None keeps the config's.
        eval_every: `eval.every` of every run; None keeps the config's.
        overwrite: replace run directories an earlier comparison left in `out`.
        on_run: called with the finished `RunResult`s after each run.

    Raises:
        ValueError: bad arguments or configs, or existing run directories without `overwrite`;
            raised before the first run starts.
    """
    arms = tuple(arms) if arms is not None else tuple(parse_arm(a) for a in DEFAULT_ARMS)
    planned = plan(config=config, arms=arms, seeds=seeds, common=common, iterations=iterations,
                   eval_every=eval_every)
    workdirs = [os.path.join(out, arm.name, f"seed{seed}") for seed, arm, _ in planned]
    comparison.prepare_run_dirs(out, workdirs, overwrite=overwrite)
    from symbiosis_jax.training import driver

    results: list = []
    t_start = time.time()
    for i, ((seed, arm, cfg), workdir) in enumerate(zip(planned, workdirs)):
        t0 = time.time()
        driver.run(cfg, workdir=workdir, verbose=False)
        result = RunResult(arm=arm.name, seed=seed, workdir=workdir,
                           records=comparison.read_records(workdir), seconds=time.time() - t0)
        results.append(result)
        print(f"[compare_alphazero] run {i + 1}/{len(planned)} seed={seed} arm={arm.name}: "
              f"{_one_line(run_metrics(result))}, {result.seconds:.0f} s "
              f"(total {(time.time() - t_start) / 60:.1f} min)", flush=True)
        if on_run is not None:
            on_run(results)
    return results


# ----------------------------------------------------------------------------- numbers


def _eval_rows(records: list) -> list:
    return [r for r in records if any(k.startswith("eval/") for k in r)]


def _train_rows(records: list) -> list:
    return [r for r in records if "train/loss" in r]


def opponents(records: list) -> list[str]:
    """Opponents evaluated in a run, from its `eval/<name>/win_rate` keys."""
    return sorted({k.split("/")[1] for r in records for k in r
                   if k.startswith("eval/") and k.endswith("/win_rate")})


def _losing_lines(row: dict) -> float:
    return float(row["eval/every_reply/losses_first"] + row["eval/every_reply/losses_second"])


def run_metrics(result: RunResult) -> dict:
    """One run's numbers, from its metrics rows (NaN where the run has no such evaluation).

    `solved_iteration` is the first evaluated iteration from which every evaluation, that one
    and all later ones, finds no losing line against every reply (NaN if the last one finds one);
    `solved_wall_seconds` the run's wall time at that evaluation (compilation included).
    """
    nan = float("nan")
    ev, tr = _eval_rows(result.records), _train_rows(result.records)
    m: dict[str, Any] = {"wall_seconds": result.seconds,
                         "cpu_seconds": tr[-1].get("cpu_seconds", nan) if tr else nan,
                         "final_train_loss": tr[-1]["train/loss"] if tr else nan,
                         "final_game_length": tr[-1].get("selfplay/game_length", nan) if tr else nan,
                         "reused_root_visits": (float(np.mean([r["selfplay/reused_root_visits"] for r in tr]))
                                                if tr and "selfplay/reused_root_visits" in tr[-1] else nan)}
    every = [r for r in ev if "eval/every_reply/losses_first" in r]
    if every:
        m["final_losing_lines_first"] = float(every[-1]["eval/every_reply/losses_first"])
        m["final_losing_lines_second"] = float(every[-1]["eval/every_reply/losses_second"])
        solved = None
        for r in reversed(every):
            if _losing_lines(r) > 0:
                break
            solved = r
        m["solved_iteration"] = float(solved["step"]) if solved else nan
        m["solved_wall_seconds"] = float(solved.get("wall_seconds", nan)) if solved else nan
    for name in opponents(result.records):
        rows = [r for r in ev if f"eval/{name}/win_rate" in r]
        m[f"final_win_rate/{name}"] = float(rows[-1][f"eval/{name}/win_rate"])
        m[f"final_loss_rate/{name}"] = float(rows[-1][f"eval/{name}/loss_rate"])
    return m


def _one_line(m: dict) -> str:
    parts = []
    if "final_losing_lines_first" in m:
        solved = m["solved_iteration"]
        parts.append(f"losing lines {m['final_losing_lines_first']:.0f} first / "
                     f"{m['final_losing_lines_second']:.0f} second, solved at "
                     + ("never" if math.isnan(solved) else f"iteration {solved:.0f}"))
    for k in sorted(m):
        if k.startswith("final_win_rate/"):
            name = k.split("/", 1)[1]
            parts.append(f"vs {name} win {m[k]:.0%} loss {m[f'final_loss_rate/{name}']:.0%}")
    parts.append(f"loss {m['final_train_loss']:.3f}")
    return ", ".join(parts)


def summarize(results: Sequence[RunResult]) -> dict:
    """Per arm: `{"seeds": [...], metric: comparison.seed_stats(...)}` for every metric a run has."""
    by_arm: dict = {}
    for r in results:
        by_arm.setdefault(r.arm, []).append(r)
    summary = {}
    for arm, runs in by_arm.items():
        per_run = [(r.seed, run_metrics(r)) for r in runs]
        names = sorted(set().union(*(m.keys() for _, m in per_run)))
        entry: dict[str, Any] = {"seeds": [s for s, _ in per_run]}
        for name in names:
            entry[name] = comparison.seed_stats([(s, m.get(name, float("nan"))) for s, m in per_run])
        summary[arm] = entry
    return summary


def _per_seed(stat: dict, fmt: str) -> str:
    return " / ".join("-" if math.isnan(v) else fmt.format(v) for v in stat["per_seed"].values())


def _mean_std(stat: dict, fmt: str) -> str:
    if math.isnan(stat["mean"]):
        return "-"
    if len(stat["per_seed"]) == 1:
        return fmt.format(stat["mean"])
    return f"{fmt.format(stat['mean'])} ± {fmt.format(stat['std'])}"


def table(summary: dict, arms: Sequence[Arm] = ()) -> str:
    """Markdown table of `summarize`'s numbers, one row per arm, columns for what was measured."""
    labels = {a.name: a.label() for a in arms}
    entries = list(summary.values())
    has = lambda key: any(key in e for e in entries)  # noqa: E731
    opps = sorted({k.split("/", 1)[1] for e in entries for k in e if k.startswith("final_win_rate/")})
    head = ["arm", "seeds"]
    if has("final_losing_lines_first"):
        head += ["losing lines at the end, first/second (per seed)",
                 "solved at iteration (per seed)", "wall s when solved (per seed)"]
    for o in opps:
        head += [f"vs {o}: win rate", f"vs {o}: loss rate"]
    head += ["final train loss", "game length"]
    if has("reused_root_visits") and any(not math.isnan(e["reused_root_visits"]["mean"])
                                         for e in entries if "reused_root_visits" in e):
        head += ["reused root visits"]
    head += ["wall s (per seed)", "process CPU s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for arm, e in summary.items():
        row = [labels.get(arm, arm), ",".join(str(s) for s in e["seeds"])]
        if "losing lines at the end, first/second (per seed)" in head:
            if "final_losing_lines_first" in e:
                first, second = e["final_losing_lines_first"], e["final_losing_lines_second"]
                row += ["; ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(first["per_seed"].values(),
                                                                     second["per_seed"].values())),
                        _per_seed(e["solved_iteration"], "{:.0f}").replace("-", "never"),
                        _per_seed(e["solved_wall_seconds"], "{:.0f}")]
            else:
                row += ["-", "-", "-"]
        for o in opps:
            row += [_mean_std(e[f"final_win_rate/{o}"], "{:.1%}") if f"final_win_rate/{o}" in e else "-",
                    _mean_std(e[f"final_loss_rate/{o}"], "{:.1%}") if f"final_loss_rate/{o}" in e else "-"]
        row += [_mean_std(e["final_train_loss"], "{:.3f}"), _mean_std(e["final_game_length"], "{:.2f}")]
        if "reused root visits" in head:
            row += [_mean_std(e["reused_root_visits"], "{:.1f}")]
        row += [f"{e['wall_seconds']['mean']:.0f} ({_per_seed(e['wall_seconds'], '{:.0f}')})",
                _mean_std(e["cpu_seconds"], "{:.0f}")]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Mean ± sample std over seeds. 'Solved at': the first evaluation from which no "
                 "evaluation finds a losing line against every reply, as first or second player "
                 "('never': the last one finds one). Wall times include compilation and the "
                 "evaluations; process CPU s is the loop's own count.")
    return "\n".join(lines)


def plot(results: Sequence[RunResult], path: str) -> str:
    """Losing lines (tic-tac-toe) against iteration and wall seconds, and each opponent's win and
    loss rates against iteration: per arm the mean over seeds thick, each seed thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(r.arm for r in results))
    opps = sorted(set().union(*(opponents(r.records) for r in results)))
    every = any("eval/every_reply/losses_first" in row for r in results for row in r.records)
    panels = (["lines_iter", "lines_wall"] if every else []) + [f"opp:{o}" for o in opps]
    if not panels:
        panels = ["loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for i, arm in enumerate(arms):
        color = f"C{i}"
        runs = [r for r in results if r.arm == arm]
        label = f"{arm} (mean of {len(runs)} seeds)" if len(runs) > 1 else arm
        for ax, panel in zip(axes[0], panels):
            if panel.startswith("lines"):
                curves = [{row["step"]: _losing_lines(row) for row in _eval_rows(r.records)
                           if "eval/every_reply/losses_first" in row} for r in runs]
                xs = ([{row["step"]: row.get("wall_seconds", np.nan) for row in _eval_rows(r.records)}
                       for r in runs] if panel == "lines_wall" else None)
                series = [(curves, xs, "-", label)]
            elif panel.startswith("opp:"):
                o = panel[4:]
                series = [([{row["step"]: row[f"eval/{o}/{k}"] for row in _eval_rows(r.records)
                             if f"eval/{o}/{k}" in row} for r in runs], None, style,
                           f"{label}, {k.replace('_', ' ')}")
                          for k, style in (("win_rate", "-"), ("loss_rate", "--"))]
            else:
                series = [([{row["step"]: row["train/loss"] for row in _train_rows(r.records)}
                            for r in runs], None, "-", label)]
            for curves, xs, style, lab in series:
                xs = xs or [{s: s for s in c} for c in curves]
                if len(runs) > 1:
                    for c, x in zip(curves, xs):
                        ax.plot([x[s] for s in c], list(c.values()), style, color=color, lw=0.6, alpha=0.35)
                steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
                ax.plot([float(np.mean([x[s] for x in xs])) for s in steps],
                        [float(np.mean([c[s] for c in curves])) for s in steps],
                        style, color=color, lw=1.8, label=lab)
    for ax, panel in zip(axes[0], panels):
        if panel.startswith("lines"):
            ax.set(xlabel="iteration" if panel == "lines_iter" else
                   "wall seconds (compilation and evaluations included)",
                   ylabel="losing lines vs every reply (first + second)")
            ax.set_yscale("symlog", linthresh=1)  # hundreds at first, zero when solved
        elif panel.startswith("opp:"):
            ax.set(xlabel="iteration", ylabel=f"rate vs {panel[4:]}", ylim=(-0.02, 1.02))
        else:
            ax.set(xlabel="iteration", ylabel="training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_outputs(out: str, results: Sequence[RunResult], *, arms: Sequence[Arm] = (),
                  meta: dict | None = None) -> dict:
    """Writes `comparison.md`, `comparison.json` and `comparison.png` under `out`.

    Returns:
        `{"md": path, "json": path, "png": path, "table": markdown}`.
    """
    summary = summarize(results)
    text = table(summary, arms)
    md = os.path.join(out, "comparison.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    js = comparison.write_json(os.path.join(out, "comparison.json"), {
        "meta": meta or {},
        "arms": {a.name: dict(a.overrides) for a in arms},
        "runs": [{"arm": r.arm, "seed": r.seed, "workdir": r.workdir, **run_metrics(r)} for r in results],
        "summary": summary})
    png = plot(results, os.path.join(out, "comparison.png"))
    return {"md": md, "json": js, "png": png, "table": text}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="an AlphaZero config, path.py[:variant]")
    parser.add_argument("--arm", action="append", default=None,
                        help="NAME[:field=value,...], repeatable (default: " + " ".join(DEFAULT_ARMS) + ")")
    parser.add_argument("--set", default="", help="field=value,... applied to every arm")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: the config's)")
    parser.add_argument("--iterations", type=int, default=None, help="train.num_iterations of every run")
    parser.add_argument("--eval_every", type=int, default=None, help="eval.every of every run")
    parser.add_argument("--out", default="runs/compare_alphazero")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace run directories left in --out by an earlier comparison")
    parser.add_argument("--malloc", default="keep", choices=("keep", "default"),
                        help="keep freed heap memory (as experiments/train.py does by default)")
    args = parser.parse_args(argv)
    arms = tuple(parse_arm(a) for a in (args.arm or DEFAULT_ARMS))
    common = parse_overrides(args.set, what=f"--set={args.set!r}")
    seeds = comparison.parse_seeds(args.seeds)
    kwargs = dict(config=args.config, arms=arms, seeds=seeds, common=common,
                  iterations=args.iterations, eval_every=args.eval_every)
    plan(**kwargs)  # bad input fails here, before anything runs
    from symbiosis_jax.training import allocator

    allocator.apply(args.malloc)
    meta = {"argv": list(sys.argv if argv is None else ["compare_alphazero.py", *argv]),
            "config": args.config, "common": dict(common), "seeds": list(seeds) if seeds else None,
            "iterations": args.iterations, "eval_every": args.eval_every, "malloc": args.malloc,
            "started": comparison.provenance()}
    results = run_all(out=args.out, overwrite=args.overwrite, **kwargs,
                      on_run=lambda rs: write_outputs(args.out, rs, arms=arms, meta=meta))
    meta["finished"] = comparison.provenance()
    paths = write_outputs(args.out, results, arms=arms, meta=meta)
    print(paths["table"])
    print(f"plot: {paths['png']}; numbers: {paths['json']}")
    return results


if __name__ == "__main__":
    main()
