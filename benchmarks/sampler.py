"""Sampler throughput against Hugging Face `generate`, same weights, one thread each.

    python benchmarks/sampler.py            # full table (~5-10 min on one core)
    python benchmarks/sampler.py --quick    # 1.06M config at batch 64 only
    python benchmarks/sampler.py --device=gpu   # both on the GPU (HF on CUDA), wall time

A random Llama is built with transformers, saved with `save_pretrained` and
loaded by `symbiosis_jax.models.load_hf_checkpoint`, so both samplers run the
same weights. Each row draws `batch x 32` new tokens (random prompts of 16
tokens, temperature 1, no top-k/top-p, no stop token) and reports tokens/s; HF
and ours alternate within each repeat so load from other processes hits both.
The process is pinned to one core; torch uses one thread and XLA runs without
its multi-threaded Eigen path. Throughput is reported twice: from wall-clock
time and from the process's CPU time (which, with everything pinned to one
core, excludes the time other processes held that core, so it is the steadier
number on a shared machine). Compile time is the first call minus a warm call,
in process CPU seconds.

With `--device=gpu` both run on the GPU (torch on CUDA, JAX on its default GPU
device), unpinned, timed by wall clock after synchronising the device; both
compute in full fp32 (JAX's matmul precision "highest", torch's default, which
does not use TF32), so neither side gains from lower-precision matrix units.
"""

import argparse
import os
import sys

import _device  # benchmarks/_device.py, beside this script

# One thread each on the CPU, set before jax is imported.
GPU = _device.gpu_requested()
_device.configure(GPU)

import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from symbiosis_jax import models, sampling  # noqa: E402

CONFIGS = {
    # name: (hidden, intermediate, layers, heads)
    "1.06M": (128, 512, 4, 4),
    "20M": (512, 1536, 6, 8),
}
VOCAB = 32
PROMPT_LEN = 16
NEW_TOKENS = 32


def build_pair(name, tmp):
    hidden, inter, layers, heads = CONFIGS[name]
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=256, tie_word_embeddings=False, bos_token_id=None,
        eos_token_id=None, pad_token_id=0)
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).float().eval()
    path = os.path.join(tmp, name)
    hf.save_pretrained(path)
    ours = models.load_hf_checkpoint(path)
    if GPU:
        hf = hf.cuda()
    n_params = sum(p.numel() for p in hf.parameters())
    assert n_params == ours.config.num_params, (n_params, ours.config.num_params)
    return hf, ours, n_params


def time_hf(hf, prompts):
    ids = torch.tensor(prompts, dtype=torch.long, device="cuda" if GPU else "cpu")
    if GPU:
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                          do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                          max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                          pad_token_id=0)
    if GPU:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start, time.process_time() - cpu_start
    assert out.shape == (len(prompts), PROMPT_LEN + NEW_TOKENS)
    return elapsed


def time_ours(graphdef_state, prompts, lengths, seed):
    start, cpu_start = time.perf_counter(), time.process_time()
    out = sampling.sample(graphdef_state, jax.random.key(seed), prompts, lengths,
                          max_new_tokens=NEW_TOKENS, temperature=1.0)
    out.tokens.block_until_ready()
    elapsed = time.perf_counter() - start, time.process_time() - cpu_start
    assert int(out.lengths.sum()) == len(prompts) * NEW_TOKENS
    return elapsed


def run(name, batches, repeats, tmp):
    hf, ours, n_params = build_pair(name, tmp)
    graphdef_state = nnx.split(ours)
    rows = []
    for batch in batches:
        rng = np.random.default_rng(batch)
        prompts = rng.integers(1, VOCAB, (batch, PROMPT_LEN)).astype(np.int32)
        lengths = np.full((batch,), PROMPT_LEN, np.int32)
        first = time_ours(graphdef_state, prompts, lengths, 0)
        time_hf(hf, prompts if GPU else prompts[: min(batch, 4)])  # warm torch's kernels
        hf_times, our_times = [], []
        for r in range(repeats):
            hf_times.append(time_hf(hf, prompts))
            # Ours is fast: a few draws per repeat keep the median stable.
            our_times.extend(time_ours(graphdef_state, prompts, lengths, 1 + 3 * r + i)
                             for i in range(3))
        tokens = batch * NEW_TOKENS
        hf_wall, hf_cpu = np.median(np.array(hf_times), axis=0)
        our_wall, our_cpu = np.median(np.array(our_times), axis=0)
        # CPU seconds on the CPU (load-independent on one core); wall seconds on a GPU.
        compile_s = first[0] - our_wall if GPU else first[1] - our_cpu
        row = dict(name=name, n_params=n_params, batch=batch, hf_wall=tokens / hf_wall,
                   our_wall=tokens / our_wall, hf_cpu=tokens / hf_cpu,
                   our_cpu=tokens / our_cpu, compile_s=compile_s)
        rows.append(row)
        print(f"{name:>6} ({n_params:,} params) batch {batch:>3}:"
              f" wall HF {row['hf_wall']:8,.0f} ours {row['our_wall']:8,.0f} tok/s"
              f" ({row['our_wall'] / row['hf_wall']:4.1f}x);"
              f" CPU time HF {row['hf_cpu']:8,.0f} ours {row['our_cpu']:8,.0f} tok/s"
              f" ({row['our_cpu'] / row['hf_cpu']:4.1f}x); compile {compile_s:4.1f} s",
              flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the 1.06M config at batch 64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=None,
                        help="CPU core to pin to (default: the last allowed one; CPU only)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: both samplers on the GPU, wall-clock times")
    parser.add_argument("--batches", default="1,16,64,256", help="comma list of batch sizes")
    args = parser.parse_args()
    if GPU:
        where = _device.require_gpu()
    else:
        allowed = sorted(os.sched_getaffinity(0))
        core = allowed[-1] if args.core is None else args.core
        os.sched_setaffinity(0, {core})
        torch.set_num_threads(1)
        where = f"pinned to core {core}"
    print(f"jax {jax.__version__}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; {where}; {NEW_TOKENS} new tokens,"
          f" prompt {PROMPT_LEN}, vocab {VOCAB}, fp32", flush=True)
    batches = tuple(int(b) for b in args.batches.split(","))
    plan = ([("1.06M", (64,))] if args.quick else
            [("1.06M", batches), ("20M", batches)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, batches in plan:
            rows += run(name, batches, 2 if args.quick else args.repeats, tmp)
    if GPU:  # process CPU time says nothing about GPU work
        print("\n| config | batch | HF tok/s | ours tok/s | ratio | compile s (wall) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['name']} | {r['batch']} | {r['hf_wall']:,.0f} | {r['our_wall']:,.0f} |"
                  f" {r['our_wall'] / r['hf_wall']:.1f}x | {r['compile_s']:.1f} |")
        return
    print("\n| config | batch | HF tok/s (wall) | ours tok/s (wall) | ratio (wall) |"
          " HF tok/s (CPU time) | ours tok/s (CPU time) | ratio (CPU time) | compile s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['name']} | {r['batch']} | {r['hf_wall']:,.0f} | {r['our_wall']:,.0f} |"
              f" {r['our_wall'] / r['hf_wall']:.1f}x | {r['hf_cpu']:,.0f} |"
              f" {r['our_cpu']:,.0f} | {r['our_cpu'] / r['hf_cpu']:.1f}x |"
              f" {r['compile_s']:.1f} |")

if __name__ == "__main__":
    main()
