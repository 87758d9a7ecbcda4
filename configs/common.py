"""Config fragments shared by every experiment in ``configs/``.

Each function returns a fresh ``ml_collections.ConfigDict``; experiment configs
attach them (``config.mesh = common.mesh_config()``) and then change fields. All
fields are plain ints/floats/strings/bools so every one can be overridden from
the command line, e.g. ``--config.mesh.data=2 --config.optimizer.learning_rate=3e-4``.
"""

import ml_collections

__all__ = ["mesh_config", "optimizer_config", "logging_config"]


def _apply(config: ml_collections.ConfigDict, overrides: dict, what: str) -> ml_collections.ConfigDict:
    for k, v in overrides.items():
        if k not in config:
            raise ValueError(f"{what}: unknown field {k!r}; fields: {sorted(config.keys())}.")
        config[k] = v
    return config


def mesh_config(**overrides) -> ml_collections.ConfigDict:
    """Device-mesh axes as separate int fields, in mesh order data, fsdp, tensor.

    ``symbiosis_jax.parallel.make_mesh(config.mesh)`` turns them into the axes
    ``(("data", -1), ("fsdp", 1), ("tensor", 1))``: exactly one size may be -1, filled
    from the device count. ``axis_types`` is ``"auto"`` or ``"explicit"`` (the RLVR and
    AlphaZero loops run on ``"auto"`` only and say so).
    """
    config = ml_collections.ConfigDict()
    config.data = -1
    config.fsdp = 1
    config.tensor = 1
    config.axis_types = "auto"
    return _apply(config, overrides, "mesh_config")


def optimizer_config(**overrides) -> ml_collections.ConfigDict:
    """AdamW + warm-up + cosine decay + clipping (``symbiosis_jax.training.make_optimizer``)."""
    config = ml_collections.ConfigDict()
    config.learning_rate = 1e-4
    config.schedule = "cosine"  # "cosine" | "constant"
    config.warmup_steps = 0
    config.total_steps = 1000  # the cosine reaches min_lr_ratio * learning_rate here
    config.min_lr_ratio = 0.0
    config.weight_decay = 0.0
    config.weight_decay_on = "matrices"  # "matrices" (ndim >= 2) | "all"
    config.b1 = 0.9
    config.b2 = 0.999
    config.eps = 1e-8
    config.max_grad_norm = 1.0  # 0 disables clipping
    return _apply(config, overrides, "optimizer_config")


def logging_config(**overrides) -> ml_collections.ConfigDict:
    """How often to log and checkpoint (in training steps); evaluation has its own section."""
    config = ml_collections.ConfigDict()
    config.log_every = 10
    config.checkpoint_every = 100
    config.max_to_keep = 3
    config.use_tensorboard = True
    config.progress_bar = True
    return _apply(config, overrides, "logging_config")
