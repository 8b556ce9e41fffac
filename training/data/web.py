"""HTTP GET with timeouts, retries and exponential backoff: the data stage's one network client.

Standard library only (``urllib`` + threads in the callers): no HTTP package to pin.
Transient failures (HTTP 5xx/429/408, timeouts, resets, truncated bodies) are retried with
backoff ``backoff * 2**attempt`` (or the server's ``Retry-After``, capped); anything else fails at
once. Failures are :class:`FetchFailure` with ``reason`` ``"timeout"`` or ``"dead_link"``.

    from training.data.web import RetryPolicy, get_bytes, download_to
    page = get_bytes("http://127.0.0.1:8000/a.jpg", RetryPolicy(timeout=5, retries=2))
    page.status, page.content_type, page.final_url, len(page.body)
    download_to("http://host/big.zip", open("big.zip.part", "wb"), RetryPolicy(timeout=30))
"""

from __future__ import annotations

import http.client
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

USER_AGENT = "officenet-data/0.1 (dataset builder; python-urllib)"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 30.0
CHUNK = 1 << 16


class FetchFailure(Exception):
    """A URL that gave no usable response; ``reason`` is "timeout" or "dead_link"."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Transient(Exception):
    def __init__(self, reason: str, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.retry_after = reason, detail, retry_after


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 10.0  # seconds: the whole request for get_bytes, one stalled read for download_to
    retries: int = 3  # extra attempts after a transient failure
    backoff: float = 0.5  # first wait in seconds; doubles each retry


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    final_url: str  # after redirects
    body: bytes


def _retry_after(headers) -> float | None:
    try:
        return min(float(headers.get("Retry-After", "")), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None  # absent, or an HTTP date: fall back to our own backoff


def _attempt(url: str, timeout: float, consume: Callable[[http.client.HTTPResponse, float], object]):
    """One GET; raises _Transient or FetchFailure; ``consume(response, deadline)`` reads the body."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return consume(response, start)
    except urllib.error.HTTPError as e:
        detail = f"HTTP {e.code} {e.reason}"
        if e.code in TRANSIENT_STATUS:
            raise _Transient("dead_link", detail, _retry_after(e.headers)) from e
        raise FetchFailure("dead_link", detail) from e
    except TimeoutError as e:
        raise _Transient("timeout", f"timed out after {timeout:g} s ({e or 'no response'})") from e
    except (
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
    ) as e:
        raise _Transient("dead_link", f"connection lost: {type(e).__name__} {e}".strip()) from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _Transient("timeout", f"timed out after {timeout:g} s while connecting") from e
        raise FetchFailure("dead_link", f"cannot connect: {e.reason}") from e
    except (ValueError, http.client.HTTPException, OSError) as e:  # bad URL, bad status line, ...
        raise FetchFailure("dead_link", f"{type(e).__name__}: {e}") from e


def with_retries(policy: RetryPolicy, attempt: Callable[[], object]):
    """Run ``attempt`` until it succeeds, fails for good, or runs out of retries."""
    for n in range(policy.retries + 1):
        try:
            return attempt()
        except _Transient as e:
            if n == policy.retries:
                raise FetchFailure(e.reason, f"{e.detail} (after {n + 1} attempts)") from e
            wait = e.retry_after if e.retry_after is not None else policy.backoff * 2**n
            time.sleep(wait * random.uniform(1.0, 1.2))  # jitter: don't return in lockstep


def get_bytes(
    url: str, policy: RetryPolicy, max_bytes: int = 50_000_000, gate: Callable[[], object] | None = None
) -> Page:
    """GET a whole (small) body within ``policy.timeout`` seconds per attempt.

    ``gate()``, if given, returns a context manager held around each attempt (a per-host limit).
    """

    def consume(response, start: float) -> Page:
        chunks, size = [], 0
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchFailure("dead_link", f"body larger than {max_bytes} bytes")
            if time.monotonic() - start > policy.timeout:  # a server dripping bytes never times out a read
                raise TimeoutError(f"body not complete within {policy.timeout:g} s")
            chunks.append(chunk)
        return Page(response.status, response.headers.get_content_type(), response.geturl(), b"".join(chunks))

    def attempt() -> Page:
        if gate is None:
            return _attempt(url, policy.timeout, consume)
        with gate():
            return _attempt(url, policy.timeout, consume)

    return with_retries(policy, attempt)


def download_to(
    url: str, out: BinaryIO, policy: RetryPolicy, progress: Callable[[int, int | None], None] | None = None
) -> int:
    """Stream a (large) body into ``out``; a retry starts over. Returns the byte count."""

    def consume(response, start: float) -> int:
        if response.status != 200:
            raise FetchFailure("dead_link", f"HTTP {response.status} (expected 200)")
        out.seek(0)
        out.truncate()
        total = response.headers.get("Content-Length")
        size = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
            if progress:
                progress(size, int(total) if total and total.isdigit() else None)
        if total and total.isdigit() and size != int(total):
            raise http.client.IncompleteRead(b"", int(total) - size)
        return size

    return with_retries(policy, lambda: _attempt(url, policy.timeout, consume))
