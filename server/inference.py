"""The classifier behind ``/classify``: a bundle, a pool of LiteRT interpreters, a bounded executor.

One LiteRT interpreter (``bundle.litert.LiteRTModel``) is not thread-safe, and one global lock would serialise the whole
server onto one core. So the process owns ``pool_size`` interpreters and exactly as many worker
threads: a request's CPU work (decode, preprocess, inference) runs on one of those threads,
never on the event loop, and takes a free interpreter only for the ``invoke``. Pillow and LiteRT
release the GIL while they compute, so the threads really use all cores; extra requests wait in
the executor's queue instead of oversubscribing the CPU.

The image -> tensor path is the bundle's reference path, unchanged: ``decode_image`` ->
``preprocess`` -> ``quantize``; the output is ``dequantize``d with the manifest's parameters.

    from bundle.manifest import load_bundle
    from server.inference import Classifier
    clf = Classifier(load_bundle("artifacts/bundle"), pool_size=2, threads=1)
    result = clf.classify(open("mug.jpg", "rb").read(), top_k=3)
    result.top(3), result.timing_ms
    clf.close()
"""

from __future__ import annotations

import asyncio
import functools
import io
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bundle.images import DEFAULT_MAX_PIXELS, decode_image
from bundle.litert import LiteRTModel
from bundle.manifest import Bundle, BundleError
from bundle.preprocess import dequantize, preprocess, quantize


@dataclass(frozen=True)
class Classification:
    probs: np.ndarray  # float32 [N], dequantized model output
    timing_ms: dict[str, float]  # decode, preprocess, inference

    def top(self, k: int) -> list[int]:
        """Indices of the k best classes; ties keep class order, so top(1) == argmax."""
        return np.argsort(-self.probs, kind="stable")[:k].tolist()


class Classifier:
    def __init__(self, bundle: Bundle, pool_size: int = 1, threads: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.bundle = bundle
        self.spec = bundle.preprocess
        self.max_pixels = max_pixels
        self.pool_size = pool_size
        self._in_q, self._out_q = bundle.input_quant, bundle.output_quant
        self._interpreters: queue.SimpleQueue[LiteRTModel] = queue.SimpleQueue()
        for _ in range(pool_size):
            self._interpreters.put(self._open_interpreter(threads))
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="classify")

    def _open_interpreter(self, threads: int) -> LiteRTModel:
        try:
            model = LiteRTModel(self.bundle.model_path, threads=threads)
        except (ValueError, RuntimeError) as e:
            raise BundleError(f"LiteRT cannot load {self.bundle.model_path}: {e}") from None
        it = model.interpreter
        inp, out = it.get_input_details(), it.get_output_details()
        m = self.bundle.manifest
        # The manifest is what clients trust; a model that disagrees with it must not serve.
        for name, details, spec in (("input", inp, m["input"]), ("output", out, m["output"])):
            if len(details) != 1:
                raise BundleError(f"model has {len(details)} {name} tensors, the server expects 1")
            d = details[0]
            if list(d["shape"]) != spec["shape"] or np.dtype(d["dtype"]).name != spec["dtype"]:
                raise BundleError(
                    f"model {name} is {list(d['shape'])} {np.dtype(d['dtype']).name}, "
                    f"manifest says {spec['shape']} {spec['dtype']}"
                )
        return model

    @property
    def num_classes(self) -> int:
        return len(self.bundle.labels)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """One quantized input tensor [1, S, S, 3] -> dequantized probabilities [N]."""
        model = self._interpreters.get()
        try:
            raw = model.run(x)
        finally:
            self._interpreters.put(model)
        return dequantize(raw, self._out_q.scale, self._out_q.zero_point)

    def classify(self, data: bytes) -> Classification:
        """Encoded image bytes -> probabilities; raises ``bundle.images.ImageError`` on bad input."""
        t0 = time.perf_counter()
        img = decode_image(data, max_pixels=self.max_pixels)
        t1 = time.perf_counter()
        pixels = preprocess(img, self.spec)
        x = quantize(pixels, self._in_q.scale, self._in_q.zero_point, self.bundle.input_dtype)[None]
        t2 = time.perf_counter()
        probs = self.infer(x)
        t3 = time.perf_counter()
        return Classification(
            probs, {"decode": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "inference": (t3 - t2) * 1e3}
        )

    async def classify_async(self, data: bytes) -> Classification:
        """``classify`` on the pool's threads, so the event loop keeps serving other requests."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.classify, data))

    def warm_up(self) -> None:
        """Run the full path once and every interpreter once (first invokes allocate and plan)."""
        buf = io.BytesIO()
        Image.new("RGB", (2 * self.spec.size, self.spec.size), (128, 128, 128)).save(buf, "JPEG")
        self.classify(buf.getvalue())
        x = np.zeros(self.bundle.manifest["input"]["shape"], dtype=self.bundle.input_dtype)
        idle = [self._interpreters.get() for _ in range(self.pool_size)]
        try:
            for model in idle:
                model.run(x)
        finally:
            for model in idle:
                self._interpreters.put(model)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
