"""Compiled batched sampling with a KV cache.

    from symbiosis_jax import sampling
    prompts_bp, lengths_b = sampling.left_pad(list_of_token_lists, pad_id=tok.pad_id)
    out = sampling.sample(model, key, prompts_bp, lengths_b, max_new_tokens=32,
                          temperature=1.0, stop_tokens=(tok.eos_id,), pad_id=tok.pad_id)
    # out.tokens, out.logprobs, out.completion_mask: [B, N]; out.lengths: [B]
    tokens_bt, mask_bt = sampling.full_sequences(prompts_bp, lengths_b, out)
    # models.token_logprobs(model, tokens_bt, mask_bt)[:, P:] == out.logprobs
"""

from symbiosis_jax.models.logprobs import prompt_mask
from symbiosis_jax.sampling.sampler import SampleOutput
from symbiosis_jax.sampling.sampler import full_sequences
from symbiosis_jax.sampling.sampler import left_pad
from symbiosis_jax.sampling.sampler import sample

__all__ = ["SampleOutput", "full_sequences", "left_pad", "prompt_mask", "sample"]
