"""The screenshots of docs/guides/serve.md, made from real runs in headless Chromium.

    python benchmarks/serve_screenshots.py --transformer RUN --rnn RUN --regress RUN [--out docs]

``--transformer``: a coref recipe run (``attnrun translate recipe=coref``); ``--rnn``: an RNN
translate run on the coref corpus (``attnrun translate --dataset coref``); ``--regress``: any
regress run. Writes ``serve_translate.png`` (hover "it" at the best coref head),
``serve_heads.png`` (that head switched off), ``serve_compare.png`` (the Transformer and the RNN
side by side) and ``serve_regress.png`` (a narrower bandwidth and a clicked query).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

SENTENCE = "the cat didn't cross the street because it was too tired ."
CHROMIUM = "/usr/bin/chromium"


def _wait(page, slot: str, before: int) -> None:
    page.wait_for_function(
        "([s, n]) => Number(document.querySelector('#panel-' + s).dataset.answered || 0) > n",
        arg=[slot, before],
        timeout=30_000,
    )


def _answered(page, slot: str = "a") -> int:
    return int(page.get_attribute(f"#panel-{slot}", "data-answered") or 0)


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transformer", required=True)
    ap.add_argument("--rnn", required=True)
    ap.add_argument("--regress", required=True)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    args = ap.parse_args()
    paths = [args.transformer, args.rnn, args.regress]
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnrun", "serve", *paths, "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = "http://" + proc.stdout.readline().split("http://")[1].split()[0]
    best = json.loads((Path(args.transformer) / "metrics.json").read_text())["coref_best_head"]
    layer, head = best[0] - 1, best[1] - 1
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            ids = {
                o["value"]: o["text"]
                for o in page.eval_on_selector_all(
                    "#run-a option", "os => os.map(o => ({value: o.value, text: o.textContent}))"
                )
            }
            rid = {
                name: next(v for v, t in ids.items() if str(Path(path).resolve().name) in t)
                for name, path in zip(("tf", "rnn", "rg"), paths)
            }
            before = _answered(page)
            page.select_option("#run-a", rid["tf"])
            page.fill("#text", SENTENCE)
            page.click("#go")
            _wait(page, "a", before)
            page.select_option("#panel-a .viewer-kind", "encoder_self")
            page.select_option("#panel-a .viewer-layer", str(layer))
            page.select_option("#panel-a .viewer-head", str(head))
            it = SENTENCE.split().index("it")
            page.hover(f'#panel-a text.token.query[data-index="{it}"]')
            page.screenshot(path=str(args.out / "serve_translate.png"), full_page=True)

            before = _answered(page)
            page.uncheck(
                f'#panel-a input.head-toggle[data-kind="encoder_self"][data-layer="{layer}"]'
                f'[data-head="{head}"]'
            )
            _wait(page, "a", before)
            page.hover(f'#panel-a text.token.query[data-index="{it}"]')
            page.screenshot(path=str(args.out / "serve_heads.png"), full_page=True)

            page.check(
                f'#panel-a input.head-toggle[data-kind="encoder_self"][data-layer="{layer}"]'
                f'[data-head="{head}"]'
            )
            before = _answered(page, "b")
            page.select_option("#run-b", rid["rnn"])
            _wait(page, "b", before)
            page.select_option("#panel-a .viewer-kind", "cross")
            pronoun = page.eval_on_selector_all(
                "#panel-b text.token.query", "ts => ts.map(t => t.textContent)"
            ).index("il")
            page.hover(f'#panel-b text.token.query[data-index="{pronoun}"]')
            page.screenshot(path=str(args.out / "serve_compare.png"), full_page=True)

            page.select_option("#run-b", "")
            before = _answered(page)
            page.select_option("#run-a", rid["rg"])
            _wait(page, "a", before)
            before = _answered(page)
            page.eval_on_selector(
                "#panel-a .bandwidth",
                "e => { e.value = String(Number(e.value) - 0.6);"
                " e.dispatchEvent(new Event('input')); }",
            )
            _wait(page, "a", before)
            before = _answered(page)
            box = page.locator("#panel-a .regress-plot").bounding_box()
            page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 100)
            _wait(page, "a", before)
            page.screenshot(path=str(args.out / "serve_regress.png"), full_page=True)
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


if __name__ == "__main__":
    main()
