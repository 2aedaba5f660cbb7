"""A user's own images as a data set: sources, decoding once, the cache, the split.

``list_source`` reads what a ``folder:``, ``csv:`` or ``npz:`` source holds;
``open_cache`` decodes it once into a memory-mapped uint8 array (or opens the
one a previous run made); ``evaluation.data.load_dataset`` turns that into
``DataSplits`` as for the built-in data sets.
"""

from evaluation.images.cache import (
    AUTO_RESOLUTION_LIMIT,
    ImageCache,
    cache_key,
    cache_root,
    find_cache,
    open_cache,
)
from evaluation.images.decode import RESIZE_POLICIES, Decoding, ImageUnreadable, decode_file, read_header
from evaluation.images.sources import (
    SOURCE_KINDS,
    SPLITS,
    Entry,
    Listing,
    SourceKind,
    SourceOptions,
    is_source,
    list_source,
    parse_source,
    source_kind,
)
from evaluation.images.splits import assign_splits, fingerprint

__all__ = [
    "AUTO_RESOLUTION_LIMIT",
    "RESIZE_POLICIES",
    "SOURCE_KINDS",
    "SPLITS",
    "Decoding",
    "Entry",
    "ImageCache",
    "ImageUnreadable",
    "Listing",
    "SourceKind",
    "SourceOptions",
    "assign_splits",
    "cache_key",
    "cache_root",
    "decode_file",
    "find_cache",
    "fingerprint",
    "is_source",
    "list_source",
    "open_cache",
    "parse_source",
    "read_header",
    "source_kind",
]
