"""Export: a trained run -> pruned, full-integer int8 TFLite -> parity gate -> published bundle.

    python -m export --run artifacts/run --out artifacts/bundle

Modules, in the order the steps run (``export.pipeline`` strings them together):
``config`` (flags and dataclasses), ``inputs`` (run, dataset, reference pixels), ``prune``,
``quantize`` (conversion + graph check), ``litert`` (LiteRT runner), ``parity`` (the gate),
``debug`` (per-layer error when the gate refuses), ``golden`` (golden vectors), ``report``
(REPORT.md), ``cli``.
"""
