"""Shared pieces of the AlphaZero configs: the variant argument and the `smoke` shrink.

Each `configs/alphazero_*.py` writes its full sizes once and, for the `smoke` variant, calls
`shrink_for_smoke`, so one file serves the real run, the test suite and the notebooks.
"""

import ml_collections

VARIANTS = (None, "smoke")


def is_smoke(arg: str | None, *, variants: tuple = VARIANTS) -> bool:
    """Parses a config argument: None/"" is the full run, "smoke" shrinks every size.

    Args:
        arg: the text after ``:`` in ``--config=configs/NAME.py:variant``.
        variants: the variants this config has (a config with more names them here).
    """
    if arg == "":
        arg = None
    if arg not in variants:
        raise ValueError(f"variant {arg!r} is not one of {variants}")
    return arg == "smoke"


def shrink_for_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks every size so one iteration runs in seconds; returns ``config``."""
    # The built-in networks' sizes (whichever is chosen); another network keeps the sizes
    # its config gives.
    if "mlp" in config.network:
        config.network.mlp.hidden_sizes = (16,)
    if "resnet" in config.network:
        config.network.resnet.num_channels = 4
        config.network.resnet.num_blocks = 1
    config.search.num_simulations = 4
    config.search.num_nodes = config.search.num_simulations + 1
    config.selfplay.batch_size = 8
    config.replay.capacity = 128
    config.train.num_iterations = 1
    config.train.time_limit_s = 0
    config.train.updates_per_iteration = 1
    config.train.batch_size = 8
    config.eval.every = 0
    config.eval.num_games = 8
    config.eval.baseline_num_simulations = 8
    config.logging.log_every = 1
    config.logging.checkpoint_every = 1
    config.logging.progress_bar = False
    return config
