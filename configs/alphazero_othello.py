"""AlphaZero on othello (8x8): a ResNet plus Gumbel search, sized for a GPU; `cpu`: an MLP for one hour on a CPU.

Run:
    python experiments/train.py --config=configs/alphazero_othello.py         # GPU sizes
    python experiments/train.py --config=configs/alphazero_othello.py:cpu     # 2-core CPU, one hour
    python experiments/train.py --config=configs/alphazero_othello.py:smoke   # one iteration, seconds

The GPU sizes are not benchmarked to a target yet; watch ``eval/mcts/win_rate`` against the
pure-MCTS baseline. The ``cpu`` variant is measured in docs/alphazero.md ("Othello on a CPU").
"""

import ml_collections

from configs import alphazero_common, common
from symbiosis_jax.loops.alphazero import default_config

VARIANTS = (None, "cpu", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    smoke = alphazero_common.is_smoke(arg, variants=VARIANTS)
    config = default_config(game="othello")
    config.network.name = "resnet"
    config.network.resnet.num_channels = 128
    config.network.resnet.num_blocks = 6
    config.search.num_simulations = 64
    config.search.num_nodes = config.search.num_simulations + 1
    config.search.max_num_considered_actions = 16

    config.selfplay.batch_size = 512
    config.selfplay.max_num_steps = 80  # smoke games finish too: only finished games train
    config.replay.capacity = 500_000

    config.train.num_iterations = 1000
    config.train.updates_per_iteration = 64
    config.train.batch_size = 1024
    # Each sampled position under one of the four board symmetries that keep othello's start
    # (identity, half turn, both diagonal reflections). With them the cpu variant's agent wins
    # 67-76% of its games head to head against the same recipe without them (docs/alphazero.md).
    config.train.augment_symmetries = True

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
    if arg == "cpu":
        _cpu_sizes(config)
    return alphazero_common.shrink_for_smoke(config) if smoke else config


def _cpu_sizes(config: ml_collections.ConfigDict) -> None:
    """One hour on a 2-core CPU: an MLP, 32 simulations, the recipe of the connect-four config.

    An iteration (256 games of ~60 moves, 64 updates of 512 positions) takes 11-15 s on a
    2-core CPU, so the 55 minutes hold 210-250 iterations.
    """
    config.network.name = "mlp"
    config.network.mlp.hidden_sizes = (256, 256)
    config.search.num_simulations = 32
    config.search.num_nodes = config.search.num_simulations + 1
    config.selfplay.batch_size = 256
    config.selfplay.random_move_prob = 0.02
    config.selfplay.value_target_root_weight = 0.5  # value target (z + q) / 2
    config.train.num_iterations = 100_000
    config.train.time_limit_s = 55 * 60  # then a final evaluation
    config.train.updates_per_iteration = 64
    config.train.batch_size = 512
    config.train.ema_decay = 0.98
    config.eval.every = 80
    config.eval.baseline_num_simulations = 200
    config.eval.num_simulations = 128
    config.optimizer = common.optimizer_config(
        learning_rate=1e-3, schedule="cosine", total_steps=250 * 64, min_lr_ratio=0.1, weight_decay=1e-4,
        max_grad_norm=1.0,
    )
    # A checkpoint at every evaluation, all kept (experiments/evaluate_alphazero.py replays them).
    config.logging = common.logging_config(log_every=10, checkpoint_every=80, max_to_keep=12)
    config.logging.progress_bar = True
