"""One prediction: read the request's images or tensor, wait for a worker, run the model (batched
with other requests for it), answer labels or boxes with the timings.

What is cheap is checked before the request queues (credentials, the model, the body's type and
image count); decoding and preprocessing happen once the request holds a worker, so a flood of
waiting requests holds their bytes, never their decoded pixels.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request

from cvplatform.engines.base import EngineFailed, RunStopped
from cvplatform.errors import (
    InferenceFailed,
    InferenceTimeout,
    InvalidInput,
    UnsupportedMediaType,
)
from cvplatform.inference.payloads import (
    check_batch_size,
    images_from_files,
    images_from_json,
    tensor_from_npy,
)
from cvplatform.inference.postprocessing import detections, top_k
from cvplatform.inference.preprocessing import Resized, preprocess
from cvplatform.inference.served import ServedModel, ServingInput
from serve_apps.inference.state import InferenceState

NPY_TYPES = ("application/x-npy", "application/octet-stream")


@dataclass(frozen=True)
class Payload:
    """A request's input as received: image files, base64 images, or an already-checked tensor."""

    files: tuple[tuple[str, bytes], ...] = ()
    json_body: dict[str, Any] | None = None
    tensor: np.ndarray | None = None


@dataclass(frozen=True)
class Prepared:
    batch: np.ndarray
    names: tuple[str, ...]
    resized: tuple[Resized, ...] | None  # None for a raw tensor: boxes stay in its pixels


@dataclass(frozen=True)
class Options:
    top_k: int
    confidence: float
    iou: float


async def read_payload(request: Request, model: ServingInput, state: InferenceState) -> Payload:
    """The request's body, its kind and image count checked (nothing decoded yet).

    Raises:
        UnsupportedMediaType: a body that is not multipart, JSON or .npy.
        InvalidInput: no images, or a malformed body.
        PayloadTooLarge: more images than CVP_INFERENCE_MAX_BATCH.
    """
    limit = state.settings.inference_max_batch
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return Payload(files=await _form_files(request, limit))
    if content_type == "application/json":
        body = _json_object(await request.body())
        images = body.get("images")
        check_batch_size(len(images) if isinstance(images, list) else 0, limit)
        return Payload(json_body=body)
    if content_type in NPY_TYPES:
        dims = model.input_dims or ()
        tensor = tensor_from_npy(await request.body(), dims, limit).tensor
        return Payload(tensor=tensor)
    raise UnsupportedMediaType(
        f'send images as multipart/form-data (files), application/json ({{"images": [base64]}}) '
        f"or a tensor as application/x-npy, not {content_type or 'no Content-Type'}"
    )


async def _form_files(request: Request, limit: int) -> tuple[tuple[str, bytes], ...]:
    form = await request.form(max_files=limit + 1, max_fields=8)
    uploads = [part for part in form.getlist("files") if isinstance(part, UploadFile)]
    check_batch_size(len(uploads), limit)
    return tuple([(upload.filename or "", await upload.read()) for upload in uploads])


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidInput('the JSON body must be an object: {"images": ["<base64>", ...]}')
    return body


def prepare(payload: Payload, model: ServedModel, state: InferenceState) -> Prepared:
    """Decode and preprocess as the model was trained (blocking: runs on a worker thread)."""
    settings = state.settings
    if payload.tensor is not None:
        model.check_tensor(payload.tensor)
        names = tuple(f"sample {index}" for index in range(len(payload.tensor)))
        return Prepared(payload.tensor, names, None)
    limit, pixels = settings.inference_max_batch, settings.inference_max_pixels
    if payload.json_body is not None:
        images = images_from_json(payload.json_body, limit, pixels)
    else:
        images = images_from_files(payload.files, limit, pixels)
    batch, resized = preprocess(images.images, model.spec)
    return Prepared(batch, images.names, resized)


async def infer(
    model: ServedModel, batch: np.ndarray, state: InferenceState
) -> tuple[list[np.ndarray], int]:
    """The model's outputs for ``batch`` and how many requests shared the run.

    Raises:
        InferenceTimeout: the run passed CVP_INFERENCE_TIMEOUT_S (it is stopped where the engine
            allows: ONNX Runtime's runs are; the worker is given back either way).
        InferenceFailed: the engine failed on this input.
    """
    settings = state.settings
    try:
        return await asyncio.wait_for(
            state.batcher(model).submit(batch), settings.inference_timeout_s
        )
    except TimeoutError:
        model.cancel()
        raise InferenceTimeout(
            f"model {model.model_id} took longer than the inference timeout of "
            f"{settings.inference_timeout_s:g} s; its run was stopped"
        ) from None
    except RunStopped:
        raise InferenceTimeout(
            f"model {model.model_id}'s run was stopped: a request it ran with passed the "
            f"inference timeout of {settings.inference_timeout_s:g} s"
        ) from None
    except EngineFailed as error:
        raise InferenceFailed(f"model {model.model_id} failed on this input: {error}") from None


def answer_predictions(
    model: ServedModel, outputs: Sequence[np.ndarray], prepared: Prepared, options: Options
) -> list[dict[str, Any]]:
    """Labels (classification) or boxes (detection) per input, named as the request named them."""
    if model.task_type == "detection":
        resized = prepared.resized or _identity(prepared.batch)
        boxes = detections(outputs[0], resized, model.class_names, options.confidence, options.iou)
        return [
            {"input": name, "boxes": [asdict(box) for box in found]}
            for name, found in zip(prepared.names, boxes, strict=True)
        ]
    labels = top_k(outputs[0], options.top_k, model.class_names)
    return [
        {"input": name, "labels": [asdict(label) for label in best]}
        for name, best in zip(prepared.names, labels, strict=True)
    ]


def _identity(batch: np.ndarray) -> tuple[Resized, ...]:
    height, width = int(batch.shape[2]), int(batch.shape[3])
    return tuple(Resized(1.0, 1.0, width, height) for _ in range(len(batch)))


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 3)


def elapsed_ms(since: float) -> float:
    return milliseconds(time.perf_counter() - since)
