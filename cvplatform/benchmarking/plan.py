"""What a benchmark request asks of a model's input, checked before anything is queued and again
by the job: the input shape (C, H, W) and the batch sizes its ONNX input can take."""

from __future__ import annotations

from collections.abc import Sequence

from cvplatform.errors import InvalidInput

Dim = int | str  # an ONNX dimension: a size, or the name of a dynamic one ("batch")


def onnx_input_dims(summary: object) -> list[Dim] | None:
    """The first input's dimensions from a converted model's ONNX summary (``details.summary``)."""
    if not isinstance(summary, dict):
        return None
    inputs = summary.get("inputs") or []
    if not inputs or not isinstance(inputs[0], dict):
        return None
    shape = inputs[0].get("shape")
    return list(shape) if isinstance(shape, list) else None


def resolve_input_shape(
    requested: Sequence[int] | None, onnx_dims: Sequence[Dim] | None
) -> tuple[int, int, int]:
    """The C, H, W to benchmark: the request's, checked against the model, else the model's own.

    Raises:
        InvalidInput: the rank or the channels differ from the model's, a fixed size differs, or
            the model's size is dynamic and the request gives none.
    """
    if onnx_dims is None:
        if requested is None:
            raise InvalidInput("the model's input shape is not known: give input_shape (C, H, W)")
        channels, height, width = requested
        return channels, height, width
    if len(onnx_dims) != 4:
        raise InvalidInput(
            f"the model's input has rank {len(onnx_dims)} ({list(onnx_dims)}); benchmarks take "
            "image models with an N, C, H, W input"
        )
    model_chw = list(onnx_dims[1:])
    if requested is None:
        dynamic = [dim for dim in model_chw if not isinstance(dim, int)]
        if dynamic:
            raise InvalidInput(
                f"the model's input {list(onnx_dims)} has dynamic sizes; give input_shape (C, H, W)"
            )
        channels, height, width = (int(dim) for dim in model_chw)
        return channels, height, width
    names = ("channels", "height", "width")
    for name, wanted, given in zip(names, model_chw, requested, strict=True):
        if isinstance(wanted, int) and wanted != given:
            raise InvalidInput(
                f"input_shape {list(requested)} does not fit the model: its {name} is {wanted} "
                f"(the model takes {list(onnx_dims)})"
            )
    channels, height, width = requested
    return channels, height, width


def check_batch_sizes(batch_sizes: Sequence[int], onnx_dims: Sequence[Dim] | None) -> None:
    """A model exported with a fixed batch size takes that one only.

    Raises:
        InvalidInput: a batch size it cannot take.
    """
    if not onnx_dims or not isinstance(onnx_dims[0], int) or onnx_dims[0] <= 0:
        return
    fixed = onnx_dims[0]
    wrong = [size for size in batch_sizes if size != fixed]
    if wrong:
        raise InvalidInput(
            f"the model was exported with a fixed batch size of {fixed}: it cannot run batch "
            f"sizes {wrong}; ask for batch_sizes [{fixed}] or export it with a dynamic batch"
        )
