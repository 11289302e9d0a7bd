"""The JSON API of ``attnrun serve``: request schemas and route handlers.

Handlers only parse, call :mod:`attnrun.serve.runs` off the event loop
(:func:`starlette.concurrency.run_in_threadpool`: one slow request never freezes the others) and
serialise. Every bad request is a JSON ``{"error": "<one line>"}`` with a 4xx status:

======  ===========================================================================================
status  when
======  ===========================================================================================
400     the body is not JSON, not an object, a field has the wrong type, an unknown field
404     an unknown run id, an unknown path
405     a method the route does not take
413     a body over :data:`MAX_BODY` bytes, a text over ``MAX_CHARS`` characters or the run's tokens
422     the run cannot answer it: empty text, a head the run lacks, an ablation on ``decoder=none``,
        a selfattn sentence without "it" or with words it never saw, a bad bandwidth
======  ===========================================================================================
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from attnrun.core.heads import Head
from attnrun.errors import AttnrunError
from attnrun.serve.requests import PredictRequest, RequestError
from attnrun.serve.runs import ServedRun

__all__ = ["MAX_BODY", "ApiError", "parse_predict", "predict", "runs", "save"]

#: The largest request body, in bytes.
MAX_BODY = 64 * 1024

_FIELDS = {"run", "text", "beam", "ablate", "query", "bandwidth"}


class ApiError(Exception):
    """A bad request: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to :data:`MAX_BODY` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        obj = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(400, f"the body is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "the body must be a JSON object")
    return obj


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f'"{name}" must be an integer; got {json.dumps(value)[:40]}')
    return value


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f'"{name}" must be a finite number; got {json.dumps(value)[:40]}')
    return float(value)


def _head(i: int, item: Any) -> Head:
    if not isinstance(item, dict) or set(item) != {"kind", "layer", "head"}:
        raise ApiError(400, f'"ablate"[{i}] must be {{"kind": str, "layer": int, "head": int}}')
    if not isinstance(item["kind"], str):
        raise ApiError(400, f'"ablate"[{i}].kind must be a string')
    layer, head = _int("layer", item["layer"]), _int("head", item["head"])
    if layer < 0 or head < 0:
        raise ApiError(422, f'"ablate"[{i}]: layer and head are 0-based, never negative')
    return Head(item["kind"], layer, head)


def parse_predict(obj: dict[str, Any]) -> PredictRequest:
    """A :class:`PredictRequest` from a JSON object, or :class:`ApiError` naming the bad field."""
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown}; valid: {sorted(_FIELDS)}")
    if not isinstance(obj.get("run"), str):
        raise ApiError(400, '"run" must be a run id (a string; see GET /api/runs)')
    text = obj.get("text", "")
    if not isinstance(text, str):
        raise ApiError(400, '"text" must be a string')
    beam = obj.get("beam")
    beam = None if beam is None else _int("beam", beam)
    ablate = obj.get("ablate", [])
    if not isinstance(ablate, list):
        raise ApiError(400, '"ablate" must be a list of {"kind", "layer", "head"}')
    heads = tuple(dict.fromkeys(_head(i, item) for i, item in enumerate(ablate)))
    return PredictRequest(
        run=obj["run"],
        text=text,
        beam=beam,
        heads=heads,
        query=_number("query", obj.get("query")),
        bandwidth=_number("bandwidth", obj.get("bandwidth")),
    )


def _run(request: Request, run_id: str) -> ServedRun:
    served: dict[str, ServedRun] = request.app.state.runs
    if run_id not in served:
        raise ApiError(404, f"no run {run_id!r}; the runs are {', '.join(served) or 'none'}")
    return served[run_id]


def _guarded(handler):
    """Turn :class:`ApiError` and the runs' one-line errors into JSON 4xx answers."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as e:
            return error_response(e.status, e.message)
        except RequestError as e:
            return error_response(e.status, str(e))
        except AttnrunError as e:  # e.g. a coref sentence predict refuses on save
            return error_response(422, str(e))
        except Exception as e:  # a bug: one line here and in the answer, the server stays up
            message = f"internal error: {type(e).__name__}: {e}".splitlines()[0][:300]
            print(f"attnrun serve: {message}", file=sys.stderr, flush=True)
            return error_response(500, message)

    endpoint.__name__ = handler.__name__
    return endpoint


@_guarded
async def runs(request: Request) -> Response:
    """``GET /api/runs``: every loaded run (:meth:`ServedRun.describe`)."""
    return JSONResponse({"runs": [r.describe() for r in request.app.state.runs.values()]})


@_guarded
async def predict(request: Request) -> Response:
    """``POST /api/predict``: the run's answer to one input (see docs/guides/serve.md)."""
    req = parse_predict(await _body(request))
    run = _run(request, req.run)
    return JSONResponse(await run_in_threadpool(run.predict, req))


@_guarded
async def save(request: Request) -> Response:
    """``POST /api/save``: ``attnrun predict`` on the same body; answers the new folder."""
    req = parse_predict(await _body(request))
    run = _run(request, req.run)
    out_dir = await run_in_threadpool(run.save, req)
    return JSONResponse({"run": run.id, "folder": str(out_dir)})
