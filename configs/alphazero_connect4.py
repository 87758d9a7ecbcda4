"""AlphaZero on connect four: an MLP (a ResNet on a GPU) plus Gumbel search against pure MCTS.

Run:
    python experiments/train.py --config=configs/alphazero_connect4.py
    python experiments/train.py --config=configs/alphazero_connect4.py:smoke   # one iteration, seconds

Target: within 60 minutes on a 2-core CPU, at least 90% wins against pure MCTS with
1,000 simulations (random rollouts), from both sides (``eval/mcts/win_rate_first``
and ``win_rate_second``). Measured (docs/alphazero.md, 2026-11-26, idle 2-core CPU): the
checkpoint after 44 minutes won 95.7% of 256 fresh games (100% moving first, 91.4% second,
`experiments/evaluate_alphazero.py`); in-run evaluations (64 games) 88% at 10 minutes, 95% at
32, 97% at 55; the whole run, evaluations included, takes 57 minutes.
"""

import ml_collections

from configs import alphazero_common, common
from symbiosis_jax.loops.alphazero import default_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    smoke = alphazero_common.is_smoke(arg)
    config = default_config(game="connect_four")
    # On a CPU a small MLP plays many more games per minute than a ResNet; on a GPU use
    # --config.network.name=resnet (its section's sizes below).
    config.network.name = "mlp"
    config.network.mlp.hidden_sizes = (256, 256)
    config.network.resnet.num_channels = 64
    config.network.resnet.num_blocks = 5
    config.search.num_simulations = 32
    config.search.num_nodes = config.search.num_simulations + 1
    config.search.max_num_considered_actions = 7

    config.selfplay.batch_size = 256
    config.selfplay.max_num_steps = 42
    config.selfplay.random_move_prob = 0.02
    # Value target (z + q) / 2: the outcome averaged with the search's value of the position.
    config.selfplay.value_target_root_weight = 0.5
    config.replay.capacity = 500_000

    config.train.num_iterations = 100_000
    # Training stops after 55 minutes of wall time (periodic evaluations included); the
    # final evaluation of 64 games follows, so the whole run fits in the hour.
    config.train.time_limit_s = 55 * 60
    config.train.updates_per_iteration = 96
    config.train.augment_symmetries = True
    config.train.batch_size = 512
    # The evaluated agent plays with a moving average of the parameters (~50 iterations).
    config.train.ema_decay = 0.98

    config.eval.every = 500
    config.eval.num_games = 64
    config.eval.opponents = ("random", "mcts")
    config.eval.baseline_num_simulations = 1000
    config.eval.num_simulations = 256  # the evaluated agent searches more than self-play

    # Cosine decay from 1e-3 to 1e-4 over about as many updates as an idle 2-core CPU
    # makes in the 55 minutes (~3,000 iterations x 96); a longer run stays at 1e-4.
    config.optimizer = common.optimizer_config(
        learning_rate=1e-3, schedule="cosine", total_steps=3_000 * 96, min_lr_ratio=0.1, weight_decay=1e-4,
        max_grad_norm=1.0,
    )
    config.mesh = common.mesh_config()
    # A checkpoint at every evaluation, all kept (experiments/evaluate_alphazero.py replays them).
    config.logging = common.logging_config(log_every=10, checkpoint_every=500, max_to_keep=12)
    config.logging.progress_bar = True
    return alphazero_common.shrink_for_smoke(config) if smoke else config
