"""End to end on the tiny real run: the published bundle, the gate refusing a broken model, and
a crash while publishing. The bundle checks read the lead's ``tiny_bundle`` (what
``export.cli.main`` published from ``tiny_run``); the refusals export into copies of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bundle.images import decode_image
from bundle.litert import LiteRTModel
from bundle.manifest import load_bundle
from bundle.preprocess import preprocess, quantize
from export.cli import main
from export.quantize import check_int8_graph, graph_ops
from training.data.dataset import load_dataset

pytestmark = pytest.mark.slow
FAST = ["--target-sparsity", "0", "--calibration-images", "50", "--min-agreement", "0.9", "--max-accuracy-drop", "5"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


@pytest.fixture
def published(tiny_bundle, tmp_path) -> Path:
    """A private copy of the published tiny bundle, to be (not) replaced by a test."""
    dest = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dest)
    return dest


def test_bundle_validates_and_describes_the_int8_model(tiny_bundle, tiny_run):
    b = load_bundle(tiny_bundle)
    m = b.manifest
    spec = json.loads((tiny_run / "preprocess.json").read_text())
    ds = load_dataset(json.loads((tiny_run / "config.json").read_text())["data"]["root"])
    assert m["input"]["preprocess"] == spec
    assert m["input"]["shape"] == [1, spec["size"], spec["size"], 3] and b.input_dtype == "uint8"
    assert m["output"] == {**m["output"], "shape": [1, len(ds.classes)], "dtype": "uint8", "kind": "probabilities"}
    assert b.wnids == [c.wnid for c in ds.classes] and b.labels == [c.label for c in ds.classes]
    assert m["dataset"]["id"] == ds.id and m["dataset"]["sha256"] == ds.sha256
    model = LiteRTModel(b.model_path.read_bytes())
    # The manifest's quantization is the converted model's, and the batch is fixed at 1.
    assert (b.input_quant.scale, b.input_quant.zero_point) == pytest.approx(model.input_quant)
    assert (b.output_quant.scale, b.output_quant.zero_point) == pytest.approx(model.output_quant)
    assert list(model.input["shape_signature"]) == m["input"]["shape"]
    for name in ("parity.json", "REPORT.md", "export_config.json", "labels.txt"):
        assert name in m["files"]


def test_the_same_run_exports_the_same_model_bytes(tiny_bundle, tiny_run, tmp_path):
    # Pruning fine-tunes with dropout and shuffled batches: seeded by the run's seed, with
    # deterministic kernels, a second export (same flags as the tiny_bundle fixture) is identical.
    flags = json.loads((tiny_bundle / "export_config.json").read_text())
    assert (
        main(
            [
                "--run",
                str(tiny_run),
                "--out",
                str(tmp_path / "again"),
                "--prune-epochs",
                str(flags["prune"]["epochs"]),
                "--prune-lr",
                str(flags["prune"]["lr"]),
                "--batch-size",
                str(flags["prune"]["batch_size"]),
                "--calibration-images",
                str(flags["quantize"]["calibration_images"]),
                "--min-agreement",
                str(flags["gate"]["min_agreement"]),
                "--max-accuracy-drop",
                str(flags["gate"]["max_accuracy_drop"]),
            ]
        )
        == 0
    )
    assert (tmp_path / "again" / "model.tflite").read_bytes() == (tiny_bundle / "model.tflite").read_bytes()
    assert json.loads((tmp_path / "again" / "export_config.json").read_text()) == {
        **flags,
        "out": str(tmp_path / "again"),
    }


def test_int8_model_is_integer_inside_and_sparse(tiny_bundle, tiny_run):
    from training.tfenv import keras

    b = load_bundle(tiny_bundle)
    tflite = b.model_path.read_bytes()
    run_model = keras.models.load_model(tiny_run / "model.keras", compile=False)
    assert check_int8_graph(tflite, run_model) == []
    ops = graph_ops(tflite)
    assert [ops[0]["op"], ops[-1]["op"]] == ["QUANTIZE", "QUANTIZE"]
    assert not any("float32" in op["inputs"] + op["outputs"] for op in ops)
    assert "CONV_2D" in {op["op"] for op in ops} and "FULLY_CONNECTED" in {op["op"] for op in ops}

    target = json.loads((tiny_bundle / "export_config.json").read_text())["prune"]["target_sparsity"]
    sparsity = b.manifest["metrics"]["sparsity"]
    assert target >= 0.5 and sparsity["target"] == target
    assert abs(sparsity["overall"] - target) <= 0.01
    assert all(abs(layer["sparsity"] - target) <= 0.01 for layer in sparsity["layers"])
    # Independent of the manifest: the int8 kernels in the flatbuffer are at least that sparse
    # (weights smaller than half a quantization step become zero too).
    zeros, total = 0, 0
    interpreter = LiteRTModel(tflite).interpreter
    for t in interpreter.get_tensor_details():
        if t["dtype"] == np.int8 and len(t["shape"]) in (2, 4) and t["shape"][0] > 1:
            try:
                w = interpreter.get_tensor(t["index"])
            except ValueError:  # activations have no data outside invoke
                continue
            zeros, total = zeros + int((w == 0).sum()), total + w.size
    assert total > 0 and zeros / total >= target - 0.01


def test_parity_figures_come_from_the_real_test_split(tiny_bundle, tiny_run):
    b = load_bundle(tiny_bundle)
    ds = load_dataset(json.loads((tiny_run / "config.json").read_text())["data"]["root"])
    parity = json.loads((tiny_bundle / "parity.json").read_text())
    test = ds.items("test")
    assert parity["images"] == len(test) == b.manifest["metrics"]["test_images"]
    assert sum(c["images"] for c in parity["per_class"]) == len(test)
    assert parity["float_tflite_max_abs_diff"] < 1e-4
    # Re-run the published model on every test photo through the reference path.
    model = LiteRTModel(b.model_path.read_bytes())
    top = [
        int(
            model.run(
                quantize(
                    preprocess(decode_image(p.read_bytes()), b.preprocess),
                    b.input_quant.scale,
                    b.input_quant.zero_point,
                    "uint8",
                )[None]
            ).argmax()
        )
        for p, _ in test
    ]
    accuracy = float(np.mean(np.array(top) == np.array([y for _, y in test])))
    assert accuracy == pytest.approx(parity["int8_accuracy"], abs=1e-4)
    assert b.manifest["metrics"]["int8_accuracy"] == parity["int8_accuracy"]


def test_golden_vectors_reproduce(tiny_bundle, tiny_run):
    b = load_bundle(tiny_bundle)
    ds = load_dataset(json.loads((tiny_run / "config.json").read_text())["data"]["root"])
    test_hashes = {f["sha256"] for f in ds.meta["files"] if f["split"] == "test"}
    model = LiteRTModel(b.model_path.read_bytes())
    golden = b.manifest["golden"]
    assert len(golden) == 5 and len({g["label"] for g in golden}) == 5
    for g in golden:
        jpg = (tiny_bundle / g["image"]).read_bytes()
        assert hashlib.sha256(jpg).hexdigest() in test_hashes  # a real test photo, byte-identical
        raw = (tiny_bundle / g["input"]).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == g["input_sha256"]
        pixels = preprocess(decode_image(jpg), b.preprocess)
        x = quantize(pixels, b.input_quant.scale, b.input_quant.zero_point, b.input_dtype)
        assert x.tobytes() == raw and len(raw) == b.preprocess.size**2 * 3
        out = model.run(np.frombuffer(raw, np.uint8).reshape(1, *x.shape))
        assert out.tolist() == g["output"] and int(out.argmax()) == g["top1"]


def perturb_run(run: Path, dest: Path, factor: float = 1000.0) -> Path:
    """A copy of ``run`` whose float function is unchanged but whose int8 version breaks.

    One channel after a BatchNorm is scaled up ``factor`` times and the next layer's weights for
    that channel down as much: ReLU, Dropout and max pooling commute with a positive scale, so
    float outputs stay the same, while that channel now sets the int8 range of the whole tensor
    and every other channel is quantized to almost nothing (the classic activation outlier).
    """
    from training.tfenv import keras

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    model = keras.models.load_model(run / "model.keras", compile=False)
    layers = model.layers
    for i, layer in enumerate(layers):
        if type(layer).__name__ != "BatchNormalization":
            continue
        for nxt in layers[i + 1 :]:
            if type(nxt).__name__ in ("ReLU", "Dropout", "MaxPooling2D"):
                continue
            if type(nxt).__name__ in ("Dense", "Conv2D"):
                gamma, beta, mean, var = layer.get_weights()
                gamma[0], beta[0] = gamma[0] * factor, beta[0] * factor
                layer.set_weights([gamma, beta, mean, var])
                weights = nxt.get_weights()
                weights[0][..., 0, :] /= factor
                nxt.set_weights(weights)
                model.save(dest / "model.keras")
                return dest
            break
    raise AssertionError("no BatchNorm -> ReLU -> Conv2D/Dense chain to perturb in the tiny model")


def test_broken_int8_model_is_refused_and_bundle_untouched(tiny_run, published, tmp_path, capsys):
    from training.tfenv import keras

    broken = perturb_run(tiny_run, tmp_path / "broken-run")
    x = (
        np.random.default_rng(0)
        .uniform(0, 255, (4, *keras.models.load_model(tiny_run / "model.keras", compile=False).input_shape[1:]))
        .astype(np.float32)
    )
    original = keras.models.load_model(tiny_run / "model.keras", compile=False).predict(x, verbose=0)
    assert (
        np.abs(keras.models.load_model(broken / "model.keras", compile=False).predict(x, verbose=0) - original).max()
        < 1e-4
    )  # the float model is the same function
    before = snapshot(published)
    float_file = published.parent / "bundle.float.tflite"  # beside the bundle: must stay too
    float_file.write_bytes(b"the published export's float model")

    assert main(["--run", str(broken), "--out", str(published), *FAST]) == 1

    assert snapshot(published) == before
    assert float_file.read_bytes() == b"the published export's float model"
    err = capsys.readouterr().err
    assert "NOT published" in err and "agrees with float" in err and "classes that drifted" in err
    failure = published.parent / "bundle.parity-failure"
    report = (failure / "REPORT.md").read_text()
    assert "REFUSED" in report and "QuantizationDebugger" in report
    layer_errors = json.loads((failure / "layer_errors.json").read_text())
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {row["op_name"] for row in layer_errors}
    assert json.loads((failure / "parity.json").read_text())["drifted"]
    assert leftovers(published) == []


def test_crash_while_publishing_keeps_the_old_bundle(tiny_run, published, monkeypatch):
    before = snapshot(published)
    real_rename = os.rename

    def crash_on_swap(src, dst):
        if ".staging-" in str(src):
            raise OSError("simulated crash while moving the new bundle into place")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_swap)
    with pytest.raises(OSError, match="simulated crash"):
        main(["--run", str(tiny_run), "--out", str(published), *FAST])
    assert snapshot(published) == before
    load_bundle(published)
    assert leftovers(published) == []


def test_crash_while_sealing_leaves_no_bundle(tiny_run, tmp_path, monkeypatch):
    import export.pipeline

    def crash(staging, manifest):
        (staging / "manifest.json").write_text('{"half": ')
        raise KeyboardInterrupt  # like a Ctrl-C halfway through

    monkeypatch.setattr(export.pipeline, "seal", crash)
    dest = tmp_path / "fresh" / "bundle"
    with pytest.raises(KeyboardInterrupt):
        main(["--run", str(tiny_run), "--out", str(dest), *FAST])
    assert not dest.exists() and leftovers(dest) == []
