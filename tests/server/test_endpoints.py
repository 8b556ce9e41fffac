"""GET endpoints, the phone page and the OpenAPI description, on the session's real tiny bundle."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bundle.manifest import load_bundle
from server.app import create_app
from server.settings import ServerSettings

pytestmark = pytest.mark.slow  # needs the trained + exported tiny bundle


def test_healthz_and_readyz_after_warm_up(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_model_is_the_manifest_plus_serving_facts(client, bundle_dir):
    manifest = load_bundle(bundle_dir).manifest
    info = client.get("/model").json()
    for key in ("model", "classes", "input", "output", "files"):
        assert info[key] == manifest[key]
    for key in ("metrics", "parity", "dataset"):
        assert info[key] == manifest.get(key, {})
    assert info["serving"]["max_bytes"] == 2 * 1024 * 1024
    assert info["serving"]["interpreters"] == 2


def test_labels_in_output_order(client, bundle_dir):
    bundle = load_bundle(bundle_dir)
    labels = client.get("/labels").json()["labels"]
    assert [c["label"] for c in labels] == bundle.labels
    assert [c["wnid"] for c in labels] == bundle.wnids
    assert [c["index"] for c in labels] == list(range(len(bundle.labels)))


def test_page_is_self_contained_and_phone_ready(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert 'type="file"' in page and 'accept="image/*"' in page and 'capture="environment"' in page
    assert 'name="viewport"' in page
    # the page speaks the API these tests check: multipart field, answer and error fields
    for used in (
        "classify?top_k=3",
        'form.append("file"',
        "body.predictions",
        "p.label",
        "p.score",
        "body.timing_ms",
        "t.total",
        'fetch("model")',
        "body.abstained",
        "body.error.message",
        "body.model.name",
    ):
        assert used in page, used
    # offline office Wi-Fi: nothing may come from another host
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {"/classify", "/healthz", "/readyz", "/model", "/labels"}
    post = paths["/classify"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "image/jpeg", "image/png", "image/webp"}
    assert post["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] == ["file"]
    assert [p["name"] for p in post["parameters"]] == ["top_k"]
    assert {"200", "400", "413", "415", "422"} <= set(post["responses"])
    schemas = spec["components"]["schemas"]
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/ClassifyResponse")
    assert set(schemas["ClassifyResponse"]["properties"]) == {"predictions", "model", "timing_ms", "abstained"}
    assert set(schemas["Prediction"]["properties"]) == {"label", "wnid", "score"}
    assert set(schemas["Timing"]["properties"]) == {"decode", "preprocess", "inference", "total"}
    err = post["responses"]["415"]["content"]["application/json"]["schema"]["$ref"]
    assert err.endswith("/ErrorResponse")
    for path in ("/model", "/labels", "/healthz", "/readyz"):
        assert "$ref" in paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert client.get("/docs").status_code == 200


APP_ORIGIN = "https://appassets.androidplatform.net"  # the phone app's page is another origin


def test_cors_lets_the_phone_app_read_answers_and_errors(client, photo_bytes):
    headers = {"Origin": APP_ORIGIN}
    ok = client.post("/classify", headers=headers, files={"file": ("x.jpg", photo_bytes)})
    bad = client.post("/classify", headers=headers, files={"file": ("x.png", b"")})
    too_big = client.post(
        "/classify", content=b"\0" * (3 * 1024 * 1024), headers={**headers, "content-type": "image/jpeg"}
    )
    for r, status in ((ok, 200), (bad, 400), (too_big, 413)):
        assert r.status_code == status and r.headers["access-control-allow-origin"] == "*"
    # a raw image/jpeg body is not a "simple" request: the browser asks first
    pre = client.options(
        "/classify",
        headers={**headers, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]


def test_cors_can_be_restricted_or_off(bundle_dir, photo_bytes):
    for origins, expect in ((APP_ORIGIN, APP_ORIGIN), ("", None)):
        with TestClient(create_app(bundle_dir, ServerSettings(cors_origins=origins))) as c:
            r = c.post("/classify", headers={"Origin": APP_ORIGIN}, files={"file": ("x", photo_bytes)})
            assert r.status_code == 200
            assert r.headers.get("access-control-allow-origin") == expect
            other = c.post("/classify", headers={"Origin": "https://evil.example"}, files={"file": ("x", photo_bytes)})
            assert "access-control-allow-origin" not in other.headers
