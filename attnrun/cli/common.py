"""Options every experiment command shares, and the call that turns a command into a run."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer

from attnrun.errors import AttnrunError

MULTIRUN = typer.Option(
    False, "--multirun", "-m", help="Sweep: comma-separated values run as separate jobs."
)
CFG = typer.Option(
    None,
    "--cfg",
    help="Print the composed config (job, hydra or all) and exit.",
    metavar="job|hydra|all",
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output; one summary line per run.")
DEBUG = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")
ROOT = typer.Option(Path("."), "--root", help="Folder under which outputs/ and multirun/ are made.")

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
#: how every experiment command's usage line ends, and the help paragraph that explains it
OPTIONS_METAVAR = "[OPTIONS] [OVERRIDES]..."
OVERRIDES_HELP = (
    "OVERRIDES are Hydra key=value settings of the run's config (--cfg job prints them all; "
    "a,b with -m sweeps), e.g. {examples}"
)


def shared_options(config_class: type) -> dict[str, tuple[type, Any]]:
    """The options every experiment command takes after its own: name → (type, typer option);
    ``--seed`` and ``--device`` show the defaults of ``config_class``."""
    default = defaults(config_class)
    return {
        "seed": (
            int,
            typer.Option(
                None,
                "--seed",
                help="Seed for every random number generator.",
                show_default=default("seed"),
            ),
        ),
        "device": (
            str,
            typer.Option(
                None,
                "--device",
                help="auto | cpu | cuda (auto picks CUDA when present).",
                show_default=default("device"),
            ),
        ),
        "multirun": (bool, MULTIRUN),
        "cfg": (str, CFG),
        "quiet": (bool, QUIET),
        "debug": (bool, DEBUG),
        "root": (Path, ROOT),
    }


SHARED_NAMES = ("seed", "device", "multirun", "cfg", "quiet", "debug", "root")


def defaults(config_class: type) -> Callable[[str], str]:
    """``default("model.arch")`` → ``"rnn"``: a dotted key's default in the dataclass schema, as
    an override would write it (the schema is the one source of defaults; the YAML agrees)."""

    def default(key: str) -> str:
        node: Any = config_class
        for part in key.split("."):
            field = {f.name: f for f in dataclasses.fields(node)}[part]
            if field.default is not dataclasses.MISSING:
                node = field.default
            else:
                factory = field.default_factory
                assert callable(factory)  # the schema gives every field a default
                node = factory()
        if isinstance(node, bool):
            return str(node).lower()
        return "null" if node is None else str(node)

    return default


@dataclass(frozen=True)
class Shared:
    """The values of :data:`SHARED_OPTIONS` for one call."""

    seed: int | None
    device: str | None
    multirun: bool
    cfg: str | None
    quiet: bool
    debug: bool
    root: Path


def experiment_command(
    app: typer.Typer,
    name: str,
    *,
    config_class: type,
    help: str,
    examples: str,
    **command_kwargs,
) -> Callable:
    """Register ``fn(ctx, <own options>, shared: Shared) -> typed`` as the experiment command
    ``name`` with the shared options appended to its signature; its help is ``help`` and the
    paragraph on overrides with ``examples``, its usage ends in ``[OPTIONS] [OVERRIDES]...``.

    ``typed`` maps config keys to the values of the command's own options (``None``: not given);
    ``seed`` and ``device`` are added, and :func:`run_command` launches the run with the extra
    arguments as Hydra overrides. ``fn`` returns ``None`` when it handled the call itself.
    """

    def decorate(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(fn).parameters.values()
            if p.name != "shared"
        ]
        shared_params = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
            for n, (ann, opt) in shared_options(config_class).items()
        ]

        def command(**kwargs) -> None:
            shared = Shared(**{n: kwargs.pop(n) for n in SHARED_NAMES})
            typed = fn(shared=shared, **kwargs)
            if typed is None:
                return
            run_command(
                name,
                {**typed, "seed": shared.seed, "device": shared.device},
                list(kwargs["ctx"].args),
                multirun=shared.multirun,
                cfg=shared.cfg,
                quiet=shared.quiet,
                debug=shared.debug,
                root=shared.root,
            )

        command.__name__ = fn.__name__
        command.__doc__ = fn.__doc__
        command.__signature__ = inspect.Signature(own + shared_params)  # type: ignore[attr-defined]
        command_kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        full_help = f"{help}\n\n{OVERRIDES_HELP.format(examples=examples)}"
        app.command(name, context_settings=EXTRA, help=full_help, **command_kwargs)(command)
        return fn

    return decorate


def choices(names: list[str]) -> str:
    return " | ".join(names)


def to_override(key: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    return f"{key}={value}"


def run_command(
    name: str,
    typed: dict[str, Any],
    overrides: list[str],
    *,
    multirun: bool,
    cfg: str | None,
    quiet: bool,
    debug: bool,
    root: Path,
) -> None:
    """Launch experiment ``name``; typed options (None = not given) go before raw overrides.

    Exit codes: 0 all jobs completed; 2 bad input (config, data, files); 1 an unexpected failure.
    """
    from attnrun.cli.launch import launch

    given = [to_override(k, v) for k, v in typed.items() if v is not None]
    stray = next((o for o in overrides if o.startswith("-")), None)
    if stray is not None:
        fail(
            f"no such option: {stray.split('=')[0]} (see 'attnrun {name} --help'; "
            "options go before the key=value overrides)"
        )
    try:
        result = launch(
            name,
            [*given, *overrides],
            multirun=multirun,
            cfg=cfg,
            root=root,
            quiet=quiet,
            debug=debug,
        )
    except AttnrunError as e:
        if debug:
            raise
        fail(str(e))
    if result.search:
        _search_outcome(result)
        return
    if result.failures:
        for folder, message, _ in result.failures:
            print(f"attnrun: error: {message} (run folder: {folder})", file=sys.stderr)
        user = all(is_user for _, _, is_user in result.failures)
        if not user and not debug:
            print("attnrun: run again with --debug for the traceback", file=sys.stderr)
        raise typer.Exit(2 if user else 1)


def _search_outcome(result: Any) -> None:
    """A search's failed trials are warnings (the study records them); the summary line last.
    Exit 0 when some trial completed, else as for a failed run."""
    from attnrun.search import load_search
    from attnrun.search.study import summary_line

    for folder, message, _ in result.failures:
        print(f"attnrun: warning: trial failed: {message} (run folder: {folder})", file=sys.stderr)
    search = load_search(result.folder)
    if search is None:
        fail(f"{result.folder}: the search left no study")
    print(summary_line(search), flush=True)
    if search.best is None:
        raise typer.Exit(2 if all(user for _, _, user in result.failures) else 1)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``attnrun: error: message`` on one line to stderr and exit with ``code``."""
    print(f"attnrun: error: {message}", file=sys.stderr)
    raise typer.Exit(code)
