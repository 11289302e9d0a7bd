"""The RNN encoder: embeddings → (bi)GRU/LSTM over packed sequences → annotations ``h_j``."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnrun.core.dropout import Dropout
from attnrun.errors import ConfigError
from attnrun.translate.tokenize import PAD

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def make_rnn(
    cell: str,
    input_size: int,
    hidden: int,
    layers: int,
    dropout: float,
    bidirectional: bool = False,
) -> nn.RNNBase:
    if cell not in CELLS:
        raise ConfigError(f"model.cell={cell!r}; valid: {', '.join(CELLS)}")
    return CELLS[cell](
        input_size,
        hidden,
        layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if layers > 1 else 0.0,
    )


class Encoder(nn.Module):
    """Bahdanau et al. 2015 (sec. 3.2): annotations ``h_j = [→h_j; ←h_j]`` for a bidirectional RNN.

    A bidirectional encoder uses ``num_hiddens // 2`` units per direction so annotations and the
    final state have ``num_hiddens`` features either way (dot scores need ``dq == dk``).

    ``forward(src (B, S), src_lens (B,))`` returns ``outputs (B, S, H)`` (zeros at padding) and the
    final state ``(L, B, H)`` (a pair ``(h, c)`` for LSTM), both directions concatenated.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        num_hiddens: int,
        num_layers: int,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if bidirectional and num_hiddens % 2:
            raise ConfigError(
                f"model.num_hiddens={num_hiddens} must be even with a bidirectional encoder"
            )
        self.bidirectional = bidirectional
        self.num_layers = num_layers
        per_direction = num_hiddens // 2 if bidirectional else num_hiddens
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        self.rnn = make_rnn(cell, embed_size, per_direction, num_layers, dropout, bidirectional)

    def forward(self, src: Tensor, src_lens: Tensor):
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, src_lens.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        if isinstance(state, tuple):
            return out, tuple(self._merge(s) for s in state)
        return out, self._merge(state)

    def _merge(self, state: Tensor) -> Tensor:
        """``(L·dirs, B, h) -> (L, B, dirs·h)``: per layer, forward and backward side by side."""
        if not self.bidirectional:
            return state
        layers2, batch, h = state.shape
        state = state.view(self.num_layers, 2, batch, h)  # (L, 2, B, h)
        return state.permute(0, 2, 1, 3).reshape(self.num_layers, batch, 2 * h)
