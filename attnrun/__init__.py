"""attnrun: run, measure and compare attention mechanisms.

The public Python API (imported lazily, so ``import attnrun`` stays cheap):

- ``nadaraya_watson(x_query, x_train, y_train, kernel="gaussian", bandwidth=h)``: kernel
  regression predictions, exact, chunked/windowed (never an n_query × n_train matrix);
- ``loo_bandwidth(x, y, kernel="gaussian")``: the bandwidth with the least leave-one-out MSE;
- ``masked_softmax``, ``score_functions``, ``Attention``, ``MultiHeadAttention``,
  ``SinusoidalPositionalEncoding``, ``LearnedPositionalEmbedding``, ``Dropout``: the shared
  attention core;
- ``open_run(path)``, ``open_report(path_or_paths)``: a run or a report in a Jupyter notebook
  (metrics, config, attention samples; the viewer or the report page shown inline, offline).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "nadaraya_watson": "attnrun.regression.nadaraya_watson",
    "loo_bandwidth": "attnrun.regression.bandwidth",
    "kernels": "attnrun.regression.kernels",
    "masked_softmax": "attnrun.core",
    "score_functions": "attnrun.core",
    "Attention": "attnrun.core",
    "MultiHeadAttention": "attnrun.core",
    "SinusoidalPositionalEncoding": "attnrun.core",
    "LearnedPositionalEmbedding": "attnrun.core",
    "positional_encoding_matrix": "attnrun.core",
    "Dropout": "attnrun.core",
    "dropout": "attnrun.core",
    "open_run": "attnrun.notebook",
    "open_report": "attnrun.notebook",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'attnrun' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
