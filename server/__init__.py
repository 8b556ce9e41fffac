"""officenet's HTTP classifier: the bundle's int8 model behind ``POST /classify`` (no TensorFlow).

Modules: ``app`` (FastAPI routes, lifespan), ``inference`` (interpreter pool), ``upload``
(multipart or raw body), ``limits`` (body cap, lingering close, in-flight bound), ``errors`` (the
one error shape), ``schemas`` (response models), ``settings`` (typed knobs), ``cli``
(``python -m server``), ``static/index.html`` (the phone page at ``/``).

Running it
----------
::

    python -m server --bundle artifacts/bundle --host 0.0.0.0 --port 8000
    curl -F file=@mug.jpg 'http://127.0.0.1:8000/classify?top_k=3'
    curl --data-binary @mug.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8000/classify

By default it runs one uvicorn process with one LiteRT interpreter per CPU core and as many
threads for the CPU work of requests (decode, preprocess, inference), so the event loop only
does HTTP; Pillow and LiteRT release the GIL while they compute. Several worker processes
(``--workers N``, each with its own model and ``cores / N`` interpreters) are the other layout:
bench/results/server.md measures both side by side (on the shared 2-core machine the single
process was as fast or faster)::

    python -m server --bundle artifacts/bundle --workers 2   # a process per core, 1 interpreter each
    # two worker processes with plain uvicorn (settings from OFFICENET_* variables, see
    # server.settings; python -m server does exactly this after checking the bundle):
    OFFICENET_BUNDLE=artifacts/bundle OFFICENET_WORKERS=2 \\
        uvicorn --factory server.app:from_env --workers 2 --host 0.0.0.0 --port 8000

Scaling out
-----------
The server is stateless: no sessions, no caches keyed by client, no files written; every
request carries its image and gets its whole answer. Each process reads the bundle directory
once at startup and never again. So N machines each running ``python -m server`` on a copy of
the same bundle (check ``GET /model`` -> ``model.sha256`` agrees) can sit behind any HTTP load
balancer with round-robin or least-connections and no stickiness. Point the balancer's health
check at ``GET /readyz`` (200 only once the model is loaded and warmed up, 503 otherwise) and
liveness at ``GET /healthz``. Limit request bodies at the balancer too (``--max-bytes`` here,
default 10 MB). Under overload a process admits ``--max-inflight`` requests to /classify (default
16, or 4 per interpreter if more; each holds at most ``--max-bytes``) and answers the next ones
``503`` with ``Retry-After: 1`` at once, so memory and queueing stay bounded; a balancer can retry
elsewhere. To roll out a new model, publish the bundle next to the old one and restart the
machines one at a time; ``/model`` says which model each one serves.
"""
