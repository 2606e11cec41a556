"""The storage wing of ``lookalike.index``: what is kept on disk, and nothing that searches it.

One store in two dialects: every table (``schema``, numbered migrations) and every statement
(``sqlstore``, with the ``embeddings`` table's in ``embedding_rows``) is written once over a
``Dialect`` (``dialect``); ``sqlite`` (one file, the default) and ``postgres`` (a server, for a
service with several workers or hosts) hold what each database does its own way. ``interface``
names the narrow roles callers ask for (``ImageWriter``, ``CandidateReader``, ``ChangeLog``,
``Embeddings``, ``ReviewList``, ``KeyStore``; ``Store`` is all of them) and ``open_store``, which
turns what a user types after ``--db`` into a store. ``records`` are the values that go in and
come out; ``keys`` makes the service's API keys, which the store keeps hashed.

Lifecycle: ``open_store`` opens (or creates) the database and applies the migrations it lacks, so
every process that opens one sees the current schema; each write is one transaction, and the
ones that add or remove files append to the change log (``ChangeLog``) that the in-memory search
engines (``index.search``) rebuild from and follow; ``close`` releases the connections. Nothing
here imports the search engines or the collection: the store outlives both and knows neither.
"""
