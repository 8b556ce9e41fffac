"""``python -m export``: publish a bundle from a trained run, or refuse and say why.

    python -m export --run artifacts/run --out artifacts/bundle
    python -m export --run RUN --out BUNDLE --target-sparsity 0.5 --prune-epochs 1 --calibration-images 100

Exit codes: 0 published; 1 the parity gate (or the int8 graph check) refused the model, the
published bundle is untouched and the evidence is in BUNDLE.parity-failure/; 2 bad usage or input.
"""

from __future__ import annotations

import sys

from export.config import build_parser, config_from_args, validate
from export.inputs import ExportError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    try:
        validate(cfg)
    except ValueError as e:
        parser.error(str(e))
    from export.pipeline import export  # imports TensorFlow: keep --help and usage errors fast

    try:
        result = export(cfg)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.published:
        return 0
    print("error: the int8 model was NOT published:", file=sys.stderr)
    for reason in result.failures:
        print(f"  - {reason}", file=sys.stderr)
    if result.drifted:
        print("classes that drifted (agreement, accuracy change in points):", file=sys.stderr)
        for c in result.drifted:
            print(
                f"  {c['index']:>3} {c['label']:<28} {100 * c['agreement']:5.1f}%  {c['change_points']:+.1f}",
                file=sys.stderr,
            )
    print(f"report with per-layer quantization error: {result.failure_dir / 'REPORT.md'}", file=sys.stderr)
    return 1
