"""The benchmark's input batches: seeded, so the same request feeds the engines the same bytes."""

from __future__ import annotations

import numpy as np


def seeded_inputs(seed: int, batch_size: int, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A float32 batch of standard normal values, shape ``(batch_size, *input_shape)``.

    The generator is seeded with ``[seed, batch_size]``, so every batch size gets a stream of its
    own and the same arguments give the same bytes on every run and machine.

    Args:
        seed: the benchmark's seed.
        batch_size: how many samples the batch holds (at least 1).
        input_shape: ``(channels, height, width)``, each at least 1.

    Raises:
        ValueError: a batch size or a dimension below 1, or a negative seed.
    """
    if seed < 0:
        raise ValueError(f"the seed must be 0 or more, not {seed}")
    if batch_size < 1:
        raise ValueError(f"the batch size must be 1 or more, not {batch_size}")
    if len(input_shape) != 3 or any(dim < 1 for dim in input_shape):
        raise ValueError(
            f"the input shape must be (channels, height, width), each >= 1: {input_shape}"
        )
    rng = np.random.default_rng([seed, batch_size])
    return rng.standard_normal((batch_size, *input_shape), dtype=np.float32)
