"""The FastAPI app: ``POST /classify`` plus health, model metadata, labels and a phone page.

The bundle is loaded (seal- and hash-checked) once, in the lifespan hook, with a warm-up inference on
every interpreter before the first request is accepted; a bad bundle stops startup with a
``BundleError`` naming the problem (``python -m server`` checks it first and exits 2).

The app is stateless: nothing about a request outlives it, every process holds its own
read-only copy of the bundle, so any number of processes and machines can serve the same
bundle behind a load balancer (see server/__init__.py for running it that way).

    from server.app import create_app
    from server.settings import ServerSettings
    app = create_app("artifacts/bundle", ServerSettings(max_bytes=5_000_000))
    # or, for uvicorn workers: uvicorn --factory server.app:from_env  (OFFICENET_BUNDLE=...)
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from bundle.abstain import abstains
from bundle.manifest import Bundle, load_bundle
from server.errors import ApiError, error_docs, install_error_handlers
from server.inference import Classification, Classifier
from server.limits import BodySizeLimit, InflightLimit, LingeringClose
from server.schemas import ClassifyResponse, Health, LabelsResponse, ModelInfo
from server.settings import ENV_BUNDLE, ServerSettings
from server.upload import OPENAPI_BODY, read_image

PAGE = Path(__file__).with_name("static") / "index.html"


@dataclass(frozen=True)
class Served:
    """The bundle this process serves, loaded and warmed up: what every endpoint but /healthz needs.
    ``app.state.served`` holds it from the end of startup to the start of shutdown, None otherwise."""

    classifier: Classifier
    model_ref: dict[str, str]  # name, version, sha256 (schemas.ModelRef): every answer names its model

    @property
    def bundle(self) -> Bundle:
        return self.classifier.bundle


def create_app(bundle_dir: str | os.PathLike, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    # FastAPIOffline: /docs and /redoc served with their Swagger UI / ReDoc files from the package,
    # not a CDN, so the API docs work on a machine without internet (the usual place for a fallback).
    app = FastAPIOffline(
        title="officenet classifier",
        description="Office-object classification with the int8 model of an officenet "
        "bundle (the same model and preprocessing as the phone app). "
        'Errors are always `{"error": {"code", "message"}}`.',
        version="1",
        lifespan=_lifespan(Path(bundle_dir), settings),
    )
    app.state.served = None
    _add_middleware(app, settings)
    install_error_handlers(app)
    app.openapi = _openapi_with_top_k_bound(app)
    _add_routes(app, settings, InflightLimit(settings.inflight_limit), PAGE.read_text())
    return app


def _lifespan(bundle_dir: Path, settings: ServerSettings):
    """Startup loads the bundle (BundleError stops it) and warms every interpreter up before
    /readyz says ready; shutdown stops serving, then closes the interpreters' threads."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        bundle = load_bundle(bundle_dir)
        clf = Classifier(bundle, pool_size=settings.pool_size, threads=settings.threads, max_pixels=settings.max_pixels)
        try:
            clf.warm_up()
            model = bundle.manifest["model"]
            app.state.served = Served(
                clf, {"name": model["name"], "version": str(model.get("version", "")), "sha256": bundle.model_sha256}
            )
            yield
        finally:
            app.state.served = None
            clf.close()

    return lifespan


def _add_middleware(app: FastAPI, settings: ServerSettings) -> None:
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_bytes)
    app.add_middleware(LingeringClose)  # outside BodySizeLimit: its early 413 lingers too
    if settings.cors_origin_list:  # added last = outermost: error answers carry the headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )


def _openapi_with_top_k_bound(app: FastAPI):
    """The generated schema, with top_k's real upper bound (the bundle's class count) once the
    bundle is loaded, so a schema-driven client or fuzzer agrees with the server."""
    schema = app.openapi

    def openapi() -> dict:
        doc = schema()
        served = app.state.served
        if served is not None:
            for param in doc["paths"]["/classify"]["post"]["parameters"]:
                if param["name"] == "top_k":
                    param["schema"]["maximum"] = served.classifier.num_classes
        return doc

    return openapi


def _ready(request: Request) -> Served:
    """The served bundle, or 503 ``not_ready`` before startup has loaded it (and after shutdown)."""
    served = request.app.state.served
    if served is None:
        raise ApiError(503, "not_ready", "the model is not loaded")
    return served


def _classify_answer(served: Served, result: Classification, top_k: int, start: float) -> dict:
    """``/classify``'s JSON, built to match ClassifyResponse (the tests check it against
    /openapi.json) and returned as-is: re-validating it on every request is pure overhead on the
    event loop. ``start``: when the request came in (``time.perf_counter``)."""
    bundle = served.bundle
    answer = {
        "predictions": [
            {"label": bundle.labels[i], "wnid": bundle.wnids[i], "score": float(result.probs[i])}
            for i in result.top(top_k)
        ],
        "model": served.model_ref,
        "timing_ms": {**result.timing_ms, "total": (time.perf_counter() - start) * 1e3},
    }
    if bundle.abstain is None:
        return answer
    return {**answer, "abstained": bool(abstains(result.probs, bundle.abstain))}


def _add_routes(app: FastAPI, settings: ServerSettings, inflight: InflightLimit, page: str) -> None:

    @app.post(
        "/classify",
        response_model=ClassifyResponse,
        responses={
            **error_docs(400, 413, 415, 422),
            503: {
                **error_docs(503)[503],
                "description": "not_ready, or overloaded: too many requests in "
                "progress (retry after the `Retry-After` header's seconds)",
            },
        },
        openapi_extra=OPENAPI_BODY,
        summary="Classify one photo",
    )
    async def classify(
        request: Request,
        top_k: int = Query(3, ge=1, description="how many classes to return, 1..number of classes (see /labels)"),
    ):
        start = time.perf_counter()
        served = _ready(request)
        clf = served.classifier
        if top_k > clf.num_classes:
            raise ApiError(422, "invalid_top_k", f"top_k must be between 1 and {clf.num_classes}, got {top_k}")
        with inflight.slot():  # before the body is read: a refused request holds no memory
            data = await read_image(request)
            result = await clf.classify_async(data)
        return JSONResponse(_classify_answer(served, result, top_k, start))

    @app.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get(
        "/readyz", response_model=Health, responses=error_docs(503), summary="Readiness: model loaded and warmed up"
    )
    async def readyz(request: Request):
        _ready(request)
        return {"status": "ready"}

    @app.get(
        "/model",
        response_model=ModelInfo,
        responses=error_docs(503),
        summary="The bundle manifest: classes, input spec, metrics, parity",
    )
    async def model(request: Request):
        served = _ready(request)
        return {
            **served.bundle.manifest,
            "serving": {
                "interpreters": served.classifier.pool_size,
                "threads_per_interpreter": settings.threads,
                "max_bytes": settings.max_bytes,
                "max_pixels": settings.max_pixels,
                "max_inflight": inflight.limit,
            },
        }

    @app.get(
        "/labels",
        response_model=LabelsResponse,
        responses=error_docs(503),
        summary="Class labels in model output order",
    )
    async def labels(request: Request):
        return {"labels": _ready(request).bundle.manifest["classes"]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page


def from_env() -> FastAPI:
    """App factory for uvicorn workers: bundle and settings from ``OFFICENET_*`` variables."""
    bundle = os.environ.get(ENV_BUNDLE)
    if not bundle:
        raise RuntimeError(f"{ENV_BUNDLE} is not set (the bundle directory to serve)")
    return create_app(bundle, ServerSettings.from_env())
