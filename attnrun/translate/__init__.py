"""RNN encoder-decoder translation with attention (Bahdanau et al. 2015; Luong et al. 2015).

One small module per job: ``data/`` (datasets and loaders), :mod:`.tokenize` (word and BPE
tokenizers), :mod:`.batching` (length-bucketed, padded batches), ``models/`` (encoder, decoders),
:mod:`.search` (greedy and beam search), :mod:`.metrics` (BLEU, chrF, AER), :mod:`.train` (the
training loop), :mod:`.artifacts` (checkpoints and run files), :mod:`.plots` and :mod:`.predict`.
"""
