"""DAPO on 2-digit addition: clip-higher, token-mean loss, dynamic sampling, overlong shaping.

Run:
    python experiments/train.py --config=configs/dapo_arithmetic.py
    python experiments/train.py --config=configs/dapo_arithmetic.py:smoke   # one RL step, seconds

Expected (idle 2-core Intel Xeon; another CPU model gives other numbers, see
configs/grpo_arithmetic.py): about 65-85 s for the whole run; held-out greedy pass@1 25.8% after
SFT -> 92.2% with seed 0, 93.8% / 100% with seeds 1 / 2, drawing 2-3.5x GRPO's samples per step
(dynamic sampling refills); at GRPO's sample budget it is level with or behind GRPO
(2,000 RL steps, the default; `python experiments/compare_rlvr.py --seeds=0,1,2`,
docs/rlvr.md: seeds 0/1/2 start from 25.8/36.7/35.9% after SFT).
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
