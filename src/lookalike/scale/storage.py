"""Sources through fsspec: local folders, ``file://``, ``s3://`` and any other fsspec protocol.

Filesystems are opened where they are used (inside a task, on the worker that runs it): an open
filesystem holds connections and threads that do not travel between processes. ``s3://`` goes
through s3fs, which reads the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION`` ...); ``storage_options``
are passed to the filesystem as they are. Object-store reads are retried with exponential
back-off, except a missing object or a refused permission (a 403), which another try would not
change; a file that still cannot be read becomes an error row naming it.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lookalike.decode import read_source
from lookalike.errors import ConfigError, FetchError, TooLarge
from lookalike.walk import IMAGE_SUFFIXES, iter_image_files

__all__ = ["Listed", "is_local", "kept_mtime_ns", "list_sources", "read_bytes"]

#: tries of one object-store read, and the first pause between them (doubled each time)
READ_TRIES = 4
FIRST_PAUSE_S = 0.2


@dataclass(frozen=True, slots=True)
class Listed:
    """One source file: where it is, its size in bytes, a version (mtime or ETag) that changes with
    it, and when it was last modified (ns since the epoch; 0 when the store does not say)."""

    url: str
    size: int
    version: str
    mtime_ns: int = 0


def is_local(url: str) -> bool:
    """Whether ``url`` names a local path (no protocol, or ``file://``)."""
    return "://" not in url or url.startswith("file://")


def _local_path(url: str) -> str:
    return os.path.abspath(url[len("file://") :] if url.startswith("file://") else url)


def _filesystem(url: str, storage_options: Mapping[str, Any]) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        return fs, str(path)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{url}: cannot open its filesystem ({exc})") from exc


def list_sources(sources: list[str], storage_options: Mapping[str, Any]) -> Iterator[Listed]:
    """Every image file under each source (a folder or a file; a folder is searched recursively,
    hidden entries and other file endings skipped, as ``lookalike find`` does), in sorted order.
    A local path that does not exist is listed as it is (size -1), so that reading it reports it.
    Raises ``FetchError`` when an object-store source cannot be listed."""
    for src in sources:
        if is_local(src):
            for p in iter_image_files([_local_path(src)]):
                path = os.path.abspath(p)
                try:
                    st = os.stat(path)
                except OSError:
                    yield Listed(path, -1, "")
                    continue
                yield Listed(path, st.st_size, str(st.st_mtime_ns), st.st_mtime_ns)
            continue
        yield from _list_remote(src, storage_options)


def _list_remote(src: str, storage_options: Mapping[str, Any]) -> Iterator[Listed]:
    fs, root = _filesystem(src, storage_options)
    try:
        if fs.isdir(root):
            found = fs.find(root, detail=True)
        else:
            found = {root: fs.info(root)}
    except (OSError, ValueError) as exc:  # botocore errors arrive as OSError subclasses through s3fs
        raise FetchError(f"{src}: cannot list ({type(exc).__name__}: {exc})") from exc
    for path in sorted(found):
        info = found[path]
        if info.get("type") == "directory":
            continue
        rel = posixpath.relpath(path, root) if path != root else posixpath.basename(path)
        if path != root and (
            any(part.startswith(".") for part in rel.split("/"))
            or posixpath.splitext(path)[1].lower() not in IMAGE_SUFFIXES
        ):
            continue
        version = str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or "")
        yield Listed(fs.unstrip_protocol(path), int(info.get("size") or 0), version.strip('"'), _mtime_ns(info))


def _mtime_ns(info: Mapping[str, Any]) -> int:
    """A listed object's last-modified time in ns (s3fs gives a datetime, other stores seconds)."""
    stamp = info.get("LastModified", info.get("mtime"))
    if isinstance(stamp, datetime):
        return int(stamp.timestamp() * 1e9)
    return int(float(stamp) * 1e9) if isinstance(stamp, int | float) else 0


#: user metadata keys in which uploaders keep a file's own modification time (seconds since the
#: epoch): rclone's ``mtime``, and ``mtime:`` inside s3cmd's ``s3cmd-attrs``
_MTIME_KEYS = ("mtime", "x-amz-meta-mtime", "goog-reserved-file-mtime")


def kept_mtime_ns(url: str, storage_options: Mapping[str, Any]) -> int | None:
    """The modification time the file had before it was uploaded, when the uploader kept it in the
    object's user metadata (rclone, s3cmd, gsutil do), in ns since the epoch; None for a local path,
    a store without user metadata or an object without such a key. The object's own time is when it
    was uploaded (``Listed.mtime_ns``): copies uploaded in another order than they were made would
    otherwise look older or newer than they are."""
    if is_local(url):
        return None
    fs, path = _filesystem(url, storage_options)
    read = getattr(fs, "metadata", None)
    try:
        meta = read(path) if callable(read) else (fs.info(path).get("metadata") or {})
    except (OSError, ValueError, NotImplementedError):
        return None
    found = {str(k).lower(): str(v) for k, v in dict(meta).items()}
    attrs = dict(p.split(":", 1) for p in found.get("s3cmd-attrs", "").split("/") if ":" in p)
    for text in [*(found.get(k) for k in _MTIME_KEYS), attrs.get("mtime")]:
        if text:
            try:
                seconds, _, fraction = text.strip().partition(".")
                return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
            except ValueError:
                continue
    return None


def read_bytes(url: str, *, max_bytes: int, storage_options: Mapping[str, Any]) -> bytes:
    """The bytes of one source file. Local files are read as ``lookalike find`` reads them; object
    stores are retried ``READ_TRIES`` times with back-off (not a missing object or a 403). Raises
    ``FetchError`` (naming the source) when it cannot be read and ``TooLarge`` when it is over
    ``max_bytes``."""
    if is_local(url):
        return read_source(_local_path(url), max_bytes=max_bytes).data
    fs, path = _filesystem(url, storage_options)
    pause = FIRST_PAUSE_S
    for attempt in range(READ_TRIES):
        try:
            size = int(fs.size(path))
            if size > max_bytes:
                raise TooLarge(f"{url}: {size:,} bytes, over the limit of {max_bytes:,}")
            data: bytes = fs.cat_file(path)
            return data
        except FileNotFoundError as exc:
            raise FetchError(f"{url}: cannot read (not found)") from exc
        except PermissionError as exc:  # a 403 stays a 403: trying again only multiplies the wait
            raise FetchError(f"{url}: cannot read (permission denied: {exc})") from exc
        except (OSError, TimeoutError) as exc:
            if attempt == READ_TRIES - 1:
                raise FetchError(f"{url}: cannot read after {READ_TRIES} tries ({type(exc).__name__}: {exc})") from exc
            fs.invalidate_cache()
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")
