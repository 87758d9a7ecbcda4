"""Policy models: a Llama/Qwen2-style transformer, the log-prob bridge,
Hugging Face checkpoint import and tokenizers.

    from symbiosis_jax import models
    model = models.Transformer(models.tiny_config(), rngs=nnx.Rngs(0))
    logits_btv = model(tokens_bt, positions_bt, attention_mask_bt)
    logp_bt = models.token_logprobs(model, tokens_bt, attention_mask_bt)
    model = models.load_hf_checkpoint("/path/to/local/dir")
"""

from symbiosis_jax.models.checkpoint import SUPPORTED_ARCHITECTURES
from symbiosis_jax.models.checkpoint import config_from_hf
from symbiosis_jax.models.checkpoint import load_hf_checkpoint
from symbiosis_jax.models.checkpoint import load_hf_state_dict
from symbiosis_jax.models.checkpoint import params_from_hf_state_dict
from symbiosis_jax.models.config import TransformerConfig
from symbiosis_jax.models.config import small_config
from symbiosis_jax.models.config import tiny_config
from symbiosis_jax.models.logprobs import grouped_completion_logprobs
from symbiosis_jax.models.logprobs import logprobs_from_logits
from symbiosis_jax.models.logprobs import prompt_mask
from symbiosis_jax.models.logprobs import token_logprobs
from symbiosis_jax.models.tokenizers import CharTokenizer
from symbiosis_jax.models.tokenizers import HFTokenizer
from symbiosis_jax.models.tokenizers import load_tokenizer
from symbiosis_jax.models.transformer import KVCache
from symbiosis_jax.models.transformer import Transformer
from symbiosis_jax.models.transformer import init_cache
from symbiosis_jax.models.transformer import positions_from_mask

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "CharTokenizer",
    "HFTokenizer",
    "KVCache",
    "Transformer",
    "TransformerConfig",
    "config_from_hf",
    "grouped_completion_logprobs",
    "init_cache",
    "load_hf_checkpoint",
    "load_hf_state_dict",
    "load_tokenizer",
    "logprobs_from_logits",
    "params_from_hf_state_dict",
    "positions_from_mask",
    "prompt_mask",
    "small_config",
    "tiny_config",
    "token_logprobs",
]
