"""Seconds per GRPO step: symbiosis_jax's RLVR step vs TRL's GRPOTrainer, same shape, same run.

Shape: 8 prompts x 8 samples per step, 8 (and 16) new tokens, the 1.06M-parameter Llama-style
model (4 layers, width 128, 4 heads, MLP 512, vocab 32), randomly initialised, a character
tokenizer, 2-digit addition prompts with the arithmetic verifier as reward. Both sides run on the
CPU with one thread, the process pinned to one core, mu = 1, beta = 0 (TRL's defaults),
temperature 1; each step is sample + verify + advantages + one optimizer update. Timing starts after warm-up steps (compilation).

Allocator: by default the process keeps freed heap memory (glibc `mallopt(M_MMAP_MAX, 0)` and a
1 GiB `M_TRIM_THRESHOLD`, set once before either side runs, so both sides get it). glibc serves
every allocation above 32 MiB with a fresh `mmap` and unmaps it on free; XLA allocates an
executable's temporaries as one block, and the update's block is 30.9 MiB at 8 new tokens but
60.2 MiB at 16, so with glibc's defaults every 16-token step page-faults 60 MiB again (15,424
minor faults, ~15-20 ms on this VM). `--malloc=default` leaves glibc's settings alone.

Run:
    python benchmarks/grpo_step.py                     # both sides, 8 and 16 new tokens
    python benchmarks/grpo_step.py --sides=ours --new_tokens=8
    python benchmarks/grpo_step.py --malloc=default    # glibc's default mmap/trim thresholds
    python benchmarks/grpo_step.py --device=gpu        # both sides on the GPU (fp32), unpinned

On a GPU, TRL's model and ours both compute in full fp32 (JAX's matmul precision "highest"; torch's
default does not use TF32), and TRL's step callbacks synchronise CUDA before reading the clock.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import _device  # benchmarks/_device.py, beside this script

# One thread for XLA's CPU backend and torch; must be set before jax is imported.
GPU = _device.gpu_requested()
_device.configure(GPU)

import numpy as np  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

NUM_PROMPTS = 8
GROUP_SIZE = 8
CHARS = "0123456789+-*=() "
# Median process CPU seconds per step of the last `time_ours` / `time_trl` call, by side: less
# sensitive than wall time to other jobs on a shared machine (page faults count as system time).
LAST_CPU_S: dict = {}


def _problems(seed: int, n: int):
    from symbiosis_jax import tasks

    return tasks.ArithmeticTask(num_digits=2).sample(np.random.default_rng(seed), n)


def time_trl(num_new_tokens: int, *, num_steps: int, num_warmup: int) -> float:
    """Median seconds per TRL GRPOTrainer step at the benchmark shape."""
    import datasets
    import tokenizers
    import torch
    import transformers
    import trl

    from symbiosis_jax import tasks

    if not GPU:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    specials = ["<pad>", "<bos>", "<eos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + list(CHARS))}
    vocab.update({f"<x{i}>": i for i in range(len(vocab), 32)})
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = tokenizers.decoders.Fuse()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
        unk_token="<unk>", padding_side="left")
    config = transformers.LlamaConfig(
        vocab_size=32, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(config)
    problems = _problems(0, 4096)
    answers = {p.prompt: p for p in problems}
    task = tasks.ArithmeticTask(num_digits=2)
    dataset = datasets.Dataset.from_dict({"prompt": [p.prompt for p in problems]})

    def reward_fn(prompts, completions, **kwargs):
        return [task.verify(answers[p], c).reward for p, c in zip(prompts, completions)]

    times, cpu_times = [], []

    class Timer(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if GPU:
                torch.cuda.synchronize()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            if GPU:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)
            cpu_times.append(time.process_time() - self.c0)

    args = trl.GRPOConfig(
        output_dir="/tmp/grpo_step_trl", per_device_train_batch_size=NUM_PROMPTS * GROUP_SIZE,
        num_generations=GROUP_SIZE, max_completion_length=num_new_tokens,
        max_steps=num_warmup + num_steps, learning_rate=1e-4, beta=0.0, num_iterations=1,
        temperature=1.0, logging_steps=10_000, save_strategy="no", report_to=[],
        use_cpu=not GPU, dataloader_num_workers=0, disable_tqdm=True, seed=0, bf16=False)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=reward_fn, args=args,
                              train_dataset=dataset, processing_class=tokenizer,
                              callbacks=[Timer()])
    trainer.train()
    LAST_CPU_S["trl"] = float(np.median(cpu_times[num_warmup:]))
    return float(np.median(times[num_warmup:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="ours,trl",
                        help="comma list of the sides to time: ours (symbiosis_jax), trl (TRL's "
                             "GRPOTrainer)")
    parser.add_argument("--new_tokens", default="8,16",
                        help="comma list of completion lengths; one table row each")
    parser.add_argument("--steps", type=int, default=10,
                        help="timed steps per side and length; the median is reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps run first (compilation, caches)")
    parser.add_argument("--malloc", default="keep", choices=("keep", "default"),
                        help="keep: glibc keeps freed memory (both sides); default: glibc as is")
    parser.add_argument("--core", type=int, default=None,
                        help="CPU core to pin the process to (default: the last allowed one; -1:"
                             " no pinning; never pinned with --device=gpu)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: both sides on the GPU (must be given on the command line)")
    args = parser.parse_args(argv)
    if (args.device == "gpu") != GPU:
        parser.error("--device=gpu must be given on the command line (it is read before jax"
                     " is imported)")
    if GPU:
        print(f"GPU: {_device.require_gpu()}", flush=True)
        args.core = -1
    # One core for the whole process, so neither side gets a second one through helper threads
    # (XLA's runtime and JAX's dispatch thread otherwise overlap host and compute work).
    if args.core != -1:
        allowed = sorted(os.sched_getaffinity(0))
        core = allowed[-1] if args.core is None else args.core
        os.sched_setaffinity(0, {core})
        print(f"pinned to core {core}", flush=True)
    from symbiosis_jax.training import allocator

    if args.malloc == "keep" and not allocator.keep_freed_heap_memory():
        print("--malloc=keep: glibc mallopt unavailable; allocator left as is", flush=True)
    rows = []
    for n in [int(x) for x in args.new_tokens.split(",")]:
        row = {"new_tokens": n}
        for side in args.sides.split(","):
            fn = {"ours": time_ours, "trl": time_trl}[side]
            row[side] = fn(n, num_steps=args.steps, num_warmup=args.warmup)
            row[side + "_cpu"] = LAST_CPU_S[side]
            print(f"{side:5s} new_tokens={n:3d}: {row[side] * 1e3:8.1f} ms/step "
                  f"({row[side + '_cpu'] * 1e3:.1f} ms process CPU)", flush=True)
        rows.append(row)
    print(f"\nmalloc={args.malloc}")
    print("| new tokens | ours (s/step) | TRL (s/step) | speed-up | ours CPU (s) | TRL CPU (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    nan = float("nan")
    for r in rows:
        ours, trl_s = r.get("ours", nan), r.get("trl", nan)
        print(f"| {r['new_tokens']} | {ours:.4f} | {trl_s:.4f} | {trl_s / ours:.1f}x "
              f"| {r.get('ours_cpu', nan):.4f} | {r.get('trl_cpu', nan):.4f} |")
    return rows


def ours_config(num_new_tokens: int):
    """The RLVR config at the benchmark shape (GRPO, mu = 1, beta = 0, one device)."""
    from symbiosis_jax.training import driver

    config = driver.load_config(os.path.join(_REPO, "configs/grpo_arithmetic.py"))
    config.model = dict(num_layers=4, embed_dim=128, num_heads=4, num_kv_heads=4, head_dim=32,
                        mlp_dim=512)
    config.max_new_tokens = num_new_tokens
    config.rl.num_prompts = NUM_PROMPTS
    config.rl.group_size = GROUP_SIZE
    config.rl.loss_kwargs.beta = 0.0
    config.rl.track_reference_kl = False
    config.sft.num_steps = 0
    config.eval.num_problems = 8
    config.eval.pass_k = 0
    config.optimizer.learning_rate = 1e-4
    config.mesh.data = 1
    return config


def time_ours(num_new_tokens: int, *, num_steps: int, num_warmup: int) -> float:
    """Median seconds per symbiosis_jax RLVR step (sample + verify + update) at the shape."""
    import jax

    from symbiosis_jax.loops import rlvr

    runner = rlvr._Runner(ours_config(num_new_tokens))  # noqa: SLF001 (the loop's own parts)
    n_params = sum(x.size for x in jax.tree.leaves(runner.init_params))
    assert n_params == 1_057_920, n_params
    state = runner.init_state(runner._copy(runner.init_params))  # noqa: SLF001
    times, cpu_times = [], []
    for step in range(num_warmup + num_steps):
        t0, c0 = time.perf_counter(), time.process_time()
        batch, _ = runner.rollouts(state.params, step)
        state, metrics = runner.update(state, batch, step)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    LAST_CPU_S["ours"] = float(np.median(cpu_times[num_warmup:]))
    return float(np.median(times[num_warmup:]))


if __name__ == "__main__":
    sys.exit(main() and 0)
