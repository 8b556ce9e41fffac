"""bench.teacher_sweep's three steps on the tiny dataset with non-office photos and the real
EfficientNet-Lite0: the pack holds what the sweep says it holds, the CPU backend's figures are
the trainer's teacher's, and where PyTorch is installed its port computes the same logits.
Skipped, saying so, where the teacher's wheel is absent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.teacher import SAMPLES
from bench.teacher_sweep import main
from training.data.dataset import load_dataset
from training.teacher import TEACHERS
from training.teacher.registry import weights_path
from training.teacher.torchfile import read_state_dict

pytestmark = pytest.mark.slow

TEACHER = "efficientnet-lite0"
GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "teacher_golden.json").read_text())


def test_the_pack_holds_every_office_photo_a_fixed_sample_of_others_and_half_precision_weights(packed, others_dataset):
    ds = load_dataset(others_dataset)
    meta = json.loads((packed / "files.json").read_text())
    office = [f for f in meta["files"] if f[1] < len(ds.classes)]
    assert len(office) == sum(len(ds.items(s)) for s in ("train", "val", "test"))
    for split, n in (("train", 2), ("val", 1), ("test", 3)):
        taken = [f[0] for f in meta["files"] if f[1] == len(ds.classes) and f[2] == split]
        per_class = Counter(w for _, w in ds.others_items(split))  # the tiny set has 1-5 a class
        assert len(taken) == sum(min(n, k) for k in per_class.values())
        assert {Path(t).parent.name for t in taken} == set(per_class)
    assert all((packed / "photos" / f[0]).read_bytes() == (ds.root / f[0]).read_bytes() for f in meta["files"][::50])
    state = read_state_dict(weights_path(TEACHERS[TEACHER]))
    with np.load(packed / "weights" / f"{TEACHER}.npz") as npz:
        assert set(npz.files) == set(state)
        w = npz["_conv_head.weight"]
        assert w.dtype == np.float16 and np.allclose(w, state["_conv_head.weight"], rtol=1e-3, atol=1e-4)
    assert np.load(packed / "weights" / f"{TEACHER}.reference.npy").shape == (len(list(SAMPLES.glob("*.JPEG"))), 1000)


@pytest.fixture(scope="module")
def cpu_measured(packed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep-cpu") / "lite0.json"
    assert main(["measure", "--pack", str(packed), "--backend", "tflite", "--sizes", "96", "--out", str(out)]) == 0
    return out


def test_the_cpu_backend_scores_the_trainers_teacher(cpu_measured, others_dataset, tmp_path):
    out = cpu_measured
    r = json.loads(out.read_text())
    proof = r["proofs"][TEACHER]
    assert proof["max_abs_logit_diff_vs_trainer"] < 1e-3 and proof["top1_agreement_vs_trainer"] == 1.0
    assert GOLDEN["min_top1"] <= proof["top1"] <= proof["top5"]
    assert [(row["input_size"], row["head"]) for row in r["rows"]] == [(96, "imagenet"), (96, "fitted")]
    for row in r["rows"]:
        # 20 office classes: chance is 5 % top-1; the teacher knows these ImageNet classes
        assert 0.2 < row["office_test"]["top1"] <= row["office_test"]["top3"] <= 1
        assert 0.5 < row["auroc_unseen"] <= 1 and 0 <= row["labelled_at_90"] <= 1 and row["images_per_s"] > 0
    unseen = Counter(w for _, w in load_dataset(others_dataset).others_items("test"))
    assert r["photos"]["test"]["others"] == sum(min(3, k) for k in unseen.values()) and r["rows"][1]["l2"] is not None

    results = tmp_path / "results"
    assert main(["render", str(out), "--results", str(results)]) == 0
    md = (results / "teacher-sweep.md").read_text()
    fitted = r["rows"][1]
    assert f"| {TEACHER} | 96 | fitted | tflite |" in md and f"**{fitted['office_test']['top1']:.1%}**" in md
    assert "avx2" in md and json.loads((results / "teacher-sweep.json").read_text())["parts"] == [r]


def test_the_torch_port_computes_the_trainers_figures(packed, cpu_measured, tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed (the sweep's GPU backend; not a project dependency)")
    out = tmp_path / "torch.json"
    assert main(["measure", "--pack", str(packed), "--backend", "torch", "--sizes", "96", "--out", str(out)]) == 0
    r, cpu = json.loads(out.read_text()), json.loads(cpu_measured.read_text())
    proof = r["proofs"][TEACHER]
    # float16 weights move logits (about +-20) by a few hundredths, never the answer
    assert proof["max_abs_logit_diff_vs_trainer"] < 0.1 and proof["top1_agreement_vs_trainer"] == 1.0
    for row, ref in zip(r["rows"], cpu["rows"], strict=True):
        assert (row["input_size"], row["head"]) == (ref["input_size"], ref["head"])
        assert abs(row["office_test"]["top1"] - ref["office_test"]["top1"]) <= 0.02
        assert abs(row["auroc_unseen"] - ref["auroc_unseen"]) <= 0.01
