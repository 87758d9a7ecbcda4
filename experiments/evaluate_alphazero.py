r"""Plays an AlphaZero run's checkpoints against a baseline, with confidence intervals.

    python experiments/evaluate_alphazero.py --workdir=runs/alphazero_connect4 \
        [--steps=latest|all|2000,2500] [--games=256] [--opponent=mcts] \
        [--baseline_simulations=1000] [--agent_simulations=0] [--seed=1000]
    # head to head: the checkpoints against another run's network, each with its own search,
    # from paired random openings (two searches without noise would replay one game per side)
    python experiments/evaluate_alphazero.py --workdir=runs/a --opponent=run \
        --opponent_workdir=runs/b [--opponent_step=latest] --opening_moves=4

The run's config is read from ``WORKDIR/config.json`` (written by ``experiments/train.py``).
Each checkpoint plays ``--games`` games against the opponent, half moving first, with a
fresh seed (different from the in-run evaluations, so choosing a checkpoint by its in-run
result and confirming it here is not biased by that choice). Printed per checkpoint: wins,
draws and losses by side, and win rates with 95% Wilson intervals; one JSON line each goes
to ``WORKDIR/evaluate.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from absl import app, flags, logging

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

_WORKDIR = flags.DEFINE_string("workdir", None, "the run's output directory", required=True)
_STEPS = flags.DEFINE_string("steps", "latest", "'latest', 'all' or comma-separated iterations")
_GAMES = flags.DEFINE_integer("games", 256, "games per checkpoint (even; half moving first)")
_OPPONENT = flags.DEFINE_enum("opponent", "mcts", ["mcts", "random", "minimax", "run"],
                              "the baseline; 'run': another run's network plus its search (--opponent_workdir)")
_OPP_WORKDIR = flags.DEFINE_string("opponent_workdir", None, "--opponent=run: the other run's output directory")
_OPP_STEP = flags.DEFINE_string("opponent_step", "latest", "--opponent=run: its checkpoint, 'latest' or an iteration")
_BASELINE_SIMS = flags.DEFINE_integer("baseline_simulations", 1000, "pure-MCTS simulations")
_AGENT_SIMS = flags.DEFINE_integer("agent_simulations", 0, "agent's simulations (0 = as in the run's eval); "
                                   "with --opponent=run the opponent's too")
_SEED = flags.DEFINE_integer("seed", 1000, "arena seed")
_OPENING = flags.DEFINE_integer("opening_moves", 0, "plies played at random before the agents move, the same "
                                "opening for both seatings of a pair of games (needed with --opponent=run)")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion ``successes / n``."""
    if n <= 0:
        raise ValueError(f"n={n} must be positive")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _alphazero_run(workdir: str):
    """``(config, checkpoint steps)`` of an AlphaZero run's output directory (a usage error if not one)."""
    from symbiosis_jax.loops.alphazero import run_checkpoints

    try:
        return run_checkpoints(workdir)
    except ValueError as e:
        raise app.UsageError(str(e)) from None


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    import jax

    from symbiosis_jax.loops import alphazero, arena
    from symbiosis_jax.loops.alphazero_search import pure_mcts_agent

    if _GAMES.value <= 0 or _GAMES.value % 2:
        raise app.UsageError(f"--games={_GAMES.value} must be a positive even number")
    if _BASELINE_SIMS.value < 1:
        raise app.UsageError(f"--baseline_simulations={_BASELINE_SIMS.value} must be >= 1")
    if _AGENT_SIMS.value < 0:
        raise app.UsageError(f"--agent_simulations={_AGENT_SIMS.value} must be >= 0 (0 = as in the run's eval)")
    try:
        requested = alphazero.parse_steps(_STEPS.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if (_OPPONENT.value == "run") != (_OPP_WORKDIR.value is not None):
        raise app.UsageError("--opponent_workdir goes with --opponent=run, and --opponent=run needs it")
    if _OPENING.value < 0:
        raise app.UsageError(f"--opening_moves={_OPENING.value} must be >= 0")
    if _OPPONENT.value == "run" and _OPENING.value == 0:
        raise app.UsageError("--opponent=run needs --opening_moves > 0 (e.g. 4): two searches without noise "
                             "would play the same game in every pairing")
    if _OPP_STEP.value != "latest" and not _OPP_STEP.value.isdigit():
        raise app.UsageError(f"--opponent_step={_OPP_STEP.value!r} must be 'latest' or an iteration")
    workdir = _WORKDIR.value
    config, available = _alphazero_run(workdir)
    try:
        steps = alphazero.select_steps(requested, available)
    except ValueError as e:
        raise app.UsageError(str(e)) from None

    env = alphazero.make_env(config)

    def eval_sims(cfg):
        return _AGENT_SIMS.value or cfg.eval.get("num_simulations", 0) or cfg.search.num_simulations

    sims = eval_sims(config)
    opp_params = None
    if _OPPONENT.value == "run":
        opp_config, opp_available = _alphazero_run(_OPP_WORKDIR.value)
        if opp_config.game != config.game:
            raise app.UsageError(f"--opponent_workdir plays {opp_config.game!r}, --workdir {config.game!r}")
        opp_step = opp_available[-1] if _OPP_STEP.value == "latest" else int(_OPP_STEP.value)
        if opp_step not in opp_available:
            raise app.UsageError(f"--opponent_step: no checkpoint {opp_step} in {_OPP_WORKDIR.value}; "
                                 f"have {opp_available}")
    with alphazero.game_context(config.game):
        graphdef, _ = alphazero.abstract_train_state(config, env)
        agent = alphazero.search_agent(config, env, graphdef, num_simulations=sims)
        if _OPPONENT.value == "mcts":
            opponent = pure_mcts_agent(env, num_simulations=_BASELINE_SIMS.value)
            name = f"pure MCTS with {_BASELINE_SIMS.value} simulations"
        elif _OPPONENT.value == "random":
            opponent, name = arena.random_agent(), "uniformly random moves"
        elif _OPPONENT.value == "run":
            _, opp_graphdef, opp_params = alphazero.load_network(opp_config, _OPP_WORKDIR.value, step=opp_step)
            opponent = alphazero.search_agent(opp_config, env, opp_graphdef, num_simulations=eval_sims(opp_config))
            name = (f"{_OPP_WORKDIR.value} at iteration {opp_step} (network + {eval_sims(opp_config)}-simulation "
                    f"{opp_config.search.algorithm} search)")
        else:
            if config.game != "tic_tac_toe":
                raise app.UsageError("--opponent=minimax exists only for tic-tac-toe")
            opponent, name = arena.minimax_agent(), "exact minimax"
        openings = f", {_OPENING.value} random opening plies" if _OPENING.value else ""
        print(f"{config.game}: agent (network + {sims}-simulation {config.search.algorithm} search) "
              f"vs {name}, {_GAMES.value} games per checkpoint{openings}, seed {_SEED.value}", flush=True)
        for step in steps:
            _, _, params = alphazero.load_network(config, workdir, step=step)
            t0 = time.time()
            r = arena.play(jax.random.PRNGKey(_SEED.value), env, agent, opponent, num_games=_GAMES.value,
                           max_num_steps=config.selfplay.max_num_steps, params_a=params, params_b=opp_params,
                           opening_moves=_OPENING.value)
            half = _GAMES.value // 2
            row = {"step": step, "games": _GAMES.value, "agent_simulations": sims, "opponent": _OPPONENT.value,
                   "baseline_simulations": _BASELINE_SIMS.value, "seed": _SEED.value,
                   "opening_moves": _OPENING.value,
                   **({"opponent_workdir": _OPP_WORKDIR.value, "opponent_step": opp_step} if opp_params is not None
                      else {}),
                   "wins": r.wins.tolist(), "draws": r.draws.tolist(), "losses": r.losses.tolist(),
                   "seconds": round(time.time() - t0, 1)}
            parts = []
            for side, i in (("first", 0), ("second", 1)):
                lo, hi = wilson_interval(int(r.wins[i]), half)
                row[f"win_rate_{side}"] = int(r.wins[i]) / half
                row[f"win_rate_{side}_95"] = [lo, hi]
                parts.append(f"{side} {int(r.wins[i])}/{int(r.draws[i])}/{int(r.losses[i])} "
                             f"(win {row[f'win_rate_{side}']:.1%}, 95% {lo:.0%}-{hi:.0%})")
            total = int(r.wins.sum())
            lo, hi = wilson_interval(total, _GAMES.value)
            row["win_rate"], row["win_rate_95"] = total / _GAMES.value, [lo, hi]
            print(f"iteration {step}: W/D/L " + ", ".join(parts)
                  + f"; overall win {row['win_rate']:.1%} (95% {lo:.0%}-{hi:.0%}), {row['seconds']} s", flush=True)
            with open(os.path.join(workdir, "evaluate.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    app.run(main)
