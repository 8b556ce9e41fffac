"""REPORT.md: the human summary of one export (or of a refused one), as markdown tables.

from export.report import render_report
text = render_report(manifest, parity_figures, sparsity_rows, ops, plots=["plots/curves.png"])
failure = render_report(..., failures=["int8 top-1 agrees ..."], layer_errors=rows)
"""

from __future__ import annotations

from collections import Counter

from bundle.abstain import SCORE_WORDS

SIZE_NAMES = {
    "float_tflite": "float .tflite, pruned (zeros stored densely: same raw size as unpruned)",
    "int8_tflite": "int8 model.tflite (this bundle)",
}


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float | None) -> str:
    """A share for a table: 0.1234 -> "12.3%", None -> "n/a" (bench's results tables use it too)."""
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _abstain_section(rule: dict, parity: dict) -> list[str]:
    cal, f = rule["calibrated_on"], rule["figures"]
    rows = [
        [
            name,
            f[m]["office_images"],
            f[m]["others_images"],
            f"{f[m]['auroc']:.3f}",
            pct(f[m]["at_office_coverage"]["90"]["others_answered"]),
            pct(f[m]["at_office_coverage"]["95"]["others_answered"]),
            pct(f[m]["office_coverage"]),
            pct(f[m]["others_answered"]),
            pct(f[m]["top1_answered"]),
            pct(f[m]["top1_overall"]),
        ]
        for name, m in (("int8 (shipped)", "int8"), ("float Keras", "float"))
        if m in f
    ]
    return [
        "## Not an office object (abstain rule)",
        "",
        f"Abstains when the {SCORE_WORDS[rule.get('score', 'max')]} "
        f"of the dequantized outputs is below **{rule['threshold']:.4f}** ({rule['method']}), calibrated on "
        f"the float model for {pct(rule['target_coverage'])} office "
        f"coverage on {cal['office_val']} office + {cal['others_val']} non-office val photos (float "
        f"threshold {cal['float_threshold']:.4f}; office val answered: float {pct(cal['float_office_coverage'])}, "
        f"int8 {pct(cal.get('int8_office_coverage'))}). Figures below: office test vs non-office photos "
        f"of classes kept out of calibration. Abstain agreement int8 vs float: "
        f"{pct(parity.get('abstain_agreement'))} of {parity.get('abstain_images')} images.",
        "",
        _table(
            [
                "model",
                "office",
                "non-office",
                "AUROC",
                "non-office labelled @90% cov.",
                "@95% cov.",
                "office answered @threshold",
                "non-office labelled @threshold",
                "top-1 answered",
                "top-1 overall",
            ],
            rows,
        ),
        "",
    ]


def render_report(
    manifest: dict,
    parity: dict,
    sparsity: list[dict],
    ops: list[dict],
    plots: list[str] = (),
    failures: list[str] = (),
    layer_errors: list[dict] = (),
) -> str:
    m, metrics, gate = manifest["model"], manifest["metrics"], manifest["parity"]["gate"]
    status = "REFUSED by the parity gate" if failures else "published"
    out = [
        f"# {m['name']} {m['version']}: int8 export ({status})",
        "",
        f"Created {m['created']} from git {m['git_revision']}; dataset `{manifest['dataset']['id']}` "
        f"(dataset.json sha256 `{manifest['dataset']['sha256'][:16]}...`).",
        "",
    ]
    if failures:
        out += ["## Why the gate refused it", ""] + [f"- {f}" for f in failures] + [""]
    out += [
        "## Summary",
        "",
        _table(
            ["figure", "value"],
            [
                ["test images", parity["images"]],
                ["float Keras top-1 (before pruning)", pct(metrics.get("run_float_accuracy"))],
                ["float Keras top-1 (pruned)", pct(parity["float_accuracy"])],
                ["int8 LiteRT top-1", pct(parity["int8_accuracy"])],
                ["accuracy drop int8 vs float", f"{parity['accuracy_drop_points']:.2f} points"],
                ["top-1 agreement int8 vs float", f"{100 * parity['agreement']:.2f}%"],
                [
                    "gate",
                    f"agreement >= {100 * gate['min_agreement']:.1f}%, accuracy drop <= "
                    f"{gate['max_accuracy_drop']} points, float TFLite diff <= {gate['max_float_diff']:.0e}",
                ],
                [
                    "misses that are uint8 ties including the float top-1",
                    f"{parity['disagreements_tied']} of {parity['disagreements']}",
                ],
                [
                    "mean / max abs probability diff",
                    f"{parity['mean_abs_prob_diff']:.4f} / {parity['max_abs_prob_diff']:.4f}",
                ],
                ["float TFLite vs Keras max abs diff", f"{parity['float_tflite_max_abs_diff']:.2e}"],
                ["kernel sparsity (Conv2D + Dense)", pct(metrics["sparsity"]["overall"])],
                [
                    "input quantization (scale, zero point)",
                    f"{manifest['input']['quantization']['scale']}, {manifest['input']['quantization']['zero_point']}",
                ],
            ],
        ),
        "",
    ]
    if manifest.get("abstain"):
        out += _abstain_section(manifest["abstain"], parity)
    sizes = metrics["sizes"]
    out += [
        "## Sizes",
        "",
        _table(
            ["model", "bytes", "gzip bytes"],
            [[SIZE_NAMES.get(name, name), f"{s['bytes']:,}", f"{s['gzip_bytes']:,}"] for name, s in sizes.items()],
        ),
        "",
    ]
    out += [
        "## Sparsity per layer",
        "",
        _table(
            ["layer", "kind", "weights", "zeros", "sparsity"],
            [[r["layer"], r["kind"], r["weights"], r["zeros"], pct(r["sparsity"])] for r in sparsity],
        ),
        "",
    ]
    counts = Counter(op["op"] for op in ops)
    out += [
        "## Ops in model.tflite",
        "",
        "Every op computes in int8 (int32 biases); only the QUANTIZE ops at the edges touch uint8.",
        "",
        _table(
            ["op", "count", "tensor dtypes"],
            [
                [
                    name,
                    n,
                    ", ".join(sorted({t for op in ops if op["op"] == name for t in op["inputs"] + op["outputs"]})),
                ]
                for name, n in counts.items()
            ],
        ),
        "",
        "Labels, preprocessing and quantization are in manifest.json (normalization is inside the "
        "model); model.tflite carries no TFLite metadata, because tflite-support pins protobuf<4, "
        "which conflicts with TensorFlow 2.21.",
        "",
    ]
    out += [
        "## Per class (test split)",
        "",
        _table(
            ["class", "label", "images", "float top-1", "int8 top-1", "change (points)", "agreement"],
            [
                [
                    c["index"],
                    c["label"],
                    c["images"],
                    pct(c["float_accuracy"]),
                    pct(c["int8_accuracy"]),
                    c["change_points"],
                    pct(c["agreement"]),
                ]
                for c in parity["per_class"]
            ],
        ),
        "",
    ]
    if layer_errors:
        out += [
            "## Per-layer quantization error (QuantizationDebugger)",
            "",
            _table(
                ["op", "tensor", "scale", "rmse / scale", "max abs error"],
                [
                    [
                        r["op_name"],
                        r["tensor_name"][:60],
                        f"{r['scale']:.4g}",
                        "" if r["rmse/scale"] is None else f"{r['rmse/scale']:.3f}",
                        f"{r['max_abs_error']:.4g}",
                    ]
                    for r in layer_errors
                ],
            ),
            "",
        ]
    if plots:
        out += ["## Training", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)
