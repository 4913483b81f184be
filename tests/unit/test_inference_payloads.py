"""Decoding what a prediction request sends: real tiny JPEG/PNG images made here with Pillow,
hand-crafted headers for the hostile cases, and .npy tensors written by numpy itself."""

from __future__ import annotations

import base64
import io
import math
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cvplatform.errors import InvalidInput, PayloadTooLarge
from cvplatform.inference.images import MAX_IMAGE_PIXELS_DEFAULT, declared_size, decode_image
from cvplatform.inference.payloads import (
    ImageBatch,
    images_from_files,
    images_from_json,
    tensor_from_npy,
)
from tests.images_kit import BLUE, RED, encoded, npy, png_header_only, two_colour_image

INPUT_SHAPE: list[int | str] = ["batch", 3, 8, 6]
_EXIF_ORIENTATION = 0x0112


def close_to(pixel: Any, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(
        abs(int(got) - wanted) <= tolerance for got, wanted in zip(pixel, colour, strict=True)
    )


# --- decode_image ---------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_decodes_png_and_jpeg_to_loaded_rgb(image_format: str) -> None:
    image = decode_image(encoded(two_colour_image(), image_format))
    assert image.mode == "RGB"
    assert image.size == (32, 16)
    assert close_to(image.getpixel((4, 8)), RED)
    assert close_to(image.getpixel((28, 8)), BLUE)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_other_modes_come_out_rgb(mode: str) -> None:
    image = decode_image(encoded(two_colour_image().convert(mode), "PNG"))
    assert image.mode == "RGB"
    assert image.size == (32, 16)


def test_exif_rotated_jpeg_comes_out_upright() -> None:
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    data = encoded(two_colour_image(), "JPEG", exif=exif.tobytes(), quality=95)
    image = decode_image(data)
    assert image.size == (16, 32)
    # Turned clockwise, the left (red) half is now on top.
    assert close_to(image.getpixel((8, 4)), RED)
    assert close_to(image.getpixel((8, 28)), BLUE)


def test_gif_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"not a JPEG or PNG image \(GIF\)"):
        decode_image(encoded(two_colour_image(), "GIF"))


def test_non_images_are_refused_where_ultralytics_patched_pillow() -> None:
    # Importing ultralytics replaces Image.open for the whole process (training, detection and
    # the benchmark's mAP import it): an unidentified file then ends in an ImportError of an
    # optional HEIF plugin, which must still read as "not an image".
    import ultralytics.utils.patches  # noqa: F401

    with pytest.raises(InvalidInput, match="not an image"):
        decode_image(b"hello, this is text")


@pytest.mark.parametrize("data", [b"hello, this is text", b"", b"\x89PNG\r\n\x1a\n"])
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not an image"):
        decode_image(data)


def test_png_declaring_50000_squared_is_refused_fast_before_decoding() -> None:
    data = png_header_only(50_000, 50_000)
    assert len(data) < 100  # nothing to decode: refusing it must not allocate 7.5 GB
    pillow_limit = Image.MAX_IMAGE_PIXELS
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as refused:
        decode_image(data)
    assert time.perf_counter() - started < 1.0
    assert "50000 x 50000" in refused.value.message
    assert f"{MAX_IMAGE_PIXELS_DEFAULT:,}" in refused.value.message
    assert pillow_limit == Image.MAX_IMAGE_PIXELS  # the process-wide guard was not touched


def test_our_limit_refuses_a_header_under_pillows_own_guard() -> None:
    data = png_header_only(300, 200)  # 60,000 pixels: Pillow opens it without a warning
    with pytest.raises(InvalidInput, match=r"300 x 200 = 60,000 pixels, over the limit of 50,000"):
        decode_image(data, max_pixels=50_000)


def test_zero_size_png_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"zero size \(0 x 10\)"):
        decode_image(png_header_only(0, 10))


def test_zero_height_jpeg_is_named() -> None:
    data = bytearray(encoded(two_colour_image(8, 6), "JPEG"))
    frame = data.find(b"\xff\xc0")
    assert declared_size(bytes(data)) == (8, 6)
    data[frame + 5 : frame + 7] = b"\x00\x00"  # the frame header's height
    with pytest.raises(InvalidInput, match=r"zero size \(8 x 0\)"):
        decode_image(bytes(data))


def test_truncated_jpeg_is_refused() -> None:
    noise = np.random.default_rng(7).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "JPEG", quality=95)
    with pytest.raises(InvalidInput, match="truncated"):
        decode_image(data[: len(data) * 2 // 3])


# --- image batches --------------------------------------------------------------------------


def test_files_keep_their_names_and_order() -> None:
    files = [
        ("cat.png", encoded(two_colour_image(), "PNG")),
        ("", encoded(Image.new("RGB", (5, 7)), "JPEG")),
    ]
    batch = images_from_files(files, max_batch=4, max_pixels=1000)
    assert batch.names == ("cat.png", "image 1")
    assert [image.size for image in batch.images] == [(32, 16), (5, 7)]


def test_a_bad_file_is_named_in_the_error() -> None:
    files = [("ok.png", encoded(two_colour_image(), "PNG")), ("notes.txt", b"not an image at all")]
    with pytest.raises(InvalidInput, match=r"^image 1 \(notes\.txt\): not an image"):
        images_from_files(files, max_batch=4, max_pixels=1000)


def test_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no images in the request"):
        images_from_files([], max_batch=4, max_pixels=1000)
    with pytest.raises(InvalidInput, match="no images in the request"):
        images_from_json({"images": []}, max_batch=4, max_pixels=1000)


def test_over_the_batch_limit_is_refused_before_decoding() -> None:
    garbage = [(f"f{index}", b"garbage") for index in range(5)]
    with pytest.raises(PayloadTooLarge, match=r"5 images .* limit of 4 .*CVP_INFERENCE_MAX_BATCH"):
        images_from_files(garbage, max_batch=4, max_pixels=1000)
    with pytest.raises(PayloadTooLarge, match="limit of 4"):
        images_from_json({"images": ["!!"] * 5}, max_batch=4, max_pixels=1000)


def test_json_base64_and_data_urls() -> None:
    png = encoded(two_colour_image(), "PNG")
    jpeg = encoded(two_colour_image(), "JPEG")
    plain = base64.b64encode(png).decode()
    wrapped = "\n".join(plain[index : index + 60] for index in range(0, len(plain), 60))
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    batch = images_from_json({"images": [plain, wrapped, data_url]}, max_batch=4, max_pixels=1000)
    assert isinstance(batch, ImageBatch)
    assert batch.names == ("image 0", "image 1", "image 2")
    assert all(image.size == (32, 16) for image in batch.images)
    assert close_to(batch.images[2].getpixel((4, 8)), RED)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("not base64 at all!", "image 1: not valid base64"),
        ("aGVsbG8", "image 1: not valid base64"),  # bad padding
        ("data:image/png,iVBORw0KGgo=", "image 1: a data URL must be base64"),
        (12345, "image 1: expected a base64 string, got int"),
        (base64.b64encode(b"plain text").decode(), "image 1: not an image"),
    ],
)
def test_bad_json_entries_are_named(entry: object, message: str) -> None:
    good = base64.b64encode(encoded(two_colour_image(), "PNG")).decode()
    with pytest.raises(InvalidInput, match=f"^{message}"):
        images_from_json({"images": [good, entry]}, max_batch=4, max_pixels=1000)


@pytest.mark.parametrize("body", [{}, {"image": ["x"]}, {"images": "abc"}, {"images": None}])
def test_json_body_of_the_wrong_shape(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match='"images"'):
        images_from_json(body, max_batch=4, max_pixels=1000)


# --- .npy tensors ---------------------------------------------------------------------------


def test_float32_batch_passes_as_given() -> None:
    array = np.random.default_rng(3).standard_normal((2, 3, 8, 6)).astype(np.float32)
    batch = tensor_from_npy(npy(array), INPUT_SHAPE, max_batch=4)
    assert batch.tensor.dtype == np.float32
    np.testing.assert_array_equal(batch.tensor, array)


def test_one_sample_of_rank_3_becomes_a_batch_of_one() -> None:
    array = np.ones((3, 8, 6), dtype=np.float32)
    assert tensor_from_npy(npy(array), INPUT_SHAPE, max_batch=4).tensor.shape == (1, 3, 8, 6)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.dtype(">f4")])
def test_other_floats_are_converted(dtype: Any) -> None:
    array = np.linspace(-2, 2, 2 * 3 * 8 * 6).reshape(2, 3, 8, 6).astype(dtype)
    tensor = tensor_from_npy(npy(array), INPUT_SHAPE, max_batch=4).tensor
    assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor, array.astype(np.float32))


def test_fortran_order_comes_out_c_contiguous() -> None:
    array = np.asfortranarray(np.arange(144, dtype=np.float32).reshape(1, 3, 8, 6))
    tensor = tensor_from_npy(npy(array), INPUT_SHAPE, max_batch=4).tensor
    assert tensor.flags.c_contiguous
    np.testing.assert_array_equal(tensor, array)


def test_dynamic_dims_take_any_size() -> None:
    array = np.zeros((1, 3, 5, 7), dtype=np.float32)
    batch = tensor_from_npy(npy(array), ["N", 3, "height", -1], max_batch=4)
    assert batch.tensor.shape == (1, 3, 5, 7)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 8), "rank 2"),
        ((2, 1, 2, 3, 8, 6), "rank 6"),
        ((2, 1, 8, 6), "channels is 1, the model takes 3"),
        ((2, 3, 8, 5), "width is 5, the model takes 6"),
        ((3, 9, 6), "height is 9, the model takes 8"),
    ],
)
def test_wrong_shapes_are_refused(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        tensor_from_npy(npy(np.zeros(shape, dtype=np.float32)), INPUT_SHAPE, max_batch=4)


def test_zero_sized_dynamic_dim_is_refused() -> None:
    with pytest.raises(InvalidInput, match="zero size"):
        tensor_from_npy(npy(np.zeros((1, 3, 0, 4), dtype=np.float32)), ["N", 3, "H", "W"], 4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_])
def test_integer_tensors_are_refused_with_advice(dtype: Any) -> None:
    with pytest.raises(InvalidInput, match="send float32"):
        tensor_from_npy(npy(np.zeros((1, 3, 8, 6), dtype=dtype)), INPUT_SHAPE, max_batch=4)


def test_complex_tensor_is_refused() -> None:
    with pytest.raises(InvalidInput, match="complex64 is refused"):
        tensor_from_npy(npy(np.zeros((1, 3, 8, 6), dtype=np.complex64)), INPUT_SHAPE, 4)


UNPICKLED: list[str] = []


class Tripwire:
    """Records it if it is ever unpickled."""

    def __setstate__(self, state: object) -> None:
        UNPICKLED.append("unpickled")


def test_pickled_object_array_is_refused_unread() -> None:
    array = np.empty((1, 3, 8, 6), dtype=object)
    array.fill(Tripwire())
    with pytest.raises(InvalidInput, match="pickled"):
        tensor_from_npy(npy(array, allow_pickle=True), INPUT_SHAPE, max_batch=4)
    assert UNPICKLED == []


def test_empty_and_oversized_tensor_batches() -> None:
    with pytest.raises(InvalidInput, match="no images in the request"):
        tensor_from_npy(npy(np.zeros((0, 3, 8, 6), dtype=np.float32)), INPUT_SHAPE, 4)
    with pytest.raises(PayloadTooLarge, match=r"5 images .* limit of 4 .*CVP_INFERENCE_MAX_BATCH"):
        tensor_from_npy(npy(np.zeros((5, 3, 8, 6), dtype=np.float32)), INPUT_SHAPE, 4)


def test_header_declaring_more_data_than_sent_is_refused_unallocated() -> None:
    data = npy(np.zeros((1, 3, 8, 6), dtype=np.float32))
    with pytest.raises(InvalidInput, match=r"declares .*\(576 bytes\).* holds 100 bytes"):
        tensor_from_npy(data[: len(data) - 476], INPUT_SHAPE, max_batch=4)


def test_header_declaring_120_gb_is_refused_fast() -> None:
    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (1, 3, 100_000, 100_000)}
    np.lib.format.write_array_header_1_0(buffer, header)
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=r"120,000,000,000 bytes\) but the file holds 0 bytes"):
        tensor_from_npy(buffer.getvalue(), ["N", 3, "H", "W"], max_batch=4)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"this is not numpy",
        encoded(two_colour_image(), "PNG"),
    ],
)
def test_non_npy_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"not a \.npy file"):
        tensor_from_npy(data, INPUT_SHAPE, max_batch=4)


def test_npz_archive_is_refused() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((1, 3, 8, 6), dtype=np.float32))
    with pytest.raises(InvalidInput, match=r"not a \.npy file"):
        tensor_from_npy(buffer.getvalue(), INPUT_SHAPE, max_batch=4)


def test_non_finite_values_are_refused_naming_the_samples() -> None:
    array = np.zeros((3, 3, 8, 6), dtype=np.float64)
    array[1, 0, 0, 0] = np.nan
    array[2, 2, 7, 5] = 1e39  # finite as float64, infinite as float32
    with pytest.raises(InvalidInput, match="samples 1, 2 hold NaN or infinite"):
        tensor_from_npy(npy(array), INPUT_SHAPE, max_batch=4)


def test_pillows_own_bomb_warning_is_a_refusal_too() -> None:
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is None:
        pytest.skip("Pillow's decompression-bomb guard is off in this process")
    # Between Pillow's limit and twice it, Pillow only warns; that warning must refuse it here.
    side = math.isqrt(pillow_limit * 3 // 2)
    with pytest.raises(InvalidInput, match=r"over Pillow's decompression-bomb limit"):
        decode_image(png_header_only(side, side), max_pixels=pillow_limit * 2)


def test_multi_picture_jpeg_from_a_phone_is_a_jpeg() -> None:
    second = Image.new("RGB", (32, 16), RED)
    data = encoded(two_colour_image(), "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO"
    image = decode_image(data)
    assert image.size == (32, 16)
    assert close_to(image.getpixel((28, 8)), BLUE)


def test_negative_dim_in_a_crafted_header_is_refused() -> None:
    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (1, 3, -2, 4)}
    np.lib.format.write_array_header_1_0(buffer, header)
    with pytest.raises(InvalidInput, match="zero size"):
        tensor_from_npy(buffer.getvalue() + b"\0" * 96, ["N", 3, "H", "W"], max_batch=4)
