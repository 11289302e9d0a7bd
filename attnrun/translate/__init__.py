"""RNN encoder-decoder translation with attention (Bahdanau et al. 2015; Luong et al. 2015).

One small module per job: ``data/`` (datasets and loaders), :mod:`.tokenize` (word and BPE
tokenizers), :mod:`.batching` (length-bucketed, padded batches), ``models/`` (encoder, decoders),
:mod:`.search` (greedy and beam search), :mod:`.metrics` (BLEU, chrF, AER), :mod:`.train` (the
resumable training loop), :mod:`.translator` (a trained model with its tokenizers), :mod:`.plots`
and :mod:`.predict` (reuse a run). ``config.py`` holds the typed config.
"""
