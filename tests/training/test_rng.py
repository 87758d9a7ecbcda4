"""RNG conventions: per-step keys are fold_in(key, step); named streams are stable."""

import jax
import numpy as np

from symbiosis_jax.training import make_key, step_key, stream_key


def _data(k):
    return np.asarray(jax.random.key_data(k))


def test_step_key_is_fold_in_and_jittable():
    key = make_key(3)
    np.testing.assert_array_equal(_data(step_key(key, 5)), _data(jax.random.fold_in(jax.random.key(3), 5)))
    jitted = jax.jit(step_key)(key, np.int32(5))
    np.testing.assert_array_equal(_data(jitted), _data(step_key(key, 5)))
    assert not np.array_equal(_data(step_key(key, 5)), _data(step_key(key, 6)))


def test_stream_key_is_stable_and_distinct():
    key = make_key(0)
    a1, a2, b = stream_key(key, "sampling"), stream_key(key, "sampling"), stream_key(key, "data")
    np.testing.assert_array_equal(_data(a1), _data(a2))
    assert not np.array_equal(_data(a1), _data(b))
    # crc32("sampling") & 0x7fffffff, computed independently.
    import zlib

    np.testing.assert_array_equal(
        _data(a1), _data(jax.random.fold_in(key, zlib.crc32(b"sampling") % 2**31))
    )
