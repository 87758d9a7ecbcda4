"""Pure loss functions for feedback loops, and their shared pieces.

Every loss takes arrays plus keyword-only hyperparameters and returns
``(loss, metrics)`` with ``metrics`` a dict of scalar arrays. Nothing here
knows about models, meshes or jit boundaries. See ``docs/losses.md``.

Shared pieces: ``aggregate`` (aggregation modes), ``kl_estimate`` (k1/k2/k3/k3+),
``clipped_surrogate``, ``token_logprobs``/``entropy_from_logits`` and the
advantage estimators. Losses: PPO, GRPO, DAPO, Dr. GRPO, GSPO(-token),
DPO/IPO/hinge/robust/conservative DPO, SPIN, Bradley-Terry, SFT, AlphaZero.
"""

from symbiosis_jax.losses.advantages import (
    gae_advantages,
    group_advantages,
    group_advantages_by_id,
    overlong_reward_shaping,
    rloo_advantages,
    whiten,
    zero_variance_group_mask,
)
from symbiosis_jax.losses.aggregate import AGGREGATION_MODES, aggregate, masked_mean
from symbiosis_jax.losses.alphazero import alphazero_loss
from symbiosis_jax.losses.grpo import dapo_loss, dr_grpo_loss, grpo_loss
from symbiosis_jax.losses.gspo import gspo_loss, gspo_token_loss, sequence_log_ratio
from symbiosis_jax.losses.kl import KL_ESTIMATORS, kl_estimate
from symbiosis_jax.losses.logits import (
    entropy_from_logits,
    sequence_logprobs,
    token_logprobs,
    token_logprobs_and_entropy,
)
from symbiosis_jax.losses.ppo import (
    KLControllerState,
    adaptive_kl_update,
    fold_kl_into_rewards,
    init_kl_controller,
    ppo_loss,
    ppo_policy_loss,
    ppo_value_loss,
)
from symbiosis_jax.losses.preference import (
    conservative_dpo_loss,
    dpo_loss,
    ipo_loss,
    preference_hinge_loss,
    robust_dpo_loss,
)
from symbiosis_jax.losses.reward_model import bradley_terry_loss
from symbiosis_jax.losses.sft import sft_loss
from symbiosis_jax.losses.spin import spin_loss
from symbiosis_jax.losses.surrogate import (
    SurrogateTerms,
    clipped_policy_loss,
    clipped_surrogate,
)

__all__ = [
    # shared pieces
    "AGGREGATION_MODES",
    "KL_ESTIMATORS",
    "SurrogateTerms",
    "aggregate",
    "masked_mean",
    "kl_estimate",
    "clipped_surrogate",
    "clipped_policy_loss",
    "token_logprobs",
    "entropy_from_logits",
    "token_logprobs_and_entropy",
    "sequence_logprobs",
    # advantages
    "gae_advantages",
    "group_advantages",
    "group_advantages_by_id",
    "rloo_advantages",
    "whiten",
    "zero_variance_group_mask",
    "overlong_reward_shaping",
    # policy-gradient losses
    "ppo_loss",
    "ppo_policy_loss",
    "ppo_value_loss",
    "fold_kl_into_rewards",
    "KLControllerState",
    "init_kl_controller",
    "adaptive_kl_update",
    "grpo_loss",
    "dapo_loss",
    "dr_grpo_loss",
    "gspo_loss",
    "gspo_token_loss",
    "sequence_log_ratio",
    # preference and supervised losses
    "dpo_loss",
    "conservative_dpo_loss",
    "robust_dpo_loss",
    "ipo_loss",
    "preference_hinge_loss",
    "spin_loss",
    "bradley_terry_loss",
    "sft_loss",
    "alphazero_loss",
]
