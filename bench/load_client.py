"""The client side of ``bench/load.py``: JPEG payloads made in memory, multipart bodies built once,
an aiohttp driver of many concurrent users, and the figures it prints.

No Ray and no platform code here: only HTTP, so that the driver measures the service, not itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from PIL import Image, ImageDraw

# "224x224-ish": the service resizes, so sizes around the model's own exercise that path too.
PAYLOAD_SIZES = ((224, 224), (256, 256), (240, 200), (200, 240), (320, 240), (224, 224))
BOUNDARY = "cvp-bench-load-boundary"
SAMPLE_BODY_CHARS = 300
RETRY_AFTER_CAP_S = 5.0


@dataclass(frozen=True)
class Payload:
    """One prediction request's body, built once and sent as often as needed."""

    name: str
    body: bytes
    content_type: str


@dataclass
class Recorded:
    """What one phase saw: every request's status, and the details of the 200 answers."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of the 200 answers only
    batched_with: list[int] = field(default_factory=list)
    engines: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)  # status -> a body, not 503s
    elapsed_s: float = 0.0

    def add(self, status: int, latency_ms: float, body: bytes) -> None:
        self.statuses[str(status)] += 1
        if status == 200:
            self.latencies_ms.append(latency_ms)
            answer = json.loads(body)
            self.batched_with.append(int(answer["batched_with"]))
            self.engines[str(answer["engine"])] += 1
        elif status != 503 and str(status) not in self.error_samples:
            self.error_samples[str(status)] = body[:SAMPLE_BODY_CHARS].decode(errors="replace")

    def add_failure(self, error: BaseException) -> None:
        """A request that got no HTTP answer at all, counted under the exception's name."""
        name = type(error).__name__
        self.statuses[name] += 1
        self.error_samples.setdefault(name, str(error)[:SAMPLE_BODY_CHARS])


def structured_jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    """A JPEG with some structure (a gradient, shapes, mild noise), not pure noise.

    Pure noise compresses badly and decodes slowly; a photo-like image is what the service sees.
    """
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    tint = rng.uniform(0, 255, size=3).astype(np.float32)
    slope = rng.uniform(-1, 1, size=(2, 3)).astype(np.float32)
    pixels = tint + xs[..., None] * slope[0] + ys[..., None] * slope[1]
    pixels += rng.normal(0, 8, size=pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, size=2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, size=2))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1 + 1, y1 + 1), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def multipart_body(filename: str, jpeg: bytes) -> Payload:
    """One image as the multipart part ``files``, encoded once (no per-request client work)."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + jpeg + f"\r\n--{BOUNDARY}--\r\n".encode()
    return Payload(filename, body, f"multipart/form-data; boundary={BOUNDARY}")


def make_payloads(count: int, seed: int) -> list[Payload]:
    """``count`` different JPEG requests, the same for the same seed."""
    rng = np.random.default_rng(seed)
    payloads = []
    for index in range(count):
        width, height = PAYLOAD_SIZES[index % len(PAYLOAD_SIZES)]
        jpeg = structured_jpeg(rng, width, height)
        payloads.append(multipart_body(f"load-{index}.jpg", jpeg))
    return payloads


@dataclass(frozen=True)
class Target:
    """Where and as whom the requests go."""

    predict_url: str  # {serve}/v1/models/{id}/predict
    api_key: str
    request_timeout_s: float = 120.0


async def _one_request(
    session: aiohttp.ClientSession, target: Target, payload: Payload, recorded: Recorded
) -> float:
    """Send one request and record it; returns how long the server asked to wait (0 if not)."""
    headers = {"X-API-Key": target.api_key, "Content-Type": payload.content_type}
    sent = time.perf_counter()
    try:
        async with session.post(target.predict_url, data=payload.body, headers=headers) as answer:
            body = await answer.read()
            recorded.add(answer.status, (time.perf_counter() - sent) * 1000, body)
            if answer.status == 503:
                return _retry_after_s(answer.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as error:
        recorded.add_failure(error)
    return 0.0


def _retry_after_s(value: str | None) -> float:
    """Seconds to wait from a ``Retry-After`` header (an HTTP date counts as one second)."""
    if value is None:
        return 0.0
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_S)
    except ValueError:
        return 1.0


def _session(target: Target, users: int) -> aiohttp.ClientSession:
    # One connection per user at least: a smaller pool would queue requests in the client.
    connector = aiohttp.TCPConnector(limit=users + 4, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=target.request_timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def drive(
    target: Target, payloads: list[Payload], users: int, seconds: float, warmup: int = 0
) -> Recorded:
    """``users`` concurrent users, each sending one request after the other for ``seconds``.

    A user that gets a 503 waits what ``Retry-After`` says (at most 5 s), as a polite client does.
    ``warmup`` requests go first, one at a time, and are not recorded. The elapsed time runs
    until the last request started before the deadline has its answer.
    """
    recorded = Recorded()
    async with _session(target, users) as session:
        discarded = Recorded()
        for index in range(warmup):
            await _one_request(session, target, payloads[index % len(payloads)], discarded)
        deadline = time.perf_counter() + seconds

        async def user(number: int) -> None:
            turn = number
            while time.perf_counter() < deadline:
                wait_s = await _one_request(
                    session, target, payloads[turn % len(payloads)], recorded
                )
                turn += 1
                if wait_s > 0:
                    await asyncio.sleep(wait_s)

        started = time.perf_counter()
        await asyncio.gather(*(user(number) for number in range(users)))
        recorded.elapsed_s = time.perf_counter() - started
    return recorded


async def sequential(target: Target, payloads: list[Payload], count: int) -> Recorded:
    """``count`` requests from one user, one image each, one after the other."""
    recorded = Recorded()
    async with _session(target, 1) as session:
        started = time.perf_counter()
        for index in range(count):
            await _one_request(session, target, payloads[index % len(payloads)], recorded)
        recorded.elapsed_s = time.perf_counter() - started
    return recorded


def percentile_ms(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, linear between ranks), rounded; None without values."""
    if not values:
        return None
    return round(float(np.percentile(values, q)), 2)


def load_figures(recorded: Recorded) -> dict[str, Any]:
    """The load phase's figures; latencies are of the 200 answers (a 503 is answered at once)."""
    succeeded = recorded.statuses.get("200", 0)
    requests = sum(recorded.statuses.values())
    elapsed = recorded.elapsed_s or float("nan")
    return {
        "requests": requests,
        "succeeded": succeeded,
        "requests_per_s": round(requests / elapsed, 2),
        "succeeded_per_s": round(succeeded / elapsed, 2),
        "elapsed_s": round(recorded.elapsed_s, 2),
        "p50_ms": percentile_ms(recorded.latencies_ms, 50),
        "p95_ms": percentile_ms(recorded.latencies_ms, 95),
        "p99_ms": percentile_ms(recorded.latencies_ms, 99),
        "by_status": dict(sorted(recorded.statuses.items())),
        "errors_other_than_503": recorded.error_samples,
        "median_batched_with": (
            statistics.median(recorded.batched_with) if recorded.batched_with else None
        ),
        "max_batched_with": max(recorded.batched_with, default=None),
        "engines": dict(recorded.engines),
    }
