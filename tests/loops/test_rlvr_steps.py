"""The jitted RLVR pieces: log-prob parity with the sampler, advantages, the update's direction,
sharded == unsharded, dynamic sampling."""

import functools
import os
import sys

import jax
import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.loops import rlvr, rlvr_steps  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402


@functools.lru_cache(maxsize=None)
def _runner(name="grpo", **overrides):
    config = driver.load_config(os.path.join(_REPO, f"configs/{name}_arithmetic.py:smoke"),
                                **overrides)
    return rlvr._Runner(config)


def _np(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


@functools.lru_cache(maxsize=None)
def _logp_fn(r):
    return jax.jit(functools.partial(rlvr_steps.completion_logprobs, r.graphdef,
                                     temperature=r.settings.temperature))


def _logp(r, params, batch):
    return np.asarray(_logp_fn(r)(params, batch.prompt_tokens, batch.prompt_lengths,
                                  batch.completion_tokens, batch.completion_mask))


def test_completion_logprobs_match_sampler():
    r = _runner()
    batch, metrics = r.rollouts(r.init_params, step=0)
    np.testing.assert_allclose(_logp(r, r.init_params, batch), batch.sample_logp, atol=2e-5)
    # Rows are grouped G per prompt: the G rows of a group share the prompt.
    g = r.config.rl.group_size
    tokens = batch.prompt_tokens.reshape(-1, g, batch.prompt_tokens.shape[1])
    assert (tokens == tokens[:, :1]).all()
    assert metrics["reward_mean"] == pytest.approx(float(np.mean(batch.rewards)))


def _fake_batch(r, rewards, seed=0):
    rng = np.random.default_rng(seed)
    b = len(rewards)
    problems = r.problems.draw(1, 0, 0, b // r.config.rl.group_size)
    prompts = r.codec.prompts(problems, repeat=r.config.rl.group_size)
    n = r.config.max_new_tokens
    completion = rng.integers(3, 32, size=(b, n)).astype(np.int32)
    lengths = rng.integers(1, n + 1, size=b)
    mask = (np.arange(n)[None] < lengths[:, None]).astype(np.int32)
    completion = np.where(mask > 0, completion, 0).astype(np.int32)
    return rlvr_steps.RolloutBatch(
        prompt_tokens=prompts.tokens, prompt_lengths=prompts.lengths,
        completion_tokens=completion, completion_mask=mask,
        sample_logp=np.zeros((b, n), np.float32), rewards=np.asarray(rewards, np.float32))


def _logp_sum(r, params, batch):
    return _logp(r, params, batch).sum(axis=1)


def test_update_moves_toward_rewarded_samples_and_advantages_match_numpy():
    r = _runner()   # the KL term has zero gradient here: the reference equals the policy
    b = r.config.rl.num_prompts * r.config.rl.group_size
    g = r.config.rl.group_size
    rewards = np.zeros(b, np.float32)
    rewards[::g] = 1.0                    # the first sample of each group is right
    batch = _fake_batch(r, rewards)
    before = _logp_sum(r, r.init_params, batch)
    state = r.init_state(r._copy(r.init_params))
    new_state, metrics = r.update(state, batch, step=0)
    after = _logp_sum(r, new_state.params, batch)
    delta = after - before
    assert (delta[::g] > 0).all()                           # rewarded: more likely
    assert np.mean(delta.reshape(-1, g)[:, 1:]) < 0         # the others: less likely on average
    # GRPO advantages: (r - mean) / (std + 1e-4) over each group (unbiased std).
    r_pg = rewards.reshape(-1, g)
    adv = (r_pg - r_pg.mean(axis=1, keepdims=True)) / (r_pg.std(axis=1, ddof=1,
                                                                  keepdims=True) + 1e-4)
    assert float(metrics["advantage_abs_mean"]) == pytest.approx(np.abs(adv).mean(), rel=1e-6)
    assert int(new_state.step) == 1


def test_equal_rewards_leave_parameters_unchanged():
    # Zero advantages, and a KL term at its minimum (policy == reference), give a zero
    # gradient, and AdamW (no weight decay) then does not move the parameters at all.
    r = _runner()
    b = r.config.rl.num_prompts * r.config.rl.group_size
    batch = _fake_batch(r, np.full(b, 0.5, np.float32), seed=1)
    params0 = _np(r.init_params)
    state = r.init_state(r._copy(r.init_params))
    new_state, metrics = r.update(state, batch, step=0)
    assert float(metrics["grad_norm"]) == 0.0
    jax.tree.map(np.testing.assert_array_equal, _np(new_state.params), params0)


def test_sharded_update_equals_unsharded():
    r = _runner()
    b = r.config.rl.num_prompts * r.config.rl.group_size
    rng = np.random.default_rng(3)
    batch = _fake_batch(r, rng.integers(0, 2, size=b).astype(np.float32), seed=3)
    state = r.init_state(r._copy(r.init_params))
    single = jax.devices()[0]
    state_1 = jax.device_put(_np(state), single)
    batch_1 = jax.device_put(batch, single)
    plain = jax.jit(functools.partial(rlvr_steps.rl_update, r.graphdef, r.optimizer, r.loss_fn,
                                      r.settings))
    key = jax.random.fold_in(r.key_update, 0)
    want_state, want_metrics = plain(state_1, batch_1, key)
    got_state, got_metrics = r.update(state, batch, step=0)
    assert len(jax.tree.leaves(got_state.params)[0].sharding.device_set) == 8
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
                 _np(got_state.params), _np(want_state.params))
    for k in ("loss", "kl", "entropy", "grad_norm"):
        np.testing.assert_allclose(float(got_metrics[k]), float(want_metrics[k]), rtol=1e-5,
                                   atol=1e-7)


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_off_policy_iterations_move_the_ratio(num_iterations):
    # mu passes over 2 minibatches: after the first update the ratio departs from 1 (with
    # mu = 1 too: the second minibatch was sampled by the policy before the first update).
    r = _runner("grpo", **{"rl.num_iterations": num_iterations, "rl.num_minibatches": 2})
    b = r.config.rl.num_prompts * r.config.rl.group_size
    batch = _fake_batch(r, np.random.default_rng(0).integers(0, 2, b).astype(np.float32))
    # Behaviour log-probs equal to the current policy's, as the sampler's would be.
    batch = batch.replace(sample_logp=_logp(_runner(), r.init_params, batch))
    state = r.init_state(r._copy(r.init_params))
    _, metrics = r.update(state, batch, step=0)
    assert float(metrics["ratio_max"]) > 1.0 + 1e-4 or float(metrics["ratio_min"]) < 1.0 - 1e-4
    assert abs(float(metrics["ratio_mean"]) - 1.0) < 0.2


class _HalfTask:
    """Reward 1 when the completion's first character is an even digit: mixed groups."""

    name = "half"

    def __init__(self, inner):
        self.inner = inner

    def sample(self, rng, n):
        return self.inner.sample(rng, n)

    def verify(self, problem, completion):
        from symbiosis_jax import tasks

        ok = completion[:1] in ("0", "2", "4", "6", "8")
        return tasks.Verdict(float(ok), ok)


def test_dynamic_sampling_keeps_only_informative_groups():
    r = _runner()      # same compiled sampler; switch dynamic sampling on for this call
    r.config.unlock()
    r.config.rl.dynamic_sampling, r.config.rl.max_refill_rounds = True, 6
    r.config.rl.require_stop = False
    inner = r.task
    r.task = r.problems.task = _HalfTask(inner)
    try:
        batch, metrics = r.rollouts(r.init_params, step=0)
        r.config.rl.dynamic_sampling = False
        plain, m2 = r.rollouts(r.init_params, step=0)
    finally:
        r.task = r.problems.task = inner
        r.config.rl.require_stop = True
    g, num_prompts = r.config.rl.group_size, r.config.rl.num_prompts
    assert batch.rewards.shape == (num_prompts * g,)
    # Without dynamic sampling the first round is used as is, and (with this seed) it holds a
    # group whose rewards are all equal, so the dynamic run had to sample again.
    assert m2["sampling_rounds"] == 1
    plain_std = np.asarray(plain.rewards).reshape(-1, g).std(axis=1)
    assert (plain_std == 0).any()
    assert metrics["sampling_rounds"] >= 2 and metrics["kept_groups"] == num_prompts
    assert (np.asarray(batch.rewards).reshape(-1, g).std(axis=1) > 0).all()
    # The first round's informative groups are kept (same keys: the same first round).
    informative = {t.tobytes() for t, s in zip(_groups(plain, g), plain_std) if s > 0}
    assert informative and informative <= {t.tobytes() for t in _groups(batch, g)}


def _groups(batch, g):
    """Completion tokens of a rollout batch as [groups, G, N]."""
    tokens = np.asarray(batch.completion_tokens)
    return tokens.reshape(-1, g, tokens.shape[-1])


class _AlwaysTask(_HalfTask):
    """Every completion passes."""

    def verify(self, problem, completion):
        from symbiosis_jax import tasks

        return tasks.Verdict(1.0, True)


def test_sft_stops_once_validation_target_is_reached():
    r = _runner()
    r.config.unlock()
    r.config.sft.num_steps, r.config.sft.eval_every = 6, 2
    r.config.sft.target_pass_at_1 = 0.5
    r.config.rl.require_stop = False
    inner = r.task
    r.task = r.problems.task = _AlwaysTask(inner)
    logged = []
    try:
        r.run_sft(r.init_params, log_fn=lambda step, m: logged.append((step, dict(m))))
    finally:
        r.task = r.problems.task = inner
        r.config.rl.require_stop = True
        r.config.sft.num_steps, r.config.sft.target_pass_at_1 = 2, 0.0
    # Steps 0 and 1 ran; validation after step 1 found pass@1 = 1 >= 0.5 and stopped.
    assert [s for s, _ in logged] == [0, 1]
    assert logged[-1][1]["sft_val_pass@1"] == 1.0
    # Validation problems are fresh training-distribution problems, never held-out ones.
    held_out = {p.prompt for p in r.problems.eval}
    assert not held_out & {p.prompt for p in r.problems.valid}
