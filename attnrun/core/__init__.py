"""The shared attention core: score → mask → normalise → pool, returning ``(context, weights)``.

Every experiment in attnrun attends through these pieces; nothing else re-implements softmax
masking. Masks are boolean with ``True`` = keep (as SDPA's ``attn_mask``).
"""

from attnrun.core.attention import Attention
from attnrun.core.dropout import Dropout, dropout
from attnrun.core.fused import prefer_fused
from attnrun.core.hard import HardNormaliser, SoftNormaliser, normalisers
from attnrun.core.local import (
    GlobalWindow,
    LocalMonotonicWindow,
    LocalPredictiveWindow,
    gaussian_weights,
    query_positions,
    window_mask,
    windows,
)
from attnrun.core.masking import keep_mask, masked_softmax, softmax_keep, valid_lens_mask
from attnrun.core.multihead import MultiHeadAttention
from attnrun.core.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    positional_encoding_matrix,
    positional_encodings,
)
from attnrun.core.scores import Score, make_score, score_functions

__all__ = [
    "Attention",
    "Dropout",
    "GlobalWindow",
    "HardNormaliser",
    "LearnedPositionalEmbedding",
    "LocalMonotonicWindow",
    "LocalPredictiveWindow",
    "MultiHeadAttention",
    "Score",
    "SinusoidalPositionalEncoding",
    "SoftNormaliser",
    "dropout",
    "gaussian_weights",
    "keep_mask",
    "make_score",
    "masked_softmax",
    "normalisers",
    "positional_encoding_matrix",
    "positional_encodings",
    "prefer_fused",
    "query_positions",
    "score_functions",
    "softmax_keep",
    "valid_lens_mask",
    "window_mask",
    "windows",
]
