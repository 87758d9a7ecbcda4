"""DAPO on 2-digit addition: clip-higher, token-mean loss, dynamic sampling, overlong shaping.

Run:
    python experiments/train.py --config=configs/dapo_arithmetic.py
    python experiments/train.py --config=configs/dapo_arithmetic.py:smoke   # one RL step, seconds

Expected (2-core CPU, shared; wall time varies with load): 1-5 minutes; held-out greedy pass@1
14.1% after SFT -> 60.2% after 300 RL steps (the comparison's budget, `--config.rl.num_steps=300 --config.optimizer.total_steps=300`; the default runs 2,000 steps), drawing about 2.2x the samples per step
(docs/rlvr.md, comparison).
Loss: DAPO (arXiv:2503.14476): clip (0.2, 0.28), token-level mean, no KL; groups whose G
rewards are all equal are dropped and the batch refilled with fresh prompts (up to 3 rounds);
the soft overlong penalty uses a 1-token buffer below max_new_tokens.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="dapo", variant=arg)
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(
        beta=0.0, epsilon_low=0.2, epsilon_high=0.28))
    config.rl.dynamic_sampling = True
    config.rl.max_refill_rounds = 3
    config.rl.overlong_buffer = 1
    return config
