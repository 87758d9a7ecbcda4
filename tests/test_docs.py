"""The code in README.md and docs/mcts.md runs as written, and does what its comments say.

Each ```python block is executed in a fresh namespace, so a newcomer can paste it as it is;
the checks below then hold the comments to their word (sampler log-probs equal the bridge's,
the reused subtree's statistics carry over).
"""

import os
import re

import jax
import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_blocks(relpath: str) -> dict:
    with open(os.path.join(_REPO, relpath), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert blocks, f"{relpath} has no python block"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{relpath}, python block {i + 1}", "exec"), namespace)
    return namespace


@pytest.mark.usefixtures("fast_compiles")
def test_readme_library_use():
    ns = _run_blocks("README.md")
    out, mask = ns["out"], np.asarray(ns["out"].completion_mask)
    assert mask.sum() > 0
    # "logp == out.logprobs" on the completion tokens.
    np.testing.assert_allclose(np.asarray(ns["logp"]) * mask, np.asarray(out.logprobs) * mask,
                               atol=2e-5)
    # At ratio 1 and without a KL term, GRPO's seq-mean-token-mean loss is -mean(A) (0 here:
    # group advantages sum to 0) and its gradient -A_b / (n_b B) on row b's n_b valid tokens.
    adv = np.asarray(ns["advantages"])
    np.testing.assert_allclose(float(ns["loss"]), -float(np.mean(adv)), atol=1e-5)
    assert np.abs(adv).max() > 0.5  # the rewards of a group differ: a gradient to check
    losses = ns["losses"]
    grad = jax.grad(lambda x: losses.grpo_loss(x, out.logprobs, ns["advantages"], out.completion_mask,
                                               beta=0.0)[0])(ns["logp"])
    n, rows = mask.sum(axis=1, keepdims=True), (mask.sum(axis=1) > 0).sum()
    np.testing.assert_allclose(np.asarray(grad), -adv[:, None] * mask / (np.maximum(n, 1) * rows),
                               atol=1e-6)


@pytest.mark.usefixtures("fast_compiles")
def test_mcts_use():
    ns = _run_blocks("docs/mcts.md")
    out, out2, B = ns["out"], ns["out2"], ns["B"]
    legal = np.asarray(jax.vmap(ns["env"].legal_action_mask)(ns["states"]))
    action = np.asarray(out.action)
    assert legal[np.arange(B), action].all()
    np.testing.assert_allclose(np.asarray(out.action_weights).sum(-1), 1.0, rtol=1e-5)
    # The reused child's visits count in the next search: root visits = child's + 64.
    child_visits = np.asarray(out.tree.root_visit_counts)[np.arange(B), action]
    assert (child_visits > 0).all() and not np.asarray(ns["done"]).any()
    root_visits = np.asarray(out2.tree.root_visit_counts).sum(-1) + 1
    np.testing.assert_array_equal(root_visits, child_visits + 64)
