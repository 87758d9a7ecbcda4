"""AlphaZero on othello (8x8): a ResNet plus Gumbel search; sized for a GPU.

Run:
    python experiments/train.py --config=configs/alphazero_othello.py
    python experiments/train.py --config=configs/alphazero_othello.py:smoke   # one iteration, seconds

Not benchmarked to a target yet: the full run is meant for an accelerator; watch
``eval/mcts/win_rate`` against the pure-MCTS baseline.
"""

import ml_collections

from configs import alphazero_common, common
from symbiosis_jax.loops.alphazero import default_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    smoke = alphazero_common.is_smoke(arg)
    config = default_config(game="othello")
    config.network = ml_collections.ConfigDict(
        dict(name="resnet", num_channels=128, num_blocks=6)
    )
    config.search.num_simulations = 64
    config.search.num_nodes = config.search.num_simulations + 1
    config.search.max_num_considered_actions = 16

    config.selfplay.batch_size = 512
    config.selfplay.max_num_steps = 80  # smoke games finish too: only finished games train
    config.replay.capacity = 500_000

    config.train.num_iterations = 1000
    config.train.updates_per_iteration = 64
    config.train.batch_size = 1024

    config.eval.every = 50
    config.eval.num_games = 64
    config.eval.opponents = ("random", "mcts")
    config.eval.baseline_num_simulations = 400

    config.optimizer = common.optimizer_config(
        learning_rate=1e-3, schedule="cosine", warmup_steps=500, total_steps=64_000, weight_decay=1e-4
    )
    config.mesh = common.mesh_config()
    config.logging = common.logging_config(log_every=10, checkpoint_every=50)
    config.logging.progress_bar = True
    return alphazero_common.shrink_for_smoke(config) if smoke else config
