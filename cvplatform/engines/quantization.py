"""INT8 static quantization with ONNX Runtime's tools, and the cache that keeps its results.

A quantized model is stored under ``<cache>/int8/<model sha256>-<settings digest>.onnx`` with a JSON
sidecar beside it (calibration source, sample count, quantization time), so a cache hit reports the
calibration the file was really made with. Both files are written atomically; the sidecar last, so
its presence means the model beside it is complete.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvplatform.engines.base import (
    Calibration,
    EngineFailed,
    ModelFile,
    atomic_target,
    first_line,
    read_json_object,
    settings_digest,
    write_atomically,
)

# What decides the quantized file's content, hence part of its cache key. QDQ with unsigned 8-bit
# activations and signed weights (U8S8) runs on ONNX Runtime's x86 integer kernels on any AVX2
# CPU: on this project's AVX2 machine (no VNNI) ResNet50 at batch 8 ran at 1.64x FP32 with U8S8
# and 0.90x with S8S8. reduce_range (7-bit weights) avoids the int16 saturation of those kernels
# on CPUs without VNNI, as ONNX Runtime's quantization guide advises. Weights per output channel
# keep convolutions accurate at no cost in speed.
QUANTIZATION_SETTINGS: dict[str, Any] = {
    "format": "QDQ",
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "reduce_range": True,
    "per_channel": True,
    "calibrate_method": "MinMax",
    "preprocess": "quant_pre_process without symbolic shapes",
}
# Calibration feeds this many samples per run when the batch axis is dynamic. The MinMax calibrator
# keeps only each run's per-tensor minimum and maximum: memory is that of one batch's activations.
# (Its CalibMaxIntermediateOutputs option is not used: ONNX Runtime 1.32 drops, rather than merges,
# the runs it flushes, which would calibrate on a fraction of the samples.)
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class QuantizedModel:
    path: Path
    cache_hit: bool
    # Calibration data, pre-processing and quantization: measured on a miss, stored on a hit.
    quantization_s: float
    calibration_source: str
    calibration_samples: int
    preprocessed: bool  # quant_pre_process ran (it is skipped for models it cannot handle)

    def details(self) -> dict[str, Any]:
        return {
            "quantization_cache": "hit" if self.cache_hit else "miss",
            "quantization_s": self.quantization_s,
            "calibration_source": self.calibration_source,
            "calibration_samples": self.calibration_samples,
            "preprocessed": self.preprocessed,
        }


def quantization_available() -> bool:
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        return False
    return True


def cache_paths(cache_dir: Path, model: ModelFile) -> tuple[Path, Path]:
    """The quantized model's path and its sidecar's, for this model and these settings."""
    import onnxruntime

    # The quantizer's version changes its output as much as the settings do.
    digest = settings_digest({**QUANTIZATION_SETTINGS, "onnxruntime": onnxruntime.__version__})
    stem = cache_dir / "int8" / f"{model.sha256}-{digest}"
    return stem.with_suffix(".onnx"), stem.with_suffix(".json")


def quantized_model(
    model: ModelFile,
    cache_dir: Path,
    calibration: Callable[[], Calibration],
    *,
    input_name: str,
    input_shape: tuple[int, int, int],
    fixed_batch: int | None,
    clock: Callable[[], float],
) -> QuantizedModel:
    """The INT8 model for ``model``: from the cache, or quantized now and cached.

    Args:
        calibration: called only on a cache miss.
        fixed_batch: the model's batch size when its batch axis is fixed, else None.

    Raises:
        EngineFailed: the calibration samples do not fit the input, or quantization failed.
    """
    model_path, sidecar_path = cache_paths(cache_dir, model)
    cached = read_json_object(sidecar_path)
    if cached is not None and model_path.is_file():
        return QuantizedModel(
            model_path,
            cache_hit=True,
            quantization_s=float(cached["quantization_s"]),
            calibration_source=str(cached["calibration_source"]),
            calibration_samples=int(cached["calibration_samples"]),
            preprocessed=bool(cached["preprocessed"]),
        )
    started = clock()
    samples = calibration()
    batches = calibration_batches(samples, input_shape, fixed_batch)
    with atomic_target(model_path) as temporary:
        preprocessed = _quantize(model.path, temporary, _Reader(input_name, batches))
    result = QuantizedModel(
        model_path,
        cache_hit=False,
        quantization_s=clock() - started,
        calibration_source=samples.source,
        calibration_samples=len(samples.samples),
        preprocessed=preprocessed,
    )
    sidecar = {key: value for key, value in result.details().items() if key != "quantization_cache"}
    write_atomically(
        sidecar_path, json.dumps({**sidecar, "settings": QUANTIZATION_SETTINGS}).encode()
    )
    return result


def calibration_batches(
    calibration: Calibration, input_shape: tuple[int, int, int], fixed_batch: int | None
) -> list[np.ndarray]:
    """The calibration samples cut into the batches the model takes.

    Raises:
        EngineFailed: the samples are not (N, C, H, W) of the input's shape, or too few for a fixed
            batch size.
    """
    samples = np.ascontiguousarray(calibration.samples, dtype=np.float32)
    if samples.ndim != 4 or tuple(samples.shape[1:]) != input_shape or len(samples) == 0:
        raise EngineFailed(
            f"calibration samples have shape {samples.shape}; the input takes (N, *{input_shape})"
        )
    size = fixed_batch or CALIBRATION_BATCH
    if len(samples) < size:
        raise EngineFailed(
            f"{len(samples)} calibration samples are too few for the model's fixed batch of {size}"
        )
    # With a fixed batch axis a last, shorter batch would not fit: it is left out.
    usable = len(samples) - len(samples) % size if fixed_batch else len(samples)
    return [samples[start : start + size] for start in range(0, usable, size)]


class _Reader:
    """ONNX Runtime's CalibrationDataReader, by its duck type (the library checks ``get_next``)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: batch} for batch in batches]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _quantize(source: Path, target: Path, reader: _Reader) -> bool:
    """Quantize ``source`` into ``target``; returns whether the pre-processing step could run."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".preprocess-") as scratch:
        prepared = _preprocessed(source, Path(scratch) / "prepared.onnx")
        try:
            quantize_static(
                str(prepared or source),
                str(target),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=QUANTIZATION_SETTINGS["per_channel"],
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                reduce_range=QUANTIZATION_SETTINGS["reduce_range"],
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as error:  # the quantizer raises whatever its steps raise
            raise EngineFailed(f"INT8 quantization failed: {first_line(error)}") from error
    return prepared is not None


def _preprocessed(source: Path, target: Path) -> Path | None:
    """Shape inference and graph optimisation ahead of quantization, as ONNX Runtime recommends;
    None when the model defeats it (the quantizer then works on the model as it is)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        # Symbolic shape inference serves transformers, not the CNNs benchmarked here, and when
        # it cannot finish it leaves a file in the working directory (ONNX Runtime 1.32).
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    except Exception:  # optional step: any failure means "quantize without it"
        return None
    return target if target.is_file() else None
