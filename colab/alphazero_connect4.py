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
# # AlphaZero on connect four
#
# A policy-value ResNet and our batched Gumbel tree search improve each other from
# random play (Silver et al., arXiv:1712.01815). This notebook trains from
# `configs/alphazero_connect4.py`, plots strength against training iterations and
# shows a game. Set `SIZE = "full"` for the real run (about an hour on a CPU,
# minutes on a GPU); `"smoke"` runs in seconds.

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

from symbiosis_jax.loops import alphazero, arena
from symbiosis_jax.loops.alphazero_search import pure_mcts_agent
from symbiosis_jax.training import load_config, read_jsonl, run

SIZE = os.environ.get("SYMBIOSIS_NOTEBOOK_SIZE", "smoke")  # "smoke" | "full"
WORKDIR = os.environ.get("SYMBIOSIS_WORKDIR", "runs/colab_alphazero_connect4")
print(jax.devices())

# %% [markdown]
# ## Train
# The smoke size keeps the config's shapes tiny but evaluates after every iteration,
# so the plot below has points.

# %%
spec = os.path.join(REPO, "configs", "alphazero_connect4.py") + (":smoke" if SIZE == "smoke" else "")
overrides = {"logging.use_tensorboard": False}
if SIZE == "smoke":
    overrides.update({"train.num_iterations": 2, "eval.every": 1, "eval.num_games": 8, "eval.opponents": ("random",)})
config = load_config(spec, **overrides)
result = run(config, workdir=WORKDIR, overwrite=True, verbose=False)  # a rerun starts again
print({k: round(v, 3) for k, v in result.items() if k.startswith("eval/") and k.endswith("win_rate")})

# %% [markdown]
# ## Strength against training iterations

# %%
rows = [r for r in read_jsonl(os.path.join(WORKDIR, "metrics.jsonl")) if "eval/random/win_rate" in r]
fig, ax = plt.subplots(figsize=(5, 3))
for opponent in config.eval.opponents:
    key = f"eval/{opponent}/win_rate"
    ax.plot([r["step"] for r in rows], [r[key] for r in rows if key in r], marker="o", label=f"vs {opponent}")
ax.set_xlabel("iteration")
ax.set_ylabel("win rate (both sides)")
ax.set_ylim(-0.05, 1.05)
ax.legend()
plt.show()

# %% [markdown]
# ## A game: the trained agent (X) against pure MCTS (O)

# %%
env, graphdef, params = alphazero.load_network(config, WORKDIR)
agent = alphazero.search_agent(config, env, graphdef)
baseline = pure_mcts_agent(env, num_simulations=config.eval.baseline_num_simulations)
states, actions, rewards = arena.record_game(jax.random.PRNGKey(0), env, agent, baseline, params_first=params)
for t in (0, len(states) // 2, len(states) - 1):
    print(f"after {t} moves:\n{arena.render_board('connect_four', states[t])}\n")
print("moves:", actions, "result for the agent:", rewards[0])
