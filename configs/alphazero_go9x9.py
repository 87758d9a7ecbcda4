"""AlphaZero on 9x9 go (pgx, komi 7.5, 17 history planes): a ResNet plus Gumbel search; sized for a GPU.

Run:
    python experiments/train.py --config=configs/alphazero_go9x9.py
    python experiments/train.py --config=configs/alphazero_go9x9.py:smoke   # one iteration, seconds

Not benchmarked to a target yet: the full run is meant for accelerators; watch
``eval/mcts/win_rate`` against the pure-MCTS baseline.
"""

import ml_collections

from configs import alphazero_common, common
from symbiosis_jax.loops.alphazero import default_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    smoke = alphazero_common.is_smoke(arg)
    config = default_config(game="go_9x9")
    config.network.name = "resnet"
    config.network.resnet.num_channels = 128
    config.network.resnet.num_blocks = 8
    config.search.num_simulations = 64
    config.search.num_nodes = config.search.num_simulations + 1
    config.search.max_num_considered_actions = 16

    config.selfplay.batch_size = 512
    config.selfplay.max_num_steps = 162  # pgx ends a 9x9 game after 162 moves
    config.selfplay.resign_threshold = -0.95  # resign hopeless games early
    config.replay.capacity = 1_000_000

    config.train.num_iterations = 2000
    config.train.updates_per_iteration = 64
    config.train.batch_size = 1024
    # Each sampled position under one of the board's eight rotations and reflections, as
    # AlphaGo Zero trained (Silver et al. 2017; AlphaZero, arXiv:1712.01815, did without,
    # to stay game-agnostic): eight times the distinct positions at no self-play cost.
    config.train.augment_symmetries = True

    config.eval.every = 100
    config.eval.num_games = 64
    config.eval.opponents = ("random", "mcts")
    config.eval.baseline_num_simulations = 400

    config.optimizer = common.optimizer_config(
        learning_rate=1e-3, schedule="cosine", warmup_steps=1000, total_steps=128_000, weight_decay=1e-4
    )
    config.mesh = common.mesh_config()
    config.logging = common.logging_config(log_every=10, checkpoint_every=100)
    config.logging.progress_bar = True
    if smoke:
        alphazero_common.shrink_for_smoke(config)
        config.selfplay.resign_threshold = -1.0  # smoke games are too short to judge
    return config
