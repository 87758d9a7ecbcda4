"""GRPO on 2-digit addition: SFT warm-up, then RL from the verifier's reward alone.

Run (the README's `make demo` runs exactly this):
    python experiments/train.py                                   # = --config=configs/grpo_arithmetic.py
    python experiments/train.py --config=configs/grpo_arithmetic.py:smoke   # one RL step, seconds
    python experiments/train.py --config=configs/grpo_arithmetic.py:r1zero  # the headline run

Expected (measured 2026-11-26 on an idle 2-core Intel Xeon, model code as committed): SFT stops
once validation pass@1 reaches 20% and leaves held-out greedy pass@1 at 25.8%; 2,000 GRPO steps then
raise it to 87.5% (+61.7 points; pass@8 54.7% -> 97.7%) in 81 s of wall clock for the whole run.
The climb starts after ~600 steps (23.4% at step 600, 65.6% at 1,000, 81.2% at 1,400). `r1zero` is
the same run with sparser checkpoints. These numbers repeat for a given seed, device count and
machine type (CPU model, jax build); another CPU model gives other ones: on a 2-vCPU AMD EPYC, SFT
stops after 520 steps at 20.3% validation pass@1 and held-out pass@1 goes 18.8% -> 79.7% (146 s).
Earlier, shorter runs on other model-code versions are in docs/rlvr.md with their caveats.
Loss: GRPO (arXiv:2402.03300): clip 0.2, k3 KL to the SFT model with beta 0.04, per-sequence
token means, advantages (r - mean) / std over each group of G = 8 samples.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="grpo", variant=arg)
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(
        beta=0.04, epsilon_low=0.2, epsilon_high=0.2))
    return config
