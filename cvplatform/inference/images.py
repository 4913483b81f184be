"""One image from a request's bytes: JPEG or PNG only, its declared size checked before a single
pixel is decoded, EXIF orientation applied, RGB out.

PIL reads only the header on ``Image.open``; ``image.size`` is then known while nothing is
allocated, so a header declaring 50,000 x 50,000 pixels is refused before ``load()``.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from cvplatform.errors import InvalidInput

MAX_IMAGE_PIXELS_DEFAULT = 40_000_000
ACCEPTED_FORMATS = ("JPEG", "PNG")
# Pillow opens a multi-picture JPEG (what many phone cameras write) as "MPO": still a JPEG file.
_JPEG_VARIANTS = ("MPO",)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_START = b"\xff\xd8"
# Start-of-frame markers carry the frame's size; C4, C8 and CC share the range but are not frames.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_SCAN_START = 0xDA

# Everything Pillow raises for a file it cannot parse or decode.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS_DEFAULT) -> Image.Image:
    """Decode one JPEG or PNG image, refusing what is not one before decoding it.

    Args:
        data: the file's bytes as the request sent them.
        max_pixels: the most pixels (width x height) the header may declare.

    Returns:
        The image, fully loaded, turned upright per its EXIF orientation, in RGB.

    Raises:
        InvalidInput: not an image, not JPEG or PNG, of zero size, declaring more than
            ``max_pixels`` pixels, or truncated/corrupt.
    """
    # Pillow's own bomb guard (a global limit) warns or raises; both become a refusal here, and
    # the global Image.MAX_IMAGE_PIXELS is left as it is: other code in the process relies on it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open_checked(data, max_pixels)
        try:
            image.load()
            # In place, and no convert() of an RGB image: each would copy the pixels (profiled).
            ImageOps.exif_transpose(image, in_place=True)
        except _BOMB_ERRORS as error:
            image.close()
            raise InvalidInput(_too_many_pixels(image.size, max_pixels, error)) from None
        except _DECODE_ERRORS as error:
            image.close()
            raise InvalidInput(f"the image is truncated or corrupt: {error}") from None
    if image.mode == "RGB":
        return image
    with image:
        return image.convert("RGB")


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and check format and declared size; nothing decoded yet."""
    try:
        image = Image.open(io.BytesIO(data))
    except _BOMB_ERRORS as error:
        raise InvalidInput(_too_many_pixels(declared_size(data), max_pixels, error)) from None
    except (UnidentifiedImageError, ImportError, *_DECODE_ERRORS):
        # ImportError: ultralytics, once imported anywhere in the process, replaces Image.open
        # with one that answers an unidentified file by importing an optional HEIF plugin.
        raise InvalidInput(_unreadable(data)) from None
    image_format = image.format or "unknown format"
    if image_format not in ACCEPTED_FORMATS + _JPEG_VARIANTS:
        image.close()
        raise InvalidInput(f"not a JPEG or PNG image ({image_format})")
    width, height = image.size
    problem = None
    if width <= 0 or height <= 0:
        problem = f"the image has zero size ({width} x {height})"
    elif width * height > max_pixels:
        problem = _too_many_pixels(image.size, max_pixels)
    if problem is not None:
        image.close()
        raise InvalidInput(problem)
    return image


def _unreadable(data: bytes) -> str:
    # Pillow refuses a zero width or height as "cannot identify": read the header ourselves to
    # say what is actually wrong.
    size = declared_size(data)
    if size is not None and 0 in size:
        return f"the image has zero size ({size[0]} x {size[1]})"
    if size is not None:
        return f"the image is truncated or corrupt: its {size[0]} x {size[1]} header is unreadable"
    return f"not an image: no known image format starts these {len(data)} bytes"


def _too_many_pixels(
    size: tuple[int, int] | None, max_pixels: int, pillow_error: Exception | None = None
) -> str:
    limit = f"the limit of {max_pixels:,} pixels"
    if size is None:
        return f"the image declares more pixels than {limit} ({pillow_error})"
    width, height = size
    declared = f"the image declares {width} x {height} = {width * height:,} pixels"
    if width * height <= max_pixels:  # under ours, over Pillow's own process-wide guard
        return f"{declared}, over Pillow's decompression-bomb limit ({pillow_error})"
    return f"{declared}, over {limit}"


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a PNG or JPEG header declares, read without Pillow; None if neither.

    Only for explaining a refusal: Pillow does the real parsing.
    """
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(_JPEG_START):
        return _jpeg_frame_size(data)
    return None


def _jpeg_frame_size(data: bytes) -> tuple[int, int] | None:
    position = len(_JPEG_START)
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _JPEG_SCAN_START:
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_FRAME_MARKERS and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None
