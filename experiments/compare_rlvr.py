"""GRPO vs DAPO vs GSPO vs Dr. GRPO on the same task, seed and budget: a table and a plot.

Run:
    python experiments/compare_rlvr.py                          # default budget (see --help)
    python experiments/compare_rlvr.py --steps=300 --out=runs/compare_rlvr

Each variant runs `configs/<loss>_arithmetic.py` with the same seed, SFT warm-up, number of RL
steps and prompts per step, in its own workdir under --out. Afterwards it writes
`<out>/comparison.md` (final and best held-out pass@1, pass@k, entropy, wall time) and
`<out>/comparison.png` (held-out pass@1 and entropy against the RL step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

LOSSES = ("grpo", "dapo", "gspo", "dr_grpo")


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_all(*, out: str, steps: int, sft_steps: int | None, losses=LOSSES, variant=None,
            overrides: dict | None = None) -> dict:
    """Runs each loss's config with a shared budget; returns `{loss: (records, seconds)}`."""
    from symbiosis_jax.training import driver

    results = {}
    for loss in losses:
        spec = os.path.join(_REPO, f"configs/{loss}_arithmetic.py")
        if variant:
            spec += f":{variant}"
        config = driver.load_config(spec, **(overrides or {}))
        config.rl.num_steps = steps
        config.optimizer.total_steps = steps
        if sft_steps is not None:
            config.sft.num_steps = sft_steps
        config.checkpoint.every = max(steps, 1)
        workdir = os.path.join(out, loss)
        t0 = time.time()
        driver.run(config, workdir=workdir, verbose=False)
        results[loss] = (_records(workdir), time.time() - t0)
    return results


def table(results: dict) -> str:
    """Markdown table of final/best held-out metrics per loss."""
    lines = ["| loss | held-out pass@1 at step 0 | final pass@1 | best pass@1 | final pass@k "
             "| final entropy | final KL to ref | wall time (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for loss, (records, seconds) in results.items():
        ev = [r for r in records if "eval/pass@1" in r and r["step"] >= 0]
        tr = [r for r in records if "entropy" in r]
        k_key = next((k for k in ev[-1] if k.startswith("eval/pass@") and k[10:].isdigit()
                      and k != "eval/pass@1"), None)
        lines.append(
            f"| {loss} | {ev[0]['eval/pass@1']:.1%} | {ev[-1]['eval/pass@1']:.1%} | "
            f"{max(r['eval/pass@1'] for r in ev):.1%} | "
            f"{(f'{ev[-1][k_key]:.1%} (k={k_key[10:]})') if k_key else 'n/a'} | "
            f"{tr[-1]['entropy']:.3f} | {tr[-1].get('kl', float('nan')):.3f} | {seconds:.0f} |")
    return "\n".join(lines)


def plot(results: dict, path: str) -> str:
    """Held-out pass@1 and entropy against the RL step, one line per loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for loss, (records, _) in results.items():
        ev = [r for r in records if "eval/pass@1" in r and r["step"] >= 0]
        tr = [r for r in records if "entropy" in r]
        axes[0].plot([r["step"] for r in ev], [r["eval/pass@1"] for r in ev], "o-", ms=3,
                     label=loss)
        axes[1].plot([r["step"] for r in tr], [r["entropy"] for r in tr], label=loss)
    axes[0].set(xlabel="RL step", ylabel="held-out pass@1 (greedy)", ylim=(-0.02, 1.02))
    axes[1].set(xlabel="RL step", ylabel="policy entropy (nats/token)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/compare_rlvr")
    parser.add_argument("--steps", type=int, default=200, help="RL steps per loss")
    parser.add_argument("--sft_steps", type=int, default=None, help="default: the config's")
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--variant", default=None, help="config variant, e.g. smoke")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    results = run_all(out=args.out, steps=args.steps, sft_steps=args.sft_steps,
                      losses=tuple(args.losses.split(",")), variant=args.variant)
    text = table(results)
    with open(os.path.join(args.out, "comparison.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    png = plot(results, os.path.join(args.out, "comparison.png"))
    print(text)
    print(f"plot: {png}")
    return results


if __name__ == "__main__":
    main()
