"""A TFLite model run with the desktop LiteRT interpreter (``ai_edge_litert``), one image at a time.

    from export.litert import LiteRTModel
    m = LiteRTModel(tflite_bytes, threads=2)
    m.input_quant            # (scale, zero_point) of the input tensor; (0.0, 0) for a float model
    raw = m.run(x)           # x: one input in the model's dtype, shape (1, S, S, 3)
    probs = m.probabilities(pixels)   # uint8 (n, S, S, 3) -> float32 (n, N), quantizing as the manifest says
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bundle.preprocess import dequantize, quantize


class LiteRTModel:
    def __init__(self, tflite: bytes, threads: int = 2):
        self.interpreter = Interpreter(model_content=tflite, num_threads=threads)
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

    def run(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0].copy()

    def raw_outputs(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self.run(self.input_tensor(p)) for p in pixels])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output_quant
        return dequantize(self.raw_outputs(pixels), scale, zero_point)
