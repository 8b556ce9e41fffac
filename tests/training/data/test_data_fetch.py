"""`python -m training.data fetch`: the local Tiny ImageNet copy, or a zip served from 127.0.0.1."""
from __future__ import annotations

import functools
import hashlib
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from training.data.cli import main
from training.data.dataset import load_dataset

CLASSES = ["n03085013", "n04074963", "n03584254"]
OTHER = "n02769748"  # in the archive, not in the catalog: must not be extracted


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_zip(shared_datasets, tmp_path_factory):
    """A small Tiny ImageNet zip (same layout as the real one) on a real HTTP server; yields (url, sha256, hits)."""
    tiny = shared_datasets / "tiny-imagenet-office20"
    folder = tmp_path_factory.mktemp("www")
    path = folder / "tiny-imagenet-200.zip"
    annotations = [line for line in (tiny / "val" / "val_annotations.txt").read_text().splitlines()
                   if line.split("\t")[1] in CLASSES + [OTHER]][:24]
    with zipfile.ZipFile(path, "w") as zf:
        for wnid in CLASSES + [OTHER]:
            for photo in sorted((tiny / "train" / wnid / "images").iterdir())[:12]:
                zf.write(photo, f"tiny-imagenet-200/train/{wnid}/images/{photo.name}")
            zf.write(tiny / "train" / wnid / f"{wnid}_boxes.txt", f"tiny-imagenet-200/train/{wnid}/{wnid}_boxes.txt")
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join(annotations) + "\n")
        for line in annotations:
            name = line.split("\t")[0]
            zf.write(tiny / "val" / "images" / name, f"tiny-imagenet-200/val/images/{name}")
        zf.write(tiny / "wnids.txt", "tiny-imagenet-200/wnids.txt")
        zf.write(tiny / "words.txt", "tiny-imagenet-200/words.txt")
    hits = []

    class Handler(QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield (f"http://127.0.0.1:{server.server_address[1]}/{path.name}",
           hashlib.sha256(path.read_bytes()).hexdigest(), hits)
    server.shutdown()
    server.server_close()


@pytest.fixture
def catalog(tmp_path) -> str:
    path = tmp_path / "office3.tsv"
    path.write_text("n03085013\tcomputer keyboard\nn04074963\tremote control\nn03584254\tiPod\n")
    return str(path)


def test_fetch_uses_the_local_copy(shared_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("OFFICENET_TINY_IMAGENET", str(shared_datasets / "tiny-imagenet-office20"))
    out = tmp_path / "ds"
    assert main(["fetch", "--out", str(out), "--per-class", "12", "--cache", str(tmp_path / "cache")]) == 0
    ds = load_dataset(out)
    assert ds.meta["source"]["kind"] == "fetch" and ds.meta["source"]["layout"] == "tiny-imagenet"
    assert ds.meta["source"]["local_copy"] == str((shared_datasets / "tiny-imagenet-office20").resolve())
    assert len(ds.files) == 240 and not (tmp_path / "cache").exists()


def test_fetch_downloads_verifies_and_extracts_only_the_catalog(served_zip, catalog, tmp_path):
    url, sha, hits = served_zip
    cache, out = tmp_path / "cache", tmp_path / "ds"
    argv = ["fetch", "--out", str(out), "--classes", catalog, "--no-local", "--url", url,
            "--checksum", f"sha256:{sha}", "--cache", str(cache), "--timeout", "5"]
    before = len(hits)
    assert main(argv) == 0
    assert len(hits) == before + 1
    ds = load_dataset(out)
    src = ds.meta["source"]
    assert src["kind"] == "fetch" and src["archive"]["checksum"] == f"sha256:{sha}"
    assert [c.wnid for c in ds.classes] == CLASSES
    assert src["origins"]["val"] > 0 and sum(src["origins"].values()) == len(ds.files)
    extracted = Path(src["archive"]["extracted"])
    assert sorted(p.name for p in (extracted / "train").iterdir()) == sorted(CLASSES)
    val_names = {p.name for p in (extracted / "val" / "images").iterdir()}
    labels = dict(line.split("\t")[:2] for line in (extracted / "val" / "val_annotations.txt").read_text().splitlines())
    assert val_names and {labels[n] for n in val_names} <= set(CLASSES)
    assert not list(cache.rglob("*.part"))

    # re-run: the verified archive and the extraction are reused, nothing is downloaded
    assert main(argv) == 0
    assert len(hits) == before + 1 and load_dataset(out).id == ds.id


def test_checksum_mismatch_is_an_error_and_leaves_nothing(served_zip, catalog, tmp_path, capsys):
    url, sha, _ = served_zip
    cache, out = tmp_path / "cache", tmp_path / "ds"
    wrong = "0" * 64
    rc = main(["fetch", "--out", str(out), "--classes", catalog, "--no-local", "--url", url,
               "--checksum", f"sha256:{wrong}", "--cache", str(cache)])
    err = capsys.readouterr().err
    assert rc == 2 and "checksum mismatch" in err and sha in err and "Traceback" not in err
    assert not [p for p in cache.rglob("*") if p.is_file()]
    assert not (out / "dataset.json").exists()


def test_offline_says_how_to_use_a_local_folder(catalog, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["fetch", "--out", str(tmp_path / "ds"), "--classes", catalog, "--no-local",
               "--url", f"http://127.0.0.1:{port}/tiny-imagenet-200.zip", "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot download" in err and "DATA_SOURCE=import DATA_ARGS='--from" in err


@pytest.mark.parametrize("checksum", ["crc32:1234", "sha256:xyz", "md5"])
def test_bad_checksum_flag(checksum, tmp_path, capsys):
    rc = main(["fetch", "--out", str(tmp_path / "ds"), "--no-local", "--checksum", checksum,
               "--cache", str(tmp_path / "cache")])
    assert rc == 2 and "expected md5:HEX or sha256:HEX" in capsys.readouterr().err
