"""GRPO on countdown: reach a target with three given numbers (1-9) and + - * ( ).

Run:
    python experiments/train.py --config=configs/grpo_countdown.py
    python experiments/train.py --config=configs/grpo_countdown.py:smoke   # one RL step, seconds

Prompt `"3 5 7>22:"`, completion an expression such as `"3*5+7"`; the verifier parses it itself
(no eval), requires every given number exactly once and rewards 1 for the exact target. The
demonstrations for the SFT warm-start are the expressions the problems were built from. Same
model, SFT rule, GRPO settings and budget as configs/grpo_arithmetic.py.

Expected (idle 2-core Intel Xeon, 2026-11-26): SFT stops after 140 steps at 27.3% validation
pass@1, leaving held-out greedy pass@1 at 15.6% (pass@8 30.5%); 2,000 GRPO steps raise it to 35.9%
(best 36.7%; pass@8 50.0%, sampled pass@1 4.9% -> 31.3%) in about 100 s for the whole run. Another
CPU model gives other numbers: on a 2-vCPU AMD EPYC the same SFT stop, then 15.6% -> 39.1%
(pass@8 51.6%) in 191 s, the machine shared. A harder task than 2-digit addition for this
135k-parameter model: the climb is steady but small.
The 1.06M-parameter model (`--config.model.num_layers=4 --config.model.embed_dim=128
--config.model.head_dim=32 --config.model.mlp_dim=512`) went from 23.4% to 40.6% in 5.5 minutes.
"""

import ml_collections

from configs import rlvr_common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = rlvr_common.rlvr_config(loss="grpo", variant=arg)
    config.name = "grpo_countdown"
    config.task = ml_collections.ConfigDict(dict(
        name="countdown", kwargs=dict(num_numbers=3, max_number=9, max_target=100)))
    config.max_prompt_length = 12   # "9 9 9>100:" is 10 characters, bos included 11
    config.max_new_tokens = 9       # "(9+9)*9" is 7 characters, eos included 8
    config.rl.loss_kwargs = ml_collections.ConfigDict(dict(
        beta=0.04, epsilon_low=0.2, epsilon_high=0.2))
    return config
