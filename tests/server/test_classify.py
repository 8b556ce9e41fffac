"""POST /classify on real photos: both body forms, top_k, every awkward format, abstain, parity.

"Same answer as the phone" is checked against the export stage's desktop LiteRT run of the same
bundle on the reference path (bundle.images -> bundle.preprocess): top-1 exactly, scores within
1e-6; the bundle's golden vectors are reproduced too.
"""

from __future__ import annotations

import io
import json
import shutil

import image_variants as iv
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bundle.manifest import load_bundle
from bundle.preprocess import dequantize
from bundle.publish import seal
from server.app import create_app
from server.schemas import ClassifyResponse

pytestmark = pytest.mark.slow  # needs the trained + exported tiny bundle


def assert_same_answer(server_probs, ref_probs):
    assert int(np.argmax(server_probs)) == int(np.argmax(ref_probs))
    np.testing.assert_allclose(server_probs, ref_probs, rtol=0, atol=1e-6)


def test_multipart_answer_shape(client, bundle_dir, photo_bytes):
    r = client.post("/classify", files={"file": ("mug.jpg", photo_bytes, "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"predictions", "model", "timing_ms"}  # no abstain rule in this bundle
    ClassifyResponse.model_validate(body)  # what /docs promises
    assert len(body["predictions"]) == 3
    bundle = load_bundle(bundle_dir)
    for p in body["predictions"]:
        assert p["label"] == bundle.labels[bundle.wnids.index(p["wnid"])]
        assert 0.0 <= p["score"] <= 1.0
    got = [p["score"] for p in body["predictions"]]
    assert got == sorted(got, reverse=True)
    m = bundle.manifest
    assert body["model"] == {
        "name": m["model"]["name"],
        "version": str(m["model"]["version"]),
        "sha256": m["files"]["model.tflite"]["sha256"],
    }
    t = body["timing_ms"]
    assert set(t) == {"decode", "preprocess", "inference", "total"}
    assert all(v >= 0 for v in t.values())
    assert t["total"] >= t["decode"] + t["preprocess"] + t["inference"]


def test_raw_body_equals_multipart(client, photo_bytes):
    multipart = client.post("/classify", files={"file": ("x.jpg", photo_bytes)}).json()
    for ctype in ("image/jpeg", "image/png", "image/webp", "application/octet-stream"):
        # the format comes from the bytes; the header only says "this is an image"
        raw = client.post("/classify", content=photo_bytes, headers={"content-type": ctype})
        assert raw.status_code == 200, raw.text
        assert raw.json()["predictions"] == multipart["predictions"]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k(client, photo_bytes, bundle_dir, k):
    n = len(load_bundle(bundle_dir).labels)
    preds = client.post(f"/classify?top_k={min(k, n)}", files={"file": ("x", photo_bytes)}).json()
    assert len(preds["predictions"]) == min(k, n)
    full = client.post(f"/classify?top_k={n}", files={"file": ("x", photo_bytes)}).json()
    assert len(full["predictions"]) == n
    assert preds["predictions"] == full["predictions"][: min(k, n)]
    assert sum(p["score"] for p in full["predictions"]) == pytest.approx(1.0, abs=0.1)


def test_parity_with_desktop_litert_on_real_photos(classify_all, reference, sample_photos):
    for path in sample_photos[::5]:
        data = path.read_bytes()
        _, server_probs = classify_all(data)
        _, ref_probs = reference(data)
        assert_same_answer(server_probs, ref_probs)


def test_golden_vectors_reproduce(classify_all, reference, bundle_dir):
    bundle = load_bundle(bundle_dir)
    golden = bundle.manifest.get("golden")
    if not golden:
        pytest.skip("this bundle has no golden vectors")
    q = bundle.output_quant
    for entry in golden:
        data = (bundle_dir / entry["image"]).read_bytes()
        pixels, _ = reference(data)
        assert pixels.tobytes() == (bundle_dir / entry["input"]).read_bytes()
        _, server_probs = classify_all(data)
        want = dequantize(np.array(entry["output"], dtype=np.uint8), q.scale, q.zero_point)
        assert int(np.argmax(server_probs)) == entry["top1"]
        np.testing.assert_allclose(server_probs, want, rtol=0, atol=1e-6)


VARIANTS = {
    "cmyk_jpeg": iv.cmyk_jpeg,
    "png16_gray": iv.png16_gray,
    "palette_png_with_transparency": iv.palette_png_with_transparency,
    "grayscale_jpeg": lambda img: iv.encode(img.convert("L"), "JPEG", quality=90),
    "rgba_webp": lambda img: iv.encode(img.convert("RGBA"), "WEBP", quality=90),
    "bmp": lambda img: iv.encode(img, "BMP"),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_awkward_formats_match_reference(classify_all, reference, photo, name):
    data = VARIANTS[name](photo)
    _, server_probs = classify_all(data)
    _, ref_probs = reference(data)
    assert_same_answer(server_probs, ref_probs)


def test_exif_rotated_phone_photo_classifies_upright(classify_all, reference, photo):
    upright = iv.encode(photo, "JPEG", quality=95)
    sideways = iv.exif_rotated_jpeg(photo)
    _, server_probs = classify_all(sideways)
    ref_pixels, ref_probs = reference(sideways)
    assert_same_answer(server_probs, ref_probs)
    # the model saw the upright picture: its pixels are the upright file's (JPEG noise aside),
    # not the stored sideways ones (the photo is landscape, so the centre crops differ)
    upright_pixels, _ = reference(upright)
    no_exif = iv.encode(Image.open(io.BytesIO(sideways)).convert("RGB"), "JPEG", quality=95)
    sideways_pixels, _ = reference(no_exif)
    err_upright = np.abs(ref_pixels.astype(int) - upright_pixels).mean()
    err_sideways = np.abs(ref_pixels.astype(int) - sideways_pixels).mean()
    assert err_upright < 3 and err_sideways > 4 * err_upright


def test_animated_gif_uses_first_frame(classify_all, reference, sample_photos):
    first, second = (Image.open(p).convert("RGB") for p in sample_photos[:2])
    data = iv.animated_gif(first, second)
    _, server_probs = classify_all(data)
    pixels, ref_probs = reference(data)
    assert_same_answer(server_probs, ref_probs)
    first_only, _ = reference(iv.encode(first.resize(first.size).quantize(colors=255), "GIF"))
    second_only, _ = reference(iv.encode(second.resize(first.size).quantize(colors=255), "GIF"))
    assert np.abs(pixels.astype(int) - first_only).mean() < np.abs(pixels.astype(int) - second_only).mean()


def test_animated_webp_uses_first_frame(classify_all, reference, sample_photos):
    first, second = (Image.open(p).convert("RGB").resize((256, 192)) for p in sample_photos[:2])
    data = iv.encode(first, "WEBP", save_all=True, append_images=[second], duration=100, lossless=True)
    _, server_probs = classify_all(data)
    pixels, ref_probs = reference(data)
    assert_same_answer(server_probs, ref_probs)
    first_pixels, _ = reference(iv.encode(first, "PNG"))
    np.testing.assert_array_equal(pixels, first_pixels)


def test_abstain_rule_from_manifest(bundle_dir, photo_bytes, tmp_path):
    """A bundle with an `abstain` section adds `abstained`; the threshold decides it."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    for threshold, expect in ((1.01, True), (0.0, False)):
        seal(bundle, {**manifest, "abstain": {"method": "max_softmax", "threshold": threshold}})
        with TestClient(create_app(bundle)) as c:
            body = c.post("/classify", files={"file": ("x.jpg", photo_bytes)}).json()
            assert body["abstained"] is expect
            assert len(body["predictions"]) == 3  # the guesses are still shown
            assert c.get("/model").json()["abstain"]["threshold"] == threshold


def test_abstain_rule_uses_the_manifest_score(bundle_dir, photo_bytes, tmp_path):
    """Between the photo's max score and its office mass (sum), only the score named decides."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    with TestClient(create_app(bundle)) as c:
        scores = [
            p["score"]
            for p in c.post(
                f"/classify?top_k={len(manifest['classes'])}", files={"file": ("x.jpg", photo_bytes)}
            ).json()["predictions"]
        ]
    between = (max(scores) + sum(scores)) / 2
    assert max(scores) < between < sum(scores)
    for score, expect in (("max", True), ("office_mass", False)):
        seal(bundle, {**manifest, "abstain": {"method": "other_output", "score": score, "threshold": between}})
        with TestClient(create_app(bundle)) as c:
            assert c.post("/classify", files={"file": ("x.jpg", photo_bytes)}).json()["abstained"] is expect


def test_concurrent_requests_give_identical_answers(client, sample_photos):
    """The interpreter pool is shared by threads: answers must not mix between requests."""
    from concurrent.futures import ThreadPoolExecutor

    datas = [p.read_bytes() for p in sample_photos[:6]]
    alone = [client.post("/classify?top_k=5", files={"file": ("x", d)}).json()["predictions"] for d in datas]
    with ThreadPoolExecutor(8) as pool:
        together = list(
            pool.map(
                lambda i: client.post("/classify?top_k=5", files={"file": ("x", datas[i % 6])}).json()["predictions"],
                range(48),
            )
        )
    assert all(together[i] == alone[i % 6] for i in range(48))
