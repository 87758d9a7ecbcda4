"""Advantage estimators: GAE, group-relative (GRPO/Dr. GRPO), RLOO, and DAPO's helpers.

* GAE (Schulman et al., arXiv:1506.02438), per token with a reverse ``lax.scan``:
  ``delta_t = r_t + gamma V_{t+1} - V_t``, ``A_t = delta_t + gamma lam A_{t+1}``,
  where ``t + 1`` is the next *valid* token (masked tokens are skipped).
* Group-relative (GRPO, arXiv:2402.03300): ``A_{p,g} = (r_{p,g} - mean_g r_p) /
  (std_g r_p + eps)`` with the unbiased (ddof=1) std, or without the division
  (Dr. GRPO, arXiv:2503.20783).
* RLOO (Ahmadian et al., arXiv:2402.14740): ``A_{p,g} = r_{p,g} - mean_{j != g} r_{p,j}``.
* DAPO (arXiv:2503.14476): a flag for groups whose rewards are all equal (dynamic
  sampling drops them) and the soft overlong length penalty.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.aggregate import safe_divide


def group_advantages(
    rewards_pg: jax.Array, *, normalize_std: bool = True, epsilon: float = 1e-4
) -> jax.Array:
    """Group-relative advantages of GRPO (or Dr. GRPO without the std).

        A_{p,g} = (r_{p,g} - mean_g r_{p,.}) / (std_g r_{p,.} + epsilon)

    Args:
        rewards_pg: ``[P, G]`` rewards, ``G`` completions for each of ``P`` prompts.
        normalize_std: divide by the unbiased (ddof=1) group std plus
            ``epsilon``; ``False`` keeps only the mean-centring (Dr. GRPO).
        epsilon: added to the std, > 0.

    Returns:
        ``[P, G]`` advantages; a group with equal rewards gets zeros.
    """
    _checks.check_shapes(rewards_pg=(rewards_pg, "PG"))
    _checks.check_positive("epsilon", epsilon)
    num_per_group = rewards_pg.shape[1]
    if normalize_std and num_per_group < 2:
        raise ValueError(
            f"rewards_pg has group size G={num_per_group}; normalize_std=True needs G >= 2"
        )
    centered = rewards_pg - jnp.mean(rewards_pg, axis=1, keepdims=True)
    if not normalize_std:
        return centered
    std = jnp.std(rewards_pg, axis=1, keepdims=True, ddof=1)
    return centered / (std + epsilon)


def group_advantages_by_id(
    rewards: jax.Array,
    group_ids: jax.Array,
    *,
    num_groups: int,
    normalize_std: bool = True,
    epsilon: float = 1e-4,
) -> jax.Array:
    """``group_advantages`` for a flat batch whose group is given by an id.

    Groups may have different sizes (e.g. after filtering). A group of one
    completion gets advantage 0.

    Args:
        rewards: ``[B]`` rewards.
        group_ids: ``[B]`` int ids in ``[0, num_groups)``.
        num_groups: static number of groups.
        normalize_std: as in ``group_advantages``.
        epsilon: added to the std, > 0.

    Returns:
        ``[B]`` advantages.
    """
    _checks.check_shapes(rewards=(rewards, "B"), group_ids=(group_ids, "B"))
    _checks.check_positive("epsilon", epsilon)
    _checks.check_positive("num_groups", num_groups)
    ones = jnp.ones_like(rewards)
    count = jax.ops.segment_sum(ones, group_ids, num_segments=num_groups)
    total = jax.ops.segment_sum(rewards, group_ids, num_segments=num_groups)
    mean = safe_divide(total, count)
    centered = rewards - mean[group_ids]
    if not normalize_std:
        return jnp.where(count[group_ids] > 1, centered, 0.0)
    sq = jax.ops.segment_sum(jnp.square(centered), group_ids, num_segments=num_groups)
    std = jnp.sqrt(safe_divide(sq, count - 1))
    return jnp.where(count[group_ids] > 1, centered / (std[group_ids] + epsilon), 0.0)


def rloo_advantages(rewards_pg: jax.Array) -> jax.Array:
    """REINFORCE leave-one-out advantages (arXiv:2402.14740).

        A_{p,g} = r_{p,g} - 1/(G-1) sum_{j != g} r_{p,j} = G/(G-1) (r_{p,g} - mean_g r_p)

    Args:
        rewards_pg: ``[P, G]`` rewards with ``G >= 2``.

    Returns:
        ``[P, G]`` advantages.
    """
    _checks.check_shapes(rewards_pg=(rewards_pg, "PG"))
    num_per_group = rewards_pg.shape[1]
    if num_per_group < 2:
        raise ValueError(f"rewards_pg has group size G={num_per_group}; RLOO needs G >= 2")
    others = (jnp.sum(rewards_pg, axis=1, keepdims=True) - rewards_pg) / (num_per_group - 1)
    return rewards_pg - others


def zero_variance_group_mask(rewards_pg: jax.Array) -> jax.Array:
    """True for groups whose rewards are all equal (DAPO dynamic sampling drops them).

    Such groups have zero group-relative advantage and give no gradient.

    Args:
        rewards_pg: ``[P, G]`` rewards.

    Returns:
        ``[P]`` bool, True = all ``G`` rewards equal.
    """
    _checks.check_shapes(rewards_pg=(rewards_pg, "PG"))
    return jnp.all(rewards_pg == rewards_pg[:, :1], axis=1)


def overlong_reward_shaping(
    lengths: jax.Array, *, max_length: int, buffer_length: int
) -> jax.Array:
    """DAPO's soft overlong punishment (arXiv:2503.14476, eq. 13), added to the reward.

        R(L) = 0                               if L <= L_max - L_buf
             = ((L_max - L_buf) - L) / L_buf   if L_max - L_buf < L <= L_max
             = -1                              if L > L_max

    Args:
        lengths: ``[B]`` completion lengths in tokens.
        max_length: ``L_max`` in tokens, > 0.
        buffer_length: ``L_buf`` in tokens, in (0, max_length].

    Returns:
        ``[B]`` float penalties in [-1, 0].
    """
    _checks.check_shapes(lengths=(lengths, "B"))
    _checks.check_positive("max_length", max_length)
    _checks.check_positive("buffer_length", buffer_length)
    if buffer_length > max_length:
        raise ValueError(
            f"buffer_length={buffer_length!r} must be <= max_length={max_length!r}"
        )
    lengths = jnp.asarray(lengths, dtype=jnp.float32)
    expected = max_length - buffer_length
    soft = (expected - lengths) / buffer_length
    return jnp.where(
        lengths <= expected, 0.0, jnp.where(lengths <= max_length, soft, -1.0)
    )


def gae_advantages(
    rewards: jax.Array,
    values: jax.Array,
    completion_mask: jax.Array,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    bootstrap_value: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over tokens (arXiv:1506.02438), masked.

        delta_t = r_t + gamma V_{t'} - V_t,   A_t = delta_t + gamma lam A_{t'},

    where ``t'`` is the next valid token after ``t``; after the last valid
    token ``V_{t'} = bootstrap_value`` (default 0: the episode ends) and
    ``A_{t'} = 0``. Masked tokens are skipped (they may sit anywhere, e.g.
    tool outputs inside a completion) and get advantage and return 0.

    Args:
        rewards: ``[B, T]`` per-token rewards.
        values: ``[B, T]`` value estimates ``V_t`` (treated as constants).
        completion_mask: ``[B, T]``, 1 = token is an action.
        gamma: discount in [0, 1].
        lam: GAE lambda in [0, 1].
        bootstrap_value: ``[B]`` value after the last token, or ``None`` for 0.

    Returns:
        ``(advantages, returns)``, each ``[B, T]``; ``returns = advantages + values``
        on valid tokens.
    """
    _checks.check_shapes(
        rewards=(rewards, "BT"),
        values=(values, "BT"),
        completion_mask=(completion_mask, "BT"),
        bootstrap_value=None if bootstrap_value is None else (bootstrap_value, "B"),
    )
    for name, value in (("gamma", gamma), ("lam", lam)):
        if _checks.is_concrete_number(value) and not 0 <= value <= 1:
            raise ValueError(f"{name}={value!r} must be in [0, 1]")
    mask = completion_mask > 0
    rewards = jnp.where(mask, rewards, 0.0)
    values = jax.lax.stop_gradient(jnp.where(mask, values, 0.0))
    if bootstrap_value is None:
        bootstrap_value = jnp.zeros(rewards.shape[:1], rewards.dtype)
    bootstrap_value = jnp.asarray(bootstrap_value, rewards.dtype)

    def step(carry, inputs):
        next_value, next_advantage = carry
        reward_t, value_t, valid_t = inputs
        delta = reward_t + gamma * next_value - value_t
        advantage = delta + gamma * lam * next_advantage
        advantage = jnp.where(valid_t, advantage, 0.0)
        next_value = jnp.where(valid_t, value_t, next_value)
        next_advantage = jnp.where(valid_t, advantage, next_advantage)
        return (next_value, next_advantage), advantage

    init = (bootstrap_value, jnp.zeros_like(bootstrap_value))
    _, advantages_tb = jax.lax.scan(
        step, init, (rewards.T, values.T, mask.T), reverse=True
    )
    advantages = advantages_tb.T
    returns = jnp.where(mask, advantages + values, 0.0)
    return advantages, returns


def whiten(
    values: jax.Array,
    mask: jax.Array,
    *,
    shift_mean: bool = True,
    epsilon: float = 1e-8,
) -> jax.Array:
    """Masked whitening ``(x - mean) / sqrt(var + eps)`` over valid entries (PPO practice).

    Args:
        values: ``[B, T]`` (or any shape matching ``mask``).
        mask: same shape, 1 = entry counts.
        shift_mean: subtract the mean; ``False`` only rescales (keeps the mean).
        epsilon: added to the variance, > 0.

    Returns:
        Same shape; 0 under the mask.
    """
    if jnp.shape(values) != jnp.shape(mask):
        raise ValueError(
            f"mask has shape {jnp.shape(mask)}, expected the shape of values "
            f"{jnp.shape(values)}"
        )
    _checks.check_positive("epsilon", epsilon)
    valid = mask > 0
    weight = valid.astype(values.dtype)
    values = jnp.where(valid, values, 0.0)
    count = jnp.sum(weight)
    mean = safe_divide(jnp.sum(values), count)
    var = safe_divide(jnp.sum(jnp.square(values - mean) * weight), count)
    out = (values - mean) * jax.lax.rsqrt(var + epsilon)
    if not shift_mean:
        out = out + mean
    return jnp.where(valid, out, 0.0)
