"""Response models: what each endpoint returns, as /docs (OpenAPI) shows it to client authors.

from server.schemas import ClassifyResponse
ClassifyResponse.model_json_schema()
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Prediction(BaseModel):
    label: str = Field(description="human label, as in labels.txt")
    wnid: str = Field(description="WordNet id of the class")
    score: float = Field(description="probability: the model's uint8 output, dequantized")


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="sha256 of the model.tflite that answered")


class Timing(BaseModel):
    decode: float = Field(description="bytes -> upright RGB picture (ms)")
    preprocess: float = Field(description="crop, resize, quantize (ms)")
    inference: float = Field(description="LiteRT invoke + dequantize (ms)")
    total: float = Field(
        description="in the server, from the request's headers to the answer: "
        "body read, queueing for a core, and the three steps (ms)"
    )


class ClassifyResponse(BaseModel):
    predictions: list[Prediction] = Field(description="top_k classes, best first")
    model: ModelRef
    timing_ms: Timing
    abstained: bool | None = Field(
        None,
        description="only with a bundle whose manifest has an `abstain` rule: true when the "
        "image is probably not an office object (predictions are still the "
        "model's best guesses)",
    )


class ClassInfo(BaseModel):
    index: int
    wnid: str
    label: str


class LabelsResponse(BaseModel):
    labels: list[ClassInfo] = Field(description="classes in model output order")


class ServingInfo(BaseModel):
    interpreters: int = Field(description="LiteRT interpreters (and CPU threads) in this process")
    threads_per_interpreter: int
    max_bytes: int
    max_pixels: int
    max_inflight: int = Field(description="requests in /classify at once before 503 + Retry-After")


class ModelInfo(BaseModel):
    """The bundle's manifest (TF Serving's metadata endpoint, for this model) plus how it is served."""

    model_config = ConfigDict(extra="allow")

    schema_version: int
    model: dict[str, Any] = Field(description="name, version, created, git_revision, file")
    classes: list[ClassInfo]
    input: dict[str, Any] = Field(description="shape, dtype, quantization, preprocess spec")
    output: dict[str, Any] = Field(description="shape, dtype, quantization, kind")
    dataset: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    parity: dict[str, Any] = {}
    abstain: dict[str, Any] | None = None
    files: dict[str, Any] = Field(description="sha256 and sizes of every bundle file")
    serving: ServingInfo


class Health(BaseModel):
    status: str
