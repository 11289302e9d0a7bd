"""The app factory and the server: Starlette routes on uvicorn, stopped cleanly by a signal.

:func:`create_app` puts the loaded runs on ``app.state`` and routes four paths, nothing else (so
``..``, absolute and encoded paths are 404s that read nothing): ``GET /`` the page
(:mod:`attnrun.serve.page`), ``GET /api/runs``, ``POST /api/predict`` and ``POST /api/save``
(:mod:`attnrun.serve.api`). On a loopback address only loopback ``Host`` headers are answered (a
web page cannot reach the server by DNS rebinding), and POSTs must be ``application/json`` (a
cross-site form cannot trigger a save).

:func:`serve` binds the socket itself (port 0: a free one, so the printed URL is the real one)
and runs uvicorn until SIGINT or SIGTERM, then returns within about half a second (requests
still running are cancelled); the CLI then exits 0 at once, without waiting for a worker thread
still decoding.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import webbrowser
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from attnrun.errors import AttnrunError
from attnrun.serve import api
from attnrun.serve.page import page_html, script_hashes
from attnrun.serve.runs import ServedRun

__all__ = ["create_app", "is_loopback", "serve"]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without the port (``[::1]:8000`` → ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _LoopbackHosts:
    """ASGI middleware: on a loopback server, a request naming another host is a 400 (a web page
    that rebinds its own name to 127.0.0.1 cannot reach the API)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_name(header) not in LOOPBACK_HOSTS:
                response = api.error_response(400, "this server answers loopback host names only")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _JsonPosts:
    """ASGI middleware: a POST whose body is not declared ``application/json`` is a 415."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope.get("headers") or [])
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json":
                response = api.error_response(415, "send the body as application/json")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(runs: Sequence[ServedRun], *, host: str = "127.0.0.1") -> Starlette:
    """The Starlette app serving ``runs`` (ids must be unique)."""
    html = page_html()
    csp = (
        "default-src 'none'; connect-src 'self'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src {' '.join(script_hashes(html))}; base-uri 'none'; form-action 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }

    async def page(request: Request) -> Response:
        return HTMLResponse(html, headers=headers)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/runs", api.runs, methods=["GET"]),
        Route("/api/predict", api.predict, methods=["POST"]),
        Route("/api/save", api.save, methods=["POST"]),
    ]
    middleware = [Middleware(_JsonPosts)]
    if is_loopback(host):
        middleware.insert(0, Middleware(_LoopbackHosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.runs = {r.id: r for r in runs}
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return api.error_response(404, "not found: only /, /api/runs, /api/predict, /api/save")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return api.error_response(405, f"{request.method} is not allowed on {request.url.path}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``0``: a free port); a one-line error otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise AttnrunError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise AttnrunError(f"cannot listen on {host}:{port} ({e.strerror})") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _server_class():
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn's server, except that a signal ends :meth:`run` normally instead of being
        raised again afterwards (uvicorn re-raises it, which would exit 130 or -15)."""

        @contextmanager
        def capture_signals(self):
            import signal

            if threading.current_thread() is not threading.main_thread():
                yield
                return
            sigs = (signal.SIGINT, signal.SIGTERM)
            before = {s: signal.signal(s, self.handle_exit) for s in sigs}
            try:
                yield
            finally:
                for s, handler in before.items():
                    signal.signal(s, handler)

        def handle_exit(self, sig, frame) -> None:
            # requests cut short by the shutdown are not errors worth a traceback
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            super().handle_exit(sig, frame)

    return QuietServer


def serve(
    runs: Sequence[ServedRun],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``runs`` on ``host:port`` until SIGINT / SIGTERM; ``announce`` gets the URL first."""
    import uvicorn

    sock = bind(host, port)
    url = url_of(sock)
    app = create_app(runs, host=host)
    # uvicorn annotates timeout_graceful_shutdown as int | None, but passes it to
    # asyncio.timeout / wait_for, which take seconds as a float: the stub is wrong.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=0.5,  # type: ignore[arg-type]
        timeout_keep_alive=1,
    )  # fmt: skip
    server = _server_class()(config)
    announce(url)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, (url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
