"""The one LiteRT wrapper: a TFLite model in the desktop interpreter (``ai_edge_litert``), batch 1 unless told.

Export (parity gate, golden vectors), the server's interpreter pool, the benchmarks and the
teacher's feature runner all run models through this class, so "how officenet invokes LiteRT" is
written once. Pure Python beside the bundle contract: no TensorFlow.

    from bundle.litert import LiteRTModel
    m = LiteRTModel(tflite_bytes, threads=2)          # or a path: LiteRTModel(bundle.model_path)
    m.input_quant            # (scale, zero_point) of the input tensor; (0.0, 0) for a float model
    raw = m.run(x)           # x: one input in the model's dtype, shape (1, S, S, 3)
    probs = m.probabilities(pixels)   # uint8 (n, S, S, 3) -> float32 (n, N), quantizing as the manifest says
    LiteRTModel(path, xnnpack=False)  # the reference kernels only (what a runtime without XNNPACK runs)
    LiteRTModel(path, batch=32).run_batch(x)  # x: (32, S, S, 3) -> every output row, (32, N)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from bundle.preprocess import dequantize, quantize


class LiteRTModel:
    def __init__(self, model: bytes | str | Path, threads: int = 2, xnnpack: bool = True, batch: int = 1):
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interpreter = Interpreter(**source, num_threads=threads, experimental_op_resolver_type=resolver)
        if batch != 1:  # the input's batch size is fixed at allocation: one shape for every call
            first = self.interpreter.get_input_details()[0]
            self.interpreter.resize_tensor_input(first["index"], [batch, *first["shape"][1:]])
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    @property
    def input_quant(self) -> tuple[float, int]:
        return tuple(self.input["quantization"])

    @property
    def output_quant(self) -> tuple[float, int]:
        return tuple(self.output["quantization"])

    def input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (S, S, 3) -> the (1, S, S, 3) tensor this model takes (bundle.quantize)."""
        scale, zero_point = self.input_quant
        return quantize(pixels, scale, zero_point, self.input_dtype)[None]

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """x: the whole input tensor (batch first) -> a copy of the whole output tensor."""
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_batch(x)[0]

    def raw_outputs(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self.run(self.input_tensor(p)) for p in pixels])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output_quant
        return dequantize(self.raw_outputs(pixels), scale, zero_point)
