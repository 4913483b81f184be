"""What a benchmark needs around its measuring: INT8's calibration data, the engines' order,
memory given back between engines, and errors in one line."""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Callable, Sequence

from actors.benchmarks.evaluation import EvaluationData
from cvplatform.benchmarking.inputs import seeded_inputs
from cvplatform.engines import ENGINE_NAMES
from cvplatform.engines.base import Calibration

log = logging.getLogger("cvp.jobs")
CALIBRATION_FALLBACK_SAMPLES = 64
REFERENCE_ENGINE = "onnxruntime_cpu"


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def give_back_freed_memory() -> None:
    """Return to the OS what released engines freed. glibc keeps freed pages for reuse, so an
    engine opened after another would otherwise grow into them unseen and measure as free."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        log.debug("malloc_trim is not available (not glibc): engine memory may read low")


def calibration_for(
    evaluation: EvaluationData | None, seed: int, input_shape: tuple[int, int, int]
) -> Callable[[], Calibration]:
    """INT8's calibration: the model's own training split, else the benchmark's seeded inputs."""

    def calibrate() -> Calibration:
        if evaluation is not None and len(evaluation.calibration):
            return Calibration(evaluation.calibration, evaluation.calibration_source)
        samples = seeded_inputs(seed, CALIBRATION_FALLBACK_SAMPLES, input_shape)
        return Calibration(
            samples,
            f"seeded random inputs (seed {seed}, {CALIBRATION_FALLBACK_SAMPLES} samples): the "
            "model has no dataset here",
        )

    return calibrate


def ordered_engines(requested: Sequence[str] | None) -> list[str]:
    """The requested engines, FP32 ONNX Runtime first when it is among them: it is the
    reference the others' accuracy is compared with."""
    names = list(requested or ENGINE_NAMES)
    return sorted(names, key=lambda name: name != REFERENCE_ENGINE)
