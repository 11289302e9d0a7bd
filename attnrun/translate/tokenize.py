"""Tokenizers: d2l-style words (default) or subword BPE (HuggingFace ``tokenizers``).

Both map text to ids with the same four special ids (:data:`PAD`, :data:`BOS`, :data:`EOS`,
:data:`UNK`), give readable pieces for heatmap labels, turn ids back into text, and save to /
load from one JSON file per side (``tokenizer.src.json``, ``tokenizer.tgt.json``) in the run folder.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from attnrun.errors import DataError
from attnrun.io import write_text
from attnrun.registry import Registry
from attnrun.runs.files import tokenizer_file

if TYPE_CHECKING:
    from torch import Tensor

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)

_PUNCT = re.compile(r"([.,!?;:\"()«»])")
_GLUE_LEFT = re.compile(r" ([.,!?;:)»])")
_GLUE_RIGHT = re.compile(r"([(«]) ")
_APOSTROPHE = re.compile(r"(?<=\w)(['’])(?=\w)")  # between two letters
_GLUE_APOSTROPHE = re.compile(r"(?<=\w)(['’]) (?=\w)")


class Tokenizer(Protocol):
    kind: str

    @property
    def size(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def pieces(self, ids: Iterable[int]) -> list[str]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def detokenize(self, text: str) -> str: ...
    def to_json(self) -> str: ...


#: name → ``build(texts, *, min_freq, vocab_size, lowercase) -> Tokenizer``.
tokenizers: Registry[Callable[..., Tokenizer]] = Registry("tokenizer")


def word_split(text: str, lowercase: bool = True, apostrophes: bool = False) -> list[str]:
    """d2l-style words: nbsp → space, (lowercase), punctuation split off, whitespace split.

    ``apostrophes``: a word is split after an apostrophe (``'`` or ``’``) between two letters, so
    French elisions share their stem's entry (``l'homme`` → ``l' homme``, ``qu'il`` → ``qu' il``),
    as the Moses tokenizer that Multi30k's published systems train on splits them (Moses splits
    English possessives the other way, ``man 's``; here ``man' s``)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    if lowercase:
        text = text.lower()
    text = _PUNCT.sub(r" \1 ", text)
    if apostrophes:
        text = _APOSTROPHE.sub(r"\1 ", text)
    return text.split()


def glue_punctuation(text: str, apostrophes: bool = False) -> str:
    """Words joined as :meth:`WordTokenizer.decode` joins them: runs of spaces made one, no
    space before ``. , ! ? ; : ) »`` nor after ``( «`` (``"noir !"`` → ``"noir!"``); with
    ``apostrophes`` none after a word's final apostrophe before a word (``"l' eau"`` →
    ``"l'eau"``)."""
    text = " ".join(text.split())
    text = _GLUE_RIGHT.sub(r"\1", _GLUE_LEFT.sub(r"\1", text))
    return _GLUE_APOSTROPHE.sub(r"\1", text) if apostrophes else text


def unknown_words(tok: Tokenizer, text: str) -> list[str]:
    """The words of ``text`` (each once, in order) that ``tok`` can only encode with ``<unk>``:
    words a word vocabulary never saw, characters BPE never met."""
    return [w for w in dict.fromkeys(word_split(text, lowercase=False)) if UNK in tok.encode(w)]


def replace_unknown(
    tok: Tokenizer,
    ids: Sequence[int],
    weights: Tensor,
    source: str,
    src_tok: Tokenizer | None = None,
) -> str:
    """``tok.decode(ids)`` with each ``<unk>`` replaced by the source word it attends to most
    (Luong et al. 2015b, "Addressing the Rare Word Problem", the PosUnk copy; Jean et al. 2015).

    ``weights (len(ids) [+ 1], S)``: row ``t`` is what target token ``t`` attended to, column
    ``j`` source id ``j`` (the words of ``source`` as ``src_tok`` splits them, then EOS; without
    ``src_tok``, apostrophes stay inside their words). The EOS column is never copied; a source
    with no word leaves ``<unk>``. The copy takes the target tokenizer's case, as its own words
    do.
    """
    apostrophes = getattr(src_tok, "apostrophes", False)
    words = word_split(source, getattr(tok, "lowercase", True), apostrophes)
    words = words[: weights.shape[1] - 1]
    pieces = tok.pieces(ids)
    for t, i in enumerate(ids):
        if i == UNK and words:
            pieces[t] = words[int(weights[t, : len(words)].argmax())]
    return tok.detokenize(" ".join(pieces))


def _strip_specials(ids: Iterable[int]) -> list[int]:
    out = []
    for i in ids:
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(int(i))
    return out


class WordTokenizer:
    """Words with a vocabulary of those seen at least ``min_freq`` times in training;
    ``apostrophes``: words split after an apostrophe between letters (:func:`word_split`)."""

    kind = "word"

    def __init__(self, tokens: list[str], lowercase: bool = True, apostrophes: bool = False):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.lowercase, self.apostrophes = lowercase, apostrophes

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        min_freq: int = 2,
        lowercase: bool = True,
        split_apostrophes: bool = False,
        **_,
    ):
        counts = Counter(w for t in texts for w in word_split(t, lowercase, split_apostrophes))
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls([*SPECIALS, *words], lowercase, split_apostrophes)

    @property
    def size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        words = word_split(text, self.lowercase, self.apostrophes)
        return [self.stoi.get(w, UNK) for w in words]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] if 0 <= i < len(self.itos) else "<unk>" for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        return self.detokenize(" ".join(self.pieces(_strip_specials(ids))))

    def detokenize(self, text: str) -> str:
        """A text (a reference) spaced as :meth:`decode` spaces its output."""
        return glue_punctuation(text, self.apostrophes)

    def to_json(self) -> str:
        obj = {"kind": "word", "lowercase": self.lowercase, "tokens": self.itos}
        if self.apostrophes:  # absent in older runs' files: they load as before
            obj["split_apostrophes"] = True
        return json.dumps(obj, ensure_ascii=False)


class BPETokenizer:
    """Byte-pair-encoding subwords (Sennrich et al. 2016) trained on the training split."""

    kind = "bpe"

    def __init__(self, hf) -> None:
        self.hf = hf

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int = 8000,
        min_freq: int = 2,
        lowercase: bool = True,
        **_,
    ):
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE(unk_token="<unk>"))
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        hf.normalizer = normalizers.Sequence(norms)
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()]
        )
        hf.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=list(SPECIALS),
            show_progress=False,
        )
        hf.train_from_iterator(list(texts), trainer)
        return cls(hf)

    @property
    def size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.hf.id_to_token(int(i)) or "<unk>" for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(_strip_specials(ids), skip_special_tokens=True)

    def detokenize(self, text: str) -> str:
        """A text spaced as :meth:`decode` spaces its output: unchanged, since the subwords keep
        the training text's spaces (Metaspace), so hypotheses are spaced like references."""
        return text

    def to_json(self) -> str:
        return self.hf.to_str()


tokenizers.register("word")(WordTokenizer.train)
tokenizers.register("bpe")(BPETokenizer.train)


def save_tokenizer(tok: Tokenizer, folder: Path, side: str) -> Path:
    path = Path(folder) / tokenizer_file(side)
    write_text(path, tok.to_json())
    return path


def load_tokenizer(folder: str | Path, side: str) -> Tokenizer:
    """Load ``tokenizer.<side>.json``; a missing or damaged file raises DataError."""
    path = Path(folder) / tokenizer_file(side)
    try:
        text = path.read_text(encoding="utf-8")
        obj = json.loads(text)
        if obj.get("kind") == "word":
            return WordTokenizer(
                obj["tokens"], obj.get("lowercase", True), obj.get("split_apostrophes", False)
            )
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(text))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (not a translate run folder?)") from None
    except Exception as e:
        raise DataError(f"{path}: damaged tokenizer file ({type(e).__name__}: {e})") from None
