"""Per-layer quantization error, for the failure report when the parity gate refuses a model.

    from export.debug import layer_errors
    rows = layer_errors(model, size=64, calibration=x_calib, images=x_test[:50])
    rows[0]  # {"op_name": "CONV_2D", "tensor_name": "...", "mean_squared_error": ..., "rmse/scale": ...}

TFLite's QuantizationDebugger re-converts the model with numeric-verify outputs and compares
every quantized tensor with its float counterpart on ``images``. It runs the models with the
deprecated ``tf.lite.Interpreter`` internally (nothing else offers this), which is why its
deprecation warning is silenced here; the gate itself uses LiteRT.
"""

from __future__ import annotations

import csv
import io
import warnings

import numpy as np

from export.quantize import converter_for


def layer_errors(model, size: int, calibration: np.ndarray, images: np.ndarray) -> list[dict]:
    from training.tfenv import tf

    def dataset():
        for x in images:
            yield [x[None].astype(np.float32)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter_for(model, size, calibration), debug_dataset=dataset
        )
        debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    rows = []
    for row in csv.DictReader(io.StringIO(text.getvalue())):
        stats = {k: float(v) for k, v in row.items() if k not in ("op_name", "tensor_name")}
        # Error relative to the quantization step says whether a layer's range is badly chosen
        # (>> 1 step) or it merely carries rounding noise (~0.3 step).
        stats["rmse/scale"] = float(np.sqrt(stats["mean_squared_error"]) / stats["scale"]) if stats["scale"] else None
        rows.append({"op_name": row["op_name"], "tensor_name": row["tensor_name"], **stats})
    return rows
