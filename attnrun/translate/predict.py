"""Reuse a trained translate run: translate new sentences (``attnrun predict``) or score a file
pair (``attnrun evaluate``), both through :meth:`Translator.from_run`.

:func:`predict_translate` writes ``attention_<i>.png`` / ``.html``, ``attention.json`` and
``translations.json`` into a new folder; :func:`evaluate_files` writes the translations into a new
file in the run folder (never overwriting one). The CLI only maps options to these calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnrun.errors import AttnrunError, DataError
from attnrun.io import write_json, write_text
from attnrun.runs import files
from attnrun.runs.prediction import Prediction
from attnrun.translate.coref import check_sentence, explain_it
from attnrun.translate.data.coref import load_lexicon
from attnrun.translate.data.readers import ReadReport, read_parallel
from attnrun.translate.metrics import corpus_scores
from attnrun.translate.plots import write_attention_figures
from attnrun.translate.tokenize import unknown_words, word_split
from attnrun.translate.translator import Translator

__all__ = [
    "coref_run", "evaluate_files", "for_predict", "predict_translate", "translate_predictor",
    "translate_with_attention",
]  # fmt: skip


def predict_translate(
    run_dir: str | Path,
    sentences: list[str],
    out_dir: str | Path,
    *,
    beam: int | None = None,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Translate ``sentences``; returns ``[{"source", "translation", "heatmap", "unknown",
    "model_input"}]``: ``unknown`` lists the words the model never saw (it reads each as
    ``<unk>``, as ``model_input`` shows). With ``strict`` such words are a :class:`DataError`
    before anything is written."""
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise DataError("no sentence to translate (give them as arguments or on stdin)")
    translator = for_predict(Translator.from_run(run_dir), beam)
    unknown = [unknown_words(translator.src_tok, s) for s in sentences]
    if strict:
        _refuse_unknown(unknown)
    coref = coref_run(run_dir)
    words = [check_sentence(translator.src_tok, s) for s in sentences] if coref else []
    out_dir = Path(out_dir)
    hyps, samples = translate_with_attention(translator, sentences)
    pngs: Sequence[Path | None] = [None] * len(sentences)
    if samples:
        files.write_attention(out_dir, samples)
        pngs = write_attention_figures(out_dir, samples)
    result = [
        {
            "source": s,
            "translation": h,
            "heatmap": str(png) if png else None,
            "unknown": u,
            "model_input": " ".join("<unk>" if w in u else w for w in word_split(s, False)),
        }
        for s, h, png, u in zip(sentences, hyps, pngs, unknown)
    ]
    if coref and coref[1] is not None:  # a Transformer: which noun the best head attends to
        selfs = [x for x in samples if x.kind == "encoder_self"]
        for r, w, sample in zip(result, words, selfs):
            r["it"] = explain_it(sample, translator.src_tok, w, coref[1], coref[0])
    write_json(out_dir / "translations.json", result)
    return result


def unknown_warning(index: int, words: list[str]) -> str:
    """The stderr line for sentence ``index`` (0-based) with words the model never saw."""
    return (
        f"sentence {index + 1}: word(s) the model never saw, read as <unk>: {', '.join(words)} "
        "(--strict refuses them)"
    )


def _refuse_unknown(unknown: list[list[str]]) -> None:
    """``--strict``: the first sentence with unknown words is a one-line :class:`DataError`."""
    for i, words in enumerate(unknown):
        if words:
            raise DataError(
                f"sentence {i + 1}: word(s) the model never saw: {', '.join(words)} "
                "(without --strict they are translated as <unk>)"
            )


def for_predict(translator: Translator, beam: int | None = None) -> Translator:
    """The decode settings of ``predict`` (and ``serve``): the run's, ``beam`` if given, and no
    more hypotheses kept than the beam holds."""
    translator = translator.with_decode(beam=beam)
    return translator.with_decode(n_best=min(translator.decode.n_best, translator.decode.beam))


def translate_with_attention(
    translator: Translator, sentences: list[str]
) -> tuple[list[str], list[files.AttentionSample]]:
    """The translations of ``sentences`` and their attention samples (none for ``decoder=none``),
    exactly what ``predict`` writes into ``translations.json`` and ``attention.json``."""
    hyps, all_hyps = translator.translate(sentences)
    if not translator.attends:
        return hyps, []
    return hyps, translator.attention_samples(sentences, [h[0] for h in all_hyps])


def translate_predictor(
    run_dir: Path,
    text: str,
    out_dir: Path,
    metrics: dict,
    *,
    strict: bool = False,
    beam: int | None = None,
) -> Prediction:
    """``attnrun predict RUN_DIR TEXT`` for translate runs: one sentence per line of ``TEXT``;
    one warning per sentence with unknown words (``strict``: an error instead); ``beam``: another
    beam size than the run's (as ``attnrun serve``'s save passes)."""
    result = predict_translate(run_dir, text.splitlines(), out_dir, strict=strict, beam=beam)
    lines = []
    for r in result:
        lines += [f"{r['source']}\t{r['translation']}", *([f"  {r['it']}"] if "it" in r else [])]
    warnings = [unknown_warning(i, r["unknown"]) for i, r in enumerate(result) if r["unknown"]]
    return Prediction(lines, [Path(r["heatmap"]) for r in result if r["heatmap"]], warnings)


def coref_run(run_dir) -> tuple | None:
    """``(lexicon, best head or None)`` of a run trained on the ``coref`` corpus, else None."""
    cfg = files.read_config(run_dir)
    if cfg.get("dataset") != "coref":
        return None
    metrics = files.read_json(Path(run_dir) / files.METRICS) or {}
    return load_lexicon(cfg.get("data", {}).get("path")), metrics.get("coref_best_head")


def _new_file(folder: Path, stem: str) -> Path:
    """``folder/stem.txt``, or ``stem_1.txt``, ``stem_2.txt``, ... : never an existing file."""
    path = folder / f"{stem}.txt"
    n = 0
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}.txt"
    return path


def evaluate_files(
    run_dir: str | Path,
    src: Path,
    ref: Path,
    *,
    beam: int | None = None,
    out: Path | None = None,
    skip_bad: bool = False,
    replace_unk: bool | None = None,
) -> dict:
    """Translate ``src`` with the run's model, score against ``ref``, write the translations;
    ``beam`` and ``replace_unk`` (``decode.replace_unk``): None keeps the run's."""
    report = ReadReport()
    pairs = read_parallel(src, ref, skip_bad=skip_bad, report=report)
    if out is not None and out.exists():
        raise AttnrunError(f"{out} exists; evaluate never overwrites a file, pick another --out")
    translator = Translator.from_run(run_dir).with_decode(
        beam=beam, n_best=1, replace_unk=replace_unk
    )
    hyps, _ = translator.translate([s for s, _ in pairs])
    scores = corpus_scores(hyps, [r for _, r in pairs])
    if out is None:
        out = _new_file(Path(run_dir), f"evaluate_{Path(src).name.split('.')[0]}")
    write_text(out, "".join(h + "\n" for h in hyps))
    return {
        **scores,
        "sentences": len(pairs),
        "skipped_lines": report.skipped,
        "translations": str(out),
    }
