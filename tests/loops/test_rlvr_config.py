"""Bad RLVR configs fail with a clear ValueError before anything is built or compiled."""

import os
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.loops import rlvr  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402


def _config(name="grpo"):
    return driver.load_config(os.path.join(_REPO, f"configs/{name}_arithmetic.py:smoke"))


def _set(config, dotted, value):
    node = config
    *path, last = dotted.split(".")
    for p in path:
        node = node[p]
    node[last] = value


@pytest.mark.parametrize("dotted, value, message", [
    ("rl.loss", "ppo2", r"config.rl.loss='ppo2' is not one of \('grpo', 'dapo', 'gspo', 'dr_grpo'\)"),
    ("task.name", "chess", r"config.task.name='chess' is not one of"),
    ("rl.group_size", 1, r"config.rl.group_size=1 must be >= 2 when advantages are divided"),
    ("rl.num_prompts", -4, r"config.rl.num_prompts=-4 must be an int >= 1"),
    ("max_new_tokens", 0, r"config.max_new_tokens=0 must be an int >= 1"),
    ("sft.num_steps", -1, r"config.sft.num_steps=-1 must be an int >= 0"),
    ("rl.num_minibatches", 3, r"must be divisible by config.rl.num_minibatches=3"),
    ("rl.temperature", 0.0, r"config.rl.temperature=0.0 must be > 0"),
    ("eval.num_problems", 12, r"eval.num_problems = 12 must be divisible by the data-parallel"),
    ("model.num_layers", 0, r"config.model.num_layers=0 must be an int >= 1"),
    ("rl.overlong_buffer", 9, r"overlong_buffer=9 must be <= max_new_tokens"),
    ("sft.target_pass_at_1", 1.5, r"config.sft.target_pass_at_1=1.5 must be in \[0, 1\]"),
    ("sft.eval_every", 0, r"config.sft.eval_every=0 must be an int >= 1"),
    # Was numpy's bare "expected non-negative integer" from the problem stream.
    ("seed", -1, r"config.seed=-1 must be an int >= 0"),
    ("eval.seed", -5, r"config.eval.seed=-5 must be an int >= 0"),
    # Was silently negative clipping (a flipped gradient) in the warm-start.
    ("sft.max_grad_norm", -1.0, r"config.sft.max_grad_norm=-1.0 must be > 0, or 0/None"),
    # Were raised only after the first evaluation had compiled the sampler.
    ("max_new_tokens", 2, r"config.max_new_tokens=2 is too small: the task's shortest demonstration"),
    ("max_prompt_length", 3, r"config.max_prompt_length=3 is too small: the prompt '\d+\+\d+=' "
                             r"needs 7 tokens \(bos included\)"),
    ("tokenizer", "no/such/dir", r"config.tokenizer='no/such/dir' is not 'char', 'ascii' or a"),
    # Was ignored: the runner built an auto mesh whatever the field said.
    ("mesh.axis_types", "explicit", r"config.mesh.axis_types='explicit': the RLVR loop runs on 'auto' mesh"),
    # Were "the RLVR loop runs on 'auto' mesh axes only" for a misspelling, and ">= 1" for a
    # negative group (1 is then refused too).
    ("mesh.axis_types", "Auto", r"config.mesh.axis_types='Auto' is not one of \('auto', 'explicit'\)"),
    ("rl.group_size", -4, r"config.rl.group_size=-4 must be >= 2"),
])
def test_bad_config_raises_before_building(dotted, value, message, tmp_path, monkeypatch):
    config = _config()
    _set(config, dotted, value)

    def no_build(*args, **kwargs):
        raise AssertionError("the runner was built before the config was validated")

    monkeypatch.setattr(rlvr, "_Runner", no_build)
    with pytest.raises(ValueError, match=message):
        rlvr.train(config, workdir=str(tmp_path))
    assert not os.listdir(tmp_path)


def test_bad_task_and_loss_arguments():
    config = _config()
    config.task.kwargs.num_digits = 0
    with pytest.raises(ValueError, match="num_digits=0 must be >= 1"):
        rlvr.validate_config(config)
    # Values were checked only when the first jitted update traced the loss (after SFT,
    # evaluation and the sampler's compile).
    config = _config()
    config.rl.loss_kwargs.beta = -1.0
    with pytest.raises(ValueError, match=r"config.rl.loss_kwargs for grpo_loss: beta=-1.0 must be >= 0"):
        rlvr.validate_config(config)
    config = _config("dapo")
    config.rl.loss_kwargs.epsilon_high = -0.1
    with pytest.raises(ValueError, match=r"loss_kwargs for dapo_loss: epsilon_high=-0.1 must be > 0"):
        rlvr.validate_config(config)
    config = _config()
    config.rl.loss_kwargs.tau = 1.0
    with pytest.raises(ValueError, match="'tau', which grpo_loss does not take"):
        rlvr.validate_config(config)


def test_max_new_tokens_needs_one_demonstration_to_fit():
    config = _config()
    config.max_new_tokens = 3      # fits 2-digit sums (+ eos), not 3-digit ones: allowed
    rlvr.validate_config(config)
    config.max_new_tokens = 2      # no sum fits: every reward would be 0
    with pytest.raises(ValueError, match=r"config.max_new_tokens=2 is too small: the task's "
                                         r"shortest demonstration '\d\d' needs 3 tokens"):
        rlvr.validate_config(config)


def test_held_out_set_covering_the_task_is_a_value_error():
    # Was: RuntimeError without the value, after up to 100 rounds of draws (46 s at 100,000).
    from symbiosis_jax import tasks

    task = tasks.make_task("arithmetic", num_digits=1, min_digits=1, operations=("+",))
    problems = rlvr._Problems(task, seed=0, eval_seed=1, num_eval=64)  # noqa: SLF001  (fits)
    assert not {p.prompt for p in problems.valid} & problems._held_out  # noqa: SLF001
    with pytest.raises(ValueError, match=r"config.eval.num_problems=5000 holds out 100 distinct "
                                         r"prompts, .* 1 rounds of training draws found 0 of"):
        rlvr._Problems(task, seed=0, eval_seed=1, num_eval=5000)  # noqa: SLF001


def test_group_size_one_is_an_error_without_std_too():
    # Dr. GRPO does not divide by the std, but its advantage is still the reward minus the
    # group's mean: one sample per prompt would make every advantage 0 (was accepted silently).
    config = _config("dr_grpo")
    config.rl.group_size = 1
    config.rl.num_prompts = 16
    with pytest.raises(ValueError, match=r"config.rl.group_size=1 must be >= 2: advantages are "
                                         r"relative to the group's mean reward"):
        rlvr.validate_config(config)
    config.rl.group_size = 2
    rlvr.validate_config(config)


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant 'huge' is not one of"):
        driver.load_config(os.path.join(_REPO, "configs/gspo_arithmetic.py:huge"))
