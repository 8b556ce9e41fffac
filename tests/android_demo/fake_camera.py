"""Chromium's fake camera input: a real photo as a one-frame Y4M video.

    from fake_camera import write_y4m
    rgb = write_y4m(photo, tmp_path / "frame.y4m")   # then --use-file-for-fake-video-capture=...
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_y4m(img: Image.Image, path: Path) -> np.ndarray:
    """One 4:2:0 frame for Chromium's fake camera; returns the RGB it encodes (BT.601, video range)."""
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    u, v = (p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)) for p in (u, v))  # 4:2:0 chroma
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v)]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420\n".encode())
        f.write(b"FRAME\n" + b"".join(p.tobytes() for p in planes))
    return np.asarray(img.convert("RGB"))
