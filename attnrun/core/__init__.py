"""The shared attention core: score → mask → normalise → pool, returning ``(context, weights)``."""

from attnrun.core.masking import masked_softmax

__all__ = ["masked_softmax"]
