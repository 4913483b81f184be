"""Numerical parity between a source model and its ONNX conversion, on a seeded input."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cvplatform.errors import ConversionFailed

# A faithful export of float32 weights differs by rounding only; anything beyond this is a fault.
MAX_ABS_TOLERANCE = 1e-3
MIN_COSINE = 0.9999


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    cosine_similarity: float
    seed: int
    input_shape: list[int]
    compared_values: int

    def as_details(self) -> dict[str, Any]:
        return asdict(self)


def seeded_input(shape: list[int], seed: int) -> np.ndarray:
    """The same input for the source and the ONNX model: standard normal, float32."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def compare(
    reference: list[np.ndarray], converted: list[np.ndarray], seed: int, shape: list[int]
) -> Parity:
    """Compare outputs in order; raises ConversionFailed (with the figures) past tolerance."""
    if len(reference) != len(converted):
        raise ConversionFailed(
            f"the ONNX model has {len(converted)} outputs, the source {len(reference)}"
        )
    for index, (expected, actual) in enumerate(zip(reference, converted, strict=True)):
        if expected.shape != actual.shape:
            raise ConversionFailed(
                f"output {index}: ONNX shape {list(actual.shape)} differs from the source's "
                f"{list(expected.shape)}"
            )
    flat_expected = np.concatenate([np.asarray(a, np.float64).ravel() for a in reference])
    flat_actual = np.concatenate([np.asarray(a, np.float64).ravel() for a in converted])
    max_abs = float(np.max(np.abs(flat_expected - flat_actual))) if flat_expected.size else 0.0
    norms = float(np.linalg.norm(flat_expected) * np.linalg.norm(flat_actual))
    cosine = float(flat_expected @ flat_actual / norms) if norms > 0 else 1.0
    parity = Parity(round(max_abs, 9), round(cosine, 9), seed, shape, int(flat_expected.size))
    scale = max(1.0, float(np.max(np.abs(flat_expected))) if flat_expected.size else 1.0)
    if max_abs > MAX_ABS_TOLERANCE * scale or cosine < MIN_COSINE:
        raise ConversionFailed(
            f"the ONNX model does not match the source on a seeded input: max abs diff "
            f"{max_abs:.3g} (tolerance {MAX_ABS_TOLERANCE * scale:.3g}), cosine similarity "
            f"{cosine:.6f} (at least {MIN_COSINE})"
        )
    return parity
