"""Serving benchmark: the real server under load vs its compute ceiling and a naive Keras server.

    python -m bench.server --bundle artifacts/bundle --run artifacts/run
    # -> bench/results/server.md and bench/results/server.json

What it measures, in one run on this machine:
1. the compute-bound ceiling: what the server's own compute path (decode + preprocess +
   inference, ``server.inference.Classifier``) does in-process with no HTTP at all, one thread and
   one interpreter per core all busy at once: the best of several timed trials, measured before
   and after the server runs (so a busy moment on the shared machine lowers a trial, not the
   bound). The server runs exactly this work plus HTTP, so it cannot beat it; the report gives
   the ratio as measured. (An earlier ceiling, cores / one thread's median time, assumed perfect
   scaling and no contention and was beaten by 40 %: it bounded nothing.) A single thread's
   median per-stage times are shown beside it;
2. ``python -m server`` in a subprocess on 127.0.0.1, driven by a small asyncio HTTP/1.1 client
   (raw sockets, keep-alive, far cheaper than the server per request, but it shares the cores):
   requests/s, p50 and p99 latency at concurrency 1, 4, 16, for a 1600x1200 phone-sized JPEG (a
   real sample photo upscaled) and a small 320x240 one, in two layouts: one process with an
   interpreter per core (the default) and a worker process per core with one interpreter each;
3. a bounded abuse run: N requests from 16 concurrent clients, 30 % of them bad (empty, HTML,
   truncated, bomb header, over the body limit sent whole on a keep-alive connection and with
   ``Connection: close`` as Python's urllib does, wrong Content-Type, missing field, bad top_k),
   against the server with its default in-flight bound: counts 503s (the bound shedding load),
   any other 5xx, requests with no answer (dropped or reset connections), and the server's RSS
   growth after a warm-up round;
4. a naive baseline (``--run``): a FastAPI app in another process that runs the float Keras
   model with ``model.predict`` on a fully decoded photo per request (this file may import
   TensorFlow; the server never does).
Goals (issues 5, 13): >= 60 % of the ceiling at concurrency 16 with p99 < 100 ms; >= 10x naive
rps; abuse run: no 5xx but 503, every request answered, RSS growth after warm-up <= 10 %.
Photos come from the shared datasets folder the tests read (``$OFFICENET_SHARED``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from bench.record import cpu_info, cpu_line, parse_flags, record
from bundle.cpus import usable_cpus
from bundle.flags import setting
from bundle.manifest import BundleError, load_bundle
from training.data.fetch import shared_folder

REPO = Path(__file__).resolve().parents[1]
SAMPLES = shared_folder("imagenet-samples") / "images"
REQUEST_TIMEOUT = 30.0
LOAD_MAX_BYTES = 1_000_000  # the abuse run's server limit, so over-limit bodies stay cheap


# ---- inputs -------------------------------------------------------------------------------


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_images(photos: Path) -> dict[str, bytes]:
    """A phone-sized 1600x1200 JPEG (a real photo upscaled) and a small 320x240 one."""
    candidates = sorted(photos.glob("*.JPEG"))
    if not candidates:
        raise FileNotFoundError(f"no *.JPEG sample photos in {photos}")
    img = Image.open(next((p for p in candidates if "coffee_mug" in p.name), candidates[0]))
    img = img.convert("RGB")
    return {
        "1600x1200": jpeg(img.resize((1600, 1200), Image.Resampling.BICUBIC)),
        "320x240": jpeg(img.resize((320, 240), Image.Resampling.BICUBIC)),
    }


def raw_request(data: bytes, ctype: str = "image/jpeg", query: str = "top_k=3", extra: str = "") -> bytes:
    head = (
        f"POST /classify?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"{extra}Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def multipart_request(data: bytes, field: str = "file") -> bytes:
    boundary = "officenetbench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="p.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return raw_request(body, f"multipart/form-data; boundary={boundary}")


def bad_requests(photo: bytes) -> dict[str, bytes]:
    """One request of each bad kind the server must answer with a 4xx."""
    sof = photo.index(b"\xff\xc0")  # a real JPEG whose frame header claims 30000x30000 pixels
    bomb = photo[: sof + 5] + (30000).to_bytes(2, "big") * 2 + photo[sof + 9 :]
    return {
        "empty": raw_request(b""),
        "html": raw_request(b"<!doctype html><html><body>not a photo</body></html>"),
        "truncated": raw_request(photo[: len(photo) // 2]),
        "bomb": raw_request(bomb),
        "over_limit": raw_request(b"\xff\xd8" + bytes(LOAD_MAX_BYTES + 200_000)),
        "over_limit_close": raw_request(b"\xff\xd8" + bytes(LOAD_MAX_BYTES + 200_000), extra="Connection: close\r\n"),
        "wrong_type": raw_request(photo, "text/plain"),
        "missing_field": multipart_request(photo, field="image"),
        "bad_top_k": raw_request(photo, query="top_k=0"),
    }


# ---- a minimal HTTP/1.1 load generator -------------------------------------------------------


@dataclass
class Result:
    kind: str
    status: int
    seconds: float


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip().lower() for k, v in headers.items()}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close"


async def _drive(port: int, work: list[tuple[str, bytes]], concurrency: int, deadline: float) -> list[Result]:
    queue = list(reversed(work))
    results: list[Result] = []

    async def connection():
        reader = writer = None
        while queue and time.perf_counter() < deadline:
            kind, req = queue.pop()
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.perf_counter()
            try:
                writer.write(req)
                await writer.drain()
                status, close = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                status, close = 0, True  # no answer at all: counted as an error
            results.append(Result(kind, status, time.perf_counter() - start))
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return results


def load(port: int, work: list[tuple[str, bytes]], concurrency: int, max_seconds: float) -> dict:
    start = time.perf_counter()
    results = asyncio.run(_drive(port, work, concurrency, start + max_seconds))
    wall = time.perf_counter() - start
    lat = np.array([r.seconds for r in results]) * 1e3
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "seconds": round(wall, 2),
        "rps": round(len(results) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "non_200": sum(r.status != 200 for r in results),
        "results": results,
    }


# ---- servers in subprocesses -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """RSS of a process and its children (uvicorn workers)."""
    total = 0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Served:
    """A server subprocess on a free port, ready (GET /readyz or /healthz 200) on enter."""

    def __init__(self, args: list[str], ready_path: str = "/readyz"):
        self.port = free_port()
        self.args, self.ready_path = args + ["--port", str(self.port)], ready_path

    def __enter__(self) -> Served:
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
        # a file, not a pipe: a pipe nobody reads fills up and would block a chatty server
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self.args], env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 180
        request = f"GET {self.ready_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{' '.join(self.args)} exited: {self.log.read().decode()[-2000:]}")
            try:
                if load(self.port, [("ready", request)], 1, 5)["non_200"] == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{' '.join(self.args)} was not ready in 180 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


# ---- the measurements --------------------------------------------------------------------------


def ceiling(bundle_dir: Path, images: dict[str, bytes], reps: int, seconds: float = 3.0, trials: int = 3) -> dict:
    """Per image: the best req/s of ``trials`` runs of ``seconds`` with every core busy on the
    server's compute path (no HTTP), and one thread's median per-stage times."""
    from concurrent.futures import ThreadPoolExecutor

    from server.inference import Classifier

    cores = usable_cpus()
    clf = Classifier(load_bundle(bundle_dir), pool_size=cores, threads=1)
    out = {}
    try:
        clf.warm_up()
        for name, data in images.items():
            parts = [clf.classify(data).timing_ms for _ in range(reps)]
            stages = {
                k: round(statistics.median(p[k] for p in parts), 3) for k in ("decode", "preprocess", "inference")
            }

            def busy(deadline: float, data: bytes = data) -> int:
                n = 0
                while time.perf_counter() < deadline:
                    clf.classify(data)
                    n += 1
                return n

            runs = []
            with ThreadPoolExecutor(cores) as pool:
                for _ in range(trials):
                    start = time.perf_counter()
                    done = sum(pool.map(busy, [start + seconds] * cores))
                    runs.append(done / (time.perf_counter() - start))
            out[name] = {
                "rps": round(max(runs), 1),
                "rps_trials": [round(r, 1) for r in runs],
                "cores": cores,
                "single_thread_ms": round(sum(stages.values()), 3),
                **stages,
            }
    finally:
        clf.close()
    return out


def best_ceiling(*measured: dict) -> dict:
    """The higher of several ceiling measurements, image by image (a bound, so the best)."""
    return {name: max((m[name] for m in measured), key=lambda c: c["rps"]) for name in measured[0]}


def trials(port: int, work: list[tuple[str, bytes]], concurrency: int, max_seconds: float, n: int = 3) -> dict:
    """The same load point ``n`` times: median req/s (one burst of other work on the shared
    machine moves one trial, not the figure), percentiles over all requests."""
    runs = [load(port, work[: len(work) // n], concurrency, max_seconds / n) for _ in range(n)]
    lat = np.array([r.seconds for run in runs for r in run["results"]]) * 1e3
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "trials": n,
        "rps": statistics.median(run["rps"] for run in runs),
        "rps_trials": [run["rps"] for run in runs],
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "non_200": sum(run["non_200"] for run in runs),
    }


def throughput(port: int, images: dict[str, bytes], requests: int, max_seconds: float) -> list[dict]:
    rows = []
    for name, data in images.items():
        for body, make in (("raw", raw_request), ("multipart", multipart_request)):
            req = make(data)
            load(port, [("warm", req)] * 20, 4, 10)
            for c in (1, 4, 16):
                if body == "multipart" and c != 16:
                    continue
                n = requests if c > 1 else max(50, requests // 4)
                row = trials(port, [(name, req)] * n, c, max_seconds)
                rows.append({"image": name, "body": body, **row})
                print(
                    f"  {name:>9} {body:9} c={c:<2} {row['rps']:8.1f} req/s  "
                    f"p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms",
                    flush=True,
                )
    return rows


def abuse(bundle_dir: Path, images: dict[str, bytes], n: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    bad = bad_requests(images["320x240"])
    good = [raw_request(d) for d in images.values()] + [multipart_request(images["320x240"])]
    work = []
    for _ in range(n):
        kind = rng.choice(list(bad)) if rng.random() < 0.3 else "good"
        work.append((kind, bad[kind] if kind != "good" else rng.choice(good)))
    with Served(
        ["server", "--bundle", str(bundle_dir), "--max-bytes", str(LOAD_MAX_BYTES), "--log-level", "warning"]
    ) as srv:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/model", timeout=30) as r:
            max_inflight = json.loads(r.read())["serving"]["max_inflight"]
        load(srv.port, work[:300], 16, 60)  # first allocations (buffers, pools) happen here
        before = rss_kb(srv.proc.pid)
        run = load(srv.port, work, 16, 300)
        after = rss_kb(srv.proc.pid)
    by_kind: dict[str, dict[int, int]] = {}
    for r in run.pop("results"):
        by_kind.setdefault(r.kind, {}).setdefault(r.status, 0)
        by_kind[r.kind][r.status] += 1
    statuses = [s for kinds in by_kind.values() for s in kinds for _ in range(kinds[s])]
    return {
        **run,
        "bad_share": round(sum(k != "good" for k, _ in work) / n, 3),
        "status_by_kind": by_kind,
        "max_inflight": max_inflight,
        "503": statuses.count(503),
        "5xx_other": sum(1 for s in statuses if s >= 500 and s != 503),
        "no_answer": statuses.count(0),
        "rss_before_kb": before,
        "rss_after_kb": after,
        "rss_growth_pct": round(100 * (after - before) / before, 2),
    }


def naive(run_dir: Path, bundle_dir: Path, images: dict[str, bytes], requests: int, max_seconds: float) -> dict:
    size = load_bundle(bundle_dir, verify_hashes=False).preprocess.size
    with Served(
        ["bench.server", "--naive-serve", str(run_dir / "model.keras"), "--naive-size", str(size)],
        ready_path="/healthz",
    ) as srv:
        rows = []
        for name, data in images.items():
            req = multipart_request(data)
            load(srv.port, [("warm", req)] * 5, 1, 60)
            for c in (1, 16):
                row = load(srv.port, [(name, req)] * requests, c, max_seconds)
                row.pop("results")
                rows.append({"image": name, "body": "multipart", **row})
                print(
                    f"  naive {name:>9} c={c:<2} {row['rps']:8.1f} req/s  "
                    f"p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms",
                    flush=True,
                )
    return {"rows": rows}


def naive_app(model_path: str, size: int):
    """What a first attempt looks like: Keras float model, full decode, predict() per request."""
    from training.tfenv import keras

    model = keras.models.load_model(model_path)
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/classify")
    def classify(file: UploadFile = File(...)):  # noqa: B008 (FastAPI's way to declare a form file)
        img = Image.open(file.file).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        probs = model.predict(np.asarray(img, dtype=np.float32)[None], verbose=0)[0]
        top = np.argsort(-probs)[:3]
        return {"predictions": [{"index": int(i), "score": float(probs[i])} for i in top]}

    return app


# ---- report -------------------------------------------------------------------------------------


def machine() -> dict:
    import importlib.util

    installed = lambda name: importlib.util.find_spec(name) is not None  # noqa: E731
    # uvicorn picks the faster HTTP parser and event loop when they are installed
    return {
        **cpu_info(),
        "uvicorn_http": "httptools" if installed("httptools") else "h11",
        "uvicorn_loop": "uvloop" if installed("uvloop") else "asyncio",
    }


def goals(result: dict) -> dict:
    out = {}
    for config, rows in result["server"].items():
        for row in rows:
            if row["concurrency"] == 16 and row["body"] == "raw":
                ceil = result["ceiling"][row["image"]]["rps"]
                out[f"{config}, {row['image']}"] = {
                    "pct_of_ceiling": round(100 * row["rps"] / ceil, 1),
                    "p99_ms": row["p99_ms"],
                    "meets": row["rps"] >= 0.6 * ceil and row["p99_ms"] < 100,
                }
    if result.get("naive"):
        best = {}
        for rows in result["server"].values():
            for row in rows:
                if row["concurrency"] == 16 and row["body"] == "multipart":
                    best[row["image"]] = max(best.get(row["image"], 0), row["rps"])
        for row in result["naive"]["rows"]:
            if row["concurrency"] == 16:
                ratio = best[row["image"]] / row["rps"]
                out[f"vs naive, {row['image']} (multipart, c=16)"] = {"ratio": round(ratio, 1), "meets": ratio >= 10}
    a = result["abuse"]
    out["abuse run, 16 clients, 30 % bad"] = {
        "figure": f"{a['5xx_other']} 5xx other than 503, {a['no_answer']} unanswered, "
        f"RSS {a['rss_growth_pct']:+.1f} % after warm-up",
        "meets": a["5xx_other"] == 0 and a["no_answer"] == 0 and a["rss_growth_pct"] <= 10,
    }
    return out


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# Serving benchmark (`python -m bench.server`)",
        "",
        f"{cpu_line(m)}. Bundle: `{r['bundle']['name']}` "
        f"{r['bundle']['version']}, input {r['bundle']['input']}, "
        f"{r['bundle']['model_bytes'] / 1e6:.1f} MB int8 model. {r['note']} uvicorn with "
        f"{m['uvicorn_http']} + {m['uvicorn_loop']}. Client and server share the cores "
        "(127.0.0.1); the load generator is a raw-socket asyncio HTTP/1.1 client. Load average "
        f"(1 min) before / after the run: {r['load_average_before'][0]:.1f} / "
        f"{r['load_average_after'][0]:.1f} (other work on the machine takes cores from the "
        "server and its ceiling alike).",
        "",
        "## Compute-bound ceiling",
        "",
        f"The server's compute path in-process, no HTTP, {r['ceiling'][next(iter(r['ceiling']))]['cores']} "
        "threads and interpreters all busy: best req/s of the trials before and after the server "
        "runs (every trial in server.json). Per-stage times: one thread, median.",
        "",
        "| image | decode ms | preprocess ms | inference ms | one thread ms | ceiling req/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in r["ceiling"].items():
        lines.append(
            f"| {name} | {c['decode']} | {c['preprocess']} | {c['inference']} | {c['single_thread_ms']} | {c['rps']} |"
        )
    lines += [
        "",
        "## `python -m server` under load",
        "",
        "req/s: median of 3 trials (each trial's figure in server.json); p50/p99 over all requests of the point.",
        "",
        "| config | image | body | concurrency | requests | req/s | p50 ms | p99 ms | % of ceiling | non-200 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, rows in r["server"].items():
        for row in rows:
            pct = 100 * row["rps"] / r["ceiling"][row["image"]]["rps"]
            lines.append(
                f"| {config} | {row['image']} | {row['body']} | {row['concurrency']} | "
                f"{row['requests']} | {row['rps']} | {row['p50_ms']} | {row['p99_ms']} | "
                f"{pct:.0f} % | {row['non_200']} |"
            )
    if r.get("naive"):
        lines += [
            "",
            "## Naive baseline (float Keras `model.predict` per request, full decode)",
            "",
            "| image | concurrency | requests | req/s | p50 ms | p99 ms | non-200 |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in r["naive"]["rows"]:
            lines.append(
                f"| {row['image']} | {row['concurrency']} | {row['requests']} | {row['rps']} "
                f"| {row['p50_ms']} | {row['p99_ms']} | {row['non_200']} |"
            )
    else:
        lines += ["", f"Naive baseline: skipped ({r.get('naive_skipped', 'no --run given')})."]
    a = r["abuse"]
    lines += [
        "",
        f"## Abuse run: {a['requests']} requests at concurrency 16, {100 * a['bad_share']:.0f} % bad",
        "",
        f"{a['rps']} req/s; 503 (in-flight bound, max {a['max_inflight']}): {a['503']}; other 5xx: "
        f"**{a['5xx_other']}**; no answer (dropped or reset): **{a['no_answer']}**; server RSS after warm-up "
        f"{a['rss_before_kb'] / 1024:.1f} -> {a['rss_after_kb'] / 1024:.1f} MiB "
        f"(**{a['rss_growth_pct']:+.1f} %**).",
        "",
        "| kind | statuses |",
        "|---|---|",
    ]
    for kind, statuses in sorted(a["status_by_kind"].items()):
        lines.append(f"| {kind} | {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))} |")
    lines += ["", "## Goals", "", "| check | figure | met |", "|---|---|---|"]
    for name, g in r["goals"].items():
        fig = (
            f"{g['ratio']}x"
            if "ratio" in g
            else g["figure"]
            if "figure" in g
            else f"{g['pct_of_ceiling']} % of ceiling, p99 {g['p99_ms']} ms"
        )
        lines.append(f"| {name} | {fig} | {'yes' if g['meets'] else 'NO'} |")
    lines += [
        "",
        "Goals: >= 60 % of ceiling at concurrency 16 with p99 < 100 ms (raw body); "
        ">= 10x the naive server's req/s. Abuse run: no 5xx but 503, every request "
        "answered, RSS growth after warm-up <= 10 %.",
        "",
    ]
    return "\n".join(lines)


SIZE = "size of the run (bounded in count and time)"


@dataclass
class BenchServerConfig:
    bundle: Path = setting(Path("artifacts/bundle"), "bundle to serve", metavar="DIR")
    run: Path | None = setting(
        None, "trained run whose model.keras the naive baseline serves (skipped if absent)", metavar="DIR"
    )
    photos: Path = setting(SAMPLES, "real sample photos", metavar="DIR")
    out: Path = setting(REPO / "bench" / "results", "results folder", metavar="DIR")
    note: str = setting("", "a line for the report (e.g. where the bundle came from)", metavar="TEXT")
    requests: int = setting(800, "requests per load point (c=4, 16)", metavar="N", section=SIZE)
    abuse_requests: int = setting(2000, "requests in the abuse run", metavar="N", section=SIZE)
    ceiling_reps: int = setting(200, "single-thread timings per image", metavar="N", section=SIZE)
    ceiling_seconds: float = setting(3.0, "length of one all-cores ceiling trial", metavar="S", section=SIZE)
    naive_requests: int = setting(60, "requests per load point of the naive baseline", metavar="N", section=SIZE)
    max_seconds: float = setting(60.0, "time cap per load point", metavar="S", section=SIZE)
    # The naive baseline's own process: `python -m bench.server --naive-serve MODEL --naive-size PX --port P`.
    naive_serve: str | None = setting(None, "Keras model the naive baseline serves", hidden=True)
    naive_size: int | None = setting(None, "its input size", hidden=True)
    port: int | None = setting(None, "its port", hidden=True)


def measure(args: BenchServerConfig) -> dict:
    bundle_dir = args.bundle
    bundle = load_bundle(bundle_dir)
    images = test_images(args.photos)
    result = {
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "bundle": {
            "name": bundle.manifest["model"]["name"],
            "version": str(bundle.manifest["model"].get("version")),
            "sha256": bundle.model_sha256,
            "input": bundle.manifest["input"]["shape"],
            "model_bytes": bundle.model_path.stat().st_size,
        },
        "note": args.note,
        "images": {k: len(v) for k, v in images.items()},
    }
    print("ceiling (in-process, every core busy)...", flush=True)
    before = ceiling(bundle_dir, images, args.ceiling_reps, args.ceiling_seconds)
    print(json.dumps(before), flush=True)
    result["server"] = {}
    cores = usable_cpus()
    # the default layout (one process, an interpreter per core) and a process per core
    for workers, interpreters in dict.fromkeys(((1, cores), (cores, 1))):
        config = f"{workers} proc x {interpreters} interp" + (" (default)" if workers == 1 else "")
        print(f"server, {config}...", flush=True)
        with Served(
            [
                "server",
                "--bundle",
                str(bundle_dir),
                "--workers",
                str(workers),
                "--interpreters",
                str(interpreters),
                "--log-level",
                "warning",
            ]
        ) as srv:
            result["server"][config] = throughput(srv.port, images, args.requests, args.max_seconds)
    print("ceiling again, after the server runs...", flush=True)
    after = ceiling(bundle_dir, images, args.ceiling_reps, args.ceiling_seconds)
    result["ceiling_runs"] = {"before": before, "after": after}
    result["ceiling"] = best_ceiling(before, after)
    print(json.dumps(result["ceiling"]), flush=True)
    print("abuse run...", flush=True)
    result["abuse"] = abuse(bundle_dir, images, args.abuse_requests)
    print({k: result["abuse"][k] for k in ("503", "5xx_other", "no_answer", "rss_growth_pct", "rps")}, flush=True)
    if args.run and (args.run / "model.keras").is_file():
        print("naive baseline...", flush=True)
        result["naive"] = naive(args.run, bundle_dir, images, args.naive_requests, args.max_seconds)
    else:
        result["naive_skipped"] = f"no model.keras in {args.run}" if args.run else "no --run given"
    result["load_average_after"] = os.getloadavg()
    result["goals"] = goals(result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_flags("python -m bench.server", __doc__, BenchServerConfig, argv)
    if args.naive_serve:  # the naive baseline's own process, started by naive()
        import uvicorn

        uvicorn.run(naive_app(args.naive_serve, args.naive_size), host="127.0.0.1", port=args.port, log_level="warning")
        return 0
    return record(args.out, "server", lambda: measure(args), markdown, errors=(BundleError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
