"""The APK's page in headless Chromium: camera -> top-3 equal to desktop LiteRT, preprocessing
equal to Python's, EXIF-upright photos, and the HTTP server fallback.

The page is unzipped from the built APK (``apk_site``), the camera is Chromium's fake device
playing a real photo, the model runs in LiteRT.js (WebAssembly), the reference is the same
model.tflite in desktop LiteRT and the bundle's Python preprocessing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest
from PIL import Image
from servers import real_server

from android_demo.page import write_y4m
from bundle.images import decode_image
from bundle.manifest import load_bundle
from bundle.preprocess import PreprocessSpec, dequantize, preprocess, quantize
from bundle.publish import seal

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
APP_ORIGIN = "https://appassets.androidplatform.net"  # where MainActivity serves the page
# A JPEG file decoded by Chromium is pixel-identical to Pillow's full-size decode (both are
# libjpeg-turbo with the same IDCT and upsampling), which is what bundle.images.decode_image, the
# reference, does: from a photo file as from a camera frame, the page's tensor is the server's.


def url(site: str, **params) -> str:
    return site + "index.html" + ("?" + urlencode(params) if params else "")


def unb64(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.uint8)


def reference_input(bundle, img: Image.Image) -> np.ndarray:
    q = bundle.input_quant
    return quantize(preprocess(img, bundle.preprocess), q.scale, q.zero_point, bundle.input_dtype)


def js_percent(score: float) -> str:
    """The page's `${(100 * score).toFixed(1)}%`: exact value, ties away from zero (6.25 -> 6.3)."""
    return f"{Decimal(100 * float(score)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def expected_top3(bundle, raw: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    scores = dequantize(raw, bundle.output_quant.scale, bundle.output_quant.zero_point)
    order = np.argsort(-scores, kind="stable")[:3]
    return ([bundle.labels[i] for i in order], [js_percent(scores[i]) for i in order], scores[order])


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def landscape(sample_photos) -> Image.Image:
    """A real photo, landscape (so crop and rotation matter), at a camera's 640x480."""
    for path in sample_photos:
        img = decode_image(path.read_bytes())
        if img.width > 1.2 * img.height:
            return img.resize((640, 480), Image.Resampling.LANCZOS)
    pytest.skip("no landscape photo among the samples")


def test_camera_frame_top3_equals_desktop_litert(bundle, landscape, apk_site, run_page, desktop_model, tmp_path):
    sent = write_y4m(landscape, tmp_path / "frame.y4m")
    out = run_page({"url": url(apk_site), "y4m": str(tmp_path / "frame.y4m"), "steps": [{"op": "camera"}]})
    assert out["mode"] == "on-device"
    r = out["results"][0]
    assert r["mode"] == "on-device" and r["source"] == "camera"

    w, h = r["frame"]["width"], r["frame"]["height"]
    frame = unb64(r["frame"]["rgba_b64"]).reshape(h, w, 4)[..., :3]
    # The page saw our photo (Chromium's own YUV -> RGB conversion makes it close, not equal).
    assert (w, h) == (640, 480)
    assert np.abs(frame.astype(int) - sent.astype(int)).mean() < 6

    # Its tensor is the reference crop/resize/quantize of that frame, bit for bit...
    x = reference_input(bundle, Image.fromarray(np.ascontiguousarray(frame)))
    np.testing.assert_array_equal(unb64(r["input_b64"]).reshape(x.shape), x)
    # ...and LiteRT.js gives exactly desktop LiteRT's output on it.
    raw = desktop_model(x)
    assert r["raw"] == raw.tolist()
    labels, shown_scores, scores = expected_top3(bundle, raw)
    assert [t["score"] for t in r["top"]] == [float(s) for s in scores]
    assert r["dom"]["labels"] == labels
    assert r["dom"]["scores"] == shown_scores
    assert re.fullmatch(r"on this phone: \d+\.\d ms inference, \d+\.\d ms preprocessing", r["dom"]["timing"])


def test_preprocessing_is_bit_exact_with_python(bundle, tiny_bundle, apk_site, run_page):
    """Golden vectors from decoded pixels, plus shapes and specs that reach every code path."""
    size = bundle.preprocess.size
    cases = []  # (rgb array, manifest "input" to use or None, expected bytes)
    for g in bundle.manifest.get("golden", []):
        img = decode_image((tiny_bundle / g["image"]).read_bytes())
        cases.append((np.asarray(img), None, (tiny_bundle / g["input"]).read_bytes()))
    assert len(cases) >= 1, "the bundle has no golden vectors"
    rng = np.random.default_rng(0)
    variants = [
        ({"size": size, "crop_fraction": 1.0}, {"scale": 1.0, "zero_point": 0}),
        ({"size": 24, "crop_fraction": 0.875}, {"scale": 1.0, "zero_point": 0}),
        ({"size": 17, "crop_fraction": 0.7}, {"scale": 0.75, "zero_point": -20}),  # rounding + clipping
        ({"size": 3, "crop_fraction": 0.5}, {"scale": 1.0, "zero_point": 0}),  # 5 x 0.5: round(2.5) == 2
    ]
    for h, w in [(size, size), (size - 3, size + 5), (7, 1000), (501, 333), (480, 640), (5, 4), (5, 9)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for spec, quant in variants:
            inp = {
                "shape": [1, spec["size"], spec["size"], 3],
                "dtype": "uint8",
                "quantization": quant,
                "preprocess": {**spec, "resize": "bilinear", "channel_order": "RGB"},
            }
            x = quantize(
                preprocess(Image.fromarray(rgb), PreprocessSpec(**spec)), quant["scale"], quant["zero_point"], "uint8"
            )
            cases.append((rgb, inp, x.tobytes()))
    steps = [
        {
            "op": "preprocess",
            "width": rgb.shape[1],
            "height": rgb.shape[0],
            "rgb_b64": base64.b64encode(rgb.tobytes()).decode(),
            "input": inp,
        }
        for rgb, inp, _ in cases
    ]
    out = run_page({"url": url(apk_site, camera="0"), "steps": steps})
    for i, ((rgb, inp, want), got) in enumerate(zip(cases, out["results"])):
        got = base64.b64decode(got["input_b64"])
        assert got == want, (
            f"case {i}: {rgb.shape} {inp and inp['preprocess']}: {sum(a != b for a, b in zip(got, want))} bytes differ"
        )


def test_browser_jpeg_decode_equals_pillow_full_size_decode(bundle, tiny_bundle, sample_photos, apk_site, run_page):
    golden = bundle.manifest.get("golden", [])
    paths = [tiny_bundle / g["image"] for g in golden] + sample_photos[:6]
    out = run_page(
        {"url": url(apk_site, camera="0"), "steps": [{"op": "decode_preprocess", "path": str(p)} for p in paths]}
    )
    for path, r in zip(paths, out["results"]):
        decoded = decode_image(path.read_bytes())
        frame = unb64(r["rgba_b64"]).reshape(r["height"], r["width"], 4)[..., :3]
        np.testing.assert_array_equal(frame, np.asarray(decoded), err_msg=f"{path}: decoded pixels")
        np.testing.assert_array_equal(
            unb64(r["input_b64"]), reference_input(bundle, decoded).reshape(-1), err_msg=f"{path}: input tensor"
        )
    for g, r in zip(golden, out["results"]):  # the golden tensors, from the JPEG files themselves
        assert unb64(r["input_b64"]).tobytes() == (tiny_bundle / g["input"]).read_bytes(), g["image"]


def test_photo_mode_applies_exif_orientation(bundle, landscape, apk_site, run_page, tmp_path):
    """A phone photo stored sideways with EXIF Orientation 6 is classified upright, like Python."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "sideways.jpg"
    landscape.save(path, "JPEG", quality=95, exif=exif)
    out = run_page({"url": url(apk_site, camera="0"), "steps": [{"op": "photo", "path": str(path)}]})
    r = out["results"][0]
    assert r["source"] == "photo" and (r["frame"]["width"], r["frame"]["height"]) == (480, 640)
    page = unb64(r["input_b64"])
    np.testing.assert_array_equal(page, reference_input(bundle, decode_image(path.read_bytes())).reshape(-1))
    ignoring_exif = reference_input(bundle, Image.open(path).convert("RGB"))
    assert np.abs(page.astype(int) - ignoring_exif.reshape(-1)).mean() > 30
    assert len(r["dom"]["labels"]) == 3


@pytest.fixture(scope="module")
def server_url(tiny_bundle):
    """The real officenet server (python -m server) on a free loopback port."""
    with real_server(tiny_bundle) as base:
        # The page (https://appassets.androidplatform.net on the phone, another port here) is
        # another origin: the browser hands it the answer only if the server allows that (CORS).
        probe = httpx.post(base + "/classify", headers={"Origin": APP_ORIGIN}, files={"file": ("x.png", b"")})
        assert "access-control-allow-origin" in probe.headers, "the server must allow the APK page's origin"
        yield base


def test_fallback_posts_to_the_server_and_shows_its_answer(
    bundle, landscape, sample_photos, apk_site, run_page, server_url, desktop_model, tmp_path
):
    write_y4m(landscape, tmp_path / "frame.y4m")
    photo = sample_photos[0]
    out = run_page(
        {
            "url": url(apk_site, ondevice="0", server=server_url),
            "y4m": str(tmp_path / "frame.y4m"),
            "steps": [{"op": "camera"}, {"op": "photo", "path": str(photo)}],
        }
    )
    assert out["mode"] == "server"
    camera, picked = out["results"]
    assert camera["mode"] == "server" and camera["raw"] is None  # nothing ran in the page
    assert camera["dom"]["timing"].startswith("server: ")
    # The frame went as a lossless PNG, so the server's answer is the model's on those pixels.
    w, h = camera["frame"]["width"], camera["frame"]["height"]
    frame = unb64(camera["frame"]["rgba_b64"]).reshape(h, w, 4)[..., :3]
    labels, shown_scores, _ = expected_top3(
        bundle, desktop_model(reference_input(bundle, Image.fromarray(np.ascontiguousarray(frame))))
    )
    assert camera["dom"]["labels"] == labels and camera["dom"]["scores"] == shown_scores

    answer = httpx.post(server_url + "/classify?top_k=3", files={"file": (photo.name, photo.read_bytes())}).json()
    assert picked["mode"] == "server"
    assert picked["dom"]["labels"] == [p["label"] for p in answer["predictions"]]
    assert picked["dom"]["scores"] == [js_percent(p["score"]) for p in answer["predictions"]]


@pytest.mark.parametrize("score", ["max", "office_mass"])
def test_abstain_rule_shows_not_sure_instead_of_a_label(
    score, tiny_bundle, sample_photos, android_tools, run_page, desktop_model, tmp_path
):
    """A bundle whose manifest has an abstain rule (issue 8): the page applies it as the server does,
    with the score the manifest names (the threshold sits between this photo's max and its sum)."""
    from android_demo.build import main as build
    from android_demo.page import site
    from bundle.abstain import abstains

    photo = sample_photos[0]
    b = load_bundle(tiny_bundle)
    x = quantize(
        preprocess(decode_image(photo.read_bytes()), b.preprocess),
        b.input_quant.scale,
        b.input_quant.zero_point,
        b.input_dtype,
    )
    probs = dequantize(desktop_model(x), b.output_quant.scale, b.output_quant.zero_point)
    rule = {"method": "other_output", "score": score, "threshold": float(probs.max() + probs.sum()) / 2}
    abstaining = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, abstaining)
    manifest = json.loads((abstaining / "manifest.json").read_text())
    manifest["abstain"] = rule
    seal(abstaining, manifest)  # an edited manifest must be resealed, or every reader refuses it
    apk = tmp_path / "abstain.apk"
    assert build(["--bundle", str(abstaining), "--out", str(apk)]) == 0
    with site(apk) as base:
        out = run_page({"url": url(base, camera="0"), "steps": [{"op": "photo", "path": str(photo)}]})
    r = out["results"][0]
    assert r["abstained"] is bool(abstains(probs, rule)) is (score == "max")
    assert (
        r["dom"]["status"] == "not sure this is an office object"
        if score == "max"
        else r["dom"]["status"] != "not sure this is an office object"
    )
    assert len(r["dom"]["labels"]) == 3  # the guesses stay visible


def test_falls_back_to_the_server_when_the_runtime_cannot_load(sample_photos, apk_site, run_page, server_url):
    """On-device inference on, but the WebAssembly runtime fails to load: the server answers."""
    photo = sample_photos[1]
    out = run_page(
        {
            "url": url(apk_site, camera="0", server=server_url),
            "block": ["litert/wasm/"],
            "steps": [{"op": "photo", "path": str(photo)}],
        }
    )
    assert out["mode"] == "server"
    r = out["results"][0]
    answer = httpx.post(server_url + "/classify?top_k=3", files={"file": (photo.name, photo.read_bytes())}).json()
    assert r["mode"] == "server"
    assert r["dom"]["labels"] == [p["label"] for p in answer["predictions"]]


# --- What a phone does to the page (issue 14) ------------------------------------------------------


def test_a_runtime_that_does_not_load_leaves_the_page_working_on_the_server(
    sample_photos, apk_site, run_page, server_url
):
    """LiteRT.js itself fails to load (as in a WebView without import maps): the page must not hang at
    "loading the model…"; it says why and answers with the server."""
    photo = sample_photos[1]
    out = run_page(
        {
            "url": url(apk_site, camera="0", server=server_url),
            "block": ["litert/core.js"],
            "steps": [{"op": "photo", "path": str(photo)}],
        }
    )
    assert out["mode"] == "server"
    r = out["results"][0]
    assert r["mode"] == "server" and len(r["dom"]["labels"]) == 3


def test_without_webassembly_the_page_says_so_and_opens_the_server_setting(apk_site, run_page):
    """A WebView with no usable WebAssembly and no server set yet: a message and the settings form."""
    out = run_page(
        {
            "url": url(apk_site, camera="0"),
            "init_script": "delete globalThis.WebAssembly;",
            "steps": [
                {
                    "op": "eval",
                    "js": "({status: document.getElementById('status').textContent,"
                    " settings: !document.getElementById('settings').hidden})",
                }
            ],
        }
    )
    assert out["mode"] == "server"
    r = out["results"][0]
    assert r["status"].startswith("this phone cannot run the model itself (")
    assert r["status"].endswith("set the fallback server in settings") and r["settings"]


def test_a_page_whose_script_cannot_run_says_so_instead_of_loading_for_ever(apk_site, run_page):
    """A WebView too old for the module script (simulated by failing app.js) still gets a message."""
    out = run_page(
        {
            "url": url(apk_site, camera="0"),
            "block": ["app.js"],
            "wait_ready": False,
            "steps": [
                {
                    "op": "wait",
                    "js": "document.getElementById('status').textContent"
                    ".startsWith('this WebView cannot run the page')",
                }
            ],
        }
    )
    assert out["results"][0] is True


@pytest.mark.parametrize("build", ["compat", "relaxed"])
def test_each_single_thread_build_gives_desktop_litert_output(
    build, bundle, sample_photos, apk_site, run_page, desktop_model
):
    """The plain-SIMD build (what a WebView without relaxed SIMD runs) and the relaxed-SIMD one."""
    photo = sample_photos[2]
    out = run_page(
        {
            "url": url(apk_site, camera="0", wasm=build),
            "steps": [{"op": "photo", "path": str(photo)}, {"op": "eval", "js": "window.officenet.state.model.build"}],
        }
    )
    r, used = out["results"]
    assert used == build
    assert r["raw"] == desktop_model(reference_input(bundle, decode_image(photo.read_bytes()))).tolist()


def test_at_the_apps_origin_the_page_is_isolated_and_runs_one_thread(
    bundle, sample_photos, apk_site, run_page, desktop_model
):
    """At https://appassets.androidplatform.net with the headers MainActivity sends (COOP/COEP), the
    page is cross-origin isolated; the APK ships no threaded build by default, so one thread runs."""
    photo = sample_photos[2]
    out = run_page(
        {
            "url": url(apk_site, camera="0"),
            "origin": APP_ORIGIN + "/",
            "steps": [
                {"op": "photo", "path": str(photo)},
                {
                    "op": "eval",
                    "js": "({isolated: crossOriginIsolated, origin: location.origin,"
                    " build: window.officenet.state.model.build})",
                },
            ],
        }
    )
    r, page = out["results"]
    assert page == {"isolated": True, "origin": APP_ORIGIN, "build": "relaxed"}
    assert r["raw"] == desktop_model(reference_input(bundle, decode_image(photo.read_bytes()))).tolist()


@pytest.fixture(scope="module")
def threaded_apk(tiny_bundle, android_tools, tmp_path_factory):
    from android_demo.build import main as build

    out = tmp_path_factory.mktemp("threaded") / "threaded.apk"
    assert build(["--bundle", str(tiny_bundle), "--out", str(out), "--threaded-wasm"]) == 0
    return out


@pytest.mark.parametrize("isolated", [True, False])
def test_a_shipped_threaded_build_runs_only_where_the_page_is_isolated(
    isolated, bundle, sample_photos, threaded_apk, run_page, desktop_model
):
    """Built with --threaded-wasm: the page picks the threaded build itself where it is cross-origin
    isolated, and one thread where the WebView ignores COOP/COEP; the same output either way."""
    from android_demo.page import site

    photo = sample_photos[2]
    with site(threaded_apk, headers=None if isolated else {}) as base:
        out = run_page(
            {
                "url": url(base, camera="0"),
                "origin": APP_ORIGIN + "/",
                "steps": [
                    {"op": "photo", "path": str(photo)},
                    {"op": "eval", "js": "[crossOriginIsolated, window.officenet.state.model.build]"},
                ],
            }
        )
    r, page = out["results"]
    assert page == [isolated, "threaded" if isolated else "relaxed"]
    assert r["raw"] == desktop_model(reference_input(bundle, decode_image(photo.read_bytes()))).tolist()


CAMERA = (
    "({starts: officenet.camera.starts, live: !!officenet.camera.stream, "
    "tracks: officenet.camera.stream ? officenet.camera.stream.getTracks().map((t) => t.readyState) : []})"
)


def test_camera_restarts_when_its_stream_ends_and_is_given_back_while_hidden(landscape, apk_site, run_page, tmp_path):
    write_y4m(landscape, tmp_path / "frame.y4m")
    out = run_page(
        {
            "url": url(apk_site),
            "y4m": str(tmp_path / "frame.y4m"),
            "steps": [
                {"op": "camera"},
                {"op": "eval", "js": CAMERA},
                # The stream ends under the page (Android took the camera; stop() fires no 'ended' event).
                {"op": "eval", "js": "officenet.camera.stream.getVideoTracks()[0].stop(), true"},
                {"op": "wait", "js": "officenet.camera.starts === 2 && !!officenet.camera.stream"},
                {"op": "camera"},
                # The app goes to the background: the camera is released, and taken again on return.
                {"op": "eval", "js": "window.__track = officenet.camera.stream.getVideoTracks()[0], true"},
                {"op": "visibility", "hidden": True},
                {"op": "eval", "js": f"({{...{CAMERA}, released: window.__track.readyState}})"},
                {"op": "visibility", "hidden": False},
                {"op": "wait", "js": "officenet.camera.starts === 3 && !!officenet.camera.stream"},
                {"op": "camera"},
                {"op": "eval", "js": CAMERA},
            ],
        }
    )
    first, before, _, _, after_restart, _, _, hidden, _, _, after_show, shown = out["results"]
    assert before == {"starts": 1, "live": True, "tracks": ["live"]}
    assert after_restart["source"] == "camera" and len(after_restart["dom"]["labels"]) == 3
    assert hidden == {"starts": 2, "live": False, "tracks": [], "released": "ended"}
    assert shown == {"starts": 3, "live": True, "tracks": ["live"]}
    assert after_show["source"] == "camera" and len(after_show["dom"]["labels"]) == 3


def test_edge_to_edge_keeps_every_control_out_of_the_system_bars(apk_site, run_page, tmp_path):
    """A phone viewport (412x915 CSS px, 2.625x) with a 48 px status bar and cutout on top and a
    24 px gesture bar below, as an edge-to-edge app (targetSdk 35) gets on Android 15."""
    shot = tmp_path / "edge-to-edge.png"
    out = run_page(
        {
            "url": url(apk_site, camera="0"),
            "viewport": {"width": 412, "height": 915},
            "scale": 2.625,
            "safe_area": {"top": 48, "bottom": 24},
            "steps": [
                {"op": "eval", "js": "document.getElementById('settings').hidden = false"},
                {
                    "op": "eval",
                    "js": "[...document.querySelectorAll('#status, nav button, nav .button,"
                    " #settings input, #settings button')].map((e) => {"
                    " const r = e.getBoundingClientRect();"
                    " return {id: e.id || e.textContent, top: r.top, bottom: r.bottom}; })",
                },
                {"op": "screenshot", "path": str(shot)},
            ],
        }
    )
    controls = out["results"][1]
    assert len(controls) >= 6
    for c in controls:
        assert c["top"] >= 48 and c["bottom"] <= 915 - 24, c
    assert shot.stat().st_size > 0


def test_fallback_from_the_apps_origin_to_a_server_on_the_lan(tiny_bundle, apk, lan_netns, sample_photos):
    """The phone's real path: the page at https://appassets.androidplatform.net posts to plain
    http://<LAN address>:8000, here a real server on 10.77.0.1 in a network namespace of the
    test's own (browser, page and server all inside it). Desktop Chromium refuses it (Local
    Network Access: a public origin asking a private address, without the user's permission; and
    mixed content): the page must say what failed. Granting the permission, and treating the
    server's origin as secure (what MainActivity's MIXED_CONTENT_ALWAYS_ALLOW does in a WebView),
    the page shows the LAN server's answer."""
    from servers import page_site

    from android_demo.page import drive

    photo = sample_photos[0]
    with (
        real_server(tiny_bundle, lan_netns.address, lan_netns.prefix, port=8000) as server,
        page_site(apk[0], lan_netns.prefix) as base,
    ):
        job = {"url": url(base, camera="0", ondevice="0", server=server), "origin": APP_ORIGIN + "/"}
        status = "document.getElementById('status').textContent"
        blocked = drive(
            {
                **job,
                "steps": [
                    {"op": "pick", "path": str(photo)},
                    {"op": "wait", "js": f"{status}.startsWith('error:') && {status}"},
                ],
            },
            prefix=lan_netns.prefix,
        )
        allowed = drive(
            {
                **job,
                "args": [f"--unsafely-treat-insecure-origin-as-secure={server}"],
                "grant": ["local-network-access"],
                "steps": [{"op": "photo", "path": str(photo)}],
            },
            prefix=lan_netns.prefix,
        )
        answer = json.loads(
            subprocess.run(
                [
                    *lan_netns.prefix,
                    "python3",
                    "-c",
                    "import sys, urllib.request; print(urllib.request.urlopen("
                    "urllib.request.Request(sys.argv[1], data=open(sys.argv[2], 'rb').read(), "
                    "headers={'Content-Type': 'image/jpeg'})).read().decode())",
                    server + "/classify?top_k=3",
                    str(photo),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    assert blocked["url"].startswith(APP_ORIGIN) and blocked["mode"] == "server"
    assert f"cannot reach the server at {server}" in blocked["results"][1]
    assert any("Mixed Content" in line or "address space" in line for line in blocked["console"]), blocked["console"]
    r = allowed["results"][0]
    assert r["mode"] == "server"
    assert r["dom"]["labels"] == [p["label"] for p in answer["predictions"]]
    assert r["dom"]["scores"] == [js_percent(p["score"]) for p in answer["predictions"]]
