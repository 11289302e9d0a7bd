"""The encoder-decoder: :class:`Seq2Seq` and :func:`build_model` from the run's config."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from attnrun.core import Attention
from attnrun.errors import ConfigError
from attnrun.registry import Registry
from attnrun.translate.models.decoders import DecoderState, Memory, _AttentionDecoder, decoders
from attnrun.translate.models.encoder import Encoder
from attnrun.translate.models.plain import PlainDecoder  # registers decoder=none
from attnrun.translate.models.transformer import TransformerSeq2Seq
from attnrun.translate.tokenize import PAD


class Seq2Seq(nn.Module):
    """Encoder + attention decoder. ``forward`` is teacher forcing: logits ``(B, T, V)``."""

    def __init__(self, encoder: Encoder, decoder: _AttentionDecoder | PlainDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, src: Tensor, src_lens: Tensor) -> tuple[Memory, DecoderState]:
        outputs, state = self.encoder(src, src_lens)
        memory = self.decoder.memory(outputs, src_lens)
        return memory, self.decoder.init_state(memory, state)

    def forward(self, src: Tensor, src_lens: Tensor, tgt_in: Tensor, need_weights: bool = False):
        memory, state = self.encode(src, src_lens)
        return self.decoder(tgt_in, memory, state, need_weights=need_weights)

    def token_features(
        self, src: Tensor, src_lens: Tensor, tgt_in: Tensor, tgt_out: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Features ``(N, H_out)`` before the vocabulary projection ``decoder.out``, and targets
        ``(N,)``, of the ``N`` non-pad target positions only (the training loss projects them
        itself, :func:`attnrun.translate.loss.linear_cross_entropy`, so padding never reaches the
        largest matrix product of the step)."""
        memory, state = self.encode(src, src_lens)
        feats, _ = self.decoder(tgt_in, memory, state, project=False)  # (B, T, H_out)
        keep = tgt_out != PAD  # (B, T)
        return feats[keep], tgt_out[keep]


#: ``model.arch`` → ``build(cfg, src_vocab, tgt_vocab) -> model``: the model families of translate.
architectures: Registry[Callable[..., nn.Module]] = Registry("model architecture")


def decoder_name(cfg) -> str:
    """What decodes: ``transformer`` for that architecture; for the RNN family the decoder, where
    ``auto`` picks ``bahdanau`` for the additive score and ``luong`` otherwise."""
    if cfg.model.arch != "rnn":
        return cfg.model.arch
    if cfg.decoder != "auto":
        return cfg.decoder
    return "bahdanau" if cfg.score == "additive" else "luong"


def build_model(cfg, src_vocab: int, tgt_vocab: int) -> nn.Module:
    """The model described by a :class:`~attnrun.translate.config.TranslateConfig`."""
    return architectures.get(cfg.model.arch)(cfg, src_vocab, tgt_vocab)


@architectures.register("rnn")
def build_rnn(cfg, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """An RNN encoder and the ``decoder`` of the registry on the core's attention.

    With ``attention.key_value`` the attention decoders get learned key and value transforms
    (Daniluk et al. 2017) of ``attention.key_size`` / ``value_size`` (default ``num_hiddens``), and
    the score reads keys of that size; ``decoder=none`` attends to nothing and ignores them.
    With ``tokenizer.shared`` the decoder embeds with the encoder's embedding (both are
    ``embed_size`` wide), and with ``model.tie_embeddings`` its output layer is that matrix too.
    """
    m, a = cfg.model, cfg.attention
    cls = decoders.get(decoder_name(cfg))
    key_value = None
    if a.key_value and getattr(cls, "has_attention", True):
        key_value = (a.key_size or m.num_hiddens, a.value_size or m.num_hiddens)
    options = {"key_value": key_value} if key_value else {}
    score_options = {"max_len": cfg.data.max_len} if cfg.score == "location" else {}
    window_options = {"half_width": a.window} if a.kind != "global" else None
    attention = Attention(
        cfg.score,
        m.num_hiddens,
        key_value[0] if key_value else m.num_hiddens,
        m.attn_hiddens or m.num_hiddens,
        normaliser="hard" if a.hard else "soft",
        window=a.kind,
        window_options=window_options,
        backend="plain",
        **score_options,
    )
    encoder = Encoder(
        src_vocab, m.embed_size, m.num_hiddens, m.num_layers, m.cell, m.bidirectional, m.dropout
    )
    decoder = cls(
        tgt_vocab,
        m.embed_size,
        m.num_hiddens,
        m.num_layers,
        m.cell,
        m.dropout,
        attention=attention,
        input_feeding=m.input_feeding,
        tie_embeddings=m.tie_embeddings,
        **options,
    )
    if cfg.tokenizer.shared:
        _check_one_vocabulary(src_vocab, tgt_vocab)
        decoder.embedding = encoder.embedding
        if m.tie_embeddings:
            decoder.out.weight = encoder.embedding.weight
    return Seq2Seq(encoder, decoder)


@architectures.register("transformer")
def build_transformer(cfg, src_vocab: int, tgt_vocab: int) -> TransformerSeq2Seq:
    """Vaswani et al. 2017: ``model.num_layers`` encoder and decoder blocks of ``num_hiddens``,
    ``num_heads`` heads, ``ffn_hiddens``; positions cover every source id and decoding step.
    ``tokenizer.shared``: one embedding for both sides (three-way with ``tie_embeddings``)."""
    m = cfg.model
    if cfg.tokenizer.shared:
        _check_one_vocabulary(src_vocab, tgt_vocab)
    return TransformerSeq2Seq(
        src_vocab, tgt_vocab, m.num_hiddens, m.num_heads, m.num_layers, m.ffn_hiddens, m.dropout,
        m.positional, max_len=positions_needed(cfg), norm_first=m.norm_first,
        tie_embeddings=m.tie_embeddings, share_embeddings=cfg.tokenizer.shared,
        attention_dropout=m.attention_dropout,
    )  # fmt: skip


def _check_one_vocabulary(src_vocab: int, tgt_vocab: int) -> None:
    if src_vocab != tgt_vocab:
        raise ConfigError(
            f"tokenizer.shared=true needs one vocabulary for both sides; got {src_vocab} source "
            f"and {tgt_vocab} target ids"
        )


def positions_needed(cfg) -> int:
    """Positions a Transformer must encode: every source id and every decoding step."""
    return max(cfg.data.max_len, cfg.decode.max_len) + 1


__all__ = [
    "PlainDecoder",
    "TransformerSeq2Seq",
    "architectures",
    "DecoderState",
    "Memory",
    "Seq2Seq",
    "build_model",
    "decoder_name",
]
