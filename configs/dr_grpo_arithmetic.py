"""Dr. GRPO on 2-digit addition: no std in the advantage, no length normalisation.

Run:
    python experiments/train.py --config=configs/dr_grpo_arithmetic.py
    python experiments/train.py --config=configs/dr_grpo_arithmetic.py:smoke   # one RL step, seconds

Expected (2-core CPU, shared; wall time varies with load): 1-5 minutes; held-out greedy pass@1
14.1% after SFT -> 36.7% (best 39.8%) after 300 RL steps (the comparison's budget, `--config.rl.num_steps=300 --config.optimizer.total_steps=300`; the default runs 2,000 steps) (docs/rlvr.md, comparison).
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
