"""GRPO vs DAPO vs GSPO vs Dr. GRPO on the same task, seeds and budget: a table and a plot.

Run:
    python experiments/compare_rlvr.py                          # config's seed and steps (2,000)
    python experiments/compare_rlvr.py --seeds=0,1,2 --out=runs/compare_rlvr_seeds
    python experiments/compare_rlvr.py --steps=300 --out=runs/compare_rlvr

For each seed, each loss runs `configs/<loss>_arithmetic.py` with that seed and the same SFT
warm-up, number of RL steps and prompts per step, in `<out>/<loss>/seed<seed>/`. Seeds are the
outer loop, so the four losses of a seed share one SFT warm-start (the RLVR loop memoises the
last warm-start in-process; it is deterministic, so sharing changes nothing but time). `--steps=N`
sets both `rl.num_steps` and the cosine schedule's `optimizer.total_steps` to N and caps the
learning-rate warm-up at N // 10 steps (the configs' 20 steps are kept from N = 200 on; with
N < 10 there is no warm-up). After every finished run it prints one line and rewrites, from all
runs so far:

* `<out>/comparison.md`: per loss, held-out greedy pass@1 at step 0, final and best (mean, sample
  std, per-seed values), pass@1 after the same number of samples drawn, final pass@k, entropy and
  KL to the reference, samples drawn per step, median seconds per RL step and wall time;
* `<out>/comparison.json`: the same numbers, per run and per loss;
* `<out>/comparison.png`: held-out pass@1 and entropy against the RL step, the mean over seeds as
  a thick line per loss and each seed as a thin line.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
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

# The default set: the four-loss ablation. `--losses` takes any loss of the RLVR loop
# (`symbiosis_jax.loops.rlvr.LOSSES`); one without its own `configs/<loss>_arithmetic.py`
# runs `configs/grpo_arithmetic.py` with `rl.loss=<loss>`.
LOSSES = ("grpo", "dapo", "gspo", "dr_grpo")
# Per-run metrics summarised per loss (mean, std, min, max, per seed), in table order.
METRICS = ("start_pass@1", "final_pass@1", "best_pass@1", "pass@1_equal_samples",
           "final_pass@k", "final_entropy", "final_kl", "samples_per_step",
           "median_step_seconds", "wall_seconds")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One finished run of one loss with one seed.

    Attributes:
        loss: the loss name (one of `LOSSES`).
        seed: `config.seed` of the run.
        workdir: where the run wrote `metrics.jsonl`, checkpoints and `curves.png`.
        records: the run's `metrics.jsonl` rows (SFT rows at negative steps included).
        seconds: wall time of the run (SFT, compilation and evaluations included).
        samples_per_round: `rl.num_prompts * rl.group_size`, samples drawn per sampling round.
        num_steps: RL steps of the run.
    """

    loss: str
    seed: int
    workdir: str
    records: list
    seconds: float
    samples_per_round: int
    num_steps: int


parse_seeds = comparison.parse_seeds


def check_args(*, losses: Sequence[str], seeds: Sequence[int] | None, steps: int | None,
               sft_steps: int | None) -> None:
    """Raises `ValueError` naming the argument for bad input, before anything is built.

    Args:
        losses: loss names, each one of `LOSSES`, no repeats, at least one.
        seeds: None (the config's seed) or at least one distinct integer.
        steps: None (the config's RL steps) or an integer >= 1.
        sft_steps: None (the config's) or an integer >= 0.
    """
    from symbiosis_jax.loops.rlvr import LOSSES as known

    losses = tuple(losses)
    if not losses:
        raise ValueError(f"losses is empty; give one or more of {tuple(known)}.")
    for loss in losses:
        if loss not in known:
            raise ValueError(f"loss {loss!r} is not one of {tuple(known)}.")
    if len(set(losses)) != len(losses):
        raise ValueError(f"losses={losses} repeats a loss.")
    comparison.check_seeds(seeds)
    if steps is not None and (not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps={steps!r} must be an integer >= 1 (or None for the config's).")
    if sft_steps is not None and (not isinstance(sft_steps, (int, np.integer)) or sft_steps < 0):
        raise ValueError(f"sft_steps={sft_steps!r} must be an integer >= 0 (or None).")


def make_configs(*, losses: Sequence[str], seeds: Sequence[int] | None, steps: int | None,
                 sft_steps: int | None, variant: str | None = None,
                 overrides: dict | None = None) -> list:
    """Loads and validates every run's config; returns `[(seed, loss, config)]` in run order.

    Seeds are the outer loop so that the losses of one seed share the in-process SFT
    warm-start. `steps` sets `rl.num_steps` and `optimizer.total_steps` and caps
    `optimizer.warmup_steps` at `steps // 10`. Nothing is compiled here.

    Raises:
        ValueError: bad arguments (see `check_args`) or an invalid config.
    """
    check_args(losses=losses, seeds=seeds, steps=steps, sft_steps=sft_steps)
    from symbiosis_jax.loops import rlvr
    from symbiosis_jax.training import driver

    planned = []
    for loss in losses:
        spec = os.path.join(_REPO, f"configs/{loss}_arithmetic.py")
        loss_override = {}
        if not os.path.exists(spec):  # a loss without its own config: GRPO's settings
            spec, loss_override = os.path.join(_REPO, "configs/grpo_arithmetic.py"), {"rl.loss": loss}
        if variant:
            spec += f":{variant}"
        for seed in (seeds if seeds is not None else (None,)):
            config = driver.load_config(spec, **loss_override, **(overrides or {}))
            if seed is not None:
                config.seed = int(seed)
            if steps is not None:
                config.rl.num_steps = int(steps)
                config.optimizer.total_steps = int(steps)
                # The cosine schedule needs warmup_steps < total_steps; a tenth of the run at most
                # also keeps a short run from spending most of its steps warming up.
                config.optimizer.warmup_steps = min(int(config.optimizer.warmup_steps),
                                                    int(steps) // 10)
            if sft_steps is not None:
                config.sft.num_steps = int(sft_steps)
            config.checkpoint.every = max(int(config.rl.num_steps), 1)  # final checkpoint only
            config.log.progress_bar = False  # one line per finished run instead
            rlvr.validate_config(config)
            planned.append((int(config.seed), loss, config))
    order = {s: i for i, s in enumerate(dict.fromkeys(s for s, _, _ in planned))}
    planned.sort(key=lambda x: (order[x[0]], losses.index(x[1])))
    return planned


def run_all(*, out: str, losses: Sequence[str] = LOSSES, seeds: Sequence[int] | None = None,
            steps: int | None = None, sft_steps: int | None = None, variant: str | None = None,
            overrides: dict | None = None, overwrite: bool = False,
            on_run: Callable[[list], None] | None = None) -> list:
    """Runs every (seed, loss) with a shared budget.

    Args:
        out: output root; run `(loss, seed)` goes to `<out>/<loss>/seed<seed>/`.
        losses: loss names from `LOSSES`.
        seeds: seeds to run; None runs the config's own seed.
        steps: RL steps per run (the cosine schedule is stretched to match and its warm-up
            capped at `steps // 10`); None keeps the config's.
        sft_steps: cap on SFT steps; None keeps the config's.
        variant: config variant, e.g. `"smoke"`.
        overrides: dotted config field -> value, applied to every run.
        overwrite: delete run workdirs left by an earlier comparison in `out` (otherwise
            their presence is an error: orbax refuses to overwrite a checkpoint step).
        on_run: called with the list of finished `RunResult`s after each run.

    Returns:
        The `RunResult`s in run order (seed-major).

    Raises:
        ValueError: bad arguments or configs, or an existing run workdir without `overwrite`;
            raised before the first run starts.
    """
    losses = tuple(losses)
    planned = make_configs(losses=losses, seeds=seeds, steps=steps, sft_steps=sft_steps,
                           variant=variant, overrides=overrides)
    workdirs = [os.path.join(out, loss, f"seed{seed}") for seed, loss, _ in planned]
    comparison.prepare_run_dirs(out, workdirs, overwrite=overwrite)
    from symbiosis_jax.training import driver

    results: list = []
    t_start = time.time()
    for i, ((seed, loss, config), workdir) in enumerate(zip(planned, workdirs)):
        t0 = time.time()
        driver.run(config, workdir=workdir, verbose=False)
        result = RunResult(loss=loss, seed=seed, workdir=workdir, records=comparison.read_records(workdir),
                           seconds=time.time() - t0,
                           samples_per_round=int(config.rl.num_prompts * config.rl.group_size),
                           num_steps=int(config.rl.num_steps))
        results.append(result)
        m = run_metrics(result)
        print(f"[compare_rlvr] run {i + 1}/{len(planned)} seed={seed} loss={loss}: held-out "
              f"pass@1 {m['start_pass@1']:.1%} -> {m['final_pass@1']:.1%} (best "
              f"{m['best_pass@1']:.1%}), entropy {m['final_entropy']:.3f}, "
              f"{m['samples_per_step']:.0f} samples/step, {result.seconds:.0f} s "
              f"(total {(time.time() - t_start) / 60:.1f} min)", flush=True)
        if on_run is not None:
            on_run(results)
    return results


def _eval_rows(records: list) -> list:
    return [r for r in records if "eval/pass@1" in r and r["step"] >= 0]


def _train_rows(records: list) -> list:
    return [r for r in records if "entropy" in r and r["step"] >= 1]


def _pass_k_key(row: dict) -> str | None:
    return next((k for k in row if k.startswith("eval/pass@") and k[10:].isdigit()
                 and k != "eval/pass@1"), None)


def run_metrics(result: RunResult) -> dict:
    """The per-run numbers of the table, from the run's metric records.

    `pass@1_equal_samples` is held-out pass@1 at the last evaluation made before the run had
    drawn more than `num_steps * samples_per_round` samples (what a loss without DAPO's refills
    draws in the whole run), so a loss that draws more per step is also compared per sample.
    """
    ev, tr = _eval_rows(result.records), _train_rows(result.records)
    k_key = _pass_k_key(ev[-1])
    drawn = _samples_drawn(result)
    total = drawn[max(drawn)]
    budget = result.num_steps * result.samples_per_round
    within = [r for r in ev if drawn.get(r["step"], np.inf) <= budget]
    equal = within[-1] if within else ev[0]
    return {
        "start_pass@1": ev[0]["eval/pass@1"],
        "final_pass@1": ev[-1]["eval/pass@1"],
        "best_pass@1": max(r["eval/pass@1"] for r in ev),
        "best_step": max(ev, key=lambda r: r["eval/pass@1"])["step"],
        "pass@1_equal_samples": equal["eval/pass@1"],
        "equal_samples_step": equal["step"],
        "equal_samples_budget": budget,
        "final_pass@k": ev[-1][k_key] if k_key else float("nan"),
        "pass_k": int(k_key[10:]) if k_key else 0,
        "final_entropy": tr[-1]["entropy"] if tr else float("nan"),
        "final_kl": tr[-1].get("kl", float("nan")) if tr else float("nan"),
        "samples_per_step": total / len(tr) if tr else float("nan"),
        "median_step_seconds": (float(np.median([r["time/step"] for r in tr]))
                                if tr and "time/step" in tr[0] else float("nan")),
        "wall_seconds": result.seconds,
        "final_step": ev[-1]["step"],
    }


def summarize(results: Sequence[RunResult]) -> dict:
    """Per loss: `{metric: {"mean", "std" (sample std, 0 for one seed), "min", "max",
    "per_seed": {seed: value}}}` for every name in `METRICS`, plus `"seeds"`."""
    by_loss: dict = {}
    for r in results:
        by_loss.setdefault(r.loss, []).append(r)
    summary = {}
    for loss, runs in by_loss.items():
        per_run = [(r.seed, run_metrics(r)) for r in runs]
        entry: dict[str, Any] = {"seeds": [s for s, _ in per_run]}
        for name in METRICS:
            entry[name] = comparison.seed_stats([(s, m[name]) for s, m in per_run])
        entry["pass_k"] = per_run[0][1]["pass_k"]
        entry["equal_samples_budget"] = per_run[0][1]["equal_samples_budget"]
        summary[loss] = entry
    return summary


def _pct(stat: dict, *, spread: bool = True) -> str:
    """`"mean% ± std (min-max)"`, or the single value for one seed."""
    if len(stat["per_seed"]) == 1 or not spread:
        return f"{stat['mean']:.1%}"
    return (f"{stat['mean']:.1%} ± {100 * stat['std']:.1f} "
            f"({100 * stat['min']:.1f}-{100 * stat['max']:.1f})")


def _per_seed(stat: dict, fmt: str = "{:.1f}", scale: float = 100.0) -> str:
    return " / ".join(fmt.format(scale * v) for v in stat["per_seed"].values())


def table(summary: dict) -> str:
    """Markdown table of `summarize`'s numbers, one row per loss.

    Percentages are held-out greedy pass@1 (pass@k sampled); `±` is the sample std over seeds,
    `(a-b)` the range, and the per-seed column lists seeds in run order.
    """
    lines = ["| loss | seeds | pass@1 at step 0 | final pass@1 | final per seed | best pass@1 "
             "| best per seed | pass@1 at equal samples | final pass@k | final entropy "
             "| final KL to ref | samples drawn per step | median s/step | wall time (s) |",
             "| --- " * 14 + "|"]
    for loss, s in summary.items():
        k = s["pass_k"]
        lines.append(
            f"| {loss} | {','.join(str(x) for x in s['seeds'])} | {_pct(s['start_pass@1'])} "
            f"| {_pct(s['final_pass@1'])} | {_per_seed(s['final_pass@1'])} "
            f"| {_pct(s['best_pass@1'])} | {_per_seed(s['best_pass@1'])} "
            f"| {_pct(s['pass@1_equal_samples'])} "
            f"| {(_pct(s['final_pass@k'], spread=False) + f' (k={k})') if k else 'n/a'} "
            f"| {s['final_entropy']['mean']:.3f} | {s['final_kl']['mean']:.3f} "
            f"| {s['samples_per_step']['mean']:.0f} | {s['median_step_seconds']['mean']:.3f} "
            f"| {s['wall_seconds']['mean']:.0f} ({_per_seed(s['wall_seconds'], '{:.0f}', 1)}) |")
    budget = next(iter(summary.values()))["equal_samples_budget"] if summary else 0
    lines.append("")
    lines.append(f"Mean ± sample std (range) over seeds. 'At equal samples': the last evaluation "
                 f"before {budget:,} samples had been drawn (a run without refills). Entropy "
                 f"and KL: means over seeds at the last step. Wall time: mean (per seed); the "
                 f"first loss of each seed also pays for the shared SFT warm-start.")
    return "\n".join(lines)


def _samples_drawn(result: RunResult) -> dict:
    """`{step: samples drawn in steps 1..step}` (0 at step 0), from `sampling_rounds`."""
    drawn, total = {0: 0}, 0
    for r in _train_rows(result.records):
        total += int(r.get("sampling_rounds", 1)) * result.samples_per_round
        drawn[r["step"]] = total
    return drawn


def _window_means(points: dict, num_windows: int = 100) -> dict:
    """Means of `{step: value}` over consecutive windows of steps, keyed by each window's last
    step (per-step entropy is a noisy batch estimate)."""
    steps = sorted(points)
    width = max(1, len(steps) // num_windows)
    return {steps[min(i + width, len(steps)) - 1]:
            float(np.mean([points[s] for s in steps[i:i + width]]))
            for i in range(0, len(steps), width)}


def plot(results: Sequence[RunResult], path: str) -> str:
    """Held-out pass@1 against the RL step and against samples drawn, and entropy against the
    RL step: the mean over seeds as a thick line per loss, each seed as a thin line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    losses = list(dict.fromkeys(r.loss for r in results))
    width = 1
    for i, loss in enumerate(losses):
        color = f"C{i}"
        runs = [r for r in results if r.loss == loss]
        label = f"{loss} (mean of {len(runs)} seeds)" if len(runs) > 1 else loss
        evals = [{row["step"]: row["eval/pass@1"] for row in _eval_rows(r.records)}
                 for r in runs]
        entropy = [{row["step"]: row["entropy"] for row in _train_rows(r.records)}
                   for r in runs]
        width = max(1, max(len(e) for e in entropy) // 100)
        entropy = [_window_means(e) for e in entropy]
        drawn = [_samples_drawn(r) for r in runs]
        # x is the RL step, or (middle panel) the samples drawn by that step in that run.
        for ax, curves, x_maps in ((axes[0], evals, None), (axes[1], evals, drawn),
                                   (axes[2], entropy, None)):
            x_maps = x_maps or [{s: s for s in c} for c in curves]
            if len(runs) > 1:
                for c, x in zip(curves, x_maps):
                    ax.plot([x[s] for s in c], list(c.values()), color=color, lw=0.6,
                            alpha=0.35)
            steps = sorted(set.intersection(*(set(c) for c in curves)))
            ax.plot([float(np.mean([x[s] for x in x_maps])) for s in steps],
                    [float(np.mean([c[s] for c in curves])) for s in steps],
                    color=color, lw=1.8, label=label)
    axes[0].set(xlabel="RL step", ylabel="held-out pass@1 (greedy)", ylim=(-0.02, 1.02))
    axes[1].set(xlabel="samples drawn (incl. DAPO refills)", ylabel="held-out pass@1 (greedy)",
                ylim=(-0.02, 1.02))
    axes[2].set(xlabel="RL step", ylabel=f"entropy (nats/token, {width}-step means)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_outputs(out: str, results: Sequence[RunResult], *, meta: dict | None = None) -> dict:
    """Writes `comparison.md`, `comparison.json` and `comparison.png` under `out`.

    Returns:
        `{"md": path, "json": path, "png": path, "table": markdown}`.
    """
    summary = summarize(results)
    text = table(summary)
    md = os.path.join(out, "comparison.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    js = os.path.join(out, "comparison.json")
    payload = {"meta": meta or {},
               "runs": [{"loss": r.loss, "seed": r.seed, "workdir": r.workdir,
                         **run_metrics(r)} for r in results],
               "summary": summary}
    comparison.write_json(js, payload)
    png = plot(results, os.path.join(out, "comparison.png"))
    return {"md": md, "json": js, "png": png, "table": text}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/compare_rlvr",
                        help="each run goes to <out>/<loss>/seed<seed>/, the table and plot to "
                             "<out>/comparison.{md,json,png}")
    parser.add_argument("--steps", type=int, default=None,
                        help="RL steps per run (default: the configs' own, 2,000); also sets the "
                             "cosine schedule's total steps and caps its warm-up (20 steps in the "
                             "configs) at steps // 10")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, e.g. 0,1,2 (default: the config's seed)")
    parser.add_argument("--sft_steps", type=int, default=None,
                        help="cap on SFT warm-up steps (default: the config's)")
    parser.add_argument("--losses", default=",".join(LOSSES),
                        help="comma-separated losses of the RLVR loop (symbiosis_jax.loops.rlvr."
                             f"LOSSES; default: {','.join(LOSSES)})")
    parser.add_argument("--variant", default=None, help="config variant, e.g. smoke")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace run directories left in --out by an earlier comparison")
    parser.add_argument("--malloc", default="keep", choices=("keep", "default"),
                        help="keep freed heap memory (as experiments/train.py does by default)")
    args = parser.parse_args(argv)
    losses = tuple(x.strip() for x in args.losses.split(",") if x.strip())
    seeds = parse_seeds(args.seeds)
    # Bad input fails here, before anything runs or the process is changed.
    make_configs(losses=losses, seeds=seeds, steps=args.steps, sft_steps=args.sft_steps,
                 variant=args.variant)
    from symbiosis_jax.training import allocator

    allocator.apply(args.malloc)   # as experiments/train.py: no per-step page faults
    meta = {"argv": list(sys.argv if argv is None else ["compare_rlvr.py", *argv]),
            "losses": list(losses), "seeds": list(seeds) if seeds is not None else None,
            "steps": args.steps, "sft_steps": args.sft_steps, "variant": args.variant,
            "malloc": args.malloc, "started": comparison.provenance()}
    results = run_all(out=args.out, losses=losses, seeds=seeds, steps=args.steps,
                      sft_steps=args.sft_steps, variant=args.variant, overwrite=args.overwrite,
                      on_run=lambda rs: write_outputs(args.out, rs, meta=meta))
    meta["finished"] = comparison.provenance()
    paths = write_outputs(args.out, results, meta=meta)
    print(paths["table"])
    print(f"plot: {paths['png']}; numbers: {paths['json']}")
    return results


if __name__ == "__main__":
    main()
