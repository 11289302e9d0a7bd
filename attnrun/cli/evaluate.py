"""``attnrun evaluate RUN_DIR --src FILE --ref FILE``: BLEU and chrF of a trained translate run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError


def _new_file(folder: Path, stem: str) -> Path:
    """``folder/stem.txt``, or ``stem_1.txt``, ``stem_2.txt``, ... : never an existing file."""
    path = folder / f"{stem}.txt"
    n = 0
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}.txt"
    return path


def evaluate_run(
    run_dir: Path,
    src: Path,
    ref: Path,
    *,
    beam: int | None = None,
    out: Path | None = None,
    skip_bad: bool = False,
) -> dict:
    """Translate ``src`` with the run's model, score against ``ref``, write the translations."""
    from attnrun.io import write_text
    from attnrun.translate.artifacts import load_run
    from attnrun.translate.data.readers import ReadReport, read_parallel
    from attnrun.translate.evaluation import translate_texts
    from attnrun.translate.metrics import corpus_scores

    report = ReadReport()
    pairs = read_parallel(src, ref, skip_bad=skip_bad, report=report)
    run = load_run(run_dir)
    cfg = run.cfg
    hyps, _ = translate_texts(
        run.model,
        run.src_tok,
        run.tgt_tok,
        [s for s, _ in pairs],
        max_len=cfg.data.max_len,
        decode_max_len=cfg.decode.max_len,
        beam=beam or cfg.decode.beam,
        alpha=cfg.decode.length_penalty,
        batch_size=cfg.decode.batch_size,
    )
    scores = corpus_scores(hyps, [r for _, r in pairs])
    if out is None:
        out = _new_file(Path(run_dir), f"evaluate_{Path(src).name.split('.')[0]}")
    elif out.exists():
        raise AttnrunError(f"{out} exists; evaluate never overwrites a file, pick another --out")
    write_text(out, "".join(h + "\n" for h in hyps))
    return {
        **scores,
        "sentences": len(pairs),
        "skipped_lines": report.skipped,
        "translations": str(out),
    }


def register(app: typer.Typer) -> None:
    @app.command(
        "evaluate",
        help=(
            "Translate a source file with a trained translate run and print sacreBLEU BLEU and "
            "chrF against a reference file (line N translates line N). The translations go into "
            "a new file in RUN_DIR (never overwriting one)."
        ),
    )
    def evaluate(
        run_dir: Path = typer.Argument(..., help="A completed translate run folder."),
        src: Path = typer.Option(..., "--src", help="Source sentences, one a line (.gz too)."),
        ref: Path = typer.Option(..., "--ref", help="Reference translations, line-aligned."),
        beam: int = typer.Option(None, "--beam", help="Beam size (default: the run's)."),
        out: Path = typer.Option(None, "--out", help="Where to write the translations (new)."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad lines, report how many."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
        debug: bool = common.DEBUG,
    ) -> None:
        try:
            res = evaluate_run(run_dir, src, ref, beam=beam, out=out, skip_bad=skip_bad)
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
