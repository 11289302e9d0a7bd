"""What one request to ``attnrun serve`` asks, its limits, and the error a run answers it with."""

from __future__ import annotations

from dataclasses import dataclass

from attnrun.core.heads import Head
from attnrun.errors import AttnrunError

__all__ = [
    "MAX_BEAM", "MAX_CHARS", "MAX_TOKENS", "PredictRequest", "RequestError", "check_text",
    "check_tokens",
]  # fmt: skip

#: The longest text a request may hold, in characters.
MAX_CHARS = 1000
#: The most tokens of a sentence a request may hold (a run allows fewer when it was trained on
#: shorter sentences: translate's ``data.max_len - 1``, selfattn's ``max_len``).
MAX_TOKENS = 200
#: The widest beam a request may ask for.
MAX_BEAM = 10


class RequestError(AttnrunError):
    """A request the run cannot answer as asked: a 4xx with this one-line message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PredictRequest:
    """One parsed ``POST /api/predict`` body (:mod:`attnrun.serve.api` checks the types).

    ``heads``: the heads to switch off; ``query`` and ``bandwidth``: regress only."""

    run: str
    text: str = ""
    beam: int | None = None
    heads: tuple[Head, ...] = ()
    query: float | None = None
    bandwidth: float | None = None


def check_text(text: str, need_text: bool = True) -> str:
    text = text.strip()
    if need_text and not text:
        raise RequestError("the text is empty; type a sentence")
    if len(text) > MAX_CHARS:
        raise RequestError(
            f"the text has {len(text)} characters; at most {MAX_CHARS} per request", 413
        )
    if "\n" in text:
        raise RequestError("one sentence per request (the text holds a line break)")
    return text


def check_tokens(n: int, limit: int) -> None:
    if n > limit:
        raise RequestError(f"the sentence has {n} tokens; this run takes at most {limit}", 413)
