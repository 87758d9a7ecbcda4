"""Dr. GRPO on 2-digit addition: no std in the advantage, no length normalisation.

Run:
    python experiments/train.py --config=configs/dr_grpo_arithmetic.py
    python experiments/train.py --config=configs/dr_grpo_arithmetic.py:smoke   # one RL step, seconds

Expected (idle 2-core Intel Xeon; another CPU model gives other numbers, see
configs/grpo_arithmetic.py): about 60 s for the whole run; held-out greedy pass@1 25.8% after
SFT -> 14.1% with seed 0 (reward collapses early and stays low), 82.8% / 100% with seeds 1 / 2
(seed 1 also stalls until step ~1,000): seed-dependent here, unlike GRPO, DAPO and GSPO
(2,000 RL steps, the default; `python experiments/compare_rlvr.py --seeds=0,1,2`,
docs/rlvr.md: seeds 0/1/2 start from 25.8/36.7/35.9% after SFT).
Loss: Dr. GRPO (arXiv:2503.20783): advantages r - mean over the group (no std), token sums
divided by a constant (max_new_tokens) instead of each response's length, no KL.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="dr_grpo", variant=arg)
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(beta=0.0))
    config.rl.normalize_std = False
    return config
