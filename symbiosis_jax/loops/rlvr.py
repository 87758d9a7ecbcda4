"""RLVR driver: prompts, G samples each, verify, group advantages, clipped policy update.

`train(config, *, workdir, resume=False)` runs, from a config (see `configs/rlvr_common.py`):

1. an optional SFT warm-start on the task's demonstrations (the reference policy is its result);
2. RL steps: draw `P` prompts, sample `G` completions each with the compiled KV-cache sampler,
   decode and verify them on the host, optionally drop zero-variance groups and refill (DAPO
   dynamic sampling) and add DAPO's overlong penalty, then one jitted, sharded, donated update
   (`mu` passes of minibatch steps of GRPO / DAPO / GSPO / Dr. GRPO);
3. held-out evaluation (greedy pass@1, sampled pass@1 and pass@k), metrics to JSONL and
   TensorBoard, a progress bar, periodic atomic orbax checkpoints and a final PNG plot.

Determinism: every random draw is a function of `(config.seed, step)` (numpy generators seeded by
`[seed, phase, step, round]` for problems, `jax.random.fold_in` for keys), so resuming from a
checkpoint at step s replays steps s+1.. exactly; `--resume` ends with the same parameters as an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from symbiosis_jax import models, parallel, tasks, training
from symbiosis_jax.loops import rlvr_steps
from symbiosis_jax.loops.rlvr_config import (LOSSES, loss_settings, validate_config)

__all__ = ["LOSSES", "RLVRResult", "evaluate", "fit", "train", "validate_config"]

_PHASE_SFT, _PHASE_RL, _PHASE_EVAL, _PHASE_VALID = 0, 1, 2, 3


@dataclasses.dataclass
class RLVRResult:
    """What `train` returns.

    Attributes:
        state: the final `rlvr_steps.TrainState`.
        history: the metric records written this run.
        eval_before: held-out metrics at RL step 0 (after SFT), or None when resumed past it.
        eval_after: held-out metrics after the last step.
        plot_path: the PNG written, or None.
    """

    state: Any
    history: list
    eval_before: dict | None
    eval_after: dict
    plot_path: str | None


class _Problems:
    """Deterministic problem streams: training draws exclude the held-out prompts."""

    def __init__(self, task, *, seed: int, eval_seed: int, num_eval: int):
        self.task = task
        self.seed = seed
        self.eval = task.sample(np.random.default_rng([eval_seed, _PHASE_EVAL]), num_eval)
        self._held_out = {p.prompt for p in self.eval}
        # Validation problems for the SFT stopping rule: training distribution, not held out.
        self.valid = self.draw(_PHASE_VALID, 0, 0, num_eval)

    def draw(self, phase: int, step: int, round_: int, num: int) -> list:
        rng = np.random.default_rng([self.seed, phase, step, round_])
        out = []
        for attempt in range(100):
            out += [p for p in self.task.sample(rng, 2 * num) if p.prompt not in self._held_out]
            if len(out) >= num:
                return out[:num]
            if not out:            # 2 * num draws, every one held out: stop now, not in minutes
                break
        raise ValueError(
            f"config.eval.num_problems={len(self.eval)} holds out {len(self._held_out)} distinct "
            f"prompts, (almost) all the task has: {attempt + 1} rounds of training draws found "
            f"{len(out)} of the {num} problems needed; lower eval.num_problems")


class _Codec:
    """Text <-> padded token arrays for one tokenizer and fixed lengths."""

    def __init__(self, tokenizer, *, max_prompt_length: int, max_new_tokens: int):
        self.tok = tokenizer
        self.max_prompt_length = max_prompt_length
        self.max_new_tokens = max_new_tokens

    def prompts(self, problems, repeat: int = 1) -> rlvr_steps.PromptBatch:
        ids = []
        for p in problems:
            t = self.tok.encode(p.prompt)
            if self.tok.bos_id is not None:
                t = [self.tok.bos_id] + t
            if len(t) > self.max_prompt_length:
                raise ValueError(
                    f"prompt {p.prompt!r} has {len(t)} tokens > max_prompt_length="
                    f"{self.max_prompt_length}")
            ids.append(t)
        tokens, lengths = _left_pad(ids, pad_id=self.tok.pad_id, length=self.max_prompt_length)
        return rlvr_steps.PromptBatch(tokens=np.repeat(tokens, repeat, axis=0),
                                      lengths=np.repeat(lengths, repeat, axis=0))

    def demonstrations(self, problems) -> tuple[np.ndarray, np.ndarray]:
        n = self.max_new_tokens
        tokens = np.full((len(problems), n), self.tok.pad_id, np.int32)
        mask = np.zeros((len(problems), n), np.int32)
        for i, p in enumerate(problems):
            t = self.tok.encode(p.demonstration or p.answer) + [self.tok.eos_id]
            if len(t) > n:
                raise ValueError(f"demonstration {p.demonstration!r} needs {len(t)} tokens "
                                 f"(eos included) > max_new_tokens={n}")
            tokens[i, :len(t)] = t
            mask[i, :len(t)] = 1
        return tokens, mask

    def completions(self, tokens_bn: np.ndarray, lengths_b: np.ndarray) -> list[str]:
        return [self.tok.decode(row[:n]) for row, n in zip(tokens_bn.tolist(),
                                                           lengths_b.tolist())]


def _left_pad(ids, *, pad_id, length):
    from symbiosis_jax import sampling

    return sampling.left_pad(ids, pad_id=pad_id, length=length)


def _verify(task, problems, completions, stopped, *, require_stop: bool):
    rewards, passed = tasks.verify_batch(task, problems, completions)
    if require_stop:
        rewards = np.where(stopped, rewards, 0.0).astype(np.float32)
        passed = passed & stopped
    return rewards, passed


def _tree_shardings(tree, mesh, *, like=None):
    """Shardings for the leaves of `tree` (arrays or abstract arrays).

    A leaf already on `mesh` keeps its sharding. With `like=(params, param_shardings)`, a subtree
    of `tree` with the structure of `params` (optax moments) takes `param_shardings`. Everything
    else (step counts, scalars) is replicated.
    """
    rep = parallel.replicated(mesh)
    if like is not None:
        params, param_shardings = like
        param_def = jax.tree.structure(params)

        def is_params(x):
            return jax.tree.structure(x) == param_def

        def sub(x):
            if is_params(x):
                return param_shardings
            return jax.tree.map(lambda _: rep, x)

        return jax.tree.map(sub, tree, is_leaf=is_params)

    def one(x):
        s = getattr(x, "sharding", None)
        return s if isinstance(s, jax.sharding.NamedSharding) and s.mesh == mesh else rep

    return jax.tree.map(one, tree)


class _Runner:
    """Builds the model, mesh and jitted steps from a config; used by `train` and `evaluate`."""

    def __init__(self, config: ml_collections.ConfigDict):
        validate_config(config)
        self.config = config
        c = config
        self.task = tasks.make_task(c.task.name, **dict(c.task.get("kwargs", {})))
        self.tokenizer = models.load_tokenizer(c.tokenizer)
        self.codec = _Codec(self.tokenizer, max_prompt_length=c.max_prompt_length,
                            max_new_tokens=c.max_new_tokens)
        self.mesh = parallel.make_mesh(c.mesh)  # its axes and axis_types
        self.batch_sharding = parallel.batch_sharding(self.mesh)
        self.replicated = parallel.replicated(self.mesh)
        self.model_config = models.TransformerConfig(vocab_size=self.tokenizer.vocab_size,
                                                     **dict(c.model))
        self.seed = None
        self.reseed(c.seed)
        self.param_shardings = _tree_shardings(self.init_params, self.mesh)

        loss_name, loss_kwargs, normalize_std = loss_settings(c)
        self.loss_fn = functools.partial(LOSSES[loss_name], **loss_kwargs)
        self.use_reference = bool(loss_kwargs.get("beta", 0.0) > 0 or c.rl.track_reference_kl)
        self.settings = rlvr_steps.StepSettings(
            group_size=c.rl.group_size, num_iterations=c.rl.num_iterations,
            num_minibatches=c.rl.num_minibatches, temperature=float(c.rl.temperature),
            normalize_std=normalize_std, use_reference=self.use_reference,
            max_new_tokens=c.max_new_tokens, eos_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id, share_prompt=True)
        self.optimizer = training.make_optimizer(c.optimizer)
        self._copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
        self._build_jits()

    def reseed(self, seed: int) -> None:
        """Sets what depends on `config.seed`: problem streams, PRNG keys, initial parameters.

        Nothing compiled depends on the seed (keys and parameters are arguments of the jitted
        steps), so a runner is reused across seeds: `_runner_for` calls this instead of
        building and compiling a new runner when only the seed differs.
        """
        if seed == self.seed:
            return
        c = self.config
        self.problems = _Problems(self.task, seed=seed, eval_seed=c.eval.seed,
                                  num_eval=c.eval.num_problems)
        key = jax.random.key(seed)
        self.key_init, self.key_sft, self.key_sample, self.key_update, self.key_eval = (
            jax.random.split(key, 5))
        mcfg = self.model_config
        with nnx.use_eager_sharding(False):
            model = parallel.create_sharded_model(
                lambda: models.Transformer(mcfg, rngs=nnx.Rngs(self.key_init)), self.mesh)
        graphdef, self.init_params = nnx.split(model)
        if self.seed is None:
            self.graphdef = graphdef  # the same for every seed; the jitted steps close over it
        self.seed = seed

    def _build_jits(self):
        gd, settings = self.graphdef, self.settings
        bs, rep, ps = self.batch_sharding, self.replicated, self.param_shardings

        def sample(params, key, prompts, greedy, group):
            out = rlvr_steps.sample_rollouts(gd, params, key, prompts, settings=settings,
                                             greedy=greedy, prompt_group_size=group)
            return out

        prompt_sh = rlvr_steps.PromptBatch(tokens=bs, lengths=bs)
        # RL batches (rows grouped G per prompt) prefill each prompt once; evaluation
        # batches have one row per prompt.
        group = settings.group_size if settings.share_prompt else 1
        self._sample = {
            (greedy, g): jax.jit(functools.partial(sample, greedy=greedy, group=g),
                                 in_shardings=(ps, rep, prompt_sh), out_shardings=bs)
            for greedy in (False, True) for g in {1, group}}

        c = self.config
        # Warm-up then a constant rate: the SFT model after k steps does not depend on
        # sft.num_steps, so the warm-start can be stopped wherever held-out accuracy is right.
        sft_opt = training.make_optimizer(ml_collections.ConfigDict(dict(
            learning_rate=c.sft.learning_rate, schedule="constant",
            warmup_steps=c.sft.warmup_steps, max_grad_norm=c.sft.max_grad_norm)))
        self.sft_optimizer = sft_opt
        sft_os = _tree_shardings(jax.eval_shape(sft_opt.init, self.init_params),
                                 self.mesh, like=(self.init_params, self.param_shardings))
        sft_sh = rlvr_steps.SFTBatch(prompt_tokens=bs, prompt_lengths=bs,
                                     completion_tokens=bs, completion_mask=bs)
        self._sft_init = jax.jit(sft_opt.init, in_shardings=(ps,), out_shardings=sft_os)
        self._sft_step = jax.jit(functools.partial(rlvr_steps.sft_step, gd, sft_opt),
                                 in_shardings=(ps, sft_os, sft_sh),
                                 out_shardings=(ps, sft_os, rep), donate_argnums=(0, 1))

        self.opt_shardings = _tree_shardings(
            jax.eval_shape(self.optimizer.init, self.init_params), self.mesh,
            like=(self.init_params, self.param_shardings))
        self.state_shardings = rlvr_steps.TrainState(
            step=rep, params=ps, opt_state=self.opt_shardings,
            ref_params=ps if self.use_reference else {})
        self._opt_init = jax.jit(self.optimizer.init, in_shardings=(ps,),
                                 out_shardings=self.opt_shardings)
        roll_sh = rlvr_steps.RolloutBatch(prompt_tokens=bs, prompt_lengths=bs,
                                          completion_tokens=bs, completion_mask=bs,
                                          sample_logp=bs, rewards=bs)
        self._update = jax.jit(
            functools.partial(rlvr_steps.rl_update, gd, self.optimizer, self.loss_fn, settings),
            in_shardings=(self.state_shardings, roll_sh, rep),
            out_shardings=(self.state_shardings, rep), donate_argnums=(0,))

    # -- phases ---------------------------------------------------------------------------

    def put(self, tree):
        return jax.device_put(tree, self.batch_sharding)

    def sample(self, params, key, prompts, *, greedy=False, grouped=False):
        """`grouped`: rows come in groups of `rl.group_size` equal prompts (an RL batch)."""
        group = self.settings.group_size if (grouped and self.settings.share_prompt) else 1
        return self._sample[(greedy, group)](params, key, self.put(prompts))

    def run_sft(self, params, *, log_fn=None):
        """Supervised warm-start; stops early once validation pass@1 reaches the target.

        With `sft.target_pass_at_1 > 0`, greedy pass@1 on a validation set (fresh problems from
        the training distribution, not the held-out set) is measured every `sft.eval_every`
        steps and SFT stops as soon as it reaches the target, so the RL phase starts from a
        model that is right about that often whatever the numerics of the platform.
        """
        c = self.config.sft
        if c.num_steps <= 0:
            return params
        target = float(c.get("target_pass_at_1", 0.0) or 0.0)
        every = int(c.get("eval_every", 20) or 20)
        opt_state = self._sft_init(params)
        params = self._copy(params)  # the caller's params stay valid (these are donated)
        for step in range(c.num_steps):
            problems = self.problems.draw(_PHASE_SFT, step, 0, c.batch_size)
            prompts = self.codec.prompts(problems)
            demo, mask = self.codec.demonstrations(problems)
            batch = rlvr_steps.SFTBatch(prompt_tokens=prompts.tokens,
                                        prompt_lengths=prompts.lengths,
                                        completion_tokens=demo, completion_mask=mask)
            params, opt_state, metrics = self._sft_step(params, opt_state, self.put(batch))
            if target > 0 and (step + 1) % every == 0:
                metrics = dict(metrics)
                metrics["sft_val_pass@1"] = self.greedy_pass_at_1(params, self.problems.valid)
                if log_fn is not None:
                    log_fn(step, metrics)
                if metrics["sft_val_pass@1"] >= target:
                    print(f"[rlvr] SFT: validation pass@1 {metrics['sft_val_pass@1']:.1%} >= "
                          f"{target:.0%} after {step + 1} steps; stopping", flush=True)
                    break
            elif log_fn is not None:
                log_fn(step, metrics)
        return params

    def greedy_pass_at_1(self, params, problems) -> float:
        """Fraction of `problems` whose greedy completion passes the verifier."""
        out = self.sample(params, self.key_eval, self.codec.prompts(problems), greedy=True)
        comps = self.codec.completions(np.asarray(out.tokens), np.asarray(out.lengths))
        _, passed = _verify(self.task, problems, comps, np.asarray(out.stopped),
                            require_stop=self.config.rl.require_stop)
        return float(np.mean(passed))

    def evaluate(self, params) -> dict:
        """Held-out greedy pass@1, sampled pass@1 and pass@k (k = eval.pass_k)."""
        c = self.config
        problems = self.problems.eval
        prompts = self.codec.prompts(problems)
        out = self.sample(params, self.key_eval, prompts, greedy=True)
        stopped = np.asarray(out.stopped)
        comps = self.codec.completions(np.asarray(out.tokens), np.asarray(out.lengths))
        _, passed = _verify(self.task, problems, comps, stopped,
                            require_stop=c.rl.require_stop)
        result = {"eval/pass@1": float(np.mean(passed)),
                  "eval/response_length": float(np.mean(np.asarray(out.lengths)))}
        k = c.eval.pass_k
        if k >= 1:
            prompts_k = self.codec.prompts(problems, repeat=k)
            out = self.sample(params, jax.random.fold_in(self.key_eval, 1), prompts_k)
            comps = self.codec.completions(np.asarray(out.tokens), np.asarray(out.lengths))
            _, passed_k = _verify(self.task, [p for p in problems for _ in range(k)], comps,
                                  np.asarray(out.stopped), require_stop=c.rl.require_stop)
            passed_k = passed_k.reshape(len(problems), k)
            result["eval/pass@1_sampled"] = float(np.mean(passed_k))
            result[f"eval/pass@{k}"] = float(np.mean(np.any(passed_k, axis=1)))
        return result

    def rollouts(self, params, step: int):
        """Samples, verifies and (optionally) filters one RL batch; returns (batch, metrics)."""
        c = self.config.rl
        g, p_num = c.group_size, c.num_prompts
        kept, dropped = [], []
        t_sample = t_verify = 0.0
        stats = {"reward_sum": 0.0, "pass_sum": 0.0, "length_sum": 0.0, "stopped_sum": 0.0,
                 "num": 0}
        rounds = 1 + (c.max_refill_rounds if c.dynamic_sampling else 0)
        for round_ in range(rounds):
            problems = self.problems.draw(_PHASE_RL, step, round_, p_num)
            prompts = self.codec.prompts(problems, repeat=g)
            t0 = time.perf_counter()
            key = jax.random.fold_in(jax.random.fold_in(self.key_sample, step), round_)
            out = self.sample(params, key, prompts, grouped=True)
            out = jax.device_get(out)
            t1 = time.perf_counter()
            comps = self.codec.completions(out.tokens, out.lengths)
            rewards, passed = _verify(self.task, [q for q in problems for _ in range(g)],
                                      comps, out.stopped, require_stop=c.require_stop)
            t_verify += time.perf_counter() - t1
            t_sample += t1 - t0
            if round_ == 0:
                stats.update(reward_sum=float(rewards.sum()), pass_sum=float(passed.sum()),
                             length_sum=float(out.lengths.sum()),
                             stopped_sum=float(out.stopped.sum()), num=len(rewards))
            for i in range(p_num):
                rows = slice(i * g, (i + 1) * g)
                group = (prompts.tokens[rows], prompts.lengths[rows], out.tokens[rows],
                         out.completion_mask[rows], out.logprobs[rows], rewards[rows],
                         out.lengths[rows])
                zero_var = bool(np.all(rewards[rows] == rewards[rows][0]))
                (dropped if (c.dynamic_sampling and zero_var) else kept).append(group)
            if len(kept) >= p_num:
                break
        groups = (kept + dropped)[:p_num]
        cols = [np.concatenate(x) for x in zip(*groups)]
        rewards = cols[5]
        if c.overlong_buffer > 0:
            rewards = rewards + np.asarray(advantages_overlong(
                cols[6], max_length=self.config.max_new_tokens,
                buffer_length=c.overlong_buffer))
        batch = rlvr_steps.RolloutBatch(
            prompt_tokens=cols[0], prompt_lengths=cols[1], completion_tokens=cols[2],
            completion_mask=cols[3], sample_logp=cols[4], rewards=rewards.astype(np.float32))
        n = max(stats["num"], 1)
        metrics = {"reward_mean": stats["reward_sum"] / n, "train/pass@1": stats["pass_sum"] / n,
                   "response_length": stats["length_sum"] / n,
                   "stop_fraction": stats["stopped_sum"] / n,
                   "time/sample": t_sample, "time/verify": t_verify,
                   "sampling_rounds": round_ + 1,
                   "kept_groups": min(len(kept), p_num)}
        return batch, metrics

    def init_state(self, params):
        """A fresh train state; `params` are copied (the update donates its state)."""
        ref = self._copy(params) if self.use_reference else {}
        return rlvr_steps.TrainState(
            step=jax.device_put(jnp.zeros((), jnp.int32), self.replicated),
            params=self._copy(params), opt_state=self._opt_init(params), ref_params=ref)

    def abstract_state(self):
        """The train state's shapes, dtypes and shardings (a restore target)."""
        shapes = jax.eval_shape(lambda p: self.init_state(p), self.init_params)
        return jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh),
                            shapes, self.state_shardings)

    def update(self, state, batch, step: int):
        key = jax.random.fold_in(self.key_update, step)
        return self._update(state, self.put(batch), key)


# Fields that change nothing compiled: a cached runner is reused across them (the seed through
# `_Runner.reseed`).
_RUN_ONLY_FIELDS = (("seed",), ("rl", "num_steps"), ("sft", "num_steps"), ("eval", "every"),
                    ("checkpoint", "every"),
                    ("checkpoint", "max_to_keep"), ("log", "progress_bar"),
                    ("log", "tensorboard"), ("log", "plot"))
# What may differ between a run and its --resume (not the seed: it picks the data and keys).
_RESUME_MAY_CHANGE = tuple(".".join(p) for p in _RUN_ONLY_FIELDS if p != ("seed",))
_RUNNERS: dict = {}
_MAX_RUNNERS = 4


def _runner_for(config) -> _Runner:
    """A `_Runner` for `config`, reused across calls differing only in seed, run length, logging.

    Reuse keeps the compiled steps, so a resumed run (or a test's second run) in the same
    process does not compile again. The cache holds the last few runners.
    """
    key_dict = config.to_dict()
    for path in _RUN_ONLY_FIELDS:
        node = key_dict
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    key = (repr(sorted(training.flatten_config(key_dict).items())), jax.device_count())
    if key not in _RUNNERS:
        if len(_RUNNERS) >= _MAX_RUNNERS:
            _RUNNERS.pop(next(iter(_RUNNERS)))
        _RUNNERS[key] = _Runner(config)
    runner = _RUNNERS.pop(key)
    _RUNNERS[key] = runner          # most recently used last
    runner.config = config
    runner.reseed(config.seed)
    return runner


_SFT_CACHE: dict = {}


def _cached_sft(runner: _Runner, *, log_fn):
    """`runner.run_sft`, memoised in-process on everything the warm-start depends on.

    Runs that share seed, model, task, tokenizer, lengths, held-out set and SFT settings (e.g.
    the four losses of `experiments/compare_rlvr.py`) share one warm-start; it is deterministic,
    so this changes nothing but time.
    """
    c = runner.config
    parts = {name: c.get(name) for name in ("seed", "model", "task", "tokenizer",
                                            "max_prompt_length", "max_new_tokens", "sft",
                                            "mesh")}
    parts["eval"] = (c.eval.seed, c.eval.num_problems)
    key = (repr(sorted(training.flatten_config({k: (v.to_dict() if hasattr(v, "to_dict") else v)
                                                for k, v in parts.items()}).items())),
           jax.device_count())
    if key not in _SFT_CACHE:
        logged = []

        def record(step, metrics):
            logged.append((step, jax.device_get(metrics)))

        params = runner.run_sft(runner.init_params, log_fn=record)
        _SFT_CACHE.clear()                     # keep one warm-start in memory
        _SFT_CACHE[key] = (jax.device_get(params), logged)
    else:
        print("[rlvr] SFT: reusing this process's warm-start with the same settings",
              flush=True)
    params, logged = _SFT_CACHE[key]
    for step, metrics in logged:               # the same SFT log lines in every run
        log_fn(step, metrics)
    return jax.device_put(params, runner.param_shardings)


def advantages_overlong(lengths, *, max_length, buffer_length):
    """DAPO's soft overlong penalty `[B]` (see `losses.overlong_reward_shaping`)."""
    from symbiosis_jax import losses

    return losses.overlong_reward_shaping(jnp.asarray(lengths), max_length=max_length,
                                                  buffer_length=buffer_length)


def _write_plot(records, path) -> str | None:
    """Held-out pass@1 and entropy against the RL step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [r for r in records if "eval/pass@1" in r]
    tr = [r for r in records if "entropy" in r]
    if not ev:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot([r["step"] for r in ev], [r["eval/pass@1"] for r in ev], "o-",
                 label="held-out pass@1 (greedy)")
    k_keys = [k for k in ev[-1] if k.startswith("eval/pass@") and k[10:].isdigit()
              and k != "eval/pass@1"]
    for k in k_keys:
        axes[0].plot([r["step"] for r in ev if k in r], [r[k] for r in ev if k in r], "s--",
                     label=f"held-out {k[5:]}")
    axes[0].set_xlabel("RL step")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    if tr:
        axes[1].plot([r["step"] for r in tr], [r["entropy"] for r in tr])
    axes[1].set_xlabel("RL step")
    axes[1].set_ylabel("policy entropy (nats/token)")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _metadata(config, step: int) -> dict:
    """Checkpoint metadata: the data position, the RNG derivation and the whole config.

    Problems for RL step s come from `numpy.random.default_rng([seed, 1, s, round])` and keys
    from `jax.random.fold_in(stream_key, s)`, so `(seed, step)` is the complete RNG state.
    """
    return {"step": step, "data_position": {"rl_step": step},
            "rng": {"seed": int(config.seed), "next_rl_step": step,
                    "streams": ["init", "sft", "sample", "update", "eval"]},
            "config": config.to_dict()}


def fit(config: ml_collections.ConfigDict, *, workdir: str, resume: bool = False
        ) -> RLVRResult:
    """Runs SFT warm-start (optional) then RLVR from `config`; see the module docstring.

    Args:
        config: an RLVR config (`configs/rlvr_common.py`); validated before anything compiles.
        workdir: where metrics (`metrics.jsonl`, `tb/`), checkpoints (`checkpoints/`) and the plot
            (`curves.png`) go.
        resume: continue from the latest checkpoint in `workdir` (exactly: same final
            parameters as an uninterrupted run).

    Returns:
        An `RLVRResult`.
    """
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    c = config
    ckpt, latest = training.run_checkpointer(workdir, resume=resume,
                                             max_to_keep=c.checkpoint.max_to_keep)
    if latest is not None:
        training.check_resume_config(config, ckpt.read_metadata(latest).get("config"),
                                     ckpt.directory, may_change=_RESUME_MAY_CHANGE)
    runner = _runner_for(config)
    # Resumed: rows logged after the checkpoint are dropped (they are logged again).
    writer = training.MetricsWriter(workdir, use_tensorboard=c.log.tensorboard,
                                    append=latest is not None, drop_after=latest)
    history: list = []

    def log(step, metrics):
        history.append(writer.write(step, metrics))

    start = 0
    eval_before = None
    if latest is not None:
        state, meta = ckpt.restore(latest, target=runner.abstract_state())
        start = int(meta["data_position"]["rl_step"])
        print(f"[rlvr] resumed from {ckpt.directory} at RL step {start}", flush=True)
    else:
        params = runner.init_params
        if c.sft.num_steps > 0:
            ev0 = runner.evaluate(params)
            print(f"[rlvr] before SFT: held-out pass@1 {ev0['eval/pass@1']:.1%}", flush=True)
            t0 = time.perf_counter()
            params = _cached_sft(runner, log_fn=lambda s, m: (
                log(-c.sft.num_steps + s, m)
                if s % 10 == 0 or s == c.sft.num_steps - 1 or "sft_val_pass@1" in m else None))
            print(f"[rlvr] SFT done in {time.perf_counter() - t0:.1f}s", flush=True)
        state = runner.init_state(params)
        eval_before = runner.evaluate(state.params)
        log(0, eval_before)
        print(f"[rlvr] RL step 0: held-out pass@1 {eval_before['eval/pass@1']:.1%}", flush=True)

    bar = training.ProgressBar(c.rl.num_steps, initial=start, enabled=c.log.progress_bar,
                               keys=("reward_mean", "eval/pass@1", "entropy"), desc="rlvr")
    last_eval = None
    for step in range(start, c.rl.num_steps):
        t_step = time.perf_counter()
        batch, metrics = runner.rollouts(state.params, step)
        t0 = time.perf_counter()
        state, update_metrics = runner.update(state, batch, step)
        update_metrics = jax.device_get(update_metrics)
        metrics["time/update"] = time.perf_counter() - t0
        metrics.update({k: float(v) for k, v in update_metrics.items()})
        metrics["time/step"] = time.perf_counter() - t_step
        done = step + 1
        if done % c.eval.every == 0 or done == c.rl.num_steps:
            t0 = time.perf_counter()
            last_eval = runner.evaluate(state.params)
            metrics.update(last_eval)
            metrics["time/eval"] = time.perf_counter() - t0
            bar.write(f"[rlvr] RL step {done}: held-out pass@1 {last_eval['eval/pass@1']:.1%}")
        log(done, metrics)
        bar.update(1, metrics)
        if done % c.checkpoint.every == 0 or done == c.rl.num_steps:
            ckpt.save(done, state, _metadata(c, done))
    bar.close() if hasattr(bar, "close") else None
    ckpt.close()
    if last_eval is None:
        last_eval = runner.evaluate(state.params)
    writer.close()
    plot_path = None
    if c.log.plot:
        records = training.read_jsonl(writer.path)
        plot_path = _write_plot([r for r in records if r["step"] >= 0],
                                os.path.join(workdir, "curves.png"))
    before = "n/a (resumed)" if eval_before is None else f"{eval_before['eval/pass@1']:.1%}"
    print(f"[rlvr] held-out pass@1 (greedy): before RL {before} -> after RL "
          f"{last_eval['eval/pass@1']:.1%}; plot: {plot_path}", flush=True)
    return RLVRResult(state=state, history=history, eval_before=eval_before,
                      eval_after=last_eval, plot_path=plot_path)


def train(config: ml_collections.ConfigDict, *, workdir: str, resume: bool = False) -> dict:
    """The driver's entry (`experiments/train.py`): `fit`, summarised as a dict.

    Args:
        config: an RLVR config (`configs/rlvr_common.py`); passed to `fit`, which validates it.
        workdir: the run's output directory (metrics, checkpoints, plot); passed to `fit` and
            echoed back under `"workdir"`.
        resume: continue from the latest checkpoint in `workdir` (see `fit`); a resumed run that
            skipped RL step 0 has no `"before/..."` entries.

    Returns:
        `{"before/<metric>": ..., "after/<metric>": ..., "plot": path, "workdir": workdir}`.
    """
    result = fit(config, workdir=workdir, resume=resume)
    out = {f"after/{k[5:]}": v for k, v in result.eval_after.items()}
    if result.eval_before is not None:
        out.update({f"before/{k[5:]}": v for k, v in result.eval_before.items()})
    out["plot"] = result.plot_path
    out["workdir"] = workdir
    return out


def evaluate(config: ml_collections.ConfigDict, params) -> dict:
    """Held-out metrics of `params` on `config`'s task (greedy pass@1, pass@k)."""
    return _runner_for(config).evaluate(params)
