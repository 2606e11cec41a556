#!/usr/bin/env python3
"""Does a folder read from object storage give the groups *and keepers* it gives read locally?

    python benchmarks/s3_keepers.py TREE [--workers 2] [--partition-size 256] [--no-kept-mtime]

Starts a moto S3 server on 127.0.0.1 (``moto[server]``, ``s3fs``), uploads TREE to
``s3://bench/tree`` in path order, each object with its file's modification time in its user
metadata as rclone keeps it (``mtime``; ``--no-kept-mtime`` uploads without it, so that each
object's time is its upload time), runs ``lookalike.scale.Pipeline`` (what ``find --cluster``
runs) over the local folder and over the bucket on one local Dask cluster, and prints one JSON
object: groups on each side, groups with the same members, and of those the ones with the same
keeper, with the seconds each run took. The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _groups(doc: dict[str, Any], prefix: str, root: str) -> dict[tuple[str, ...], str]:
    """Members (as local paths) -> keeper, of each group of a ``find --json`` document."""
    return {
        tuple(sorted(m["path"].replace(prefix, root) for m in g["members"])): g["keep"].replace(prefix, root)
        for g in doc["groups"]
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partition-size", type=int, default=256)
    ap.add_argument("--no-kept-mtime", action="store_true", help="upload without the files' modification times")
    args = ap.parse_args()
    tree = Path(args.tree).resolve()
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if exe is None:
        sys.exit("moto[server] is not installed")
    port = _free_port()
    server = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )  # fmt: skip
        import s3fs
        from dask.distributed import Client, LocalCluster

        from lookalike.scale import Pipeline

        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                ns = p.stat().st_mtime_ns
                meta = {} if args.no_kept_mtime else {"mtime": f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"}
                fs.pipe_file(f"bench/tree/{p.relative_to(tree).as_posix()}", p.read_bytes(), Metadata=meta)
        bucket = "s3://bench/tree"
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cl,
            Client(cl) as client,
            tempfile.TemporaryDirectory() as out,
        ):
            seconds = {}
            docs = {}
            for side, source in (("local", str(tree)), ("s3", bucket)):
                started = time.perf_counter()
                run = Pipeline(partition_size=args.partition_size).run([source], out=Path(out) / side, cluster=client)
                seconds[side] = round(time.perf_counter() - started, 1)
                docs[side] = run.result.to_dict()
        local, remote = _groups(docs["local"], "", ""), _groups(docs["s3"], bucket, str(tree))
        same = set(local) & set(remote)
        print(json.dumps({
            "groups_local": len(local), "groups_s3": len(remote), "same_members": len(same),
            "same_keepers": sum(1 for k in same if local[k] == remote[k]), "kept_mtime": not args.no_kept_mtime,
            "seconds": seconds,
        }))  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
