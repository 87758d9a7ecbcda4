"""AlphaZero on tic-tac-toe: from random play to perfect play in minutes on a CPU.

Run:
    python experiments/train.py --config=configs/alphazero_tictactoe.py
    python experiments/train.py --config=configs/alphazero_tictactoe.py:smoke   # one iteration, seconds

Expected: within 5 minutes on a 2-core CPU the agent (MLP network plus Gumbel search
with 32 simulations, deterministic) loses no line of play against every reply of
any opponent, moving first or second (``eval/every_reply/losses_first`` and
``losses_second`` are 0), hence never loses to the exact minimax player. See
docs/alphazero.md for the measured run.
"""

import ml_collections

from configs import alphazero_common, common
from symbiosis_jax.loops.alphazero import default_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    smoke = alphazero_common.is_smoke(arg)  # its smoke sizes are set field by field below
    config = default_config(game="tic_tac_toe")
    config.network.name = "mlp"
    config.network.mlp.hidden_sizes = (16,) if smoke else (128, 128)

    config.search.num_simulations = 4 if smoke else 32
    config.search.num_nodes = config.search.num_simulations + 1
    config.search.max_num_considered_actions = 9

    config.selfplay.batch_size = 16 if smoke else 256
    config.selfplay.random_move_prob = 0.1  # also learn to punish blunders
    config.replay.capacity = 256 if smoke else 20_000

    config.train.num_iterations = 1 if smoke else 200
    config.train.updates_per_iteration = 2 if smoke else 32
    config.train.batch_size = 16 if smoke else 256

    config.eval.every = 0 if smoke else 50  # 0: no evaluation
    config.eval.num_games = 8 if smoke else 64
    config.eval.opponents = ("random", "minimax")
    config.eval.every_reply = not smoke  # the agent against every line of replies

    config.optimizer = common.optimizer_config(
        learning_rate=1e-3, schedule="constant", total_steps=10_000, weight_decay=1e-4, max_grad_norm=1.0
    )
    config.mesh = common.mesh_config()
    config.logging = common.logging_config(log_every=1 if smoke else 10, checkpoint_every=1 if smoke else 50)
    config.logging.progress_bar = not smoke
    return config
