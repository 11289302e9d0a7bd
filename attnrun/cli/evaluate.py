"""``attnrun evaluate RUN_DIR --src FILE --ref FILE``: BLEU and chrF of a trained translate run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError

COMMANDS = {
    "evaluate": (
        "Translate a source file with a trained translate run and print sacreBLEU BLEU and "
        "chrF against a reference file (line N translates line N). The translations go into "
        "a new file in RUN_DIR (never overwriting one)."
    )
}


def register(app: typer.Typer) -> None:
    @app.command("evaluate", help=COMMANDS["evaluate"])
    def evaluate(
        run_dir: Path = typer.Argument(
            ..., help="A completed translate run folder.", show_default=False, metavar="RUN_DIR"
        ),
        src: Path = typer.Option(..., "--src", help="Source sentences, one a line (.gz too)."),
        ref: Path = typer.Option(..., "--ref", help="Reference translations, line-aligned."),
        beam: int = typer.Option(None, "--beam", help="Beam size.", show_default="the run's"),
        out: Path = typer.Option(
            None,
            "--out",
            help="Where to write the translations (a new file).",
            show_default="a new file in RUN_DIR",
        ),
        replace_unk: bool = typer.Option(
            None,
            "--replace-unk/--keep-unk",
            help="Copy over each <unk> the source word it attends to most (word vocabularies).",
            show_default="the run's decode.replace_unk",
        ),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad lines, report how many."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.translate.predict import evaluate_files

        try:
            res = evaluate_files(
                run_dir, src, ref, beam=beam, out=out, skip_bad=skip_bad, replace_unk=replace_unk
            )
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))
        if as_json:
            keys = (
                "bleu",
                "bleu_lowercase",
                "chrf",
                "chrf_lowercase",
                "bleu_signature",
                "chrf_signature",
                "sentences",
                "skipped_lines",
                "translations",
            )
            print(json.dumps({k: res[k] for k in keys}))
            return
        print(
            f"BLEU {res['bleu']:.2f} (lowercased {res['bleu_lowercase']:.2f})  "
            f"{res['bleu_signature']}"
        )
        print(
            f"chrF {res['chrf']:.2f} (lowercased {res['chrf_lowercase']:.2f})  "
            f"{res['chrf_signature']}"
        )
        if res["skipped_lines"]:
            print(f"skipped {res['skipped_lines']} bad line(s)")
        print(f"translations: {res['translations']}")
