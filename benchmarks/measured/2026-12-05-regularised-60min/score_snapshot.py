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
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
from average_seeds import ROOT, SPLITS, score_splits  # noqa: E402

run, snap, epoch, out = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
tgt = sys.argv[5] if len(sys.argv) > 5 else "fr"
torch.set_num_threads(2)
out.mkdir(parents=True, exist_ok=True)
for f in ("config.yaml", "tokenizer.src.json", "tokenizer.tgt.json", "metrics.json"):
    shutil.copy(run / f, out / f)
shutil.copy(snap / f"model_e{epoch}.pt", out / "model.pt")
args = SimpleNamespace(shared=ROOT.parent / "shared", splits=SPLITS, src="en", tgt=tgt, beam=None)
scores = score_splits(args, out)  # the run's own decoding on the full splits
meta = json.loads((snap / f"metrics_e{epoch}.json").read_text())
row = {"epoch": epoch, "best_epoch": meta.get("best_epoch"), "bleu_lowercase": scores}
(out / "row.json").write_text(json.dumps(row, indent=1))
print(json.dumps(row))
