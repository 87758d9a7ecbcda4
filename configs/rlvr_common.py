"""Shared fragment of the RLVR configs (GRPO, DAPO, GSPO, Dr. GRPO on arithmetic).

`rlvr_config(loss=..., variant=...)` returns the full ConfigDict read by
`symbiosis_jax.loops.rlvr.train`; the per-loss files only pick the loss and its settings.

Variants:
    None / "default": the `make demo` run (2-digit addition, SFT warm-up, then RL; CPU minutes).
    "smoke": every size shrunk so one RL step runs in seconds (tests, Colab).
    "r1zero": the longer headline run of docs/rlvr.md.
"""

from __future__ import annotations

import ml_collections

from configs import common

VARIANTS = ("default", "smoke", "r1zero")


def model_config() -> ml_collections.ConfigDict:
    """A 0.14M-parameter Llama-style model (135,488 with the 32-symbol character vocabulary)."""
    return ml_collections.ConfigDict(dict(
        num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=4, head_dim=16, mlp_dim=256))


def rlvr_config(*, loss: str, variant: str | None = None) -> ml_collections.ConfigDict:
    """The RLVR config for `loss` in one of `VARIANTS`."""
    variant = variant or "default"
    if variant not in VARIANTS:
        raise ValueError(f"config variant {variant!r} is not one of {VARIANTS}")
    c = ml_collections.ConfigDict()
    c.name = f"{loss}_arithmetic"
    c.loop = "rlvr"
    c.seed = 0
    c.task = ml_collections.ConfigDict(dict(
        name="arithmetic", kwargs=dict(num_digits=2, min_digits=2, operations=("+",), reverse_answer=True)))
    c.tokenizer = "char"
    c.model = model_config()
    c.max_prompt_length = 8      # prompt tokens, bos included (left-padded to this)
    c.max_new_tokens = 5         # completion tokens, eos included

    # Supervised warm-start on the task's demonstrations (0 steps skips it).
    # Warm-up then a constant rate, stopped as soon as greedy pass@1 on fresh validation
    # problems reaches target_pass_at_1 (checked every eval_every steps; num_steps is the cap).
    c.sft = ml_collections.ConfigDict(dict(
        num_steps=1000, batch_size=64, learning_rate=1e-3, warmup_steps=10, max_grad_norm=1.0,
        target_pass_at_1=0.2, eval_every=20))

    c.rl = ml_collections.ConfigDict(dict(
        num_steps=2000,
        num_prompts=16,            # P prompts per step
        group_size=8,              # G samples per prompt
        num_iterations=1,          # mu: optimisation passes over each batch
        num_minibatches=1,         # minibatches per pass (P * G must divide evenly)
        temperature=1.0,
        loss=loss,
        loss_kwargs=ml_collections.ConfigDict(),   # forwarded to the loss (epsilon_*, beta...)
        normalize_std=True,        # divide advantages by the group std (Dr. GRPO: False)
        require_stop=True,         # a completion without eos earns reward 0
        dynamic_sampling=False,    # DAPO: drop zero-variance groups and refill
        max_refill_rounds=3,
        overlong_buffer=0,         # DAPO soft overlong penalty buffer (0 = off)
        track_reference_kl=True,   # log KL to the reference even when beta = 0
    ))
    c.optimizer = common.optimizer_config(
        learning_rate=5e-4, warmup_steps=20, total_steps=2000, min_lr_ratio=0.1,
        max_grad_norm=1.0)
    c.eval = ml_collections.ConfigDict(dict(every=20, num_problems=128, pass_k=8, seed=12345))
    c.checkpoint = ml_collections.ConfigDict(dict(every=50, max_to_keep=2))
    c.mesh = common.mesh_config()
    c.log = ml_collections.ConfigDict(dict(progress_bar=True, tensorboard=True, plot=True))

    if variant == "smoke":
        c.model = ml_collections.ConfigDict(dict(
            num_layers=1, embed_dim=32, num_heads=2, num_kv_heads=2, head_dim=16, mlp_dim=64))
        c.sft.num_steps = 2
        c.sft.batch_size = 16
        c.sft.target_pass_at_1 = 0.0
        c.rl.num_steps = 1
        c.rl.num_prompts = 4
        c.rl.group_size = 4
        c.optimizer.total_steps = 1
        c.optimizer.warmup_steps = 0
        c.eval.every = 1
        c.eval.num_problems = 16
        c.eval.pass_k = 0
        c.checkpoint.every = 1
        c.log.progress_bar = False
    elif variant == "r1zero":
        # The headline run of docs/rlvr.md: the default sizes, checkpointed less often.
        c.checkpoint.every = 200
    return c
