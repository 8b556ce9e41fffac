"""`python -m training.data fetch` (the local Tiny ImageNet copy, or a zip served from 127.0.0.1), and
the non-office classes `make data` then takes from that same zip (`import-others --from auto`)."""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from data_cli import import_office

from training.data.cli import main
from training.data.dataset import load_dataset
from training.data.others import LOCAL_ENV as OTHERS_ENV

CLASSES = ["n03085013", "n04074963", "n03584254"]
OTHER = "n02769748"  # in the archive, not in the catalog: must not be extracted
NON_OFFICE = ["n01443537", "n01629819", "n01641577"]  # tiny-imagenet-others: goldfish, salamander, bullfrog


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_zip(shared_datasets, tmp_path_factory):
    """A small Tiny ImageNet zip (same layout as the real one: office and non-office classes, real
    photos of ../shared) on a real HTTP server; yields (url, sha256, hits)."""
    sources = {w: shared_datasets / "tiny-imagenet-office20" for w in CLASSES + [OTHER]}
    sources.update({w: shared_datasets / "tiny-imagenet-others" for w in NON_OFFICE})
    folder = tmp_path_factory.mktemp("www")
    path = folder / "tiny-imagenet-200.zip"
    annotations, words = [], []
    for tiny in sorted(set(sources.values())):
        lines = (tiny / "val" / "val_annotations.txt").read_text().splitlines()
        for wnid in sorted(w for w, t in sources.items() if t == tiny):
            annotations += [(tiny, line) for line in lines if line.split("\t")[1] == wnid][:6]
        words += [line for line in (tiny / "words.txt").read_text().splitlines() if line.split("\t")[0] in sources]
    with zipfile.ZipFile(path, "w") as zf:
        for wnid, tiny in sources.items():
            for photo in sorted((tiny / "train" / wnid / "images").iterdir())[:12]:
                zf.write(photo, f"tiny-imagenet-200/train/{wnid}/images/{photo.name}")
            boxes = tiny / "train" / wnid / f"{wnid}_boxes.txt"  # the shared others folder has none
            if boxes.is_file():
                zf.write(boxes, f"tiny-imagenet-200/train/{wnid}/{boxes.name}")
        zf.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join(line for _, line in annotations) + "\n")
        for tiny, line in annotations:
            name = line.split("\t")[0]
            zf.write(tiny / "val" / "images" / name, f"tiny-imagenet-200/val/images/{name}")
        zf.writestr("tiny-imagenet-200/wnids.txt", "\n".join(sources) + "\n")
        zf.writestr("tiny-imagenet-200/words.txt", "\n".join(words) + "\n")
    hits = []

    class Handler(QuietHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield (
        f"http://127.0.0.1:{server.server_address[1]}/{path.name}",
        hashlib.sha256(path.read_bytes()).hexdigest(),
        hits,
    )
    server.shutdown()
    server.server_close()


def unreachable_url() -> str:
    """An archive URL on a 127.0.0.1 port nothing listens on: connection refused, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny-imagenet-200.zip"


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
    argv = [
        "fetch",
        "--out",
        str(out),
        "--classes",
        catalog,
        "--no-local",
        "--url",
        url,
        "--checksum",
        f"sha256:{sha}",
        "--cache",
        str(cache),
        "--timeout",
        "5",
    ]
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
    rc = main(
        [
            "fetch",
            "--out",
            str(out),
            "--classes",
            catalog,
            "--no-local",
            "--url",
            url,
            "--checksum",
            f"sha256:{wrong}",
            "--cache",
            str(cache),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "checksum mismatch" in err and sha in err and "Traceback" not in err
    assert not [p for p in cache.rglob("*") if p.is_file()]
    assert not (out / "dataset.json").exists()


def test_offline_says_how_to_use_a_local_folder(catalog, tmp_path, capsys):
    rc = main(
        [
            "fetch",
            "--out",
            str(tmp_path / "ds"),
            "--classes",
            catalog,
            "--no-local",
            "--url",
            unreachable_url(),
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot download" in err and "DATA_SOURCE=import DATA_ARGS='--from" in err


@pytest.mark.parametrize("checksum", ["crc32:1234", "sha256:xyz", "md5"])
def test_bad_checksum_flag(checksum, tmp_path, capsys):
    rc = main(
        [
            "fetch",
            "--out",
            str(tmp_path / "ds"),
            "--no-local",
            "--checksum",
            checksum,
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert rc == 2 and "expected md5:HEX or sha256:HEX" in capsys.readouterr().err


def test_make_data_takes_the_non_office_classes_from_the_same_archive(
    served_zip, catalog, tmp_path, monkeypatch, capsys
):
    """With no local non-office folder, `import-others` (auto, as `make data` runs it) extracts every
    class of the archive that the dataset lacks, from the archive `fetch` already verified and cached."""
    monkeypatch.setenv("OFFICENET_SHARED", str(tmp_path / "no-shared"))  # no local others folder
    monkeypatch.delenv(OTHERS_ENV, raising=False)
    url, sha, hits = served_zip
    cache, out = tmp_path / "cache", tmp_path / "ds"
    archive = ["--url", url, "--checksum", f"sha256:{sha}", "--cache", str(cache), "--timeout", "5"]
    assert main(["fetch", "--out", str(out), "--classes", catalog, "--no-local", *archive]) == 0
    downloads = len(hits)
    office = load_dataset(out)
    capsys.readouterr()

    assert main(["import-others", "--out", str(out), *archive]) == 0
    assert len(hits) == downloads, "the archive fetch verified is reused, not downloaded again"
    assert "others: 4 classes" in capsys.readouterr().out
    ds = load_dataset(out)
    assert ds.id == office.id and ds.files == office.files
    others = ds.others
    # The catalog's classes are never others; the office20 class outside this catalog is one.
    assert sorted(c["wnid"] for c in others["classes"]) == sorted(NON_OFFICE + [OTHER])
    assert others["counts"]["classes"] == {"eval": 2, "train": 2}
    src = others["source"]
    assert src["archive"]["checksum"] == f"sha256:{sha}" and src["from"] == src["archive"]["extracted"]
    assert sorted(p.name for p in (Path(src["from"]) / "train").iterdir()) == sorted(NON_OFFICE + [OTHER])
    labels = {c["wnid"]: c["label"] for c in others["classes"]}
    assert labels["n01443537"] == "goldfish" and labels[OTHER] == "backpack"
    per_class = {w: sum(f["wnid"] == w for f in others["files"]) for w in labels}
    assert per_class == {w: 12 + 6 for w in labels}, "all 12 train and 6 val photos of every class"
    groups = {c["wnid"]: c["group"] for c in others["classes"]}
    for f in others["files"]:
        assert (out / f["path"]).is_file()
        assert (f["split"] == "test") == (groups[f["wnid"]] == "eval")
    assert not list(cache.rglob("*.part"))

    # --from archive: the same classes, the extraction reused
    assert main(["import-others", "--from", "archive", "--out", str(out), *archive]) == 0
    assert load_dataset(out).others["files"] == others["files"] and len(hits) == downloads


def test_offline_without_a_local_folder_adds_no_others_and_says_so(
    shared_datasets, catalog, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("OFFICENET_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.delenv(OTHERS_ENV, raising=False)
    out, cache = tmp_path / "ds", tmp_path / "cache"
    assert import_office(shared_datasets, out, "--classes", catalog, "--per-class", "4") == 0
    before = (out / "dataset.json").read_bytes()
    archive = ["--url", unreachable_url(), "--cache", str(cache), "--retries", "0"]
    capsys.readouterr()
    assert main(["import-others", "--out", str(out), *archive]) == 0
    said = capsys.readouterr().out
    assert "no non-office photos added: no local folder" in said and "cannot download" in said
    assert f"import-others --from DIR --out {out}" in said
    assert (out / "dataset.json").read_bytes() == before and not (out / "others").exists()

    # asked for the archive by name, being offline is an error
    assert main(["import-others", "--from", "archive", "--out", str(out), *archive]) == 2
    assert "cannot download" in capsys.readouterr().err
    assert (out / "dataset.json").read_bytes() == before
    assert not [p for p in cache.rglob("*") if p.is_file()]
