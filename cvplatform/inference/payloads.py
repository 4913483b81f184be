"""What a prediction request sends, checked and turned into a batch: image files (multipart),
base64 images in a JSON body, or a raw ``.npy`` tensor checked against the model's input.

The batch size is checked first, before anything is decoded; a ``.npy`` file's header is checked
(dtype, shape, declared size) before its data is read, and it is never unpickled.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from cvplatform.errors import InvalidInput, PayloadTooLarge
from cvplatform.inference.images import decode_image

MAX_BATCH_VARIABLE = "CVP_INFERENCE_MAX_BATCH"
_AXIS_NAMES_4D = ("batch", "channels", "height", "width")
_SHOWN_SAMPLES = 10


@dataclass(frozen=True)
class ImageBatch:
    """Decoded images in request order, each with the name errors and answers use for it."""

    images: tuple[Image.Image, ...]
    names: tuple[str, ...]  # the file's name, or "image 0", "image 1", ... when it has none

    def __post_init__(self) -> None:
        if len(self.images) != len(self.names):
            raise ValueError(f"{len(self.images)} images but {len(self.names)} names")


# eq=False: comparing two arrays with == gives an array, not a bool; batches compare by identity.
@dataclass(frozen=True, eq=False)
class TensorBatch:
    """A raw input tensor, float32 (N, C, H, W), to be fed to the model as given."""

    tensor: npt.NDArray[np.float32]


def check_batch_size(count: int, max_batch: int) -> None:
    """Refuse an empty batch (InvalidInput) or one over ``max_batch`` (PayloadTooLarge)."""
    if count <= 0:
        raise InvalidInput("no images in the request")
    if count > max_batch:
        raise PayloadTooLarge(
            f"{count} images in one request, over the limit of {max_batch} "
            f"(configured by {MAX_BATCH_VARIABLE})"
        )


def images_from_files(
    files: Sequence[tuple[str, bytes]], max_batch: int, max_pixels: int
) -> ImageBatch:
    """Decode a multipart request's image files.

    Args:
        files: (file name, bytes) in request order; an empty name is allowed.
        max_batch: the most images one request may hold.
        max_pixels: the most pixels one image's header may declare.

    Raises:
        InvalidInput: no images, or an image that is not a sound JPEG/PNG (named in the message).
        PayloadTooLarge: more than ``max_batch`` images.
    """
    check_batch_size(len(files), max_batch)
    images = tuple(
        _decode_named(data, _label(index, filename), max_pixels)
        for index, (filename, data) in enumerate(files)
    )
    names = tuple(filename or f"image {index}" for index, (filename, _) in enumerate(files))
    return ImageBatch(images, names)


def images_from_json(body: Mapping[str, Any], max_batch: int, max_pixels: int) -> ImageBatch:
    """Decode ``{"images": ["<base64>", ...]}``; ``data:image/png;base64,...`` URLs are taken too.

    Raises:
        InvalidInput: the body is not of that shape, an entry is not valid base64, or it does
            not hold a sound JPEG/PNG image (named by its index).
        PayloadTooLarge: more than ``max_batch`` images.
    """
    if not isinstance(body, Mapping) or "images" not in body:
        raise InvalidInput('the JSON body needs "images": a list of base64-encoded JPEG/PNG images')
    entries = body["images"]
    if not isinstance(entries, list):
        raise InvalidInput(f'"images" must be a list of base64 strings, not {_kind(entries)}')
    check_batch_size(len(entries), max_batch)
    files = [("", _base64_bytes(entry, index)) for index, entry in enumerate(entries)]
    return images_from_files(files, max_batch, max_pixels)


def tensor_from_npy(data: bytes, input_shape: Sequence[int | str], max_batch: int) -> TensorBatch:
    """Read a ``.npy`` tensor and check it against the model's input.

    Args:
        data: the ``.npy`` file's bytes (format 1.0 or 2.0, as ``np.save`` writes).
        input_shape: the model's ONNX input dims, e.g. ``["batch", 3, 224, 224]``; a dim that is
            a positive int is fixed and must match, any other (a name, 0, -1) is free.
        max_batch: the most samples one request may hold.

    Returns:
        The tensor as float32, C-contiguous; one sample of rank 3 becomes a batch of 1.

    Raises:
        InvalidInput: not a ``.npy`` file, an object (pickled) or non-float array, a shape that
            does not fit, a batch of 0, a file shorter than its header declares, NaN or infinity.
        PayloadTooLarge: a batch over ``max_batch``.
    """
    header = _read_npy_header(data)
    _check_dtype(header.dtype)
    shape = _batched_shape(header.shape, input_shape)
    check_batch_size(shape[0], max_batch)
    _check_length(header, len(data))
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InvalidInput(f"the .npy file could not be read: {error}") from None
    # float64 beyond float32's range becomes inf here, and is then refused as non-finite.
    with np.errstate(over="ignore"):
        tensor = np.ascontiguousarray(array.reshape(shape), dtype=np.float32)
    _check_finite(tensor)
    return TensorBatch(tensor)


def _label(index: int, filename: str) -> str:
    return f"image {index} ({filename})" if filename else f"image {index}"


def _decode_named(data: bytes, label: str, max_pixels: int) -> Image.Image:
    try:
        return decode_image(data, max_pixels)
    except InvalidInput as error:
        raise InvalidInput(f"{label}: {error.message}") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _base64_bytes(entry: object, index: int) -> bytes:
    if not isinstance(entry, str):
        raise InvalidInput(f"image {index}: expected a base64 string, got {_kind(entry)}")
    text = entry.strip()
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InvalidInput(
                f"image {index}: a data URL must be base64 (data:image/png;base64,...)"
            )
    try:
        # Line breaks (MIME-wrapped base64) are fine; any other stray character is not.
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError as error:  # binascii.Error is a ValueError, as is non-ASCII text
        raise InvalidInput(f"image {index}: not valid base64 ({error})") from None


@dataclass(frozen=True)
class _NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    data_offset: int


def _read_npy_header(data: bytes) -> _NpyHeader:
    source = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(source)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(source)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(source)
        else:
            raise InvalidInput(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, EOFError) as error:
        raise InvalidInput(f"not a .npy file (as numpy.save writes it): {error}") from None
    return _NpyHeader(tuple(int(size) for size in shape), np.dtype(dtype), source.tell())


def _check_dtype(dtype: np.dtype[Any]) -> None:
    if dtype.hasobject:
        raise InvalidInput(
            "the .npy file holds Python objects (pickled); it is refused unread: send float32"
        )
    if dtype.kind == "f":
        return
    if dtype.kind in "iub":
        raise InvalidInput(
            f"the tensor holds {dtype} values; send float32 (the model's input, preprocessed), "
            "or send the images themselves to have them preprocessed"
        )
    raise InvalidInput(f"the tensor's dtype {dtype} is refused; send float32")


def _batched_shape(shape: tuple[int, ...], input_shape: Sequence[int | str]) -> tuple[int, ...]:
    rank = len(input_shape)
    if len(shape) == rank - 1:
        shape = (1, *shape)  # one sample
    elif len(shape) != rank:
        raise InvalidInput(
            f"the tensor has shape {shape} (rank {len(shape)}); the model takes rank {rank} "
            f"{list(input_shape)}, or rank {rank - 1} for one sample"
        )
    names = (
        _AXIS_NAMES_4D if rank == len(_AXIS_NAMES_4D) else tuple(f"axis {i}" for i in range(rank))
    )
    wrong = [
        f"{name} is {size}, the model takes {wanted}"
        for name, size, wanted in zip(names[1:], shape[1:], input_shape[1:], strict=True)
        if _is_fixed(wanted) and size != wanted
    ]
    if wrong:
        raise InvalidInput(
            f"the tensor's shape {shape} does not fit the model's input {list(input_shape)}: "
            + "; ".join(wrong)
        )
    if min(shape[1:], default=1) < 1:
        raise InvalidInput(f"the tensor has zero size: shape {shape}")
    return shape


def _is_fixed(dim: int | str) -> bool:
    return isinstance(dim, int | np.integer) and not isinstance(dim, bool) and dim > 0


def _check_length(header: _NpyHeader, length: int) -> None:
    # Checked before np.load, which would otherwise allocate what the header declares.
    declared = math.prod(header.shape) * header.dtype.itemsize
    available = length - header.data_offset
    if available < declared:
        raise InvalidInput(
            f"the .npy header declares {header.shape} {header.dtype} ({declared:,} bytes) "
            f"but the file holds {available:,} bytes of data"
        )


def _check_finite(tensor: npt.NDArray[np.float32]) -> None:
    finite = np.isfinite(tensor).reshape(len(tensor), -1).all(axis=1)
    if finite.all():
        return
    bad = [int(index) for index in np.flatnonzero(~finite)]
    shown = ", ".join(str(index) for index in bad[:_SHOWN_SAMPLES])
    more = f" and {len(bad) - _SHOWN_SAMPLES} more" if len(bad) > _SHOWN_SAMPLES else ""
    samples = f"sample {shown} holds" if len(bad) == 1 else f"samples {shown}{more} hold"
    raise InvalidInput(
        f"{samples} NaN or infinite values (or values beyond float32's range) in the tensor"
    )
