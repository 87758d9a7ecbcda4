"""Tree-search speed: symbiosis_jax.mcts vs mctx, side by side in one run.

Connect four from pgx, two small policy-value networks written here in plain
JAX (an MLP 2x128 and a conv net of two 3x3 conv layers with 32 channels), the
same network outputs and pgx step for both searches (mctx gets them through
`symbiosis_jax.mcts.mctx_compat`). For each network, batch size and number of
simulations it reports simulations per second (B * num_simulations / time of
one search), the ratio ours / mctx, and the compile time of each. Timed runs
of ours and mctx alternate, and the fastest of the repeats is reported (the run
least disturbed by other processes), because the machine may be shared; the
median is reported as well.

    python benchmarks/mcts.py            # full grid: batch 1,16,64,256 x sims 32,128 x mlp,conv
    python benchmarks/mcts.py --quick    # batch 1,64 x sims 32, mlp
    python benchmarks/mcts.py --variant gumbel   # Gumbel search vs gumbel_muzero_policy
    python benchmarks/mcts.py --shared   # also time the shared cost S (see `shared_cost_fn`)
    python benchmarks/mcts.py --walk-unroll 1,2,4   # ours with 1 (the row), 2 and 4 tree
                                         # levels per descent/backup loop iteration, interleaved
    python benchmarks/mcts.py --rows-read cond      # the state-row read in a conditional on
                                         # every platform (default: on the CPU only)
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

import jax
import jax.numpy as jnp
import mctx

from symbiosis_jax import mcts
from symbiosis_jax.mcts import mctx_compat
from symbiosis_jax.mcts import search as search_lib


def mlp_init(key, num_actions, width=128):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    scale = lambda k, shape: jax.random.normal(k, shape) / jnp.sqrt(shape[0])  # noqa: E731
    return {
        "w1": scale(k1, (84, width)), "b1": jnp.zeros(width),
        "w2": scale(k2, (width, width)), "b2": jnp.zeros(width),
        "wp": scale(k3, (width, num_actions)), "wv": scale(k4, (width, 1)),
    }


def mlp_apply(params, obs):
    x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
    x = jax.nn.relu(x @ params["w1"] + params["b1"][None])
    x = jax.nn.relu(x @ params["w2"] + params["b2"][None])
    return x @ params["wp"], jnp.tanh(x @ params["wv"])[:, 0]


def conv_init(key, num_actions, channels=32):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        # Kernels drawn flat (the same numbers): a rank-4 draw takes seconds to compile on the CPU.
        "c1": jax.random.normal(k1, (18 * channels,)).reshape(3, 3, 2, channels) / jnp.sqrt(18.0),
        "c2": (jax.random.normal(k2, (9 * channels * channels,)).reshape(3, 3, channels, channels)
               / jnp.sqrt(9.0 * channels)),
        "wp": jax.random.normal(k3, (6 * 7 * channels, num_actions)) / jnp.sqrt(42.0 * channels),
        "wv": jax.random.normal(k4, (6 * 7 * channels, 1)) / jnp.sqrt(42.0 * channels),
    }


def conv_apply(params, obs):
    x = obs.astype(jnp.float32)  # [B, 6, 7, 2]
    dims = ("NHWC", "HWIO", "NHWC")
    x = jax.nn.relu(jax.lax.conv_general_dilated(x, params["c1"], (1, 1), "SAME", dimension_numbers=dims))
    x = jax.nn.relu(jax.lax.conv_general_dilated(x, params["c2"], (1, 1), "SAME", dimension_numbers=dims))
    x = x.reshape(x.shape[0], -1)
    return x @ params["wp"], jnp.tanh(x @ params["wv"])[:, 0]


NETWORKS = {"mlp": (mlp_init, mlp_apply), "conv": (conv_init, conv_apply)}


def _positions(env, batch_size, key):
    """Start positions after 4 random legal moves."""
    states = jax.vmap(env.init)(jax.random.split(key, batch_size))

    def move(i, s):
        legal = jax.vmap(env.legal_action_mask)(s)
        a = jax.random.categorical(jax.random.fold_in(key, i), jnp.where(legal, 0.0, -jnp.inf))
        return jax.vmap(lambda st, ac: env.step(st, ac)[0])(s, a)

    return jax.jit(lambda s: jax.lax.fori_loop(0, 4, move, s))(states)


def _time(fn, args, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        out.append(time.perf_counter() - t)
    return out


def shared_cost_fn(env, evaluate_fn, num_simulations):
    """The part of a search that both sides run identically: S.

    One root evaluation, then per simulation one environment step of every
    game, its legal mask and terminal flag, and one evaluation, in a
    `fori_loop` of `num_simulations` steps (each step's action depends on the
    previous step's logits, so nothing is hoisted out of the loop). No tree is
    read or written. A search's own overhead is its time minus this.
    """

    def shared(params, key, states):
        def body(i, logits):
            legal = jax.vmap(env.legal_action_mask)(states)
            action = jnp.argmax(jnp.where(legal, logits, -jnp.inf), axis=-1)
            next_states, reward = jax.vmap(env.step)(states, action)
            new_logits, value = evaluate_fn(params, jax.random.fold_in(key, i), next_states)
            legal = jax.vmap(env.legal_action_mask)(next_states)
            terminal = jax.vmap(env.terminated)(next_states)
            value = jnp.where(terminal, 0.0, value) + reward.astype(jnp.float32)
            return mcts.mask_logits(new_logits, legal) + value[:, None]

        logits, _ = evaluate_fn(params, key, states)
        return jax.lax.fori_loop(0, num_simulations, body, logits)

    return jax.jit(shared)


def bench_one(env, net, batch_size, num_simulations, *, variant, repeats, shared=False, walk_unroll=(1,)):
    init_fn, apply_fn = NETWORKS[net]
    params = init_fn(jax.random.key(0), env.num_actions)
    evaluate_fn = mcts.make_network_evaluator(env, apply_fn)
    states = _positions(env, batch_size, jax.random.key(1))
    recurrent_fn = mctx_compat.mctx_recurrent_fn(env, evaluate_fn)
    if variant == "puct":
        ours_search = functools.partial(
            mcts.puct_search, env=env, evaluate_fn=evaluate_fn, num_simulations=num_simulations
        )
        theirs_search = functools.partial(
            mctx.muzero_policy, recurrent_fn=recurrent_fn, num_simulations=num_simulations
        )
    else:
        ours_search = functools.partial(
            mcts.gumbel_search, env=env, evaluate_fn=evaluate_fn, num_simulations=num_simulations
        )
        theirs_search = functools.partial(
            mctx.gumbel_muzero_policy, recurrent_fn=recurrent_fn, num_simulations=num_simulations
        )

    def ours_fn(unroll):
        @jax.jit
        def ours(params, key, states):
            return ours_search(params, key, states, walk_unroll=unroll).action

        return ours

    ours = ours_fn(walk_unroll[0])

    @jax.jit
    def theirs(params, key, states):
        # The root evaluation is part of the timed call, as it is in ours.
        root, invalid = mctx_compat.mctx_root(env, evaluate_fn, params, key, states)
        return theirs_search(params, key, root, invalid_actions=invalid).action

    args = (params, jax.random.key(2), states)
    result = {"net": net, "batch": batch_size, "sims": num_simulations, "variant": variant}
    fns = [("ours", ours), ("mctx", theirs)]
    fns += [(f"ours_u{k}", ours_fn(k)) for k in walk_unroll[1:]]
    if shared:
        fns.append(("shared", shared_cost_fn(env, evaluate_fn, num_simulations)))
    names = [name for name, _ in fns]
    for name, fn in fns:
        t = time.perf_counter()
        compiled = fn.lower(*args).compile()
        result[f"{name}_compile_s"] = time.perf_counter() - t
        result[f"_{name}"] = compiled
        _time(compiled, args, 1)  # warm-up
    times = {name: [] for name in names}
    for _ in range(repeats):  # interleaved: both see the same machine load
        for name in names:
            times[name] += _time(result[f"_{name}"], args, 1)
    for name in names:
        del result[f"_{name}"]
        result[f"{name}_sims_per_s"] = batch_size * num_simulations / min(times[name])
        result[f"{name}_median_sims_per_s"] = (
            batch_size * num_simulations / statistics.median(times[name])
        )
    result["ratio"] = result["ours_sims_per_s"] / result["mctx_sims_per_s"]
    result["median_ratio"] = result["ours_median_sims_per_s"] / result["mctx_median_sims_per_s"]
    for k in walk_unroll[1:]:
        result[f"ours_u{k}_ratio"] = result[f"ours_u{k}_sims_per_s"] / result["mctx_sims_per_s"]
    if shared:
        # Microseconds per simulation (of one game's batch step), fastest runs.
        per_sim = {name: 1e6 * min(times[name]) / num_simulations for name in names}
        result.update({f"{name}_us": per_sim[name] for name in names})
        # 1.5x mctx needs ours <= mctx / 1.5, i.e. a search overhead of at most this.
        result["overhead_budget_us"] = per_sim["mctx"] / 1.5 - per_sim["shared"]
        result["ours_overhead_us"] = per_sim["ours"] - per_sim["shared"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1,64 x sims 32, mlp only")
    parser.add_argument("--variant", choices=("puct", "gumbel"), default="puct",
                        help="puct: ours vs mctx.muzero_policy; gumbel: ours vs "
                             "mctx.gumbel_muzero_policy")
    parser.add_argument("--nets", default=None, help="comma list of mlp,conv")
    parser.add_argument("--batches", default=None, help="comma list, e.g. 1,16,64,256")
    parser.add_argument("--sims", default=None, help="comma list, e.g. 32,128")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per side and cell, ours and mctx alternating; the fastest "
                             "is reported, the median beside it (default: 3 with --quick, else 7)")
    parser.add_argument("--shared", action="store_true", help="also time the shared cost S")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--rows-read", choices=("auto", "cond", "plain"), default="auto",
                        help="symbiosis_jax.mcts.search.ROWS_READ for ours")
    parser.add_argument("--walk-unroll", default="1",
                        help="comma list of tree levels per descent/backup loop iteration: the first "
                             "is the row's 'ours', the others are timed alongside (ratio to mctx)")
    args = parser.parse_args()
    nets = ["mlp"] if args.quick else ["mlp", "conv"]
    batches = [1, 64] if args.quick else [1, 16, 64, 256]
    sims = [32] if args.quick else [32, 128]
    nets = args.nets.split(",") if args.nets else nets
    batches = [int(b) for b in args.batches.split(",")] if args.batches else batches
    sims = [int(s) for s in args.sims.split(",")] if args.sims else sims
    repeats = args.repeats or (3 if args.quick else 7)
    walk_unroll = tuple(dict.fromkeys(int(k) for k in args.walk_unroll.split(",")))  # in order, once each
    search_lib.ROWS_READ = args.rows_read

    env = mcts.pgx_env("connect_four")
    print(f"# {jax.devices()[0].device_kind}, jax {jax.__version__}, variant {args.variant}, "
          f"walk_unroll {walk_unroll[0]}, rows read {args.rows_read}")
    header = (
        "| net | batch | sims | ours sims/s | mctx sims/s | ratio | ratio of medians "
        "| ours compile s | mctx compile s |"
    )
    if args.shared:
        header += " ours us/sim | mctx us/sim | S us/sim | ours overhead us | 1.5x budget us |"
    header += "".join(f" ratio, walk_unroll {k} |" for k in walk_unroll[1:])
    print(header)
    print("|" + "---|" * ((14 if args.shared else 9) + len(walk_unroll) - 1))
    results = []
    for net in nets:
        for s in sims:
            for b in batches:
                r = bench_one(
                    env, net, b, s, variant=args.variant, repeats=repeats, shared=args.shared,
                    walk_unroll=walk_unroll,
                )
                results.append(r)
                row = (
                    f"| {net} | {b} | {s} | {r['ours_sims_per_s']:,.0f} | {r['mctx_sims_per_s']:,.0f} "
                    f"| {r['ratio']:.2f}x | {r['median_ratio']:.2f}x "
                    f"| {r['ours_compile_s']:.1f} | {r['mctx_compile_s']:.1f} |"
                )
                if args.shared:
                    row += (
                        f" {r['ours_us']:.1f} | {r['mctx_us']:.1f} | {r['shared_us']:.1f} "
                        f"| {r['ours_overhead_us']:.1f} | {r['overhead_budget_us']:.1f} |"
                    )
                row += "".join(f" {r[f'ours_u{k}_ratio']:.2f}x |" for k in walk_unroll[1:])
                print(row, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
