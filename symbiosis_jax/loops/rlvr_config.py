"""Validation of RLVR configs and the choice of loss, before anything is built or compiled.

Every check raises a `ValueError` naming the config field and what is allowed, e.g.
`config.rl.loss='ppo' is not one of ('grpo', 'dapo', 'gspo', 'dr_grpo')`.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import numpy as np

from symbiosis_jax import losses, tasks, training

# The losses `config.rl.loss` names. A new loss is one entry here: a pure function with the
# signature of `losses.grpo_loss` (keyword-only hyperparameters, which `config.rl.loss_kwargs`
# is checked against); `experiments/compare_rlvr.py --losses` then accepts it too.
LOSSES = {
    "grpo": losses.grpo_loss,
    "dapo": losses.dapo_loss,
    "gspo": losses.gspo_loss,
    "dr_grpo": losses.dr_grpo_loss,
}

# Losses whose group advantages are not divided by the group's std when `rl.normalize_std`
# is None (the default; every other loss divides): Dr. GRPO (arXiv:2503.20783) drops it.
_NO_STD_NORMALIZATION = ("dr_grpo",)


def _loss_params(loss: str) -> set[str]:
    sig = inspect.signature(LOSSES[loss])
    return {n for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY}


def loss_settings(config) -> tuple[str, dict, bool]:
    """Returns `(loss name, loss keyword arguments, normalize_std)` from `config.rl`."""
    rl = config.rl
    kwargs = dict(rl.get("loss_kwargs", {}) or {})
    kwargs.pop("ref_logp", None)
    normalize_std = rl.get("normalize_std", None)
    if normalize_std is None:
        normalize_std = rl.loss not in _NO_STD_NORMALIZATION
    return rl.loss, kwargs, bool(normalize_std)


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _int_at_least(name: str, value: Any, low: int) -> None:
    _need(isinstance(value, int) and not isinstance(value, bool) and value >= low,
          f"config.{name}={value!r} must be an int >= {low}")


def _check_loss_values(loss: str, kwargs: dict) -> None:
    """Traces the loss once on `[1, 1]` shapes (no compile), so its own checks of the values
    (e.g. `beta >= 0`, `epsilon_low > 0`) run now, not inside the first jitted update."""
    z = jax.ShapeDtypeStruct((1, 1), np.float32)
    try:
        jax.eval_shape(lambda lp, old, adv, m, ref: LOSSES[loss](lp, old, adv, m, ref_logp=ref,
                                                                  **kwargs),
                       z, z, jax.ShapeDtypeStruct((1,), np.float32), z, z)
    except ValueError as e:
        raise ValueError(f"config.rl.loss_kwargs for {loss}_loss: {e}") from e


def _check_lengths(config, task) -> None:
    """Checks sampled prompts (bos included) fit `max_prompt_length` and the shortest sampled
    demonstration (eos included) fits `max_new_tokens`, with the config's tokenizer.

    A demonstration is a correct completion: when none fits, every reward is 0. (Longer ones
    may exist; the SFT warm-start stops at one it draws.)
    """
    from symbiosis_jax import models

    try:
        tok = models.load_tokenizer(config.tokenizer)
    except (ValueError, OSError) as e:
        raise ValueError(f"config.tokenizer={config.tokenizer!r} is not 'char', 'ascii' or a "
                         f"folder with tokenizer.json ({e})") from e
    problems = task.sample(np.random.default_rng([config.seed, 0, 0, 0]), 64)

    def encode(text):
        try:
            return tok.encode(text)
        except ValueError as e:
            raise ValueError(f"config.tokenizer={config.tokenizer!r} cannot encode the task's "
                             f"text {text!r}: {e}") from e

    bos = int(tok.bos_id is not None)
    for p in problems:
        n = len(encode(p.prompt)) + bos
        _need(n <= config.max_prompt_length,
              f"config.max_prompt_length={config.max_prompt_length} is too small: the prompt "
              f"{p.prompt!r} needs {n} tokens (bos included)")
    demos = [(p.demonstration or p.answer) for p in problems]
    needs = [len(encode(d)) + 1 for d in demos]
    i = min(range(len(demos)), key=needs.__getitem__)
    _need(needs[i] <= config.max_new_tokens,
          f"config.max_new_tokens={config.max_new_tokens} is too small: the task's shortest "
          f"demonstration {demos[i]!r} needs {needs[i]} tokens (eos included)")


def validate_config(config) -> None:
    """Checks an RLVR config; raises `ValueError` naming the first bad field.

    Checks the loop name, task (name and arguments), loss (name and keyword arguments), sizes
    (positive; `group_size >= 2` when advantages are std-normalised; batches divisible into
    minibatches), sampling temperature, DAPO settings, evaluation, checkpoint, optimizer and mesh.
    """
    _need(config.get("loop", "rlvr") == "rlvr", f"config.loop={config.get('loop')!r} is not 'rlvr'")
    task = config.task
    _need(task.name in tasks.TASKS,
          f"config.task.name={task.name!r} is not one of {tuple(tasks.TASKS)}")
    task_obj = tasks.make_task(task.name, **dict(task.get("kwargs", {}) or {}))  # validates
    _int_at_least("seed", config.seed, 0)
    rl = config.rl
    _need(rl.loss in LOSSES, f"config.rl.loss={rl.loss!r} is not one of {tuple(LOSSES)}")
    allowed = _loss_params(rl.loss)
    for k in dict(rl.get("loss_kwargs", {}) or {}):
        _need(k in allowed, f"config.rl.loss_kwargs has {k!r}, which {rl.loss}_loss does not "
                            f"take; allowed: {sorted(allowed - {'ref_logp'})}")
    _check_loss_values(rl.loss, {k: v for k, v in dict(rl.get("loss_kwargs", {}) or {}).items()
                                 if k != "ref_logp"})
    for name in ("max_prompt_length", "max_new_tokens"):
        _int_at_least(name, config[name], 1)
    for name in ("num_steps", "num_prompts", "num_iterations", "num_minibatches"):
        _int_at_least(f"rl.{name}", rl[name], 1)
    _need(isinstance(rl.group_size, int) and not isinstance(rl.group_size, bool),
          f"config.rl.group_size={rl.group_size!r} must be an int >= 2")  # >= 2: checked below
    _int_at_least("rl.max_refill_rounds", rl.max_refill_rounds, 0)
    _int_at_least("rl.overlong_buffer", rl.overlong_buffer, 0)
    _need(rl.overlong_buffer <= config.max_new_tokens,
          f"config.rl.overlong_buffer={rl.overlong_buffer} must be <= max_new_tokens="
          f"{config.max_new_tokens}")
    _, _, normalize_std = loss_settings(config)
    # Advantages are group-relative (reward minus its group's mean, divided by the
    # group's std when normalize_std): a group of one has no std, and without the
    # division every advantage is 0, so the run would train on nothing.
    _need(rl.group_size >= 2,
          f"config.rl.group_size={rl.group_size} must be >= 2" + (
              " when advantages are divided by the group std (normalize_std=True)" if normalize_std
              else ": advantages are relative to the group's mean reward, so with one sample "
                   "per prompt every advantage is 0"))
    batch = rl.num_prompts * rl.group_size
    _need(batch % rl.num_minibatches == 0,
          f"config.rl.num_prompts * group_size = {batch} must be divisible by "
          f"config.rl.num_minibatches={rl.num_minibatches}")
    _need(isinstance(rl.temperature, (int, float)) and rl.temperature > 0,
          f"config.rl.temperature={rl.temperature!r} must be > 0")
    sft = config.sft
    _int_at_least("sft.num_steps", sft.num_steps, 0)
    _int_at_least("sft.batch_size", sft.batch_size, 1)
    _int_at_least("sft.warmup_steps", sft.warmup_steps, 0)
    _need(sft.learning_rate > 0, f"config.sft.learning_rate={sft.learning_rate!r} must be > 0")
    _need(sft.max_grad_norm is None or sft.max_grad_norm >= 0,
          f"config.sft.max_grad_norm={sft.max_grad_norm!r} must be > 0, or 0/None to disable")
    target = sft.get("target_pass_at_1", 0.0)
    _need(isinstance(target, (int, float)) and 0.0 <= target <= 1.0,
          f"config.sft.target_pass_at_1={target!r} must be in [0, 1] (0 = train all steps)")
    if "eval_every" in sft:
        _int_at_least("sft.eval_every", sft.eval_every, 1)
    ev = config.eval
    _int_at_least("eval.every", ev.every, 1)
    _int_at_least("eval.num_problems", ev.num_problems, 1)
    _int_at_least("eval.pass_k", ev.pass_k, 0)
    _int_at_least("eval.seed", ev.seed, 0)
    _int_at_least("checkpoint.every", config.checkpoint.every, 1)
    _int_at_least("checkpoint.max_to_keep", config.checkpoint.max_to_keep, 1)
    training.validate_optimizer_config(config.optimizer)
    _check_lengths(config, task_obj)
    for name, value in dict(config.model).items():
        if isinstance(value, int):
            _int_at_least(f"model.{name}", value, 1)
    from symbiosis_jax import parallel

    parallel.check_auto_axis_types(config.mesh, loop="RLVR")
    # The batch is split as the logical "batch" rule says (data x fsdp); a mesh is cheap to build.
    data = parallel.data_parallel_size(parallel.make_mesh(config.mesh))
    for name, size in (("rl.num_prompts * rl.group_size", batch),
                       ("sft.batch_size", sft.batch_size),
                       ("eval.num_problems", ev.num_problems)):
        _need(size % data == 0,
              f"config.{name} = {size} must be divisible by the data-parallel size {data} "
              "(mesh data * fsdp)")
