"""Real photos re-encoded the awkward ways phones and the web deliver them, for decode tests.

Every variant is made from a real ImageNet photo at test time (nothing binary is committed):

    from image_variants import exif_rotated_jpeg, cmyk_jpeg, png16_gray, ...
    data = exif_rotated_jpeg(Image.open(photo))   # bytes of a JPEG stored sideways + EXIF tag
    data = exif_oriented_jpeg(Image.open(photo), 5)   # any of the 8 EXIF orientations
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_rotated_jpeg(img: Image.Image) -> bytes:
    """The photo stored turned 90 degrees counter-clockwise, with EXIF orientation 6 (display: rotate 90 CW)."""
    return exif_oriented_jpeg(img, 6)


# EXIF orientation -> how the pixels are stored so that a viewer applying the tag shows the photo
# upright (the inverse of the transpose that Pillow's ImageOps.exif_transpose applies).
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def exif_oriented_jpeg(img: Image.Image, orientation: int) -> bytes:
    """The photo stored as a camera in one of the 8 EXIF orientations stores it, with that tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = img.convert("RGB")
    if STORED_AS[orientation] is not None:
        stored = stored.transpose(STORED_AS[orientation])
    return encode(stored, "JPEG", quality=95, exif=exif)


def xmp_oriented_jpeg(img: Image.Image) -> bytes:
    """Turned like EXIF orientation 6, but the tag is only in XMP (which Pillow also honours)."""
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    return encode(img.convert("RGB").transpose(STORED_AS[6]), "JPEG", quality=95, xmp=xmp)


def transparent_png(img: Image.Image, mode: str = "RGBA") -> bytes:
    """An RGBA (or LA) PNG whose alpha runs from fully transparent at the left to opaque at the
    right; the transparent pixels keep their colours, which a decoder that drops alpha shows."""
    rgba = img.convert("RGBA")
    ramp = np.linspace(0, 255, rgba.width).round().astype(np.uint8)
    rgba.putalpha(Image.fromarray(np.tile(ramp, (rgba.height, 1))))
    return encode(rgba if mode == "RGBA" else rgba.convert("LA"), "PNG")


def cmyk_jpeg(img: Image.Image) -> bytes:
    return encode(img.convert("RGB").convert("CMYK"), "JPEG", quality=95)


def png16_gray(img: Image.Image) -> bytes:
    """A 16-bit grayscale PNG whose values use the whole 0..65535 range."""
    gray = np.asarray(img.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


def palette_png_with_transparency(img: Image.Image) -> bytes:
    """A palette PNG whose left half is fully transparent (should come out white)."""
    rgba = img.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, np.uint8)
    alpha[:, : rgba.width // 2] = 0
    rgba.putalpha(Image.fromarray(alpha))
    return encode(rgba.quantize(colors=255, method=Image.Quantize.FASTOCTREE), "PNG")


def animated_gif(first: Image.Image, second: Image.Image) -> bytes:
    frames = [f.convert("RGB").resize(first.size).quantize(colors=255) for f in (first, second)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated_jpeg(img: Image.Image) -> bytes:
    data = encode(img.convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (the data would never fit)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


HTML = b"<!doctype html><html><body>Flickr: this photo is no longer available</body></html>"
