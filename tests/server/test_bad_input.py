"""Bad requests get ``{"error": {"code", "message"}}`` with the right status, never a 500.

Each bad input is a real file made from a real photo (or a real file with a crafted header, for
bombs), sent as a multipart upload and, where the body form matters, as a raw body.
"""

from __future__ import annotations

import asyncio
import json
import time

import image_variants as iv
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import ServerSettings

pytestmark = pytest.mark.slow  # needs the trained + exported tiny bundle


def jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is rewritten to claim width x height pixels."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def assert_error(r, status: int, code: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def post_file(client, data: bytes, **params):
    return client.post("/classify", params=params, files={"file": ("upload", data)})


def test_empty_upload_and_empty_raw_body(client):
    assert_error(post_file(client, b""), 400, "empty")
    assert_error(client.post("/classify", content=b"", headers={"content-type": "image/jpeg"}), 400, "empty")


def test_missing_file_field(client, photo_bytes):
    assert_error(client.post("/classify", files={"image": ("x.jpg", photo_bytes)}), 422, "missing_file")
    assert_error(
        client.post("/classify", data={"file": "not a file"}, files={"other": ("a", b"1")}), 422, "missing_file"
    )


def test_no_or_wrong_content_type(client, photo_bytes):
    assert_error(client.post("/classify"), 415, "unsupported_media_type")
    assert_error(
        client.post("/classify", content=photo_bytes, headers={"content-type": "text/html"}),
        415,
        "unsupported_media_type",
    )
    assert_error(client.post("/classify", json={"file": "x"}), 415, "unsupported_media_type")


def test_html_and_unsupported_formats(client, photo):
    assert_error(post_file(client, iv.HTML), 415, "unsupported_format")
    assert_error(
        client.post("/classify", content=iv.HTML, headers={"content-type": "image/jpeg"}), 415, "unsupported_format"
    )
    assert_error(post_file(client, iv.encode(photo, "PDF")), 415, "unsupported_format")
    assert_error(post_file(client, b"GIF89a"), 400, "corrupt_image")


def test_truncated_and_corrupt_images(client, photo, photo_bytes):
    assert_error(post_file(client, iv.truncated_jpeg(photo)), 400, "corrupt_image")
    png = iv.encode(photo, "PNG")
    assert_error(post_file(client, png[: len(png) * 2 // 3]), 400, "corrupt_image")
    garbled = bytearray(photo_bytes)
    garbled[600:4000] = bytes(range(256)) * 13 + bytes(3400 - 256 * 13)
    r = post_file(client, bytes(garbled))
    assert r.status_code in (200, 400)  # libjpeg may recover from garbage mid-stream; never 500


def test_decompression_bombs_refused_before_decoding(client, photo_bytes):
    for data in (iv.bomb_png(), jpeg_declaring(photo_bytes, 30000, 30000), jpeg_declaring(photo_bytes, 9000, 9000)):
        start = time.perf_counter()
        assert_error(post_file(client, data), 400, "image_too_large")
        # decoding 30000x30000 would take seconds and gigabytes; refusing the header takes ms
        assert time.perf_counter() - start < 1.0


def test_max_pixels_is_configurable(bundle_dir, photo_bytes):
    with TestClient(create_app(bundle_dir, ServerSettings(max_pixels=10_000))) as c:
        assert_error(post_file(c, photo_bytes), 400, "image_too_large")


@pytest.mark.parametrize("top_k", ["0", "-1", "1000", "abc", "2.5"])
def test_top_k_out_of_range(client, photo_bytes, top_k):
    r = post_file(client, photo_bytes, top_k=top_k)
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("invalid_request", "invalid_top_k")


def test_body_over_limit_with_content_length(client):
    limit = client.get("/model").json()["serving"]["max_bytes"]
    big = b"\xff\xd8" + b"\0" * limit
    assert_error(client.post("/classify", content=big, headers={"content-type": "image/jpeg"}), 413, "body_too_large")
    assert_error(post_file(client, big), 413, "body_too_large")


def test_body_over_limit_streamed_without_length(client):
    """Chunked upload, driven at the ASGI level to see how much the app pulls: the read stops
    at the first chunk past the limit, the rest of the body is never asked for."""
    limit = client.get("/model").json()["serving"]["max_bytes"]
    chunk, pulled, sent = 64 * 1024, 0, []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"\0" * chunk, "more_body": pulled < 100}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/classify",
        "raw_path": b"/classify",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"image/jpeg"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": client.app,
    }
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "body_too_large"
    assert pulled == limit // chunk + 1 < 100


def test_wrong_methods_and_paths(client):
    assert_error(client.get("/classify"), 405, "method_not_allowed")
    assert_error(client.get("/nope"), 404, "not_found")


def test_flood_of_bad_requests_then_a_good_one(client, photo, photo_bytes):
    good = post_file(client, photo_bytes).json()["predictions"]
    bad = [b"", iv.HTML, iv.truncated_jpeg(photo), iv.bomb_png(), b"\xff\xd8\xff" * 100]
    for i in range(100):
        assert 400 <= post_file(client, bad[i % len(bad)]).status_code < 500
    assert post_file(client, photo_bytes).json()["predictions"] == good
