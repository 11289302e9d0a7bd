"""Score a copy of a run's ``model.pt`` taken after epoch N on the full splits, with the run's own
decoding (beam 5, length penalty 0.6): what a run stopped after epoch N would have kept.

usage: python score_snapshot.py RUN SNAPSHOTS N OUT [TGT]
  RUN: the run folder (config and tokenizers); SNAPSHOTS: the folder ``snapshot_each_epoch.sh``
  filled (model_eN.pt, metrics_eN.json); OUT: a new folder for the copy; TGT: fr (default) or de.
"""

import json
import shutil
import sys
from pathlib import Path

import torch

from attnrun.translate.predict import evaluate_files

run, snap, epoch, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
tgt = sys.argv[5] if len(sys.argv) > 5 else "fr"
torch.set_num_threads(2)
out.mkdir(parents=True, exist_ok=True)
for f in ("config.yaml", "tokenizer.src.json", "tokenizer.tgt.json", "metrics.json"):
    shutil.copy(run / f, out / f)
shutil.copy(snap / f"model_e{epoch}.pt", out / "model.pt")
data = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "multi30k"
scores = {}
for split in ("val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco"):
    res = evaluate_files(out, data / f"{split}.en.gz", data / f"{split}.{tgt}.gz", beam=None)
    scores[split] = res["bleu_lowercase"]
    print(split, scores[split], flush=True)
meta = json.loads((snap / f"metrics_e{epoch}.json").read_text())
row = {"epoch": epoch, "best_epoch": meta.get("best_epoch"), "bleu_lowercase": scores}
(out / "row.json").write_text(json.dumps(row, indent=1))
print(json.dumps(row))
