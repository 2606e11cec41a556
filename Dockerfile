# The environment of a Dask scheduler or worker for `lookalike find/hash --cluster tcp://...`: the
# same lookalike (the client refuses workers of another version) with the dask and s3 extras.
#
#   docker build -t lookalike-worker .
#   docker run --network host lookalike-worker scheduler --port 8786
#   docker run --network host -v /shared:/shared lookalike-worker worker tcp://SCHEDULER:8786 --nthreads 1
#
# Workers read the sources and write the run folder (`--out`) under the same paths the client
# uses: mount the shared disk at the same place in every container.
FROM python:3.11-slim

# numba caches its compiled kernels here, so that each worker process compiles them once
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 NUMBA_CACHE_DIR=/var/cache/numba
RUN mkdir -p /var/cache/numba && chmod 1777 /var/cache/numba

WORKDIR /opt/lookalike
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install '.[dask,s3]' && python -c "import lookalike, distributed; print(lookalike.__version__)"

# one thread a worker process: a fingerprint task is CPU-bound Python and NumPy
ENTRYPOINT ["dask"]
CMD ["worker", "--help"]
