"""MkDocs hook: the reference pages are generated from the code at build time, never pasted.

A page asks for a generated block with a marker on a line of its own::

    <!-- attnrun:generate cli -->

and :func:`on_page_markdown` replaces it with the markdown of the generator of that name:

==================  ===========================================================================
``cli``             every command and option of the Typer app, as ``--help`` shows them
``config``          every key of every experiment's dataclass schema: type, default, comment
``config-files``    the YAML files and config groups under ``configs/``
``registries``      every :class:`attnrun.registry.Registry` in the package and its names
``run-files``       the file names a run folder holds (:mod:`attnrun.runs.files` constants)
``import-graph``    the import graph of attnrun's subpackages, drawn as an SVG, by layer
==================  ===========================================================================

Adding a score function, a config key or a command changes these pages with no edit to ``docs/``.
An unknown marker or a generator that fails stops the build (``mkdocs build --strict`` in CI).
The generators are plain functions, so the tests call them too.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import importlib
import inspect
import json
import pkgutil
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- attnrun:generate ([a-z-]+) -->$", re.MULTILINE)


def _cell(text: object) -> str:
    """One markdown table cell: no newlines, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    s = str(text)
    return f"`{s}`" if s else ""


# ---------------------------------------------------------------------------------------------
# the CLI, from the Typer app
# ---------------------------------------------------------------------------------------------


def cli_markdown() -> str:
    """Every command of ``attnrun`` with its usage, help and options (from the click objects
    Typer builds, so it is what ``attnrun COMMAND --help`` prints)."""
    import click
    import typer.main

    from attnrun.cli import app

    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="attnrun")
    out = [f"`attnrun --help`: {_cell(group.help)}", ""]
    out += ["| command | what it does |", "|---|---|"]
    names = group.list_commands(ctx)  # type: ignore[attr-defined]
    for name in names:
        cmd = group.get_command(ctx, name)  # type: ignore[attr-defined]
        first = (cmd.help or "").split("\n\n")[0]
        out.append(f"| [`{name}`](#{name}) | {_cell(first)} |")
    out.append("")
    for name in names:
        cmd = group.get_command(ctx, name)  # type: ignore[attr-defined]
        sub = click.Context(cmd, info_name=name, parent=ctx)
        out += [f"## `attnrun {name}` {{#{name}}}", ""]
        usage = " ".join(cmd.collect_usage_pieces(sub))
        out += ["```text", f"attnrun {name} {usage}", "```", ""]
        for para in (cmd.help or "").split("\n\n"):
            out += [" ".join(para.split()), ""]
        if cmd.context_settings.get("allow_extra_args"):
            out += [
                "Arguments after the options are Hydra overrides (`key=value`); every key is in "
                f"the [configuration reference](configuration.md#{name}).",
                "",
            ]
        out += ["| argument / option | type | default | help |", "|---|---|---|---|"]
        for p in cmd.params:
            out.append(_param_row(p))
        out.append("")
    return "\n".join(out)


def _param_row(p: Any) -> str:
    import click

    if isinstance(p, click.Argument):
        what = f"`{p.name.upper()}`" + (" …" if p.nargs == -1 else "")
        if not p.required:
            what += " (optional)"
    else:
        what = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
    if getattr(p, "is_flag", False):
        kind = "flag"
    elif isinstance(getattr(p, "type", None), click.Choice):
        kind = " \\| ".join(map(str, p.type.choices))
    else:
        kind = getattr(getattr(p, "type", None), "name", "text")
    default = p.default
    shown = "" if default is None or (default is False and kind == "flag") else _code(default)
    return f"| {what} | {kind} | {shown} | {_cell(getattr(p, 'help', '') or '')} |"


# ---------------------------------------------------------------------------------------------
# the configuration, from the dataclass schemas
# ---------------------------------------------------------------------------------------------


def config_markdown() -> str:
    """Per experiment of the registry: every key of its typed config with type, default and the
    comment written beside (or above) the field in the dataclass."""
    from attnrun.experiments import experiments

    out: list[str] = []
    for name in experiments.names():
        exp = experiments.get(name)
        cls = exp.config_class
        out += [f"## `{name}` {{#{name}}}", ""]
        out += [f"Schema: `{cls.__module__}.{cls.__qualname__}`. {_cell(exp.help)}", ""]
        out += [f"Print the composed values with `attnrun {name} --cfg job`.", ""]
        out += ["| key | type | default | comment |", "|---|---|---|---|"]
        yaml_file = ROOT / "configs" / f"{name}.yaml"
        yaml_comments = _yaml_comments(yaml_file) if yaml_file.is_file() else {}
        out += list(_config_rows(cls, "", yaml_comments))
        out.append("")
    return "\n".join(out)


def _own_doc(cls: type) -> str:
    """A class's own docstring; not the signature dataclasses write when there is none."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    return "" if doc.startswith(f"{cls.__name__}(") else doc


def _config_rows(cls: type, prefix: str, yaml_comments: dict[str, str]):
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    doc = _own_doc(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        hint = hints.get(f.name, f.type)
        if dataclasses.is_dataclass(hint):
            first = _own_doc(hint).split("\n\n")[0]  # type: ignore[arg-type]
            yield f"| **`{key}.*`** | section | | {_cell(first)} |"
            yield from _config_rows(hint, key + ".", yaml_comments)  # type: ignore[arg-type]
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        default_text = "null" if default is None else repr(default).strip("'")
        comment = comments.get(f.name, "") or yaml_comments.get(key, "")
        if not comment and f"``{f.name}``" in doc:
            comment = "see the section's docstring"
        kind, shown = _cell(_type_name(hint)), _cell(default_text)
        yield f"| `{key}` | {kind} | `{shown}` | {_cell(comment)} |"


def _type_name(hint: Any) -> str:
    text = str(hint) if not isinstance(hint, type) else hint.__name__
    text = text.replace("typing.", "").replace("NoneType", "None")
    return re.sub(r"\b\w+\.", "", text)


def _field_comments(cls: type) -> dict[str, str]:
    """``name -> comment``: the ``# ...`` after a field, or the comment lines right above it."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    above: list[str] = []
    field_line = re.compile(r"^\s+(\w+)\s*:[^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = field_line.match(line)
        if m and not stripped.startswith(("def ", "return", "@")):
            parts = [*above, m.group(2) or ""]
            found.setdefault(m.group(1), " ".join(p for p in parts if p))
        above = []
    return found


def _yaml_comments(path: Path) -> dict[str, str]:
    """``dotted.key -> comment`` from a config YAML: the comment after a key, its continuation
    lines (aligned under it), and comment lines right above the key."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    last_key, last_col = "", -1
    key_line = re.compile(r"^(\s*)([\w-]+):([^#]*)(#\s?(.*))?$")
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            col = line.index("#")
            if last_key and col == last_col:
                found[last_key] += " " + stripped.lstrip("# ")
            else:
                above.append(stripped.lstrip("# "))
            continue
        m = key_line.match(line)
        if not m:
            above, last_key = [], ""
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        key = ".".join(k for _, k in stack)
        parts = [*above, m.group(5) or ""]
        found[key] = " ".join(p for p in parts if p)
        last_key, last_col = key, (line.index("#") if m.group(4) else -1)
        above = []
    return found


def config_files_markdown() -> str:
    """The YAML files and groups of ``configs/`` (shipped inside the wheel as attnrun.configs)."""
    cfg = ROOT / "configs"
    out = ["| file | first comment line |", "|---|---|"]
    for path in sorted(cfg.rglob("*.yaml")):
        first = ""
        for line in path.read_text().splitlines():
            if line.startswith("#") and "@package" not in line:
                first = line.lstrip("# ")
                break
        out.append(f"| `configs/{path.relative_to(cfg)}` | {_cell(first)} |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# the registries
# ---------------------------------------------------------------------------------------------


def _all_modules() -> list[str]:
    import attnrun

    names = ["attnrun"]
    for info in pkgutil.walk_packages(attnrun.__path__, "attnrun."):
        if info.name.endswith("__main__") or ".configs" in info.name:
            continue
        names.append(info.name)
    return names


def find_registries() -> list[tuple[str, Any]]:
    """``(module.attribute, registry)`` for every Registry defined at module level."""
    from attnrun.registry import Registry

    seen: dict[int, tuple[str, Any]] = {}
    for mod_name in _all_modules():
        module = importlib.import_module(mod_name)
        try:
            source = inspect.getsource(module)
        except OSError:  # an empty __init__.py
            continue
        for attr, value in vars(module).items():
            # the module that makes it (``name: Registry[...] = Registry(...)``), not a re-export
            made_here = re.search(rf"^{attr}\b[^=\n]*=\s*Registry\(", source, re.MULTILINE)
            if isinstance(value, Registry) and made_here:
                seen[id(value)] = (f"{mod_name}.{attr}", value)
    return sorted(seen.values(), key=lambda kv: (kv[1].kind, kv[0]))


def registries_markdown() -> str:
    out = ["| registry | where | names |", "|---|---|---|"]
    regs = find_registries()
    kinds = [reg.kind for _, reg in regs]
    titles = []
    for where, reg in regs:  # two families of one kind are told apart by their package
        titles.append(
            f"{reg.kind} ({where.split('.')[1]})" if kinds.count(reg.kind) > 1 else reg.kind
        )
    for title, (where, reg) in zip(titles, regs):
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{reg.kind} {where}".lower()).strip("-")
        names = ", ".join(f"`{n}`" for n in reg.names())
        out.append(f"| [{title}](#{anchor}) | `{where}` | {names} |")
    out.append("")
    for title, (where, reg) in zip(titles, regs):
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{reg.kind} {where}".lower()).strip("-")
        out += [f"## {title} {{#{anchor}}}", "", f"`{where}` — {len(reg)} names.", ""]
        out += ["| name | what |", "|---|---|"]
        for name, obj in reg.items():
            out.append(f"| `{name}` | {_cell(_summary(obj))} |")
        out.append("")
    return "\n".join(out)


def _summary(obj: Any) -> str:
    """The first paragraph of a member's own docstring (an experiment's help; a wrapper's ``fn``,
    e.g. a kernel's formula), else where it is defined."""
    if hasattr(obj, "body") and getattr(obj, "help", None):  # an Experiment
        return str(obj.help)
    target = getattr(obj, "fn", obj)
    doc = ""
    if (
        inspect.isfunction(target)
        or inspect.isclass(target)
        or type(target).__doc__ != getattr(target, "__doc__", None)
    ):
        doc = inspect.getdoc(target) or ""
    if doc:
        return doc.split("\n\n")[0]
    if inspect.isfunction(target) or inspect.isclass(target):
        return f"`{target.__module__}.{target.__qualname__}`"
    return f"`{target!r}`"


# ---------------------------------------------------------------------------------------------
# run-folder file names
# ---------------------------------------------------------------------------------------------


def run_files_markdown() -> str:
    from attnrun.runs import files

    out = ["| constant in `attnrun/runs/files.py` | value |", "|---|---|"]
    for name, value in vars(files).items():
        if name.isupper() and isinstance(value, str):
            out.append(f"| `{name}` | `{value}` |")
    out.append(
        f"| `tokenizer_file(side)` | `{files.tokenizer_file('src')}`, "
        f"`{files.tokenizer_file('tgt')}` |"
    )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# the architecture: attnrun's import graph, by layer
# ---------------------------------------------------------------------------------------------

#: The layers, bottom to top; a subpackage may import only from its own layer and the ones below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "registry", "validation", "io", "device", "seeding", "progress")),
    ("core", ("core",)),
    ("experiments", ("regression", "translate", "selfattn", "viz")),
    ("run frame", ("experiments", "runs", "predictors")),
    ("faces", ("cli", "report", "notebook", "serve")),
]


def import_edges() -> dict[tuple[str, str], list[str]]:
    """``(from, to) -> [importing module, ...]`` between attnrun's top-level subpackages/modules
    (every ``import attnrun.x`` / ``from attnrun.x import``, at module level or inside a
    function; ``if TYPE_CHECKING:`` blocks are skipped)."""
    pkg = ROOT / "attnrun"
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).with_suffix("").parts
        if rel[0] in ("configs", "__main__") or rel == ("__init__",):
            continue
        src = rel[0]
        tree = ast.parse(path.read_text())
        for node in _runtime_nodes(tree):
            mods: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
                if node.module == "attnrun":
                    mods = [f"attnrun.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            for mod in mods:
                parts = mod.split(".")
                real = len(parts) > 1 and (
                    (pkg / parts[1]).is_dir() or (pkg / f"{parts[1]}.py").is_file()
                )
                if parts[0] == "attnrun" and real and parts[1] != src:
                    where = "attnrun/" + "/".join(rel) + ".py"
                    edges.setdefault((src, parts[1]), []).append(where)
    return edges


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _layer_of(name: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        if name in members:
            return i
    return len(LAYERS)  # not placed yet: drawn in a row of its own, at the top


def import_graph_markdown() -> str:
    """The SVG of the layers and the imports between subpackages, then the imports that go
    against the layer order, each with the modules that make them."""
    edges = import_edges()
    nodes = sorted({n for e in edges for n in e}, key=lambda n: (_layer_of(n), n))
    svg = _svg(nodes, edges)
    upward = {e: m for e, m in edges.items() if _layer_of(e[0]) < _layer_of(e[1])}
    out = [f'<div class="attnrun-graph">{svg}</div>', ""]
    out += [
        "*Generated at build time from the `import` statements under `attnrun/` "
        "(`docs/hooks/generate.py`). Grey arrows go down the layers; arrows into the foundation "
        "row are left out (every layer uses it); orange arrows go up (listed below).*",
        "",
    ]
    unplaced = [n for n in nodes if _layer_of(n) == len(LAYERS)]
    if unplaced:
        out += [
            "Not yet placed in a layer (add to `LAYERS` in `docs/hooks/generate.py`): "
            + ", ".join(f"`{n}`" for n in unplaced),
            "",
        ]
    if upward:
        out += ["| import against the layer order | made by |", "|---|---|"]
        for (a, b), mods in sorted(upward.items()):
            out.append(f"| `{a}` → `{b}` | {', '.join(f'`{m}`' for m in sorted(set(mods)))} |")
    return "\n".join(out)


def _svg(nodes: list[str], edges: dict[tuple[str, str], list[str]]) -> str:
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(_layer_of(n), []).append(n)
    n_rows = len(LAYERS) + (1 if len(LAYERS) in rows else 0)
    width, row_h, box_w, box_h, left = 1000, 92, 96, 30, 130
    height = n_rows * row_h + 10
    pos: dict[str, tuple[float, float]] = {}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="attnrun import graph by layer" '
        f'font-family="sans-serif" font-size="13">',
        '<defs><marker id="ah" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    for layer in range(n_rows):
        y = (n_rows - 1 - layer) * row_h + 10
        label = LAYERS[layer][0] if layer < len(LAYERS) else "not placed"
        parts.append(
            f'<rect x="2" y="{y}" width="{width - 4}" height="{row_h - 14}" rx="8" '
            f'fill="#f3f1fa" stroke="#d7d2ea"/>'
        )
        parts.append(
            f'<text x="12" y="{y + (row_h - 14) / 2 + 4}" fill="#4b3f8f" '
            f'font-weight="bold">{html.escape(label)}</text>'
        )
        members = rows.get(layer, [])
        step = (width - left - 10) / max(len(members), 1)
        for i, name in enumerate(members):
            cx = left + step * (i + 0.5)
            cy = y + (row_h - 14) / 2
            pos[name] = (cx, cy)
    # edges first, boxes on top
    for (a, b), _mods in sorted(edges.items()):
        if a not in pos or b not in pos or _layer_of(b) == 0:
            continue
        (x1, y1), (x2, y2) = pos[a], pos[b]
        up = _layer_of(a) < _layer_of(b)
        same = _layer_of(a) == _layer_of(b)
        colour = "#e8710a" if up else "#8a8a8a"
        if same:
            y1 = y2 = y1 - box_h / 2
            d = f"M{x1},{y1} C{x1},{y1 - 30} {x2},{y2 - 30} {x2},{y2}"
        else:
            y1 += -box_h / 2 if up else box_h / 2
            y2 += box_h / 2 if up else -box_h / 2
            d = f"M{x1},{y1} L{x2},{y2}"
        dash = ' stroke-dasharray="5,3"' if up else ""
        parts.append(
            f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.4"{dash} '
            f'marker-end="url(#ah)"><title>{html.escape(a)} imports {html.escape(b)}</title></path>'
        )
    for name, (cx, cy) in pos.items():
        parts.append(
            f'<rect x="{cx - box_w / 2}" y="{cy - box_h / 2}" width="{box_w}" height="{box_h}" '
            f'rx="5" fill="white" stroke="#4b3f8f"/>'
            f'<text x="{cx}" y="{cy + 4}" text-anchor="middle">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# the hook
# ---------------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_markdown,
    "config": config_markdown,
    "config-files": config_files_markdown,
    "registries": registries_markdown,
    "run-files": run_files_markdown,
    "import-graph": import_graph_markdown,
}


FIGURE = re.compile(r"^<!-- attnrun:figure ([a-z0-9-]+) -->$", re.MULTILINE)
FIGURES = ROOT / "docs" / "figures" / "figures.json"


def figure_markdown(name: str, page_path: str) -> str:
    """The figure ``name`` made by ``docs/figures.py``, captioned with the command that made it
    (from ``docs/figures/figures.json``), its date and wall time."""
    record = json.loads(FIGURES.read_text())
    if name not in record:
        raise KeyError(f"figure {name!r} is not in {FIGURES}; run: python docs/figures.py {name}")
    fig = record[name]
    depth = page_path.count("/")
    src = "../" * depth + f"figures/{name}.png"
    commands = " && ".join(f"`{c}`" for c in fig["commands"])
    took = f", {fig['wall_s']} s on a shared 2-core CPU" if fig.get("wall_s") else ""
    caption = (
        f"{html.escape(fig['alt'])}. Made by {commands} (`{fig['file']}` of the run; "
        f"{fig['date']}{took}; remake: `python docs/figures.py {name}`)"
    )
    return (
        f'<figure markdown="span">\n  ![{html.escape(fig["alt"])}]({src})\n'
        f"  <figcaption markdown>{caption}</figcaption>\n</figure>"
    )


def expand(markdown: str, page_path: str = "index.md") -> str:
    """Replace every ``<!-- attnrun:generate NAME -->`` and ``<!-- attnrun:figure NAME -->``
    line; an unknown NAME is an error that stops the build."""

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    markdown = MARKER.sub(replace, markdown)
    return FIGURE.sub(lambda m: figure_markdown(m.group(1), page_path), markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown, page.file.src_uri)
