"""``attnrun serve PATH [PATH ...]``: explore trained runs in the browser (:mod:`attnrun.serve`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError

COMMANDS = {
    "serve": (
        "Serve a page where you type a sentence, point at a word and switch heads off, on "
        "every completed run under the PATHs (a run, a sweep, outputs/), loaded read-only. "
        "Prints the URL; Ctrl-C stops. Nothing is written into a run folder except when "
        "you press save (a predictions/DATE/TIME folder, as attnrun predict writes)."
    ),
}


def register(app: typer.Typer) -> None:
    @app.command("serve", help=COMMANDS["serve"])
    def serve(
        paths: list[Path] = typer.Argument(
            ..., help="Run folders, or folders holding runs.", show_default=False, metavar="PATH"
        ),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to listen on (others than loopback: a warning)."
        ),
        port: int = typer.Option(8000, "--port", help="Port; 0 picks a free one."),
        open_browser: bool = typer.Option(False, "--open", help="Open the default browser."),
        device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
        threads: int = typer.Option(
            1, "--threads", help="Torch CPU threads (0: every core); requests run in parallel."
        ),
        debug: bool = common.DEBUG,
    ) -> None:
        try:
            _serve(paths, host, port, open_browser, device, threads)
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))


def _serve(paths, host: str, port: int, open_browser: bool, device: str, threads: int) -> None:
    from attnrun.device import cpu_threads, resolve_device
    from attnrun.serve.app import is_loopback, serve
    from attnrun.serve.runs import load_runs

    if not 0 <= port <= 65535:
        common.fail(f"--port {port} is not valid; valid: 0..65535 (0 picks a free port)")
    if threads < 0:
        common.fail(f"--threads {threads} is not valid; valid: >= 0 (0 = every core)")
    dev = resolve_device(device)
    with cpu_threads(threads):
        runs, skipped = load_runs(paths, dev)
        for line in skipped:
            print(f"attnrun serve: skipped {line}", file=sys.stderr)
        if not runs:
            common.fail(f"no run to serve under {', '.join(map(str, paths))}")
        if not is_loopback(host):
            print(
                f"attnrun serve: warning: listening on {host}: everyone who can reach that "
                "address can use the page and run the models",
                file=sys.stderr,
            )

        def announce(url: str) -> None:
            print(f"attnrun serve: {len(runs)} run(s) at {url} (Ctrl-C stops)", flush=True)

        serve(runs, host, port, open_browser=open_browser, announce=announce)
    # A worker thread may still be decoding a request the shutdown cancelled: exit now, not
    # when it ends (the promise is exit 0 within 2 s of Ctrl-C / SIGTERM).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
