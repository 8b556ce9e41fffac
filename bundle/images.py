"""Decode untrusted image bytes into an upright 8-bit RGB picture, or fail with a named reason.

Every stage that turns a photo into pixels goes through here (dataset statistics, calibration,
parity, golden vectors, the server), so "the same image" means the same pixels everywhere.

    from bundle.images import decode_image, ImageError
    try:
        img = decode_image(data)                   # PIL.Image in mode "RGB", EXIF-upright
    except ImageError as e:
        print(e.code, e)                           # "unsupported_format", "corrupt_image", ...

Rules (the reference that other implementations copy):
- Only the first frame of an animated GIF/WebP/APNG is used.
- EXIF orientation is applied, so a portrait phone photo comes out upright.
- 16-bit images are scaled to 8 bits (not clipped); CMYK, palette, grayscale convert to RGB;
  transparent pixels are composited over white.
- JPEGs are decoded at full size (libjpeg-turbo, ISLOW DCT): a browser decodes them to the same
  pixels, so the phone page and the server agree on a photo exactly. (Pillow's ``draft``, decoding
  at a reduced DCT scale, is 3-8x faster on phone photos but changed the top-1 of 4 of the 44
  full-size sample photos against the browser's decode.)
- An image whose header declares more than ``max_pixels`` pixels is refused before decoding.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Leading bytes of the supported formats: bytes that start like an image but don't parse are a
# corrupt image (400), anything else is not an image at all (415).
SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


class ImageError(ValueError):
    """A photo that can't be used; ``code`` names the reason for programs (and HTTP mapping)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Bytes -> fully decoded, upright RGB ``PIL.Image`` (see the module docstring for rules)."""
    if not data:
        raise ImageError("empty", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        if data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
            raise ImageError("corrupt_image", "the file starts like an image but its header is corrupt") from None
        raise ImageError(
            "unsupported_format", "not an image, or not a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("image_too_large", f"image declares too many pixels: {e}") from None
    except Exception as e:  # a header Pillow chokes on is a corrupt file, not a server fault
        raise ImageError("corrupt_image", f"cannot read the image header: {e}") from None
    width, height = img.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise ImageError("image_too_large", f"image declares {width}x{height} pixels, over the limit of {max_pixels}")
    try:
        img.seek(0)
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except ImageError:
        raise
    except Exception as e:  # truncated data, bad Huffman tables, broken zlib streams...
        raise ImageError("corrupt_image", f"the image data is truncated or corrupt: {e}") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, scaling 16-bit data and flattening alpha onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale: convert("L") would clip everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        arr = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")
