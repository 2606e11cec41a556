"""Past one machine: ``find`` and ``hash`` as stages on a Dask cluster, over fsspec storage.

``Pipeline(...).run(sources, out=RUN_DIR, cluster="local:4" | "tcp://host:8786" | None)`` gives
the groups and keepers ``find`` gives on one machine; ``Pipeline(...).hash`` runs the fingerprint
stage alone. The stages (``lookalike.scale.stages``) are plain functions over Arrow tables;
``lookalike.scale.runner`` is the only module that knows Dask. ``lookalike.scale.matching`` is
the matching stage as tasks; ``lookalike.scale.join``, the candidate join over bare codes it runs
(multi-index hashing as a join of substring partitions).
Needs the ``dask`` extra (and ``s3`` for ``s3://`` sources).
"""

from lookalike.scale.pipeline import DEFAULT_PARTITION_SIZE, HashRun, Pipeline, RunStats, ScaleRun

__all__ = ["DEFAULT_PARTITION_SIZE", "HashRun", "Pipeline", "RunStats", "ScaleRun"]
