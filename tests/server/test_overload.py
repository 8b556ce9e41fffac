"""The server under overload and rude clients, over real sockets (real uvicorn on 127.0.0.1).

- beyond ``--max-inflight`` requests in /classify: 503 + Retry-After + the error JSON, at once;
- a flood of 16 clients, 30 % of them hostile: no 5xx but those 503s, no dropped connection;
- a client that sends a whole over-limit body before reading (Python's urllib) reads the 413;
- /openapi.json states top_k's real bound, the class count.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import httpx
import image_variants as iv
import pytest

pytestmark = pytest.mark.slow  # needs the trained + exported tiny bundle

LIMIT = 1_000_000  # --max-bytes of the live servers here: over-limit bodies stay cheap


def assert_overloaded(r: httpx.Response):
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "overloaded" and r.headers["retry-after"] == "1"


def start_upload(port: int, declared: int, first: bytes) -> socket.socket:
    """A raw request whose body is still arriving: it holds an in-flight slot while it reads."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        b"Content-Length: %d\r\n\r\n" % declared + first
    )
    return s


def test_over_the_inflight_limit_is_503_at_once(bundle_dir, live_server, photo_bytes):
    with (
        live_server(bundle_dir, "--max-inflight", "1", "--interpreters", "1") as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        assert http.get("/model").json()["serving"]["max_inflight"] == 1
        slow = start_upload(server.port, len(photo_bytes), photo_bytes[:1000])
        time.sleep(0.5)  # the server has admitted it and waits for the rest of its body
        start = time.perf_counter()
        for body in (
            {"files": {"file": ("x.jpg", photo_bytes)}},
            {"content": b"\0" * 5 * LIMIT, "headers": {"content-type": "image/jpeg"}},
        ):
            assert_overloaded(http.post("/classify", **body))
        assert time.perf_counter() - start < 2.0  # answered, not queued behind the slow upload
        assert http.get("/readyz").status_code == 200  # only /classify is bounded
        slow.sendall(photo_bytes[1000:])
        head = slow.recv(65536)
        slow.close()
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert http.post("/classify", files={"file": ("x.jpg", photo_bytes)}).status_code == 200
    assert "Traceback" not in server.log, server.log


def post_urllib(url: str, data, ctype: str = "image/jpeg") -> tuple[int, dict, dict]:
    """urllib: sends ``Connection: close`` and the whole body before it reads any answer."""
    req = urllib.request.Request(url + "/classify", data=data, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_urllib_reads_the_413_of_a_body_it_sends_whole(bundle_dir, live_server, photo_bytes):
    """Declared (Content-Length) and chunked over-limit bodies, several times each: before the
    lingering close, urllib got 'connection reset' instead of the answer."""
    with live_server(bundle_dir, "--max-bytes", str(LIMIT)) as server:
        for _ in range(3):
            for data in (b"\xff\xd8" + bytes(8 * LIMIT), iter([bytes(LIMIT // 2)] * 12)):
                status, headers, body = post_urllib(server.url, data)
                assert status == 413 and body["error"]["code"] == "body_too_large"
                assert headers["connection"] == "close"
            # and a wrong Content-Type, answered before the body is read, likewise
            status, _, body = post_urllib(server.url, bytes(3 * LIMIT // 4), ctype="text/plain")
            assert status == 415 and body["error"]["code"] == "unsupported_media_type"
        status, _, body = post_urllib(server.url, photo_bytes)
        assert status == 200 and len(body["predictions"]) == 3
    assert "Traceback" not in server.log, server.log


def test_flood_of_16_clients_with_hostile_bodies(bundle_dir, live_server, photo, photo_bytes):
    """16 concurrent clients, 30 % hostile requests, a small in-flight bound so it overflows:
    every request gets an answer, and the only 5xx is the 503 of the bound."""
    over = b"\xff\xd8" + bytes(2 * LIMIT)
    hostile = {
        "empty": lambda h: h.post("/classify", files={"file": ("x", b"")}),
        "html": lambda h: h.post("/classify", content=iv.HTML, headers={"content-type": "image/jpeg"}),
        "truncated": lambda h: h.post("/classify", files={"file": ("x", iv.truncated_jpeg(photo))}),
        "bomb": lambda h: h.post("/classify", files={"file": ("x", iv.bomb_png())}),
        "over_limit": lambda h: h.post("/classify", content=over, headers={"content-type": "image/jpeg"}),
        "over_limit_chunked": lambda h: h.post(
            "/classify", content=iter([over[: LIMIT // 2]] * 4), headers={"content-type": "image/jpeg"}
        ),
        "wrong_type": lambda h: h.post("/classify", content=photo_bytes, headers={"content-type": "text/plain"}),
        "bad_top_k": lambda h: h.post("/classify?top_k=999", files={"file": ("x", photo_bytes)}),
        "urllib_over_limit": None,  # Connection: close + the whole body before reading
    }
    statuses: dict[str, Counter] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client(seed: int, server_url: str):
        rng = random.Random(seed)
        with httpx.Client(base_url=server_url, timeout=30) as http:
            for _ in range(25):
                kind = rng.choice(sorted(hostile)) if rng.random() < 0.3 else "good"
                try:
                    if kind == "urllib_over_limit":
                        status, headers, body = post_urllib(server_url, over)
                    else:
                        r = (
                            (hostile[kind] or (lambda h: None))(http)
                            if kind != "good"
                            else http.post("/classify", files={"file": ("x.jpg", photo_bytes)})
                        )
                        status, headers, body = r.status_code, r.headers, r.json()
                    ok = (
                        (
                            status == 503
                            and body["error"]["code"] == "overloaded"
                            and "retry-after" in {k.lower() for k in headers}
                        )
                        or (status == 200) == (kind == "good")
                        and status < 500
                    )
                    if not ok:
                        failures.append(f"{kind}: {status} {body}")
                except (httpx.TransportError, OSError, ValueError) as e:  # dropped, reset, not JSON
                    failures.append(f"{kind}: {type(e).__name__}: {e}")
                    status = 0
                with lock:
                    statuses.setdefault(kind, Counter())[status] += 1

    with live_server(bundle_dir, "--max-bytes", str(LIMIT), "--max-inflight", "3", "--interpreters", "1") as server:
        threads = [threading.Thread(target=client, args=(i, server.url)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.url, timeout=10) as http:  # and it still serves
            assert http.post("/classify", files={"file": ("x.jpg", photo_bytes)}).status_code == 200
    assert not failures, (failures[:10], statuses)
    total = Counter()
    for counts in statuses.values():
        total.update(counts)
    assert sum(total.values()) == 16 * 25
    assert total[503] > 0 and statuses["good"][200] > 0, statuses  # the bound really overflowed
    assert "Traceback" not in server.log and "unexpected error" not in server.log, server.log


def test_openapi_states_the_top_k_bound(client):
    n = len(client.get("/labels").json()["labels"])
    spec = client.get("/openapi.json").json()
    top_k = next(p for p in spec["paths"]["/classify"]["post"]["parameters"] if p["name"] == "top_k")
    assert top_k["schema"]["minimum"] == 1 and top_k["schema"]["maximum"] == n
    assert "503" in spec["paths"]["/classify"]["post"]["responses"]
