"""Data layer: load a ReDSM5-format source, align evidence, split, fold, write a data card.

loader     DataError, RawData, source_fingerprint, load_raw
synthetic  GENERATOR_VERSION, generate   (the embedded default data set)
align      split_sentences, align
splits     split_posts, make_folds
prepare    prepare, load_prepared, Prepared
"""

from workflow_lib.data.loader import DataError, RawData, load_raw, source_fingerprint  # noqa: F401
