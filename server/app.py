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
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from bundle.abstain import abstains
from bundle.manifest import load_bundle
from server.errors import ApiError, error_docs, install_error_handlers
from server.inference import Classifier
from server.limits import BodySizeLimit, InflightLimit, LingeringClose
from server.schemas import ClassifyResponse, Health, LabelsResponse, ModelInfo
from server.settings import ENV_BUNDLE, ServerSettings
from server.upload import OPENAPI_BODY, read_image

PAGE = Path(__file__).with_name("static") / "index.html"


def create_app(bundle_dir: str | os.PathLike, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    bundle_dir = Path(bundle_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        bundle = load_bundle(bundle_dir)
        clf = Classifier(bundle, pool_size=settings.pool_size, threads=settings.threads, max_pixels=settings.max_pixels)
        try:
            clf.warm_up()
            app.state.classifier = clf
            app.state.model_ref = {
                "name": bundle.manifest["model"]["name"],
                "version": str(bundle.manifest["model"].get("version", "")),
                "sha256": bundle.model_sha256,
            }
            yield
        finally:
            app.state.classifier = None
            clf.close()

    # FastAPIOffline: /docs and /redoc served with their Swagger UI / ReDoc files from the package,
    # not a CDN, so the API docs work on a machine without internet (the usual place for a fallback).
    app = FastAPIOffline(
        title="officenet classifier",
        description="Office-object classification with the int8 model of an officenet "
        "bundle (the same model and preprocessing as the phone app). "
        'Errors are always `{"error": {"code", "message"}}`.',
        version="1",
        lifespan=lifespan,
    )
    app.state.classifier = None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_bytes)
    app.add_middleware(LingeringClose)  # outside BodySizeLimit: its early 413 lingers too
    if settings.cors_origin_list:  # added last = outermost: error answers carry the headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )
    install_error_handlers(app)
    page = PAGE.read_text()
    inflight = InflightLimit(settings.inflight_limit)
    schema = app.openapi

    def openapi() -> dict:
        """The generated schema, with top_k's real upper bound (the bundle's class count) once
        the bundle is loaded, so a schema-driven client or fuzzer agrees with the server."""
        doc = schema()
        clf = app.state.classifier
        if clf is not None:
            for param in doc["paths"]["/classify"]["post"]["parameters"]:
                if param["name"] == "top_k":
                    param["schema"]["maximum"] = clf.num_classes
        return doc

    app.openapi = openapi

    def ready(request: Request) -> Classifier:
        clf = request.app.state.classifier
        if clf is None:
            raise ApiError(503, "not_ready", "the model is not loaded")
        return clf

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
        clf = ready(request)
        if top_k > clf.num_classes:
            raise ApiError(422, "invalid_top_k", f"top_k must be between 1 and {clf.num_classes}, got {top_k}")
        with inflight.slot():  # before the body is read: a refused request holds no memory
            data = await read_image(request)
            result = await clf.classify_async(data)
        bundle = clf.bundle
        preds = [
            {"label": bundle.labels[i], "wnid": bundle.wnids[i], "score": float(result.probs[i])}
            for i in result.top(top_k)
        ]
        answer = {
            "predictions": preds,
            "model": request.app.state.model_ref,
            "timing_ms": {**result.timing_ms, "total": (time.perf_counter() - start) * 1e3},
        }
        if bundle.abstain is not None:
            answer["abstained"] = bool(abstains(result.probs, bundle.abstain))
        # Built to match ClassifyResponse (the tests check it against /openapi.json); returned
        # as-is because re-validating it on every request is pure overhead on the event loop.
        return JSONResponse(answer)

    @app.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get(
        "/readyz", response_model=Health, responses=error_docs(503), summary="Readiness: model loaded and warmed up"
    )
    async def readyz(request: Request):
        ready(request)
        return {"status": "ready"}

    @app.get(
        "/model",
        response_model=ModelInfo,
        responses=error_docs(503),
        summary="The bundle manifest: classes, input spec, metrics, parity",
    )
    async def model(request: Request):
        clf = ready(request)
        return {
            **clf.bundle.manifest,
            "serving": {
                "interpreters": clf.pool_size,
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
        return {"labels": ready(request).bundle.manifest["classes"]}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    return app


def from_env() -> FastAPI:
    """App factory for uvicorn workers: bundle and settings from ``OFFICENET_*`` variables."""
    bundle = os.environ.get(ENV_BUNDLE)
    if not bundle:
        raise RuntimeError(f"{ENV_BUNDLE} is not set (the bundle directory to serve)")
    return create_app(bundle, ServerSettings.from_env())
