"""Translate new sentences with a trained run and save their attention heatmaps.

:func:`predict_translate` is the library entry; :func:`translate_predictor` adapts it to the
``attnrun predict`` registry (:mod:`attnrun.predictors`): one sentence per line of the text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attnrun.errors import DataError
from attnrun.io import write_json
from attnrun.runs.prediction import Prediction
from attnrun.translate.artifacts import load_run
from attnrun.translate.evaluation import translate_texts


def predict_translate(
    run_dir: str | Path, sentences: list[str], out_dir: str | Path, *, beam: int | None = None
) -> list[dict[str, Any]]:
    """Translate ``sentences``; writes ``attention_<i>.png`` (+ ``.html``) and
    ``translations.json`` into ``out_dir``. Returns ``[{"source", "translation", "heatmap"}]``."""
    from attnrun.translate.pipeline import attention_figures

    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise DataError("no sentence to translate (give them as arguments or on stdin)")
    run = load_run(run_dir)
    cfg = run.cfg
    out_dir = Path(out_dir)
    hyps, all_hyps = translate_texts(
        run.model,
        run.src_tok,
        run.tgt_tok,
        sentences,
        max_len=cfg.data.max_len,
        decode_max_len=cfg.decode.max_len,
        beam=beam or cfg.decode.beam,
        alpha=cfg.decode.length_penalty,
    )
    items = attention_figures(
        out_dir, run.model, run.src_tok, run.tgt_tok, sentences, [h[0] for h in all_hyps]
    )
    result = [
        {"source": s, "translation": h, "heatmap": str(out_dir / it["png"])}
        for s, h, it in zip(sentences, hyps, items)
    ]
    write_json(out_dir / "translations.json", result)
    return result


def translate_predictor(run_dir: Path, text: str, out_dir: Path, metrics: dict):
    """``attnrun predict RUN_DIR TEXT`` for translate runs: one sentence per line of ``TEXT``."""
    result = predict_translate(run_dir, text.splitlines(), out_dir)
    lines = [f"{r['source']}\t{r['translation']}" for r in result]
    return Prediction(lines, [Path(r["heatmap"]) for r in result])
