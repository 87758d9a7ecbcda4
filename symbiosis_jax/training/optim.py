"""Optimizer factory: AdamW with linear warm-up, cosine (or constant) decay and clipping.

The optimizer config (see ``configs/common.py:optimizer_config``) has the fields

==================  =====================================================
``learning_rate``   peak learning rate (> 0)
``schedule``        ``"cosine"`` or ``"constant"`` (after the warm-up)
``warmup_steps``    linear warm-up from 0 to the peak (>= 0)
``total_steps``     steps at which the cosine reaches ``min_lr_ratio * peak``
``min_lr_ratio``    final learning rate as a fraction of the peak, in [0, 1]
``weight_decay``    decoupled weight decay (>= 0)
``weight_decay_on`` ``"matrices"`` (arrays with ndim >= 2) or ``"all"``
``b1``, ``b2``      Adam moment decays, in [0, 1)
``eps``             Adam epsilon (> 0)
``max_grad_norm``   global-norm clipping threshold; 0 or None disables it
==================  =====================================================
"""

from __future__ import annotations

from typing import Any

import jax
import optax

__all__ = [
    "SCHEDULES",
    "WEIGHT_DECAY_ON",
    "make_optimizer",
    "make_schedule",
    "validate_optimizer_config",
]

SCHEDULES = ("cosine", "constant")
WEIGHT_DECAY_ON = ("matrices", "all")

_DEFAULTS = {
    "schedule": "cosine",
    "warmup_steps": 0,
    "total_steps": None,
    "min_lr_ratio": 0.0,
    "weight_decay": 0.0,
    "weight_decay_on": "matrices",
    "b1": 0.9,
    "b2": 0.999,
    "eps": 1e-8,
    "max_grad_norm": 1.0,
}


def _as_dict(cfg: Any) -> dict[str, Any]:
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    unknown = set(d) - set(_DEFAULTS) - {"learning_rate"}
    if unknown:
        raise ValueError(
            f"optimizer config has unknown fields {sorted(unknown)}; allowed: "
            f"{sorted(set(_DEFAULTS) | {'learning_rate'})}."
        )
    out = dict(_DEFAULTS)
    out.update(d)
    if "learning_rate" not in d:
        raise ValueError("optimizer config needs learning_rate (a positive float).")
    return out


def validate_optimizer_config(cfg: Any) -> dict[str, Any]:
    """Checks every field; returns a plain dict with defaults filled in.

    Args:
        cfg: optimizer ConfigDict (anything with ``to_dict``) or mapping, with the fields of
            the module docstring; ``learning_rate`` is required, the others default.

    Returns:
        A new plain dict of every field, the missing ones set to their defaults.

    Raises:
        ValueError: naming the offending field and what is allowed.
    """
    c = _as_dict(cfg)
    # Numbers only (a bool is an int to Python; a string would be a TypeError below).
    for name in ("learning_rate", "warmup_steps", "total_steps", "min_lr_ratio", "weight_decay", "b1",
                 "b2", "eps", "max_grad_norm"):
        value, optional = c[name], name in ("total_steps", "max_grad_norm")
        if isinstance(value, bool) or not (isinstance(value, (int, float)) or (optional and value is None)):
            raise ValueError(f"optimizer.{name}={value!r} must be a number" + (" or None." if optional else "."))
    if c["learning_rate"] <= 0:
        raise ValueError(f"optimizer.learning_rate={c['learning_rate']!r} must be a positive float.")
    if c["schedule"] not in SCHEDULES:
        raise ValueError(f"optimizer.schedule={c['schedule']!r} is not one of {SCHEDULES}.")
    if not isinstance(c["warmup_steps"], int) or c["warmup_steps"] < 0:
        raise ValueError(f"optimizer.warmup_steps={c['warmup_steps']!r} must be an int >= 0.")
    if c["schedule"] == "cosine":
        t = c["total_steps"]
        if not isinstance(t, int) or t <= c["warmup_steps"]:
            raise ValueError(
                f"optimizer.total_steps={t!r} must be an int > warmup_steps="
                f"{c['warmup_steps']} for schedule='cosine'."
            )
    if not 0.0 <= c["min_lr_ratio"] <= 1.0:
        raise ValueError(f"optimizer.min_lr_ratio={c['min_lr_ratio']!r} must lie in [0, 1].")
    if c["weight_decay"] < 0:
        raise ValueError(f"optimizer.weight_decay={c['weight_decay']!r} must be >= 0.")
    if c["weight_decay_on"] not in WEIGHT_DECAY_ON:
        raise ValueError(
            f"optimizer.weight_decay_on={c['weight_decay_on']!r} is not one of {WEIGHT_DECAY_ON}."
        )
    for name in ("b1", "b2"):
        if not 0.0 <= c[name] < 1.0:
            raise ValueError(f"optimizer.{name}={c[name]!r} must lie in [0, 1).")
    if c["eps"] <= 0:
        raise ValueError(f"optimizer.eps={c['eps']!r} must be > 0.")
    if c["max_grad_norm"] is not None and c["max_grad_norm"] < 0:
        raise ValueError(
            f"optimizer.max_grad_norm={c['max_grad_norm']!r} must be > 0, or 0/None to disable."
        )
    return c


def make_schedule(cfg: Any) -> optax.Schedule:
    """Learning-rate schedule: linear warm-up 0 -> peak, then cosine or constant.

    With ``schedule="cosine"`` the rate at step ``s >= warmup_steps`` is
    ``peak * (r + (1 - r) * 0.5 * (1 + cos(pi * (s - W) / (total_steps - W))))``
    with ``r = min_lr_ratio``, held at ``r * peak`` after ``total_steps``.

    Args:
        cfg: optimizer ConfigDict or mapping (fields in the module docstring).

    Returns:
        ``step -> learning rate``.
    """
    c = validate_optimizer_config(cfg)
    peak, warm = float(c["learning_rate"]), c["warmup_steps"]
    if c["schedule"] == "constant":
        after = optax.constant_schedule(peak)
    else:
        after = optax.cosine_decay_schedule(
            init_value=peak, decay_steps=c["total_steps"] - warm, alpha=c["min_lr_ratio"]
        )
    if warm == 0:
        return after
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warm), after], boundaries=[warm]
    )


def _matrices_mask(params: Any) -> Any:
    return jax.tree.map(lambda p: getattr(p, "ndim", 0) >= 2, params)


def make_optimizer(cfg: Any) -> optax.GradientTransformation:
    """AdamW with global-norm clipping and the schedule of :func:`make_schedule`.

    Args:
        cfg: optimizer ConfigDict or mapping (fields in the module docstring).

    Returns:
        ``optax.chain(clip_by_global_norm, adamw)`` (no clipping when
        ``max_grad_norm`` is 0 or None).
    """
    c = validate_optimizer_config(cfg)
    schedule = make_schedule(c)
    mask = _matrices_mask if c["weight_decay_on"] == "matrices" else None
    adamw = optax.adamw(
        learning_rate=schedule,
        b1=c["b1"],
        b2=c["b2"],
        eps=c["eps"],
        weight_decay=c["weight_decay"],
        mask=mask,
    )
    if c["max_grad_norm"]:
        return optax.chain(optax.clip_by_global_norm(c["max_grad_norm"]), adamw)
    return adamw
