"""GRPO on 2-digit addition: SFT warm-up, then RL from the verifier's reward alone.

Run (the README's `make demo` runs exactly this):
    python experiments/train.py                                   # = --config=configs/grpo_arithmetic.py
    python experiments/train.py --config=configs/grpo_arithmetic.py:smoke   # one RL step, seconds
    python experiments/train.py --config=configs/grpo_arithmetic.py:r1zero  # the headline run

Expected (2-core CPU shared by other jobs; wall times vary with the load): SFT stops once
validation pass@1 reaches 20% (440 steps, under half a minute) and leaves held-out greedy pass@1
at 14.1%; default (300 RL steps, 1-5 minutes in all) ends at 46.1%; r1zero (600 RL steps, 1.6
minutes measured) ends at 56.2% (peak 60.9%), passing +40 points at RL step 460 (model code at
40a4edd). With the transformer at a34a5c6: default 25.8% -> 32.0%, r1zero 24.2% -> 64.1% (peak
64.8%). docs/rlvr.md has the curves and the caveats.
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
