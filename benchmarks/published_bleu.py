"""Trained Multi30k runs on the metric papers report beside attnrun's own: every split's
translations scored with lowercased sacreBLEU (13a, what attnrun reports) and with tokenized
lowercased BLEU (:func:`~attnrun.translate.metrics.moses_bleu`: the dataset's ``lc.norm.tok``
preprocessing, then BLEU on tokens as multi-bleu.perl counts them), next to the published
text-only reference points ``../shared/data/multi30k/README.md`` cites.

The translations are the run's ``evaluate_<split>.txt`` (what ``recipe_ablation.py`` and
``average_seeds.py`` wrote when they scored the run, beam and length penalty of the run's
config); a split without one is translated now (``attnrun evaluate``'s
:func:`~attnrun.translate.predict.evaluate_files`, a new file, nothing overwritten). The 13a
column must then reproduce the figure the benchmark recorded: a check that the file is the run's.

Issue 21: "Published text-only tiny Transformers ... reach about 41 BLEU en→de on test2016 (Wu
et al. 2021, tokenized lowercased BLEU)": the gap is only measured on the same metric.

usage: python benchmarks/published_bleu.py RUN_DIR [RUN_DIR ...] [--shared DIR]
           [--splits val test_2016_flickr ...] [--threads 2] [--out FILE.json]
Needs sacremoses (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from average_seeds import rescore, rescore_args  # noqa: E402

#: tokenized lowercased BLEU of a single text-only attentive GRU (lium-lst/wmt17-mmt, the points
#: ``../shared/data/multi30k/README.md`` gives): target language → split → BLEU
PUBLISHED = {
    "fr": {"test_2016_flickr": 59.0, "test_2017_flickr": 51.9},
    "de": {"test_2016_flickr": 39.0, "test_2017_flickr": 31.3},
}


def translations(run_dir: Path, data: Path, src: str, tgt: str, split: str) -> list[str]:
    """The run's translations of ``split``: its ``evaluate_<split>.txt``, or a new decoding."""
    path = run_dir / f"evaluate_{split}.txt"
    if not path.exists():
        from attnrun.translate.predict import evaluate_files

        res = evaluate_files(run_dir, data / f"{split}.{src}.gz", data / f"{split}.{tgt}.gz")
        path = Path(res["translations"])
    return path.read_text(encoding="utf-8").splitlines()


def score_run(run_dir: Path, data: Path, splits) -> list[dict]:
    """One row per split: 13a and tokenized lowercased BLEU of the same translations."""
    import yaml

    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.metrics import corpus_scores, moses_bleu

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    src, tgt = cfg["data"]["src"], cfg["data"]["tgt"]
    rows = []
    for split in splits:
        refs = [r for _, r in read_parallel(data / f"{split}.{src}.gz", data / f"{split}.{tgt}.gz")]
        hyps = translations(run_dir, data, src, tgt, split)
        if len(hyps) != len(refs):
            raise SystemExit(f"{run_dir}: {len(hyps)} translations of {split}, {len(refs)} refs")
        rows.append({
            "run": str(run_dir), "pair": f"{src}-{tgt}", "split": split,
            "bleu_13a": corpus_scores(hyps, refs)["bleu_lowercase"],
            "bleu_tokenized": moses_bleu(hyps, refs, tgt),
            "published": PUBLISHED.get(tgt, {}).get(split),
        })  # fmt: skip
        print(_row(rows[-1]), flush=True)
    return rows


def _name(run: str) -> str:
    """A run named by its folder and the folder above (the benchmark's output and the arm)."""
    return "/".join(Path(run).parts[-2:])


def _row(r: dict) -> str:
    pub = r["published"]
    gap = "" if pub is None else f"{pub:.1f} | {r['bleu_tokenized'] - pub:+.2f}"
    gap = gap or "— | —"
    return (
        f"| {_name(r['run'])} | {r['pair']} | {r['split']} | {r['bleu_13a']:.2f}"
        f" | {r['bleu_tokenized']:.2f} | {r['bleu_tokenized'] - r['bleu_13a']:+.2f} | {gap} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = rescore_args(__doc__.split("\n\n")[0]).parse_args(argv)
    header = ["run", "pair", "split", "lowercased BLEU (13a)", "tokenized BLEU", "difference",
              "published (GRU)", "attnrun − published"]  # fmt: skip
    return rescore(args, header, lambda run, data: score_run(run, data, args.splits))


if __name__ == "__main__":
    raise SystemExit(main())
