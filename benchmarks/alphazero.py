"""AlphaZero loop speed: self-play positions/s, training steps/s, time to strength.

Self-play is timed twice in the same run, with our search (`symbiosis_jax.mcts`)
and with mctx (the anchor) behind the same network, game and move selection, so
the ratio means something on a shared machine, and a third time with our search
reusing the played move's subtree (`search.reuse_tree`, a tree of twice the
simulations), which mctx does not offer. Training steps/s times the jitted
update scan alone. Time to strength trains the tic-tac-toe config from scratch
and reports the first evaluation at which the agent loses no line against every
reply of the opponent (wall and process CPU seconds, compile and evaluation
included).

    python benchmarks/alphazero.py                 # connect four and tic-tac-toe speed
    python benchmarks/alphazero.py --quick         # small batches
    python benchmarks/alphazero.py --strength      # also the tic-tac-toe time to strength (minutes)

It runs on JAX's default backend (the GPU when jax has one; there is no `--device` flag) and
records that device's kind under `"device"` in the printed results.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax import mcts  # noqa: E402
from symbiosis_jax.loops import alphazero  # noqa: E402
from symbiosis_jax.loops import replay as replay_lib  # noqa: E402
from symbiosis_jax.loops.alphazero_search import SearchResult  # noqa: E402
from symbiosis_jax.training import load_config  # noqa: E402


def _mctx_search_fn(cfg, env, apply_fn):
    """The anchor: mctx's Gumbel MuZero policy on the same inputs as our search."""
    import mctx

    from symbiosis_jax.mcts import mctx_compat

    game = mcts.pgx_env(env.id)
    evaluate_fn = mcts.make_network_evaluator(game, apply_fn)
    recurrent_fn = mctx_compat.mctx_recurrent_fn(game, evaluate_fn)

    def search_fn(key, params, state):
        root, invalid = mctx_compat.mctx_root(game, evaluate_fn, params, key, state)
        out = mctx.gumbel_muzero_policy(
            params, key, root, recurrent_fn, num_simulations=cfg.num_simulations,
            invalid_actions=invalid, max_num_considered_actions=cfg.max_num_considered_actions,
        )
        summary = out.search_tree.summary()
        return SearchResult(
            action=out.action.astype(jnp.int32), policy=out.action_weights,
            visit_counts=summary.visit_counts.astype(jnp.int32), root_value=summary.value,
        )

    return search_fn


def _time(fn, *args, repeats):
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def selfplay_speed(config, *, repeats: int) -> dict:
    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    apply_fn = functools.partial(alphazero.apply_fn, graphdef)
    # Ours again with subtree reuse (mctx has none), the tree twice the simulations.
    reuse = ml_collections.ConfigDict(config.to_dict())
    reuse.search.reuse_tree = True
    reuse.search.num_nodes = 2 * config.search.num_simulations + 1
    out = {}
    for name, cfg, search_fn in (
        ("ours", config, alphazero.make_search_fn(config.search, env, apply_fn)),
        ("mctx", config, _mctx_search_fn(config.search, env, apply_fn)),
        ("ours_reuse", reuse, alphazero.make_search_fn(reuse.search, env, apply_fn)),
    ):
        play = jax.jit(
            lambda k, p, s=search_fn, c=cfg: alphazero.selfplay(k, p, graphdef=graphdef, env=env, search_fn=s, config=c)
        )
        _, valid, _ = play(jax.random.PRNGKey(0), ts.params)
        positions = int(valid.sum())
        seconds = _time(play, jax.random.PRNGKey(0), ts.params, repeats=repeats)
        out[f"selfplay_positions_per_s_{name}"] = positions / seconds
    out["selfplay_ratio_ours_over_mctx"] = out["selfplay_positions_per_s_ours"] / out["selfplay_positions_per_s_mctx"]
    out["selfplay_ratio_reuse_over_ours"] = (
        out["selfplay_positions_per_s_ours_reuse"] / out["selfplay_positions_per_s_ours"]
    )
    return out


def train_speed(config, *, repeats: int) -> dict:
    """Training steps/s of the update scan (replay sampling, loss, gradient, optimizer)."""
    from symbiosis_jax.losses.alphazero import alphazero_loss

    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    optimizer = alphazero.make_optimizer(config)
    num_actions = env.num_actions
    # Fill the buffer with random positions so sampling reads real memory.
    n = config.replay.capacity
    k = jax.random.PRNGKey(1)
    fake = alphazero.Sample(
        observation=jax.random.bernoulli(k, 0.3, (n, *env.observation_shape)).astype(jnp.float32),
        legal_action_mask=jnp.ones((n, num_actions), bool),
        target_policy=jnp.full((n, num_actions), 1.0 / num_actions),
        target_value=jnp.zeros((n,)),
    )
    buffer = replay_lib.replay_add(ts.replay, fake, jnp.ones((n,), bool))

    def updates(params, opt_state, key):
        def body(carry, i):
            params, opt_state = carry
            batch = replay_lib.replay_sample(jax.random.fold_in(key, i), buffer, batch_size=config.train.batch_size)

            def loss_fn(p):
                logits, value = alphazero.apply_fn(graphdef, p, batch.observation)
                return alphazero_loss(logits, value, batch.target_policy, batch.target_value, batch.legal_action_mask)[0]

            grads = jax.grad(loss_fn)(params)
            upd, opt_state = optimizer.update(grads, opt_state, params)
            return (jax.tree.map(jnp.add, params, upd), opt_state), None

        return jax.lax.scan(body, (params, opt_state), jnp.arange(config.train.updates_per_iteration))[0]

    seconds = _time(jax.jit(updates), ts.params, ts.opt_state, jax.random.PRNGKey(2), repeats=repeats)
    return {"train_steps_per_s": config.train.updates_per_iteration / seconds,
            "train_samples_per_s": config.train.updates_per_iteration * config.train.batch_size / seconds}


def time_to_strength(workdir: str) -> dict:
    config = load_config(os.path.join(_REPO, "configs", "alphazero_tictactoe.py"))
    config.eval.every = 10
    config.eval.opponents = ("minimax",)
    config.logging.progress_bar = False
    config.logging.log_every = 10
    from symbiosis_jax.training import read_jsonl, remove_run_outputs

    remove_run_outputs(workdir)  # the benchmark's own run: each timing starts from scratch
    alphazero.train(config, workdir=workdir)

    for row in read_jsonl(os.path.join(workdir, "metrics.jsonl")):
        if row.get("eval/every_reply/losses_first") == 0 and row.get("eval/every_reply/losses_second") == 0:
            return {"tictactoe_perfect_at_iteration": row["step"], "tictactoe_perfect_wall_s": row["wall_seconds"],
                    "tictactoe_perfect_cpu_s": row["cpu_seconds"]}
    return {"tictactoe_perfect_at_iteration": None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small batches: self-play batch 32, 8 updates per iteration, "
                             "replay capacity 4096")
    parser.add_argument("--strength", action="store_true", help="also train tic-tac-toe to perfect play")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls of each self-play and training function after the "
                             "compiling one; the median is reported")
    parser.add_argument("--workdir", default=None,
                        help="run directory of the --strength training, whose earlier outputs are "
                             "removed first (only with --strength; default "
                             "runs/bench_alphazero_tictactoe)")
    args = parser.parse_args()
    if args.workdir is not None and not args.strength:
        parser.error("--workdir is only used with --strength (the tic-tac-toe training run)")
    results = {"device": str(jax.devices()[0].device_kind), "num_devices": jax.device_count()}
    for name in ("alphazero_tictactoe", "alphazero_connect4"):
        config = load_config(os.path.join(_REPO, "configs", f"{name}.py"))
        if args.quick:
            config.selfplay.batch_size = 32
            config.train.updates_per_iteration = 8
            config.replay.capacity = 4096
        row = {"selfplay_batch": config.selfplay.batch_size, "num_simulations": config.search.num_simulations,
               "train_batch": config.train.batch_size}
        row.update(selfplay_speed(config, repeats=args.repeats))
        row.update(train_speed(config, repeats=args.repeats))
        results[name] = row
        print(name, json.dumps(row), flush=True)
    if args.strength:
        results["strength"] = time_to_strength(args.workdir or "runs/bench_alphazero_tictactoe")
        print("strength", json.dumps(results["strength"]), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
