"""Export: a trained run -> pruned, full-integer int8 TFLite -> parity gate -> published bundle.

    python -m export --run artifacts/run --out artifacts/bundle

Modules, in the order the steps run (``export.pipeline`` strings them together):
``config`` (flags and dataclasses), ``inputs`` (run, dataset, reference pixels), ``prune``,
``outputs`` (cuts the hidden "other" output off the graph), ``quantize`` (conversion + graph
check), ``parity`` (the gate, run in ``bundle.litert``'s LiteRT runner), ``debug`` (per-layer
error when the gate refuses), ``abstain`` (the "not an office object" threshold), ``golden``
(golden vectors), ``report`` (REPORT.md), ``cli``.
"""
