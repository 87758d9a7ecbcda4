# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # GRPO on arithmetic: an R1-Zero-like climb in miniature
#
# A tiny Llama-style model first imitates a few demonstrations (a short SFT warm-up that
# leaves it mostly wrong), then learns from a verifier's 0/1 reward alone with GRPO
# (Shao et al., arXiv:2402.03300): for each prompt it samples a group of answers, the
# verifier checks them, and answers better than their group's average become more likely.
# The task is 2-digit addition with the answer's digits written least-significant first.
# Set `SIZE = "full"` for the real run (minutes on a CPU); `"smoke"` runs in seconds.

# %%
# Colab: clone the repository next to the notebook first; this installs it (skipped
# when the package is already importable).
import importlib.util
import os
import subprocess
import sys

REPO = os.environ.get("SYMBIOSIS_REPO", "symbiosis_jax" if os.path.isdir("symbiosis_jax/configs") else ".")
if importlib.util.find_spec("symbiosis_jax") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", REPO], check=True)

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np

from symbiosis_jax import tasks
from symbiosis_jax.training import load_config, read_jsonl, run

SIZE = os.environ.get("SYMBIOSIS_NOTEBOOK_SIZE", "smoke")  # "smoke" | "full"
WORKDIR = os.environ.get("SYMBIOSIS_WORKDIR", "runs/colab_grpo_arithmetic")
print(jax.devices())

# %% [markdown]
# ## The task and its verifier
# The verifier accepts any string and returns a reward in [0, 1] and a pass flag.

# %%
task = tasks.ArithmeticTask(num_digits=2, min_digits=2, reverse_answer=True)
problem = task.sample(np.random.default_rng(0), 1)[0]
for completion in (problem.answer, problem.answer[::-1], "garbage", ""):
    print(f"{problem.prompt!r} -> {completion!r}: {task.verify(problem, completion)}")

# %% [markdown]
# ## Train: SFT warm-up, then GRPO
# `run` is what `python experiments/train.py --config=configs/grpo_arithmetic.py` calls.

# %%
spec = os.path.join(REPO, "configs", "grpo_arithmetic.py") + (":smoke" if SIZE == "smoke" else "")
overrides = {"log.tensorboard": False, "log.progress_bar": SIZE != "smoke"}
if SIZE == "smoke":
    overrides.update({"rl.num_steps": 2, "optimizer.total_steps": 2})
config = load_config(spec, **overrides)
result = run(config, workdir=WORKDIR, overwrite=True, verbose=False)  # a rerun starts again
print(f"held-out pass@1: {result['before/pass@1']:.1%} after SFT -> {result['after/pass@1']:.1%} after RL")

# %% [markdown]
# ## Curves
# Held-out greedy pass@1 and the policy's entropy against the RL step (from `metrics.jsonl`).

# %%
rows = [r for r in read_jsonl(os.path.join(WORKDIR, "metrics.jsonl")) if r["step"] >= 0]
evals = [r for r in rows if "eval/pass@1" in r]
train_rows = [r for r in rows if "entropy" in r]
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot([r["step"] for r in evals], [r["eval/pass@1"] for r in evals], "o-")
axes[0].set(xlabel="RL step", ylabel="held-out pass@1", ylim=(-0.02, 1.02))
axes[1].plot([r["step"] for r in train_rows], [r["entropy"] for r in train_rows])
axes[1].set(xlabel="RL step", ylabel="entropy (nats/token)")
fig.tight_layout()

# %% [markdown]
# ## Where the time goes
# Seconds per phase of the last step: sampling (compiled KV-cache sampler), verification
# (host Python) and the update (one jitted, sharded step).

# %%
last = train_rows[-1]
phases = {k: round(last[k], 4) for k in ("time/sample", "time/verify", "time/update")}
print(phases)
