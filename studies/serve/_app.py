"""The scoring service: a FastAPI app over one promoted model.

``POST /score`` takes one example (``{"text": ..., "text_pair": ...}``) or a
batch (``{"inputs": [...]}``); ``GET /health``, ``GET /metadata`` (the model
card's facts and the drift of recent inputs), ``GET /metrics`` (Prometheus
text) and the OpenAPI schema at ``/openapi.json``. Concurrent requests are
scored together (``MicroBatcher``). Bodies over ``max_body_bytes``, batches
over ``max_items`` and texts over ``max_chars`` get a 4xx that says so; no
request body is ever logged.
"""

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studies.serve._drift import DriftReference
from studies.serve._limits import BodyLimit
from studies.serve._metrics import ServiceMetrics

if TYPE_CHECKING:
    from fastapi import FastAPI

    from studies.serve._model import Scorer

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Attributes:
        max_items: Examples per request.
        max_chars: Characters per text.
        max_body_bytes: Bytes per request body.
        max_batch: Examples per forward pass (across concurrent requests).
        max_wait_ms: How long a forward pass waits for more requests.
        drift_window: How many recent inputs the drift test looks at.
    """

    max_items: int = 64
    max_chars: int = 20_000
    max_body_bytes: int = 1_000_000
    max_batch: int = 32
    max_wait_ms: float = 5.0
    drift_window: int = 200


def create_app(scorer: "Scorer", given_limits: Limits | None = None) -> "FastAPI":
    """The scoring service for ``scorer``'s model.

    Args:
        scorer: The loaded model.
        limits: Request limits and batching (defaults: :class:`Limits`).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from pydantic import BaseModel, ConfigDict, Field, model_validator

    from studies.serve._batcher import MicroBatcher

    limits = given_limits if given_limits is not None else Limits()
    metrics = ServiceMetrics()
    try:
        reference: DriftReference | None = DriftReference(scorer.folder)
    except Exception as e:  # a model promoted before drift references existed still serves
        _log.warning("no drift test: %s", e)
        reference = None
    window: collections.deque[tuple[Any, float]] = collections.deque(maxlen=limits.drift_window)
    window_lock = threading.Lock()
    Text = Field(min_length=1, max_length=limits.max_chars)

    class Example(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = Text
        text_pair: str | None = Field(default=None, min_length=1, max_length=limits.max_chars)

    class ScoreRequest(BaseModel):
        """One example (``text``, optional ``text_pair``) or a batch of them (``inputs``)."""

        model_config = ConfigDict(extra="forbid")
        text: str | None = Field(default=None, min_length=1, max_length=limits.max_chars)
        text_pair: str | None = Field(default=None, min_length=1, max_length=limits.max_chars)
        inputs: list[Example] | None = Field(default=None, min_length=1, max_length=limits.max_items)

        @model_validator(mode="after")
        def _one_form(self) -> Any:
            if (self.text is None) == (self.inputs is None):
                raise ValueError("give either text (and optionally text_pair) or inputs, a list of them")
            if self.inputs is not None and self.text_pair is not None:
                raise ValueError("text_pair goes with text; in a batch, give it inside each item of inputs")
            return self

    class Result(BaseModel):
        label: str
        probabilities: dict[str, float]

    class BatchResult(BaseModel):
        results: list[Result]

    class Problem(BaseModel):
        detail: str = Field(description="What was wrong with the request, and how to fix it")

    refusals: dict[int | str, dict[str, Any]] = {
        413: {"model": Problem, "description": "The body is over the size limit"},
        422: {"model": Problem, "description": "The body is not a valid request"},
    }

    def run(examples: list[Any]) -> list[dict[str, Any]]:
        started = time.perf_counter()
        probs, embeddings = scorer.run(examples)
        metrics.inference.observe(time.perf_counter() - started)
        confidence = probs.max(axis=1)
        with window_lock:
            window.extend(zip(embeddings, confidence))
        return [scorer.result(row) for row in probs]

    batcher = MicroBatcher(run, limits.max_batch, limits.max_wait_ms / 1000, observe=metrics.batch_size.observe)

    def drift() -> dict[str, Any] | None:
        if reference is None:
            return None
        with window_lock:
            recent = list(window)
        if not recent:
            return reference.test([], [])
        embeddings, confidence = zip(*recent)
        return reference.test(list(embeddings), list(confidence))

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="studies scoring service",
        version=str(scorer.record.get("package_version", "")),
        description=f"Scores texts with the promoted model of study {scorer.record.get('study')}.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One line per problem, naming the field; the offending input is not echoed (it may be huge or private).
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        metrics.errors.labels(kind="invalid").inc()
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = route.path if route is not None else "other"
        metrics.requests.labels(path=path, status=str(response.status_code)).inc()
        metrics.latency.labels(path=path).observe(time.perf_counter() - started)
        if response.status_code >= 500:
            metrics.errors.labels(kind="server").inc()
        return response

    @app.post("/score", response_model=Result | BatchResult, responses=refusals, summary="Score one example or a batch")
    async def score(body: ScoreRequest) -> dict[str, Any]:
        items = [Example(text=body.text or "", text_pair=body.text_pair)] if body.inputs is None else body.inputs
        examples = scorer.encode([i.text for i in items], _pairs(items))
        results = await batcher.submit(examples)
        return results[0] if body.inputs is None else {"results": results}

    @app.get("/health", summary="Whether the model is loaded")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata", summary="The model card's facts and the drift of recent inputs")
    async def metadata() -> dict[str, Any]:
        return {**scorer.metadata(), "limits": limits.__dict__, "drift": drift()}

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        text, content_type = metrics.render(drift())
        return PlainTextResponse(text, media_type=content_type)

    return app


def _pairs(items: list[Any]) -> list[str] | None:
    """The second texts of a request, or ``None`` when it has none; mixed requests give "" for the missing ones."""
    if all(i.text_pair is None for i in items):
        return None
    return [i.text_pair or "" for i in items]
