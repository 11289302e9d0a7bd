"""Translation metrics: sacreBLEU corpus BLEU and chrF, sentence BLEU, the tokenized BLEU Multi30k
papers report, d2l's BLEU, and AER."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence

import torch


def corpus_scores(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float | str]:
    """sacreBLEU corpus BLEU and chrF, case-sensitive and lowercased, with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    out: dict[str, float | str] = {}
    for suffix, lower in (("", False), ("_lowercase", True)):
        bleu, chrf = BLEU(lowercase=lower), CHRF(lowercase=lower)
        out[f"bleu{suffix}"] = round(bleu.corpus_score(list(hyps), [list(refs)]).score, 2)
        out[f"chrf{suffix}"] = round(chrf.corpus_score(list(hyps), [list(refs)]).score, 2)
        out[f"bleu{suffix}_signature"] = str(bleu.get_signature())
        out[f"chrf{suffix}_signature"] = str(chrf.get_signature())
    return out


def moses_bleu(hyps: Sequence[str], refs: Sequence[str], lang: str) -> float:
    """Lowercased BLEU on Moses-tokenized text: the metric Multi30k papers report.

    Hypotheses and references go through the dataset's own preprocessing of its ``lc.norm.tok``
    files (``scripts/task1-tokenize.sh`` of multi30k/dataset: ``lowercase.perl``,
    ``normalize-punctuation.perl -l L``, ``tokenizer.perl -l L``; Elliott et al. 2016), here
    sacremoses' ports, then sacreBLEU with ``tokenize="none"`` (multi-bleu.perl's count on
    tokens as given). It differs from :func:`corpus_scores`' 13a mainly for French, where Moses
    splits elisions (``l'homme`` → ``l' homme``). Needs ``pip install sacremoses``
    (the ``bench`` extra).
    """
    from sacrebleu.metrics import BLEU
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    norm, tok = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)

    def prep(text: str) -> str:
        return tok.tokenize(norm.normalize(text.lower()), return_str=True, escape=True)

    bleu = BLEU(tokenize="none", force=True)
    return round(bleu.corpus_score([prep(h) for h in hyps], [[prep(r) for r in refs]]).score, 2)


def sentence_bleus(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """sacreBLEU sentence BLEU (exponential smoothing, lowercased) of each pair."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(lowercase=True, effective_order=True)
    return [round(bleu.sentence_score(h, [r]).score, 2) for h, r in zip(hyps, refs)]


def d2l_bleu(prediction: str, reference: str, k: int = 2) -> float:
    """d2l 10.7's BLEU: brevity penalty × Π_n p_n^(1/2^n) over n = 1..k (space-split tokens)."""
    pred, ref = prediction.split(" "), reference.split(" ")
    score = math.exp(min(0.0, 1.0 - len(ref) / len(pred)))
    for n in range(1, min(k, len(pred)) + 1):
        ref_counts = collections.Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        matches = 0
        for i in range(len(pred) - n + 1):
            gram = tuple(pred[i : i + n])
            if ref_counts[gram] > 0:
                matches += 1
                ref_counts[gram] -= 1
        score *= (matches / (len(pred) - n + 1)) ** (0.5**n)
    return score


def argmax_alignment(weights: torch.Tensor, n_src: int, n_tgt: int) -> set[tuple[int, int]]:
    """``{(argmax_j α_tj, t)}``: each of the first ``n_tgt`` target words linked to the source
    word (among the first ``n_src``) with the highest attention weight.

    ``weights`` is ``(T, S)`` (target steps × source positions). As in fairseq's hard-alignment
    extraction, the end-of-sentence positions on both sides are not words and are left out.
    """
    links = set()
    for t in range(min(n_tgt, weights.shape[0])):
        links.add((int(weights[t, :n_src].argmax()), t))
    return links


def alignment_error_rate(
    predicted: Iterable[set], sure: Iterable[set], possible: Iterable[set] | None = None
) -> float:
    """AER (Och & Ney 2003): ``1 − (|A∩S| + |A∩P|) / (|A| + |S|)`` summed over the corpus.

    ``possible`` (each a superset of its sure set) defaults to the sure links (``P = S``).
    """
    sure = list(sure)
    possible = sure if possible is None else list(possible)
    hit_s = hit_p = n_pred = n_sure = 0
    for a, s, p in zip(predicted, sure, possible):
        hit_s += len(a & s)
        hit_p += len(a & (p | s))
        n_pred += len(a)
        n_sure += len(s)
    return 1.0 - (hit_s + hit_p) / max(1, n_pred + n_sure)


#: Source-length buckets (words) of :func:`bleu_by_length`, as Bahdanau et al. 2015 (Fig. 2) plot
#: BLEU against sentence length; ``None``: no upper bound.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 10), (11, 20), (21, 30), (31, None))


def bleu_by_length(
    sources: Sequence[str], hyps: Sequence[str], refs: Sequence[str]
) -> list[dict[str, float | int | str | None]]:
    """sacreBLEU corpus BLEU (case-sensitive and lowercased) of the sentences in each source
    length bucket (whitespace words of the source): ``[{"range": "1-10", "sentences": n,
    "bleu": b, "bleu_lowercase": bl}, ...]``; a bucket without sentences has ``None`` scores."""
    from sacrebleu.metrics import BLEU

    out = []
    for lo, hi in LENGTH_BUCKETS:
        idx = [i for i, s in enumerate(sources) if lo <= len(s.split()) <= (hi or 10**9)]
        row: dict[str, float | int | str | None] = {
            "range": f"{lo}-{hi}" if hi else f"{lo}+",
            "sentences": len(idx),
            "bleu": None,
            "bleu_lowercase": None,
        }
        if idx:
            h, r = [hyps[i] for i in idx], [[refs[i] for i in idx]]
            row["bleu"] = round(BLEU().corpus_score(h, r).score, 2)
            row["bleu_lowercase"] = round(BLEU(lowercase=True).corpus_score(h, r).score, 2)
        out.append(row)
    return out
