"""Turn untrusted uploaded bytes into a BGR picture, or refuse them with an HTTP status.

The type is decided by the file's magic bytes (never its name or the client's Content-Type) and
the size by the header, read lazily with Pillow before anything is decoded, so a small file that
claims to be 30000x30000 pixels (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

# Formats accepted, by signature; each is decoded by OpenCV and sized by Pillow.
SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "JPEG": ((0, b"\xff\xd8\xff"),),
    "PNG": ((0, b"\x89PNG\r\n\x1a\n"),),
    "WEBP": ((0, b"RIFF"), (8, b"WEBP")),
    "BMP": ((0, b"BM"),),
}
ALLOWED = tuple(SIGNATURES)


class UploadError(Exception):
    """A refused upload: `status` for the client, the message as one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray  # 8-bit BGR
    format: str


def sniff(data: bytes) -> str | None:
    """The format named by the leading bytes, or None."""
    for name, parts in SIGNATURES.items():
        if all(data[at : at + len(magic)] == magic for at, magic in parts):
            return name
    return None


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone; Pillow's open() does not decode pixels."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        # Pillow's own, higher, limit: only the refusal matters, the size is in its message.
        raise UploadError(413, "picture too large (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(400, "not a valid picture (damaged or truncated header)") from None


def decode_upload(data: bytes, max_pixels: int) -> Decoded:
    """Check type, then header dimensions, then decode; raise UploadError on any refusal."""
    if not data:
        raise UploadError(400, "empty file")
    kind = sniff(data)
    if kind is None:
        raise UploadError(415, f"unsupported file type; allowed: {', '.join(ALLOWED)}")
    width, height = header_size(data)
    if width * height > max_pixels:
        raise UploadError(
            413,
            f"picture is {width}x{height} ({width * height / 1e6:.1f} MP); "
            f"the limit is {max_pixels / 1e6:g} MP",
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise UploadError(400, f"could not decode the {kind} picture (damaged or truncated)")
    return Decoded(image, kind)
