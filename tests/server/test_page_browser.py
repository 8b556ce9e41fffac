"""The phone page at ``/`` in real headless Chromium against real uvicorn: pick a photo, see the top 3.

Chromium is driven over its DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-separated
JSON on file descriptors 3 and 4), so no browser-automation package is needed. Skips when
Chromium is not installed (``make setup-android`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import httpx
import pytest

from bundle.publish import seal

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """Just enough of the DevTools protocol: one page, evaluate JS, set a file input."""

    def __init__(self, profile):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds_3_and_4():  # the protocol pipe must be fds 3 (commands) and 4 (replies)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--window-size=390,844",
                "about:blank",
            ],
            preexec_fn=fds_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:  # events arrive in between; keep reading until our reply
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 65536)
                assert chunk, "Chromium closed the DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture()
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (make setup-android installs it)")
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


@pytest.fixture(scope="module")
def server_url(bundle_dir, live_server):
    with live_server(bundle_dir) as server:
        yield server.url


def pick_photo(browser, url: str, photo) -> dict:
    """Open the page at ``url``, pick ``photo``, wait for the answer; what the page shows."""
    browser.call("Page.navigate", url=url + "/")
    browser.wait_for("document.readyState === 'complete' && !!document.querySelector('#file')")
    browser.wait_for(
        "document.querySelector('#knows').textContent.startsWith('It knows') || "
        "document.querySelector('#knows').className === 'error'"
    )
    before = browser.js(
        "({knows: document.querySelector('#knows').textContent, model: document.querySelector('#model').textContent})"
    )
    root = browser.call("DOM.getDocument")["root"]["nodeId"]
    node = browser.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
    browser.call("DOM.setFileInputFiles", nodeId=node, files=[str(photo)])
    browser.wait_for(
        "document.querySelectorAll('#results li').length === 3 || "
        "document.querySelector('#status').className === 'error'"
    )
    return {
        **browser.js(
            "({labels: [...document.querySelectorAll('#results .label')].map(e => e.textContent),"
            " scores: [...document.querySelectorAll('#results .score')].map(e => e.textContent),"
            " greyed: document.querySelector('#results').classList.contains('abstained'),"
            " status: document.querySelector('#status').textContent,"
            " timing: document.querySelector('#timing').textContent,"
            " model: document.querySelector('#model').textContent,"
            " preview: !document.querySelector('#preview').hidden})"
        ),
        "before": before,
    }


def test_phone_page_says_what_it_knows_and_shows_top3_with_scores_and_time(browser, server_url, sample_photos):
    photo = sample_photos[0]
    page = pick_photo(browser, server_url, photo)
    info = httpx.get(server_url + "/model").json()
    labels = [c["label"].replace("_", " ") for c in info["classes"]]
    # Before any photo: what it can recognize, and which model answers.
    assert page["before"]["knows"] == f"It knows {len(labels)} office objects: {', '.join(labels)}."
    assert page["before"]["model"] == f"model: {info['model']['name']} {info['model']['version']}"
    answer = httpx.post(server_url + "/classify?top_k=3", files={"file": (photo.name, photo.read_bytes())}).json()
    assert page["labels"] == [p["label"].replace("_", " ") for p in answer["predictions"]], page
    assert page["scores"] == [f"{100 * p['score']:.1f}%" for p in answer["predictions"]]
    assert page["status"] == "Top 3:" and page["preview"] and not page["greyed"]
    assert re.fullmatch(r"server: \d+\.\d ms \(inference \d+\.\d ms\), round trip \d+ ms", page["timing"])


def test_phone_page_says_not_sure_when_the_rule_abstains(browser, bundle_dir, live_server, sample_photos, tmp_path):
    """A bundle whose abstain threshold no photo reaches: the page says so and greys the guesses."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    seal(bundle, {**manifest, "abstain": {"method": "max_softmax", "threshold": 1.01}})
    with live_server(bundle) as server:
        page = pick_photo(browser, server.url, sample_photos[0])
    assert page["status"] == "Not sure this is an office object. Best guesses:"
    assert page["greyed"] and len(page["labels"]) == 3


def test_api_docs_render_offline_from_the_servers_own_files(browser, server_url):
    # This machine (like the test browser) reaches nothing but 127.0.0.1: a CDN-hosted Swagger UI
    # would leave the page empty.
    html = httpx.get(server_url + "/docs").text
    assert "cdn." not in html and "/static-offline-docs/swagger-ui-bundle.js" in html
    browser.call("Page.navigate", url=server_url + "/docs")
    ops = browser.wait_for(
        "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)"
        ".filter(t => t.includes('/classify')).length > 0 && "
        "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)"
    )
    assert {"/classify", "/healthz", "/model", "/labels"} <= set(ops), ops
    assert "cdn." not in httpx.get(server_url + "/redoc").text
