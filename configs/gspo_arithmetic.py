"""GSPO on 2-digit addition: sequence-level importance ratio and clipping.

Run:
    python experiments/train.py --config=configs/gspo_arithmetic.py
    python experiments/train.py --config=configs/gspo_arithmetic.py:smoke   # one RL step, seconds

Expected (idle 2-core Intel Xeon; another CPU model gives other numbers, see
configs/grpo_arithmetic.py): about 60 s for the whole run; held-out greedy pass@1 25.8% after
SFT -> 85.2% with seed 0, 94.5% / 100% with seeds 1 / 2
(2,000 RL steps, the default; `python experiments/compare_rlvr.py --seeds=0,1,2`,
docs/rlvr.md: seeds 0/1/2 start from 25.8/36.7/35.9% after SFT).
Loss: GSPO (arXiv:2507.18071): ratio s_i = (pi/pi_old)(y_i)^(1/|y_i|), clip (3e-4, 4e-4), no KL,
group std-normalised advantages. With one update per batch (rl.num_iterations = 1 and
rl.num_minibatches = 1, the default) the ratio is 1 and nothing is clipped; raise either to make
the clip act.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="gspo", variant=arg)
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(
        beta=0.0, epsilon_low=3e-4, epsilon_high=4e-4))
    return config
