"""AlphaZero self-play loop on pgx board games (Silver et al., arXiv:1712.01815).

One *iteration* is one jitted function: a batch of ``B`` games is played from the
start to the end by the network plus tree search (``lax.scan`` over ``T`` moves),
the positions go into an on-device replay buffer, and ``K`` minibatch updates of
the AlphaZero loss follow (a second ``lax.scan``). Self-play games and training
minibatches are sharded over the mesh axes of the logical ``batch`` axis (``data`` x
``fsdp`` of ``config.mesh``, by ``with_sharding_constraint``); the train state
(parameters, optimizer state, replay buffer) is replicated, and the jitted
iteration declares that as its in/out sharding.

Self-play itself (move selection with a temperature schedule, epsilon-random
moves, resignation, value targets) is in ``alphazero_selfplay``; the config schema
and its validation in ``alphazero_config``; the search wrapper and the pure-MCTS
baseline in ``alphazero_search``.

``train(config, *, workdir, resume=False)`` is the driver called by
``experiments/train.py``; the pieces (``validate_config``, ``make_env``,
``init_train_state``, ``make_iteration_fn``, ``search_agent``) are importable so
tests, notebooks and benchmarks use them directly.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from symbiosis_jax.loops import replay as replay_lib
from symbiosis_jax.loops.alphazero_config import (MAX_NUM_STEPS, check_divisible, default_config, network_kwargs,
                                                  validate_config)
from symbiosis_jax.loops.alphazero_search import GAMES, make_search_fn, pure_mcts_agent, validate_search_config
from symbiosis_jax.loops.alphazero_selfplay import Sample, selfplay
from symbiosis_jax.mcts.env import pgx_trace_context

__all__ = [
    "GAMES",
    "MAX_NUM_STEPS",
    "Sample",
    "TrainState",
    "abstract_train_state",
    "apply_fn",
    "cached_iteration_fn",
    "default_config",
    "evaluation_line",
    "game_context",
    "init_train_state",
    "load_network",
    "make_env",
    "make_evaluator",
    "make_iteration_fn",
    "make_model",
    "make_optimizer",
    "make_search_fn",
    "search_agent",
    "selfplay",
    "train",
    "validate_config",
    "write_strength_plot",
]

Params = Any


@flax.struct.dataclass
class TrainState:
    """Everything an iteration reads and writes; checkpointed whole for exact resume.

    Attributes:
        params: network parameters (an ``nnx.State``), the ones trained and used in self-play.
        ema_params: exponential moving average of ``params`` over iterations
            (``config.train.ema_decay``; equal to ``params`` when the decay is 0); the
            evaluated agent plays with these.
        opt_state: optax state.
        replay: the replay buffer of ``Sample``s.
        iteration: ``[]`` int32, number of completed iterations.
    """

    params: Params
    ema_params: Params
    opt_state: Any
    replay: replay_lib.ReplayBuffer
    iteration: jax.Array


# ----------------------------------------------------------------------------- pieces


def make_env(config: ml_collections.ConfigDict):
    """The pgx environment of ``config.game``."""
    import pgx

    return pgx.make(config.game)


def make_model(config: ml_collections.ConfigDict, env) -> nnx.Module:
    """The policy-value network of ``config.network`` for ``env``, initialised from ``config.seed``."""
    from symbiosis_jax.networks import make_network

    kwargs = network_kwargs(config.network)
    obs_shape = env.observation_shape
    return make_network(
        config.network.name, obs_shape=obs_shape, num_actions=env.num_actions, seed=config.seed, **kwargs
    )


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The optimizer of ``config.optimizer`` (``symbiosis_jax.training.make_optimizer``).

    Args:
        config: the experiment config; only its ``optimizer`` section is read (validated by
            ``symbiosis_jax.training.validate_optimizer_config``).

    Returns:
        AdamW with the learning-rate schedule and optional global-norm clipping.
    """
    from symbiosis_jax.training import make_optimizer as _make

    return _make(config.optimizer)


def _init_fn(config: ml_collections.ConfigDict, env) -> Callable[[], tuple[Any, TrainState]]:
    """``init() -> (graphdef, train_state)``: network, optimizer state, empty replay buffer."""
    optimizer = make_optimizer(config)

    def init():
        graphdef, params = nnx.split(make_model(config, env))
        example = Sample(
            observation=jnp.zeros(env.observation_shape, jnp.float32),
            legal_action_mask=jnp.zeros((env.num_actions,), bool),
            target_policy=jnp.zeros((env.num_actions,), jnp.float32),
            target_value=jnp.zeros((), jnp.float32),
        )
        buffer = replay_lib.replay_init(example, capacity=config.replay.capacity)
        state = TrainState(params=params, ema_params=params, opt_state=optimizer.init(params), replay=buffer,
                           iteration=jnp.int32(0))
        return graphdef, state

    return init


def abstract_train_state(config: ml_collections.ConfigDict, env) -> tuple[Any, TrainState]:
    """``(graphdef, train_state)`` with ``jax.ShapeDtypeStruct`` leaves: nothing is allocated.

    A restore target (``load_network``) that does not build a replay buffer first.
    """
    return jax.eval_shape(_init_fn(config, env))


def init_train_state(config: ml_collections.ConfigDict, env, *, sharding=None) -> tuple[Any, TrainState]:
    """Initial network, optimizer state and empty replay buffer, built by one compiled call.

    Args:
        config: the experiment config.
        env: pgx environment.
        sharding: where the state lives (e.g. replicated over the mesh); default device.

    Returns:
        ``(graphdef, train_state)``.
    """
    init = _init_fn(config, env)
    graphdef, _ = jax.eval_shape(init)  # graph definitions are static
    ts = jax.jit(lambda: init()[1], out_shardings=sharding)()
    return graphdef, ts


def apply_fn(graphdef, params, obs):
    """Network forward pass as a pure function: ``obs [B, ...] -> (logits [B, A], value [B])``."""
    return nnx.merge(graphdef, params)(obs)


_ITERATION_CACHE: dict = {}


def _iteration_key(config, mesh) -> str:
    """What the compiled iteration depends on (not the run length, logging or evaluation)."""
    parts = {k: config[k].to_dict() if hasattr(config[k], "to_dict") else config[k]
             for k in ("game", "seed", "network", "search", "selfplay", "replay", "optimizer")}
    parts["train"] = {k: v for k, v in config.train.to_dict().items() if k != "num_iterations"}
    return repr((sorted(parts.items()), mesh.shape_tuple, tuple(d.id for d in mesh.devices.flat)))


def cached_iteration_fn(config, env, graphdef, mesh):
    """``make_iteration_fn``, reused across ``train`` calls with the same settings (one compile)."""
    key = _iteration_key(config, mesh)
    if key not in _ITERATION_CACHE:
        _ITERATION_CACHE[key] = make_iteration_fn(config, env, graphdef, mesh)
    return _ITERATION_CACHE[key]


def make_iteration_fn(config, env, graphdef, mesh) -> Callable[[jax.Array, TrainState], tuple[TrainState, dict]]:
    """Builds the jitted iteration: self-play, replay insertion, ``K`` updates.

    Args:
        config: the experiment config.
        env: pgx environment (``make_env(config)``).
        graphdef: the network's graph definition (from ``init_train_state``).
        mesh: device mesh; games and minibatches are split over its ``data`` x ``fsdp``
            axes, the train state is replicated on it. A state given elsewhere (e.g. on
            one device) is placed on the mesh first, so every call runs one compiled
            iteration.

    Returns:
        ``iteration_fn(key, train_state) -> (train_state, metrics)``; the key of the
        iteration is ``fold_in(key, train_state.iteration)``.
    """
    from symbiosis_jax import parallel
    from symbiosis_jax.games import symmetry
    from symbiosis_jax.losses.alphazero import alphazero_loss

    optimizer = make_optimizer(config)
    search_fn = make_search_fn(config.search, env, functools.partial(apply_fn, graphdef))
    # Games and minibatches on the mesh axes of the logical "batch" axis; parameters,
    # optimizer state and replay buffer replicated.
    data = parallel.batch_sharding(mesh)
    replicated = parallel.replicated(mesh)
    cfg = config.train

    def loss_fn(params, batch: Sample):
        logits, value = apply_fn(graphdef, params, batch.observation)
        return alphazero_loss(
            logits,
            value,
            batch.target_policy,
            batch.target_value,
            batch.legal_action_mask,
            policy_coef=cfg.policy_coef,
            value_coef=cfg.value_coef,
        )

    def update(carry, k):
        params, opt_state, buffer, base_key = carry
        sample_key = jax.random.fold_in(base_key, k)
        symmetry_key = jax.random.fold_in(sample_key, 1)
        batch = replay_lib.replay_sample(sample_key, buffer, batch_size=cfg.batch_size)
        if cfg.get("augment_symmetries", False):
            obs, policy, mask = symmetry.random_symmetry(
                symmetry_key, config.game, batch.observation, batch.target_policy, batch.legal_action_mask)
            batch = batch.replace(observation=obs, target_policy=policy, legal_action_mask=mask)
        batch = jax.lax.with_sharding_constraint(batch, jax.tree.map(lambda _: data, batch))
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        return (params, opt_state, buffer, base_key), metrics

    def iteration(key, ts: TrainState):
        it_key = jax.random.fold_in(key, ts.iteration)
        play_key, train_key = jax.random.split(it_key)
        samples, valid, stats = selfplay(
            play_key, ts.params, graphdef=graphdef, env=env, search_fn=_sharded(search_fn, data), config=config
        )
        flat = jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), samples)
        buffer = replay_lib.replay_add(ts.replay, flat, valid.reshape(-1))
        (params, opt_state, buffer, _), metrics = jax.lax.scan(
            update, (ts.params, ts.opt_state, buffer, train_key), jnp.arange(cfg.updates_per_iteration)
        )
        metrics = {f"train/{k}": jnp.mean(v) for k, v in metrics.items()}
        metrics.update(stats)
        metrics["replay/size"] = buffer.size
        decay = cfg.get("ema_decay", 0.0)
        if decay > 0:
            ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ts.ema_params, params)
        else:
            ema = params
        new = TrainState(params=params, ema_params=ema, opt_state=opt_state, replay=buffer,
                         iteration=ts.iteration + 1)
        return new, metrics

    jitted = jax.jit(iteration, in_shardings=(replicated, replicated),
                     out_shardings=(replicated, replicated), donate_argnums=(1,))

    def iteration_fn(key, ts):
        # jit traces again when an input's sharding changes: a state on one device would
        # come back on the mesh and compile a second iteration. Placed here, it compiles
        # once (already placed, device_put returns the same arrays: donation still applies).
        ts = jax.device_put(ts, replicated)
        with game_context(config.game):
            return jitted(key, ts)

    return iteration_fn


# ``game_context(game)``: the context for tracing code that steps ``game``; it allows implicit
# rank promotion for the pgx games that rely on it, and only them.
game_context = pgx_trace_context


def _sharded(search_fn, data_sharding):
    """Wraps a search so that its batched inputs are laid out over the data axes."""

    def fn(key, params, state, tree=None):
        state, tree = jax.lax.with_sharding_constraint(
            (state, tree), jax.tree.map(lambda _: data_sharding, (state, tree))
        )
        return search_fn(key, params, state, tree)

    return fn


# ----------------------------------------------------------------------------- agents


def search_agent(config, env, graphdef, *, num_simulations: int | None = None, add_noise: bool = False):
    """The network plus search as an arena agent ``agent_fn(params, key, state)``.

    Without noise the agent is deterministic: Gumbel search with zero Gumbel scale
    plays its final choice (the most visited action, ties broken by the improved
    policy); PUCT plays the most visited action.

    Args:
        config: the experiment config (its ``search`` section).
        env: pgx environment.
        graphdef: the network's NNX graph definition.
        num_simulations: overrides ``config.search.num_simulations`` (and grows the tree).
        add_noise: keep the root noise of self-play (Gumbel or Dirichlet).

    Returns:
        ``agent_fn(params, key, state) -> action [B]``.
    """
    search_cfg = ml_collections.ConfigDict(config.search.to_dict())
    if num_simulations is not None:
        search_cfg.num_simulations = num_simulations
        search_cfg.num_nodes = max(search_cfg.num_nodes, num_simulations + 1)
    validate_search_config(search_cfg)
    search_fn = make_search_fn(search_cfg, env, functools.partial(apply_fn, graphdef), add_noise=add_noise)

    def agent_fn(params, key, state):
        return search_fn(key, params, state).action

    return agent_fn


def make_evaluator(config, env, graphdef) -> Callable[[jax.Array, Params], dict[str, float]]:
    """Builds ``evaluate(key, params) -> metrics``: the agent against ``config.eval.opponents``.

    Agents are built once, so repeated evaluations reuse the compiled arenas.

    Args:
        config: the experiment config: its ``eval`` section (``opponents``, ``num_games``,
            ``num_simulations``, ``baseline_num_simulations``, ``every_reply``), ``search``
            (the evaluated agent's search, without root noise), ``selfplay.max_num_steps``
            (the game-length cap) and ``game``.
        env: pgx environment the games are played in.
        graphdef: the network's NNX graph definition; ``params`` passed to ``evaluate`` are
            its state.

    Returns:
        ``evaluate(key, params) -> metrics``, with ``eval/<opponent>/<stat>`` entries (see
        ``arena``'s ``summary``) and, with ``eval.every_reply``, ``eval/every_reply/...``.
    """
    from symbiosis_jax.loops import arena

    agent = search_agent(config, env, graphdef, num_simulations=config.eval.get("num_simulations", 0) or None)
    opponents = {}
    for opponent in config.eval.opponents:
        if opponent == "random":
            opponents[opponent] = arena.random_agent()
        elif opponent == "network":
            opponents[opponent] = arena.network_agent(functools.partial(apply_fn, graphdef))
        elif opponent == "minimax":
            opponents[opponent] = arena.minimax_agent()
        else:
            opponents[opponent] = pure_mcts_agent(env, num_simulations=config.eval.baseline_num_simulations)

    def evaluate(key, params) -> dict[str, float]:
        with game_context(config.game):
            return _evaluate(key, params)

    def _evaluate(key, params) -> dict[str, float]:
        metrics = {}
        for i, (name, other) in enumerate(opponents.items()):
            result = arena.play(
                jax.random.fold_in(key, i),
                env,
                agent,
                other,
                num_games=config.eval.num_games,
                max_num_steps=config.selfplay.max_num_steps,
                params_a=params,
                params_b=params if name == "network" else None,
            )
            for k, v in result.summary().items():
                metrics[f"eval/{name}/{k}"] = v
        if config.eval.every_reply:
            every = arena.tic_tac_toe_every_reply(agent, params)
            metrics["eval/every_reply/losses_first"] = int(every.losses[0])
            metrics["eval/every_reply/losses_second"] = int(every.losses[1])
            metrics["eval/every_reply/lines"] = int(np.sum(every.wins + every.draws + every.losses))
        return metrics

    return evaluate


# ----------------------------------------------------------------------------- driver


# What may differ between a run and its --resume: run length, evaluation and logging.
_RESUME_MAY_CHANGE = ("train.num_iterations", "train.time_limit_s", "eval.", "logging.")


# The driver runs it before it touches the workdir: a batch the data axes do not divide
# fails before --overwrite deletes an earlier run.
check_mesh = check_divisible


def train(config: ml_collections.ConfigDict, *, workdir: str, resume: bool = False) -> dict:
    """Runs AlphaZero training from ``config``; logs JSONL/TensorBoard and checkpoints in ``workdir``.

    Args:
        config: see ``configs/alphazero_*.py``.
        workdir: output directory (metrics.jsonl, TensorBoard events, checkpoints/).
        resume: continue from the latest checkpoint in ``workdir``; the result is
            bit-identical to an uninterrupted run.

    Returns:
        Final metrics (last iteration's training and evaluation metrics, plus
        ``iteration`` and ``wall_seconds``).
    """
    validate_config(config)
    from symbiosis_jax.parallel import make_mesh
    from symbiosis_jax.training import MetricsWriter, ProgressBar, check_resume_config, run_checkpointer

    mesh = make_mesh(config.mesh)
    check_divisible(config, mesh)
    os.makedirs(workdir, exist_ok=True)
    ckpt, latest = run_checkpointer(workdir, resume=resume, max_to_keep=config.logging.max_to_keep)
    if latest is not None:
        check_resume_config(config, ckpt.read_metadata(latest).get("config"), ckpt.directory,
                            may_change=_RESUME_MAY_CHANGE, defaults=default_config(game=config.game))
    env = make_env(config)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    graphdef, ts = init_train_state(config, env, sharding=replicated)
    if latest is not None:
        ts, _ = ckpt.restore(latest, target=ts)
    key = jax.random.PRNGKey(config.seed)
    eval_key = jax.random.PRNGKey(config.seed + 1)
    iteration_fn = cached_iteration_fn(config, env, graphdef, mesh)
    evaluate = make_evaluator(config, env, graphdef)
    # Resumed: rows logged after the checkpoint are dropped (they are logged again).
    writer = MetricsWriter(workdir, use_tensorboard=config.logging.use_tensorboard,
                           append=latest is not None, drop_after=latest)
    start = int(ts.iteration)
    total = config.train.num_iterations
    time_limit = config.train.get("time_limit_s", 0)
    # Under a time limit the iteration count is usually set out of reach (the one-hour
    # configs say 100,000): the bar then counts iterations without a total, so no false ETA.
    bar = ProgressBar(None if time_limit else total, keys=("train/loss", "selfplay/game_length"), initial=start,
                      enabled=config.logging.progress_bar, desc="alphazero")
    if latest is not None:
        bar.write(f"[alphazero] resumed from {ckpt.directory} at iteration {start}")
    if time_limit and start < total:
        bar.write(f"[alphazero] training stops after {time_limit / 60:.3g} minutes (train.time_limit_s) or at "
                  f"iteration {total}, whichever comes first, with a last "
                  + ("evaluation and checkpoint" if config.eval.every else "checkpoint"))
    if start < total:
        bar.write("[alphazero] the first iteration compiles self-play and the update "
                  "(seconds for tic-tac-toe, minutes for go 9x9)")
    t0, c0 = time.time(), time.process_time()
    metrics: dict = {}
    last_eval: dict = {}
    try:
        for it in range(start, total):
            ts, m = iteration_fn(key, ts)
            step = it + 1
            if it == start:
                jax.block_until_ready(ts)
                bar.write(f"[alphazero] iteration {step} (with its compilation) took {time.time() - t0:.1f}s")
            # A time limit ends the run early, after a full last step (log, eval, checkpoint).
            last = step == total or (time_limit > 0 and time.time() - t0 >= time_limit)
            if step % config.logging.log_every == 0 or last:
                metrics = {k: float(v) for k, v in jax.device_get(m).items()}
                metrics["wall_seconds"] = time.time() - t0
                metrics["cpu_seconds"] = time.process_time() - c0
                if config.eval.every and (step % config.eval.every == 0 or last):
                    last_eval = evaluate(jax.random.fold_in(eval_key, step), ts.ema_params)
                    metrics.update(last_eval)
                    bar.write(f"[alphazero] iteration {step}: {evaluation_line(last_eval)}")
                writer.write(step, metrics)
            elif config.eval.every and step % config.eval.every == 0:
                # Timed like a logged row (before the evaluation): the strength plot's x axis.
                clock = {"wall_seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0}
                last_eval = evaluate(jax.random.fold_in(eval_key, step), ts.ema_params)
                writer.write(step, {**last_eval, **clock})
                bar.write(f"[alphazero] iteration {step}: {evaluation_line(last_eval)}")
            if step % config.logging.checkpoint_every == 0 or last:
                ckpt.save(step, ts, {"iteration": step, "config": config.to_dict()})
            bar.update(1, metrics)
            if last:
                break
    finally:
        bar.close()
        writer.close()
        ckpt.close()
    out = dict(metrics)
    out.update(last_eval)
    out["plot"] = write_strength_plot(os.path.join(workdir, "metrics.jsonl"), os.path.join(workdir, "strength.png"))
    out["iteration"] = int(ts.iteration)
    out["wall_seconds"] = time.time() - t0
    out["cpu_seconds"] = time.process_time() - c0
    bar.write(f"[alphazero] done: iteration {out['iteration']} of {total} in {out['wall_seconds']:.1f}s"
              + (f"; last evaluation: {evaluation_line(last_eval)}" if last_eval else "")
              + f"; plot: {out['plot']}")
    return out


def evaluation_line(metrics: dict[str, float]) -> str:
    """One line of an evaluation's results, e.g. ``vs mcts: win 62% (first 70%, second 55%), loss 30%``.

    Args:
        metrics: ``make_evaluator``'s ``eval/<opponent>/<stat>`` entries (others are ignored).

    Returns:
        The opponents in order, ``; ``-separated, then the every-reply check's losing lines.
    """
    parts = []
    opponents = dict.fromkeys(k.split("/")[1] for k in metrics
                              if k.startswith("eval/") and k.endswith("/win_rate"))
    for name in opponents:
        m = {k.split("/", 2)[2]: v for k, v in metrics.items() if k.startswith(f"eval/{name}/")}
        parts.append(f"vs {name}: win {m['win_rate']:.0%} (first {m['win_rate_first']:.0%}, "
                     f"second {m['win_rate_second']:.0%}), loss {m['loss_rate']:.0%}")
    if "eval/every_reply/lines" in metrics:
        parts.append(f"every reply: lost {metrics['eval/every_reply/losses_first']:.0f} lines "
                     f"as first and {metrics['eval/every_reply/losses_second']:.0f} as second, of "
                     f"{metrics['eval/every_reply/lines']:.0f}")
    return "; ".join(parts) or "(no opponents)"


def write_strength_plot(jsonl_path: str, out_png: str) -> str | None:
    """Win rates against each evaluated opponent (overall and by side) against wall minutes,
    and the training loss against iterations, from a run's ``metrics.jsonl``.

    Args:
        jsonl_path: the run's ``metrics.jsonl``; rows with ``train/loss`` give the loss
            curve, rows with ``eval/<opponent>/win_rate`` and ``wall_seconds`` the win rates.
        out_png: where the PNG is written (overwritten if it exists).

    Returns:
        ``out_png``, or None when the file has no training rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from symbiosis_jax.training.metrics import read_jsonl

    rows = read_jsonl(jsonl_path)
    train = [r for r in rows if "train/loss" in r]
    if not train:
        return None
    opponents = sorted({k.split("/")[1] for r in rows for k in r if k.startswith("eval/") and k.endswith("/win_rate")})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, name in enumerate(opponents):
        ev = [r for r in rows if f"eval/{name}/win_rate" in r and "wall_seconds" in r]
        minutes = [r["wall_seconds"] / 60 for r in ev]
        for suffix, style in (("", "o-"), ("_first", "^--"), ("_second", "v:")):
            key = f"eval/{name}/win_rate{suffix}"
            label = f"vs {name}" + {"": "", "_first": ", agent first", "_second": ", agent second"}[suffix]
            axes[0].plot(minutes, [r[key] for r in ev], style, color=f"C{i}", label=label)
    axes[0].axhline(0.9, color="gray", lw=0.8, ls="--")
    axes[0].set_xlabel("wall minutes")
    axes[0].set_ylabel("win rate")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].grid(alpha=0.3)
    if opponents:
        axes[0].legend(fontsize=7)
    axes[1].plot([r["step"] for r in train], [r["train/loss"] for r in train], label="loss")
    if "train/value_loss" in train[-1]:
        axes[1].plot([r["step"] for r in train], [r.get("train/value_loss") for r in train], label="value loss")
    axes[1].set_xlabel("iteration")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def load_network(config: ml_collections.ConfigDict, workdir: str, *, step: int | None = None):
    """Restores the network of a run from its checkpoints.

    Args:
        config: the run's config.
        workdir: the run's output directory.
        step: iteration to restore; the latest by default.

    Returns:
        ``(env, graphdef, params)``; ``params`` are the evaluated agent's (the moving
        average when ``config.train.ema_decay > 0``, else the trained parameters).
    """
    from symbiosis_jax.training.checkpoint import CHECKPOINT_DIR, Checkpointer

    env = make_env(config)
    graphdef, target = abstract_train_state(config, env)
    with Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), max_to_keep=None) as ckpt:
        ts, _ = ckpt.restore(step, target=target)
    return env, graphdef, ts.ema_params


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The ConfigDict a run saved in ``workdir/config.json`` (lists back to tuples)."""
    import json

    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: --workdir must be a run's output directory")

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        if isinstance(x, list):
            return tuple(tuples(v) for v in x)
        return x

    with open(path) as f:
        return ml_collections.ConfigDict(tuples(json.load(f)))


def run_checkpoints(workdir: str) -> tuple[ml_collections.ConfigDict, list[int]]:
    """``(config, checkpoint iterations)`` of an AlphaZero run's output directory.

    Raises:
        FileNotFoundError: no ``config.json`` in ``workdir``.
        ValueError: the run is not an AlphaZero run, or has no checkpoint.
    """
    from symbiosis_jax.training.checkpoint import CHECKPOINT_DIR, Checkpointer

    config = load_run_config(workdir)
    if config.get("loop") != "alphazero":
        raise ValueError(f"{workdir} holds a {config.get('loop')!r} run, not an AlphaZero one")
    with Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), max_to_keep=None) as ckpt:
        available = ckpt.all_steps()
    if not available:
        raise ValueError(f"no checkpoint under {os.path.join(workdir, CHECKPOINT_DIR)}")
    return config, available


def parse_steps(spec: str) -> str | list[int]:
    """A ``--steps`` value: ``"latest"``, ``"all"`` or comma-separated iterations (a list).

    Raises:
        ValueError: anything else, naming the flag and what it takes.
    """
    if spec in ("latest", "all"):
        return spec
    try:
        return [int(s) for s in spec.split(",")]
    except ValueError:
        raise ValueError(f"--steps={spec!r} must be 'latest', 'all' or comma-separated iterations "
                         "(e.g. 50,100)") from None


def select_steps(steps: str | list[int], available: list[int]) -> list[int]:
    """The checkpoints that ``parse_steps``'s result names among ``available`` (sorted iterations).

    Raises:
        ValueError: an iteration without a checkpoint.
    """
    if steps == "latest":
        return available[-1:]
    if steps == "all":
        return list(available)
    missing = sorted(set(steps) - set(available))
    if missing:
        raise ValueError(f"--steps: no checkpoint for {missing}; have {available}")
    return list(steps)
