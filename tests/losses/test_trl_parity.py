"""Parity with TRL's GRPO loss code (trl.GRPOTrainer._compute_loss, CPU torch, float64).

TRL's loss lives in a trainer method; we run that method on a bare instance whose
model forward is replaced by fixed per-token log-probs, so TRL's own code computes
the loss and torch autograd gives its gradient w.r.t. those log-probs.
"""

import collections
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer")

from symbiosis_jax import losses  # noqa: E402

# The numbers users get: compiled with XLA's full optimisations (tests/conftest.py).
pytestmark = pytest.mark.optimized


class _Accelerator:
    num_processes = 1
    sync_gradients = True

    def reduce(self, x, reduction="sum"):
        return x

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x


def _trl_loss(logp, old, ref, adv, mask, *, loss_type, beta, eps_low, eps_high, level, max_len):
    trainer = object.__new__(grpo_trainer.GRPOTrainer)
    logp_t = torch.tensor(logp, dtype=torch.float64, requires_grad=True)
    attrs = dict(
        aux_loss_enabled=False,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=level,
        loss_type=loss_type,
        beta=beta,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        use_vllm=False,
        max_completion_length=max_len,
        _entropy_bonus_enabled=False,
        use_adaptive_entropy=False,
        model=types.SimpleNamespace(training=False),
        accelerator=_Accelerator(),
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        current_gradient_accumulation_steps=1,
        _metrics={"eval": collections.defaultdict(list), "train": collections.defaultdict(list)},
    )
    for name, value in attrs.items():
        object.__setattr__(trainer, name, value)
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (
        logp_t, torch.zeros_like(logp_t), None
    )
    batch, length = logp.shape
    inputs = {
        "prompt_ids": torch.zeros((batch, 1), dtype=torch.long),
        "prompt_mask": torch.ones((batch, 1), dtype=torch.long),
        "completion_ids": torch.zeros((batch, length), dtype=torch.long),
        "completion_mask": torch.tensor(mask, dtype=torch.float64),
        "advantages": torch.tensor(adv, dtype=torch.float64),
        "old_per_token_logps": torch.tensor(old, dtype=torch.float64),
        "ref_per_token_logps": torch.tensor(ref, dtype=torch.float64),
        "num_items_in_batch": torch.tensor(float(mask.sum()), dtype=torch.float64),
    }
    loss = grpo_trainer.GRPOTrainer._compute_loss(trainer, None, inputs)
    loss.backward()
    return loss.item(), logp_t.grad.numpy(), trainer._metrics["eval"]


def _batch(seed):
    rng = np.random.default_rng(seed)
    batch, length = 6, 7
    logp = -rng.random((batch, length)) * 2
    old = logp + rng.normal(size=logp.shape) * 0.3
    ref = logp + rng.normal(size=logp.shape) * 0.3
    rewards = rng.integers(0, 2, size=(2, 3)).astype(float)
    adv = np.asarray(losses.group_advantages(jnp.asarray(rewards))).reshape(-1)
    lengths = rng.integers(1, length + 1, size=batch)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(float)
    return logp, old, ref, adv, mask


CASES = [
    # name, TRL loss_type, level, beta, eps_low, eps_high, our function, our kwargs
    ("grpo", "grpo", "token", 0.04, 0.2, 0.2, losses.grpo_loss, {}),
    ("dapo", "dapo", "token", 0.0, 0.2, 0.28, losses.dapo_loss, {}),
    ("bnpo_kl", "bnpo", "token", 0.1, 0.2, 0.2, losses.grpo_loss,
     dict(beta=0.1, aggregation="token-mean")),
    ("dr_grpo", "dr_grpo", "token", 0.0, 0.2, 0.2, losses.dr_grpo_loss, dict(norm_length=10)),
    ("gspo", "grpo", "sequence", 0.0, 0.05, 0.08, losses.gspo_loss,
     dict(epsilon_low=0.05, epsilon_high=0.08)),
]


# Batches where every row has a non-zero advantage and both clips act (asserted below), so
# the parity of values, gradients and clip fractions is not carried by zeros.
_SEEDS = {"grpo": 4, "dapo": 4, "bnpo_kl": 0, "dr_grpo": 2, "gspo": 0}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_and_gradient_match_trl(case, x64):
    name, loss_type, level, beta, eps_low, eps_high, fn, kwargs = case
    logp, old, ref, adv, mask = _batch(_SEEDS[name])
    assert (np.abs(adv) > 1e-6).all()
    trl_value, trl_grad, trl_metrics = _trl_loss(
        logp, old, ref, adv, mask, loss_type=loss_type, beta=beta, eps_low=eps_low,
        eps_high=eps_high, level=level, max_len=10,
    )
    kwargs = dict(kwargs)
    if beta:
        kwargs["ref_logp"] = jnp.asarray(ref)
    (value, metrics), grad = jax.value_and_grad(
        lambda x: fn(x, jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask), **kwargs),
        has_aux=True,
    )(jnp.asarray(logp))
    np.testing.assert_allclose(value, trl_value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, trl_grad, rtol=1e-9, atol=1e-12)
    if level == "token":
        assert metrics["clip_fraction_low"] > 0 and metrics["clip_fraction_high"] > 0
        np.testing.assert_allclose(metrics["clip_fraction_low"], trl_metrics["clip_ratio/low_mean"][0], rtol=1e-9)
        np.testing.assert_allclose(metrics["clip_fraction_high"], trl_metrics["clip_ratio/high_mean"][0], rtol=1e-9)
    if beta:
        np.testing.assert_allclose(metrics["kl"], trl_metrics["kl"][0], rtol=1e-9)
