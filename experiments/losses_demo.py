"""Prints every loss of ``symbiosis_jax.losses`` on one small random batch.

Run: ``python experiments/losses_demo.py [--seed=N]`` (a few seconds on a CPU). It
shows each loss's value and key metrics, and two known limits (DPO at policy ==
reference is log 2; on-policy GRPO has ratio 1 and no clipping).
"""

from __future__ import annotations

import argparse
import os
import sys

# The package lives at the repo root, which is not on sys.path when this file
# runs as a script (and the package may not be pip-installed).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from symbiosis_jax import losses  # noqa: E402


_PG_KEYS = ("pg_loss", "kl", "clip_fraction_low", "clip_fraction_high", "approx_kl",
            "ratio_mean", "ratio_min", "ratio_max")
_PREF_KEYS = ("rewards_chosen", "rewards_rejected", "reward_margin", "accuracy")
_ORDER = (
    "grpo", "dapo", "dr_grpo", "gspo", "gspo_token", "grpo (on-policy)", "ppo",
    "dpo", "dpo (policy==ref)", "conservative_dpo", "robust_dpo", "ipo", "hinge",
    "spin", "bradley_terry", "sft", "alphazero",
)
_SHOWN = {
    "ppo": ("pg_loss", "value_loss", "entropy", "clip_fraction", "value_clip_fraction"),
    "spin": ("rewards_real", "rewards_generated", "accuracy"),
    "bradley_terry": ("bt_loss", "accuracy", "reward_margin"),
    "sft": ("nll", "perplexity", "token_accuracy"),
    "alphazero": ("policy_loss", "value_loss", "policy_entropy", "policy_accuracy"),
}


@jax.jit
def compute_all(key: jax.Array) -> tuple[dict, dict]:
    """Every loss on one random batch, under one jit.

    Args:
        key: PRNG key.

    Returns:
        ``(outputs, extras)``: loss name -> ``(loss, metrics)``, and a few
        intermediate arrays to print.
    """
    keys = jax.random.split(key, 12)
    num_prompts, group, length, vocab, actions = 2, 4, 8, 16, 9
    batch = num_prompts * group

    # A policy-gradient batch: logits -> log-probs of sampled tokens, plus a
    # behaviour policy and a reference policy that differ slightly.
    # Drawn flat (the same numbers): a rank-3 draw takes seconds to compile on the CPU.
    logits = jax.random.normal(keys[0], (batch * length * vocab,)).reshape(batch, length, vocab)
    tokens = jax.random.randint(keys[1], (batch, length), 0, vocab)
    logp, entropy = losses.token_logprobs_and_entropy(logits, tokens)
    old_logp = logp + 0.1 * jax.random.normal(keys[2], logp.shape)
    ref_logp = logp + 0.1 * jax.random.normal(keys[3], logp.shape)
    lengths = jax.random.randint(keys[4], (batch,), 2, length + 1)
    completion_mask = jnp.arange(length)[None, :] < lengths[:, None]
    rewards = jax.random.bernoulli(keys[5], 0.5, (num_prompts, group)).astype(jnp.float32)
    rewards = rewards + losses.overlong_reward_shaping(
        lengths, max_length=length, buffer_length=2
    ).reshape(num_prompts, group)
    adv_grpo = losses.group_advantages(rewards).reshape(-1)
    adv_dr = losses.group_advantages(rewards, normalize_std=False).reshape(-1)

    out = {}
    out["grpo"] = losses.grpo_loss(logp, old_logp, adv_grpo, completion_mask, ref_logp=ref_logp)
    out["dapo"] = losses.dapo_loss(logp, old_logp, adv_grpo, completion_mask)
    out["dr_grpo"] = losses.dr_grpo_loss(logp, old_logp, adv_dr, completion_mask)
    out["gspo"] = losses.gspo_loss(logp, old_logp, adv_grpo, completion_mask)
    out["gspo_token"] = losses.gspo_token_loss(logp, old_logp, adv_grpo, completion_mask)
    out["grpo (on-policy)"] = losses.grpo_loss(logp, logp, adv_grpo, completion_mask, beta=0.0)

    # PPO with a value head and GAE over KL-shaped per-token rewards.
    values = 0.1 * jax.random.normal(keys[6], logp.shape)
    token_rewards = losses.fold_kl_into_rewards(
        rewards.reshape(-1), old_logp, ref_logp, completion_mask, kl_coef=0.05
    )
    adv_gae, returns = losses.gae_advantages(token_rewards, values, completion_mask, lam=0.95)
    adv_gae = losses.whiten(adv_gae, completion_mask)
    out["ppo"] = losses.ppo_loss(
        logp, old_logp, adv_gae, completion_mask, values=values + 0.05, old_values=values,
        returns=returns, entropy=entropy, entropy_coef=0.01, dual_clip=3.0,
    )
    controller = losses.adaptive_kl_update(losses.init_kl_controller(0.05), 8.0, batch)

    # Preference losses on summed sequence log-probs.
    seq = lambda x: jnp.sum(jnp.where(completion_mask, x, 0.0), axis=-1)
    pc, pr = seq(logp)[:4], seq(logp)[4:]
    rc, rr = seq(ref_logp)[:4], seq(ref_logp)[4:]
    out["dpo"] = losses.dpo_loss(pc, pr, rc, rr, beta=0.1)
    out["dpo (policy==ref)"] = losses.dpo_loss(pc, pr, pc, pr, beta=0.1)
    out["conservative_dpo"] = losses.conservative_dpo_loss(pc, pr, rc, rr)
    out["robust_dpo"] = losses.robust_dpo_loss(pc, pr, rc, rr)
    out["ipo"] = losses.ipo_loss(
        pc, pr, rc, rr, chosen_lengths=lengths[:4], rejected_lengths=lengths[4:]
    )
    out["hinge"] = losses.preference_hinge_loss(pc, pr, rc, rr)
    out["spin"] = losses.spin_loss(pc, pr, rc, rr)
    out["bradley_terry"] = losses.bradley_terry_loss(pc / 10, pr / 10, center_rewards_coef=0.01)
    out["sft"] = losses.sft_loss(logits, tokens, completion_mask)

    # AlphaZero: policy logits over A actions, search policy target, outcome.
    policy_logits = jax.random.normal(keys[7], (batch, actions))
    legal = jax.random.bernoulli(keys[8], 0.7, (batch, actions)).at[:, 0].set(True)
    visits = jax.random.uniform(keys[9], (batch, actions)) * legal
    target_policy = visits / jnp.sum(visits, axis=-1, keepdims=True)
    outcome = jax.random.choice(keys[10], jnp.array([-1.0, 0.0, 1.0]), (batch,))
    out["alphazero"] = losses.alphazero_loss(
        policy_logits, jnp.tanh(policy_logits[:, 0]), target_policy, outcome, legal
    )
    extras = dict(
        rewards=rewards,
        zero_variance=losses.zero_variance_group_mask(rewards),
        kl_coef=controller.kl_coef,
    )
    return out, extras


def main(seed: int = 0) -> dict[str, float]:
    """Computes every loss on a random batch and prints value and key metrics.

    Args:
        seed: PRNG seed.

    Returns:
        Loss name -> loss value (floats), for tests.
    """
    out, extras = jax.device_get(compute_all(jax.random.PRNGKey(seed)))
    print(f"rewards [P, G] (with overlong shaping):\n{extras['rewards']}")
    print("zero-variance groups:", extras["zero_variance"])
    for name in _ORDER:
        loss, metrics = out[name]
        shown = _SHOWN.get(name, _PREF_KEYS if name in (
            "dpo", "dpo (policy==ref)", "conservative_dpo", "robust_dpo", "ipo", "hinge"
        ) else _PG_KEYS)
        text = "  ".join(f"{k}={float(metrics[k]):.4f}" for k in shown if k in metrics)
        print(f"{name:<18s} loss={float(loss):+.4f}  {text}")
    print(f"{'adaptive KL coef':<18s} 0.05 -> {float(extras['kl_coef']):.6f} (KL 8 > target 6)")
    return {name: float(loss) for name, (loss, _) in out.items()}


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: ``--seed`` only; ``--help`` prints usage and exits."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0].replace("``", ""),
        epilog="Also shows two known limits: DPO at policy == reference is log 2; on-policy GRPO "
               "has ratio 1 and no clipping.")
    parser.add_argument("--seed", type=int, default=0,
                        help="PRNG seed of the random batch (default 0)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(seed=parse_args().seed)
