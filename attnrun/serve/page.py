"""The page of ``attnrun serve``: one HTML document, its CSS and JavaScript inline.

The sources live in ``attnrun/serve/static/`` (``page.html``, ``serve.css``, ``serve.js``) and
ship inside the wheel: no CDN, no build step. The attention viewer's drawing (token columns,
lines ∝ weight, the Kind / Layer / Head pickers) is :data:`attnrun.viz.viewer.VIEWER_SCRIPT`,
the same code as every ``attention.html``; ``serve.js`` adds the run pickers, the head toggles,
the heatmap, two runs side by side and the regression plot.

Safety: the page builds every element with ``textContent`` (never ``innerHTML``), so whatever is
typed, and every run name and token, is shown as text; the server sends a Content-Security-Policy
that allows only the page's own inline scripts (by hash, :func:`script_hashes`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources

from attnrun.serve.requests import MAX_BEAM, MAX_CHARS
from attnrun.viz.viewer import KIND_LABELS, VIEWER_SCRIPT, VIEWER_STYLE

__all__ = ["page_html", "script_hashes"]


def _asset(name: str) -> str:
    return (resources.files("attnrun.serve") / "static" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def page_html() -> str:
    """The page as a string (built once)."""
    config = {"max_chars": MAX_CHARS, "max_beam": MAX_BEAM, "kind_labels": KIND_LABELS}
    parts = {
        "STYLE": VIEWER_STYLE + _asset("serve.css"),
        "SCRIPT": VIEWER_SCRIPT + _asset("serve.js"),
        "CONFIG": json.dumps(config).replace("<", "\\u003c"),
    }
    return re.sub(r"@@(STYLE|SCRIPT|CONFIG)@@", lambda m: parts[m.group(1)], _asset("page.html"))


def script_hashes(html: str) -> list[str]:
    """``'sha256-…'`` of every inline script that runs (JSON data blocks are not scripts), for
    the Content-Security-Policy."""
    out = []
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S):
        if "application/json" in attrs:
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        out.append(f"'sha256-{digest}'")
    return out
