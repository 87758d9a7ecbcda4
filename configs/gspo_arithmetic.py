"""GSPO on 2-digit addition: sequence-level importance ratio and clipping.

Run:
    python experiments/train.py --config=configs/gspo_arithmetic.py
    python experiments/train.py --config=configs/gspo_arithmetic.py:smoke   # one RL step, seconds

Expected (2-core CPU, shared; wall time varies with load): 1-5 minutes; held-out greedy pass@1
14.1% after SFT -> 27.3% after 300 RL steps (the comparison's budget, `--config.rl.num_steps=300 --config.optimizer.total_steps=300`; the default runs 2,000 steps) (docs/rlvr.md, comparison).
Loss: GSPO (arXiv:2507.18071): ratio s_i = (pi/pi_old)(y_i)^(1/|y_i|), clip (3e-4, 4e-4), no KL,
group std-normalised advantages. With mu = 1 and one minibatch the ratio is 1 and nothing is
clipped; raise rl.num_minibatches or rl.num_iterations to make the clip act.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="gspo", variant=arg)
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(
        beta=0.0, epsilon_low=3e-4, epsilon_high=4e-4))
    return config
