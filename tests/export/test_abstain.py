"""The "not an office object" rule (export.abstain): the numbers, then a real export of the tiny run
on a private copy of the tiny dataset with non-office photos imported by the data stage's CLI.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from bundle.abstain import SCORES
from bundle.litert import LiteRTModel
from bundle.manifest import load_bundle
from export import abstain
from export.config import GateConfig, build_parser, config_from_args
from export.inputs import load_pixels, split_arrays
from export.parity import gate, measure
from training.data.dataset import load_dataset

FAST = [
    "--target-sparsity",
    "0",
    "--calibration-images",
    "50",
    "--min-agreement",
    "0.9",
    "--max-accuracy-drop",
    "5",
    "--golden-images",
    "2",
]


def test_auroc_is_the_pairwise_win_rate_with_ties_as_half():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 6, 40) / 8  # uint8-like outputs: many ties
    neg = rng.integers(0, 5, 30) / 8
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg)]
    assert abstain.auroc(pos, neg) == pytest.approx(np.mean(pairs))
    assert abstain.auroc(np.ones(3), np.zeros(4)) == 1.0


def test_threshold_keeps_the_coverage_and_sits_on_the_uint8_grid():
    scores = np.linspace(0.05, 1, 200)
    t = abstain.coverage_threshold(scores, 0.9)
    assert (scores >= t).mean() == 0.9 and (scores > t).mean() < 0.9
    snapped = abstain.snap(t, 1 / 256)
    assert snapped <= t < snapped + 1 / 256 and (snapped * 256).is_integer()
    assert abstain.snap(0.5, 1 / 256) == 0.5  # already on the grid: unchanged


def test_gate_refuses_an_abstain_decision_that_moves_under_int8():
    labels = np.array([0, 1, 0, 1])
    float_p = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.45, 0.55]], np.float32)
    figures = measure(float_p, float_p, float_p, labels, ["a", "b"])
    assert gate(figures, GateConfig()) == []  # no abstain rule: no abstain check
    int8_p = float_p.copy()
    int8_p[2] = [0.6, 0.4]  # crosses a 0.58 threshold: one decision of four changes
    figures["abstain_agreement"] = abstain.abstain_agreement(float_p, int8_p, 0.58)
    figures["abstain_images"] = 4
    assert figures["abstain_agreement"] == 0.75
    assert ["abstain-vs-answer for 75.00% of 4" in f for f in gate(figures, GateConfig())] == [True]


def test_cli_flags_turn_the_rule_off_and_set_its_operating_point():
    def parse(*a):
        return config_from_args(build_parser().parse_args(["--run", "r", "--out", "o", *a]))

    cfg = parse()
    assert cfg.abstain.enabled and cfg.abstain.coverage == 0.9 and cfg.gate.min_abstain_agreement == 0.98
    cfg = parse("--no-abstain", "--abstain-coverage", "0.95", "--min-abstain-agreement", "0.9")
    assert (cfg.abstain.enabled, cfg.abstain.coverage, cfg.gate.min_abstain_agreement) == (False, 0.95, 0.9)
    assert cfg.to_dict()["abstain"] == {"enabled": False, "method": "auto", "coverage": 0.95}
    assert parse("--abstain-method", "max_softmax").abstain.method == "max_softmax"


def test_the_method_is_a_named_choice_defaulting_to_what_the_run_supports():
    assert abstain.choose_method("auto", other_output=True).name == "other_output"
    assert abstain.choose_method("auto", other_output=False).name == "max_softmax"
    # A run with the "other" output may still ship the plain max rule; the reverse cannot work.
    assert abstain.choose_method("max_softmax", other_output=True).scores == ("max",)
    with pytest.raises(ValueError, match="needs a run trained with the hidden 'other' output"):
        abstain.choose_method("other_output", other_output=False)
    with pytest.raises(ValueError, match="unknown abstain method 'energy'"):
        abstain.choose_method("energy", other_output=True)
    for method in abstain.METHODS.values():  # every score a method names is one consumers implement
        assert set(method.scores) <= set(SCORES)


def export_with_others(run: Path, data: Path, out: Path, *flags: str) -> Path:
    from export.cli import main

    # The 8-epoch 32 px model is unsure of almost everything: many max probabilities sit near the
    # threshold, so a few uint8 steps flip more decisions than on a real model.
    assert (
        main(
            ["--run", str(run), "--data", str(data), "--out", str(out), *FAST, "--min-abstain-agreement", "0.9", *flags]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def max_softmax_bundle(tiny_run, others_dataset, tmp_path_factory) -> Path:
    """Method a: the tiny run (office photos only), exported with the non-office photos present."""
    return export_with_others(tiny_run, others_dataset, tmp_path_factory.mktemp("abstain-a") / "bundle")


@pytest.fixture(scope="module")
def other_output_bundle(other_run, others_dataset, tmp_path_factory) -> Path:
    """Method b: the tiny run trained with a hidden "other" output, pruned on office + non-office
    photos (the trainer's mixed pipeline, 21 outputs) and exported."""
    return export_with_others(
        other_run,
        others_dataset,
        tmp_path_factory.mktemp("abstain-b") / "bundle",
        "--target-sparsity",
        "0.5",
        "--prune-epochs",
        "1",
    )


@pytest.fixture(params=["max_softmax", "other_output"])
def abstain_bundle(request) -> Path:
    return request.getfixturevalue(f"{request.param}_bundle")


def expected_method(bundle: Path) -> str:
    """What the exported run says: trained with a hidden "other" output or not."""
    run = Path(json.loads((bundle / "export_config.json").read_text())["run"])
    return {"on": "other_output", "off": "max_softmax"}[
        json.loads((run / "config.json").read_text())["data"]["other_class"]
    ]


@pytest.mark.slow
def test_other_output_is_cut_off_and_the_shipped_model_stays_fully_int8(other_output_bundle, others_dataset):
    from export.quantize import graph_ops

    b = load_bundle(other_output_bundle)
    rule = b.abstain
    assert rule["method"] == "other_output" and set(rule["calibrated_on"]["float_auroc_by_score"]) == {
        "max",
        "office_mass",
    }
    assert rule["score"] == max(
        rule["calibrated_on"]["float_auroc_by_score"], key=rule["calibrated_on"]["float_auroc_by_score"].get
    )
    assert b.manifest["output"]["shape"] == [1, 20] and len(b.labels) == 20 and "other" not in b.labels
    assert b.manifest["metrics"]["sparsity"]["overall"] == pytest.approx(0.5, abs=0.01)
    ops = graph_ops(b.model_path.read_bytes())
    assert "STRIDED_SLICE" in [op["op"] for op in ops]
    assert all(set(op["inputs"] + op["outputs"]) <= {"int8", "int32"} for op in ops[1:-1])
    int8_model = LiteRTModel(b.model_path.read_bytes())
    float_model = LiteRTModel((other_output_bundle.parent / "bundle.float.tflite").read_bytes())
    assert int8_model.output["shape"].tolist() == float_model.output["shape"].tolist() == [1, 20]
    # The shipped office probabilities sum to 1 - p(other): less on photos of unseen non-office
    # classes than on office photos, because the hidden output takes their mass.
    ds = load_dataset(others_dataset)
    office = int8_model.probabilities(split_arrays(ds, "test", b.preprocess)[0]).sum(1)
    others = int8_model.probabilities(load_pixels([p for p, _ in ds.others_items("test")], b.preprocess)).sum(1)
    assert office.max() <= 1 + 20 / 256 and others.mean() < office.mean() - 0.04, (others.mean(), office.mean())


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["no_abstain", "no_others"])
def test_an_other_class_run_is_not_exported_without_its_abstain_rule(
    problem, other_run, others_dataset, tiny_dataset, tmp_path, capsys
):
    from export.cli import main

    data, flags = (others_dataset, ["--no-abstain"]) if problem == "no_abstain" else (tiny_dataset, [])
    assert main(["--run", str(other_run), "--data", str(data), "--out", str(tmp_path / "b"), *FAST, *flags]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and {"no_abstain": "drop --no-abstain", "no_others": "lacks non-office train/val/test photos"}[problem] in err
    )
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_calibration_and_evaluation_never_share_a_class(abstain_bundle, others_dataset):
    ds = load_dataset(others_dataset)
    seen = {w for split in ("train", "val") for _, w in ds.others_items(split)}
    unseen = {w for _, w in ds.others_items("test")}
    assert seen and unseen and not seen & unseen
    rule = load_bundle(abstain_bundle).abstain
    assert rule["calibrated_on"]["office_val"] == len(ds.items("val"))
    assert rule["calibrated_on"]["others_val"] == len(ds.others_items("val"))
    assert rule["figures"]["int8"]["others_images"] == len(ds.others_items("test"))
    assert rule["figures"]["int8"]["office_images"] == len(ds.items("test"))


@pytest.mark.slow
def test_threshold_reproduces_the_reported_figures(abstain_bundle, others_dataset):
    b = load_bundle(abstain_bundle)
    rule, ds = b.abstain, load_dataset(others_dataset)
    assert rule["target_coverage"] == 0.9
    assert rule["method"] == expected_method(abstain_bundle)
    t = rule["threshold"]
    assert (t / b.output_quant.scale).is_integer() and b.output_quant.zero_point == 0
    # Its own calibration set, through the float TFLite of the exported model (kept beside the bundle)
    # and the shipped int8 model: the coverage the manifest reports, and at least the target in float.
    x_val, _ = split_arrays(ds, "val", b.preprocess)
    float_model = LiteRTModel((abstain_bundle.parent / "bundle.float.tflite").read_bytes())
    int8_model = LiteRTModel(b.model_path.read_bytes())
    float_cov = abstain.answered(float_model.probabilities(x_val), t, rule["score"]).mean()
    assert float_cov == pytest.approx(rule["calibrated_on"]["float_office_coverage"], abs=1e-4)
    assert float_cov >= rule["target_coverage"]
    assert abstain.answered(int8_model.probabilities(x_val), t, rule["score"]).mean() == pytest.approx(
        rule["calibrated_on"]["int8_office_coverage"], abs=1e-4
    )
    # The evaluation figures, recomputed from the bundle's own model on the unseen classes.
    x_test, y_test = split_arrays(ds, "test", b.preprocess)
    x_others = load_pixels([p for p, _ in ds.others_items("test")], b.preprocess)
    again = abstain.evaluate(
        int8_model.probabilities(x_test), y_test, int8_model.probabilities(x_others), t, rule["score"]
    )
    assert again == rule["figures"]["int8"]
    parity = json.loads((abstain_bundle / "parity.json").read_text())
    assert parity["abstain_images"] == len(y_test) + len(x_others)
    assert b.manifest["parity"]["abstain_agreement"] == parity["abstain_agreement"] >= 0.9
    report = (abstain_bundle / "REPORT.md").read_text()
    assert "Not an office object" in report and f"**{t:.4f}** ({rule['method']})" in report
    assert ("office mass" in report) == (rule["score"] == "office_mass")


@pytest.mark.slow
def test_server_abstains_as_the_manifest_rule_on_litert_says(abstain_bundle, others_dataset):
    from fastapi.testclient import TestClient

    from server.app import create_app

    b = load_bundle(abstain_bundle)
    ds = load_dataset(others_dataset)
    model = LiteRTModel(b.model_path.read_bytes())
    pool = [p for p, _ in ds.items("test")] + [p for p, _ in ds.others_items("test")]
    decisions = ~abstain.answered(
        model.probabilities(load_pixels(pool, b.preprocess)), b.abstain["threshold"], b.abstain["score"]
    )
    # Eight photos of each decision, so the server must get both right.
    chosen = np.concatenate([np.flatnonzero(decisions)[:8], np.flatnonzero(~decisions)[:8]])
    photos, expected = [pool[i] for i in chosen], decisions[chosen]
    assert expected.any() and not expected.all()
    with TestClient(create_app(abstain_bundle)) as client:
        got = [client.post("/classify", files={"file": (p.name, p.read_bytes())}).json()["abstained"] for p in photos]
        assert client.get("/model").json()["abstain"]["threshold"] == b.abstain["threshold"]
    assert got == expected.tolist()


@pytest.mark.slow
def test_without_others_the_bundle_has_no_abstain_rule(tiny_bundle):
    b = load_bundle(tiny_bundle)
    assert b.abstain is None and "abstain_agreement" not in b.manifest["parity"]


@pytest.mark.slow
def test_bench_compares_the_methods_on_the_same_photos(
    max_softmax_bundle, other_output_bundle, others_dataset, tiny_bundle, tmp_path, capsys
):
    from bench.abstain import main

    bundles = [max_softmax_bundle, other_output_bundle]
    assert (
        main(
            [
                "--data",
                str(others_dataset),
                "--results",
                str(tmp_path),
                "--bundle",
                str(bundles[0]),
                "--bundle",
                str(bundles[1]),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "abstain.json").read_text())
    assert [r["rule"]["method"] for r in result["bundles"]] == ["max_softmax", "other_output"]
    for b, r in zip(bundles, result["bundles"]):
        assert r["int8"] == load_bundle(b).abstain["figures"]["int8"]
        assert [s["target_coverage"] for s in r["sweep"]] == [0.8, 0.85, 0.9, 0.95, 0.98]
    md = (tmp_path / "abstain.md").read_text()
    assert result["cpu"]["model"] in md and "avx512_vnni" in md
    assert md.count("(max_softmax, score max) |") == 1 and md.count("(other_output, score ") == 1
    assert "office_mass: val (float)" in md and "Temperature scaling" in md
    assert main(["--bundle", str(tiny_bundle), "--data", str(others_dataset)]) == 2
    assert "no abstain rule" in capsys.readouterr().err


@pytest.mark.slow
def test_a_method_the_run_cannot_support_is_refused_before_any_work(tiny_run, others_dataset, tmp_path, capsys):
    from export.cli import main

    out = tmp_path / "b"
    assert (
        main(
            [
                "--run",
                str(tiny_run),
                "--data",
                str(others_dataset),
                "--out",
                str(out),
                *FAST,
                "--abstain-method",
                "other_output",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--abstain-method other_output needs a run trained with the hidden 'other' output" in err
    assert not out.exists() and not (tmp_path / "b.float.tflite").exists()
