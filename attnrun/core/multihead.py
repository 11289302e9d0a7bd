"""Multi-head attention (Vaswani et al. 2017, section 3.2.2) on the shared attention core."""

from __future__ import annotations

from torch import Tensor, nn

from attnrun.core.attention import Attention
from attnrun.core.heads import Site, apply_to_context
from attnrun.errors import ConfigError

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017): ``Concat(head_1..head_h) W_o`` with
    ``head_i = Attn(Q W_q^i, K W_k^i, V W_v^i)``.

    Shapes follow d2l: queries ``(B, Tq, query_size)``, keys ``(B, Tk, key_size)``, values
    ``(B, Tk, value_size)`` → output ``(B, Tq, num_hiddens)`` and per-head weights
    ``(B, num_heads, Tq, Tk)``. Each head has size ``num_hiddens / num_heads`` and uses the score
    ``score`` (default ``scaled_dot``) through :class:`~attnrun.core.Attention`, so masking, the
    fused SDPA path and dropout are the core's.

    Args:
        num_hiddens: model size; must be divisible by ``num_heads``.
        num_heads: number of heads.
        dropout: dropout on the attention weights.
        score: score function name for each head.
        bias: whether the four projections have biases.
        query_size, key_size, value_size: input sizes (default ``num_hiddens``).
        **attention_options: passed to :class:`~attnrun.core.Attention` (e.g. ``backend``).
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        dropout: float = 0.0,
        score: str = "scaled_dot",
        bias: bool = False,
        query_size: int | None = None,
        key_size: int | None = None,
        value_size: int | None = None,
        **attention_options,
    ) -> None:
        super().__init__()
        if num_heads < 1 or num_hiddens < 1 or num_hiddens % num_heads:
            raise ConfigError(
                f"num_heads={num_heads} must divide num_hiddens={num_hiddens} (both >= 1)"
            )
        self.num_heads = num_heads
        self.head_dim = num_hiddens // num_heads
        self.W_q = nn.Linear(query_size or num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size or num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size or num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.attention = Attention(
            score, self.head_dim, self.head_dim, self.head_dim, dropout, **attention_options
        )

    @property
    def site(self) -> Site | None:
        """``(kind, layer)``: this attention's hook point in :mod:`attnrun.core.heads` (the
        model that owns it names it; ``None``: no intervention reaches it)."""
        return self.attention.site

    @site.setter
    def site(self, value: Site | None) -> None:
        self.attention.site = value

    def merge_heads(self, context: Tensor) -> Tensor:
        """``W_o · Concat(head_1..head_h)`` of the heads' contexts ``(B, H, Tq, hd)`` →
        ``(B, Tq, d)``, after the head interventions active at :attr:`site` (removal,
        mean-ablation, gates)."""
        context = apply_to_context(self.site, context)  # (B, H, Tq, hd)
        b, _, tq, _ = context.shape
        out = context.transpose(1, 2).reshape(b, tq, self.num_heads * self.head_dim)  # (B, Tq, d)
        return self.W_o(out)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, heads, T, hd)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
        need_weights: bool = True,
        *,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Returns ``(output (B, Tq, num_hiddens), weights (B, heads, Tq, Tk) or None)``.

        ``valid_lens`` ``(B,)`` or ``(B, Tq)`` apply to every head; ``mask`` (``True`` = keep)
        broadcasts to ``(B, heads, Tq, Tk)``.
        """
        for name, x in (("queries", queries), ("keys", keys), ("values", values)):
            if x.ndim != 3:
                raise ConfigError(
                    f"multi-head attention: {name} must be (B, T, d); got {tuple(x.shape)}"
                )
        q = self._split(self.W_q(queries))  # (B, heads, Tq, hd)
        k = self._split(self.W_k(keys))  # (B, heads, Tk, hd)
        v = self._split(self.W_v(values))  # (B, heads, Tk, hd)
        context, weights = self.attention(q, k, v, valid_lens, need_weights, mask=mask)
        return self.merge_heads(context), weights  # (B, Tq, d), (B, heads, Tq, Tk)
