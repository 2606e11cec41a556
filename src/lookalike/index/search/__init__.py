"""The search wing of ``lookalike.index``: in-memory engines that answer "which stored files are
near this one?" fast, and own nothing that is not in the store.

``hamming`` searches binary codes (pHash) by Hamming distance exactly, by multi-index hashing,
with its compiled kernels in ``hamming_kernels`` and frozen parts shared between the processes of
one host in ``hamming_shared``; ``descriptors`` finds the files that share local (ORB)
descriptors with a query, for crops and screenshots (a scale-out run answers by the same rule
from its vote table, ``scale.votes``); ``semantic_mirror`` searches the learned tier's embeddings by
cosine. ``memory`` (``Mirror``) is what one ``Index`` keeps of its store: every file's pHash,
descriptors and scope, under one lock, with the embeddings' mirror following it.

Lifecycle: an engine is built from the store's rows when an ``Index`` opens (``ChangeLog.codes``),
brought up to date from the change log (``ChangeLog.changes_since``) before each look-up, and
dropped with the process: it is a cache of the store, never written back, so a restart or a
second process sharing the database loses nothing. The engines read the storage wing's row types
and roles, never the collection (``lookalike.index``) that composes them.
"""
