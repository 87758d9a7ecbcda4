"""Prompt sharing in the RLVR step: the grouped update equals the per-row update."""

import dataclasses
import functools
import os
import sys

import jax
import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.loops import rlvr, rlvr_steps  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402


def _np(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def test_shared_prompt_update_equals_per_row_update():
    # beta > 0 so the reference forward goes through the grouped path too.
    config = driver.load_config(os.path.join(_REPO, "configs/grpo_arithmetic.py:smoke"))
    r = rlvr._Runner(config)
    assert r.settings.share_prompt and r.use_reference
    g = r.config.rl.group_size
    batch, _ = r.rollouts(r.init_params, step=0)
    tokens = batch.prompt_tokens.reshape(-1, g, batch.prompt_tokens.shape[1])
    assert (tokens == tokens[:, :1]).all() and tokens.shape[0] > 1
    rng = np.random.default_rng(0)
    batch = batch.replace(rewards=rng.integers(0, 2, batch.rewards.shape).astype(np.float32))
    state = _np(r.init_state(r._copy(r.init_params)))
    # Move the reference away from the policy so the KL term has a gradient.
    state = state.replace(ref_params=jax.tree.map(lambda x: x * 1.5, state.ref_params))
    key = jax.random.key(0)
    out = {}
    for share in (False, True):
        settings = dataclasses.replace(r.settings, share_prompt=share)
        update = jax.jit(functools.partial(rlvr_steps.rl_update, r.graphdef, r.optimizer,
                                           r.loss_fn, settings))
        out[share] = _np(update(state, batch, key))
    (want_state, want_m), (got_state, got_m) = out[False], out[True]
    assert float(want_m["kl"]) > 1e-4 and float(want_m["grad_norm"]) > 1e-3
    for k in ("loss", "kl", "entropy", "grad_norm"):
        np.testing.assert_allclose(got_m[k], want_m[k], rtol=1e-5, atol=1e-7, err_msg=k)
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), want_state.params, state.params)
    assert max(jax.tree.leaves(moved)) > 1e-5
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
                 got_state.params, want_state.params)
    # The grouped sampler draws the same completions as the per-row one.
    prompts = r.codec.prompts(r.problems.draw(1, 0, 0, 2), repeat=g)
    a = _np(r.sample(r.init_params, key, prompts))
    b = _np(r.sample(r.init_params, key, prompts, grouped=True))
    np.testing.assert_array_equal(b.tokens, a.tokens)
    np.testing.assert_allclose(b.logprobs, a.logprobs, atol=1e-5)
