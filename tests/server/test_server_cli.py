"""``python -m server``: refuses bad bundles with exit 2, and serves over a real socket.

The socket test starts real uvicorn on 127.0.0.1 on a free port in a subprocess, exactly as
``make serve`` does, and checks that the serving process never imported TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import image_variants as iv
import pytest

from bundle.cpus import usable_cpus
from server.cli import main
from server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_missing_bundle_exits_2(tmp_path, capsys):
    assert main(["--bundle", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "manifest.json is missing" in err and "Traceback" not in err


def test_bad_settings_exit_2(tmp_path, capsys):
    assert main(["--bundle", str(tmp_path), "--max-bytes", "0"]) == 2
    assert "max_bytes" in capsys.readouterr().err


def test_help_reads_well(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--bundle",
        "--host",
        "--port",
        "--workers",
        "--interpreters",
        "--threads",
        "--max-bytes",
        "--max-pixels",
        "--max-inflight",
        "--cors-origins",
    ):
        assert flag in out


def test_settings_travel_to_workers_through_the_environment():
    s = ServerSettings(
        max_bytes=123,
        max_pixels=456,
        interpreters=3,
        threads=2,
        workers=4,
        max_inflight=5,
        cors_origins="https://a.example, https://b.example",
    )
    assert ServerSettings.from_env(s.to_env()) == s
    cores = usable_cpus()
    assert ServerSettings().processes == 1 and ServerSettings().pool_size == cores
    assert ServerSettings().inflight_limit == max(16, 4 * cores) and s.inflight_limit == 5
    assert ServerSettings(interpreters=8).inflight_limit == 32
    assert ServerSettings(workers=0).processes == cores and ServerSettings(workers=0).pool_size == 1
    assert (s.processes, s.pool_size) == (4, 3)
    assert s.cors_origin_list == ["https://a.example", "https://b.example"]
    assert ServerSettings(cors_origins="").cors_origin_list == []
    with pytest.raises(ValueError, match="OFFICENET_THREADS"):
        ServerSettings.from_env({"OFFICENET_THREADS": "two"})
    with pytest.raises(ValueError, match="max_inflight"):
        ServerSettings(max_inflight=-1)


def test_cpu_count_without_sched_getaffinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: the settings still resolve (issue 13)."""
    cores = os.cpu_count()
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "process_cpu_count", raising=False)  # as on Python < 3.13
    assert usable_cpus() == cores
    assert ServerSettings(workers=0).processes == cores and ServerSettings().pool_size == cores


def test_server_package_never_imports_tensorflow():
    code = (
        "import sys, server.app, server.cli, server.inference\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tf_keras', 'keras', 'training', 'export'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=REPO)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["tampered_model", "missing_labels", "edited_manifest", "broken_manifest"])
def test_damaged_bundle_exits_2(bundle_dir, tmp_path, capsys, damage):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    if damage == "tampered_model":
        data = bytearray((bundle / "model.tflite").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bundle / "model.tflite").write_bytes(bytes(data))
        expect = "sha256"
    elif damage == "missing_labels":
        (bundle / "labels.txt").unlink()
        expect = "labels.txt is missing"
    elif damage == "edited_manifest":  # valid JSON, every file intact, but not what export sealed
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["input"]["preprocess"]["crop_fraction"] = 0.5
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        expect = "manifest.json was modified after export"
    else:
        (bundle / "manifest.json").write_text("{not json")
        expect = "not readable JSON"
    assert main(["--bundle", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "Traceback" not in err


def family(pid: int) -> list[int]:
    """A process and its children (uvicorn's worker processes)."""
    return [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_real_uvicorn_over_a_socket(bundle_dir, live_server, photo, photo_bytes, workers):
    with (
        live_server(bundle_dir, "--max-bytes", "1000000", "--workers", workers) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        r = http.post("/classify", files={"file": ("mug.jpg", photo_bytes, "image/jpeg")})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
        raw = http.post("/classify?top_k=1", content=photo_bytes, headers={"content-type": "image/jpeg"})
        assert raw.json()["predictions"] == r.json()["predictions"][:1]
        assert http.get("/").status_code == 200
        # over the limit, declared and chunked: 413, and the connection stays usable
        big = b"\0" * 3_000_000
        assert http.post("/classify", content=big, headers={"content-type": "image/jpeg"}).status_code == 413
        chunked = http.post("/classify", content=iter([big[:500_000]] * 6), headers={"content-type": "image/jpeg"})
        assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"
        # a run of bad requests is answered 4xx and changes nothing for the next good one (the
        # server's memory under a flood is a benchmark figure: bench/server.py, abuse run)
        bad = [b"", iv.HTML, iv.truncated_jpeg(photo), iv.bomb_png(), big[:900_000]]
        processes = family(server.proc.pid)
        assert len(processes) >= {"1": 1, "2": 3}[workers]  # 2: uvicorn's supervisor + 2 workers
        for i in range(100):
            assert 400 <= http.post("/classify", files={"file": ("x", bad[i % 5])}).status_code < 500
        assert (
            http.post("/classify", files={"file": ("x", photo_bytes)}).json()["predictions"] == r.json()["predictions"]
        )
        # a client hanging up mid-upload is not the server's problem
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(
                b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 100000\r\n\r\n" + photo_bytes[:1000]
            )
        assert http.get("/readyz").status_code == 200
        # the serving processes never loaded TensorFlow's libraries
        for pid in processes:
            assert "site-packages/tensorflow/" not in Path(f"/proc/{pid}/maps").read_text()
    assert "Traceback" not in server.log and "unexpected error" not in server.log, server.log
