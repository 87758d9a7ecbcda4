r"""How much of its targets an AlphaZero run's value predicts, read from the replay buffer.

    python experiments/value_diagnostic.py --workdir=runs/alphazero_othello \
        [--steps=latest|all|80,211] [--holdout=0.2] [--phases=24,44] [--fit_steps=0]

A flat value loss can hide learning: with ``selfplay.value_target_root_weight > 0`` the target
``(1 - w) z + w q`` grows in variance as the search's root value ``q`` grows confident. For each
checkpoint this restores the replay buffer (the newest ``replay.capacity`` positions) and scores
the evaluated network (the moving average when the run keeps one) on the newest ``--holdout``
fraction of it: the targets' variance, the value's squared error, the explained variance
``1 - error / variance`` overall, by game phase (pieces on the board: the sum of the first two
observation planes, cut at ``--phases``), and against the outcome alone (the target's sign).
With ``--fit_steps=N`` a fresh network of the run's config is also fitted for N steps (AdamW,
batch 512) to the oldest positions and scored the same way: is the run's value behind what its
network can learn from these games? One JSON line per checkpoint goes to
``WORKDIR/value_diagnostic.jsonl``.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def define_flags() -> None:
    """The command-line flags (defined when run as a script, so that importing it defines none)."""
    flags.DEFINE_string("workdir", None, "the run's output directory", required=True)
    flags.DEFINE_string("steps", "latest", "'latest', 'all' or comma-separated iterations")
    flags.DEFINE_float("holdout", 0.2, "newest fraction of the buffer that is scored, in (0, 1)")
    flags.DEFINE_string("phases", "24,44", "increasing piece counts that split the game into phases")
    flags.DEFINE_integer("fit_steps", 0, "steps of a fresh network fitted to the oldest positions (0: none)")


def explained(pred, target) -> float:
    """``1 - mean((pred - target)^2) / var(target)``; NaN for fewer than two positions or constant targets."""
    import numpy as np

    if target.size < 2 or np.var(target) == 0:
        return float("nan")
    return float(1.0 - np.mean((pred - target) ** 2) / np.var(target))


def score(pred, target, pieces, cuts) -> dict:
    """Explained variance of ``pred`` overall, per phase and against the outcome ``sign(target)``."""
    import numpy as np

    out = {"target_variance": float(np.var(target)), "squared_error": float(np.mean((pred - target) ** 2)),
           "explained": explained(pred, target), "explained_outcome": explained(pred, np.sign(target))}
    edges = [0, *cuts, np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (pieces >= lo) & (pieces < hi)
        out[f"explained_pieces_{lo}_{hi if np.isfinite(hi) else 'end'}"] = explained(pred[m], target[m])
    return out


def buffer_in_order(replay):
    """``(observation, target_value)`` of a replay buffer as numpy arrays, oldest position first."""
    import numpy as np

    size, capacity = int(replay.size), replay.data.target_value.shape[0]
    order = np.arange(size)
    if size == capacity:  # full: the oldest position is where the next one goes
        order = np.roll(order, -int(replay.insert_pos))
    return np.asarray(replay.data.observation)[order], np.asarray(replay.data.target_value)[order]


def _fit(config, env, obs, target, steps, seed):
    """A fresh network of ``config`` fitted to ``(obs, target)`` by squared error: ``(graphdef, params)``."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from symbiosis_jax.loops import alphazero

    graphdef, params = nnx.split(alphazero.make_model(config, env), nnx.Param)
    opt = optax.adamw(optax.cosine_decay_schedule(1e-3, steps, 0.1), weight_decay=1e-4)

    @jax.jit
    def update(params, opt_state, x, y):
        def loss(p):
            return jnp.mean(jnp.square(nnx.merge(graphdef, p)(x)[1] - y))

        grads = jax.grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    rng, opt_state = np.random.default_rng(seed), opt.init(params)
    for _ in range(steps):
        rows = rng.integers(0, len(obs), 512)
        params, opt_state = update(params, opt_state, jnp.asarray(obs[rows]), jnp.asarray(target[rows]))
    return graphdef, params


def _values(graphdef, params, obs, batch=8192):
    """The network's values of ``obs``, in batches of ``batch``."""
    import jax
    import numpy as np

    from symbiosis_jax.loops import alphazero

    fn = jax.jit(lambda p, x: alphazero.apply_fn(graphdef, p, x)[1])
    return np.concatenate([np.asarray(fn(params, obs[i:i + batch])) for i in range(0, len(obs), batch)])


def main(argv):
    del argv
    f = flags.FLAGS
    holdout, fit_steps, phases, steps_flag = f.holdout, f.fit_steps, f.phases, f.steps
    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    from symbiosis_jax.loops import alphazero
    from symbiosis_jax.training.checkpoint import CHECKPOINT_DIR, Checkpointer

    if not 0.0 < holdout < 1.0:
        raise app.UsageError(f"--holdout={holdout} must be in (0, 1)")
    try:
        cuts = [int(c) for c in phases.split(",")] if phases else []
    except ValueError:
        raise app.UsageError(f"--phases={phases!r} must be comma-separated integers (e.g. 24,44)") from None
    if cuts != sorted(set(cuts)) or any(c <= 0 for c in cuts):
        raise app.UsageError(f"--phases={phases!r} must be increasing positive integers")
    if fit_steps < 0:
        raise app.UsageError(f"--fit_steps={fit_steps} must be >= 0")
    workdir = f.workdir
    try:
        requested = alphazero.parse_steps(steps_flag)
        config, available = alphazero.run_checkpoints(workdir)
        steps = alphazero.select_steps(requested, available)
    except ValueError as e:
        raise app.UsageError(str(e)) from None

    env = alphazero.make_env(config)
    graphdef, target_state = alphazero.abstract_train_state(config, env)
    for step in steps:
        with Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), max_to_keep=None) as ckpt:
            ts, _ = ckpt.restore(step, target=target_state)
        obs, target = buffer_in_order(ts.replay)
        split = int(round(len(obs) * (1.0 - holdout)))
        if split < 1 or len(obs) - split < 2:
            raise app.UsageError(f"iteration {step}: {len(obs)} positions in the buffer are too few to split "
                                 f"with --holdout={holdout}")
        pieces = obs.reshape(len(obs), -1, obs.shape[-1])[..., :2].sum((1, 2))
        new = slice(split, None)
        row = {"step": step, "positions": len(obs), "scored": len(obs) - split,
               "network": score(_values(graphdef, ts.ema_params, obs[new]), target[new], pieces[new], cuts)}
        if fit_steps:
            fit_def, fit_params = _fit(config, env, obs[:split], target[:split], fit_steps, seed=step)
            row["fresh_fit"] = score(_values(fit_def, fit_params, obs[new]), target[new], pieces[new], cuts)
            row["fresh_fit_on_its_data"] = explained(_values(fit_def, fit_params, obs[:split]), target[:split])
        with open(os.path.join(workdir, "value_diagnostic.jsonl"), "a") as out:
            out.write(json.dumps(row) + "\n")
        net = row["network"]
        by_phase = ", ".join(f"{k[len('explained_pieces_'):]}: {v:.0%}" for k, v in net.items()
                             if k.startswith("explained_pieces_"))
        print(f"iteration {step}: targets' variance {net['target_variance']:.3f}, squared error "
              f"{net['squared_error']:.3f}, explained {net['explained']:.0%} (pieces {by_phase}), "
              f"outcome alone {net['explained_outcome']:.0%}"
              + (f"; fresh fit {row['fresh_fit']['explained']:.0%}" if fit_steps else ""))


if __name__ == "__main__":
    define_flags()
    app.run(main)
