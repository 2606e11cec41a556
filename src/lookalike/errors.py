"""The exception tree of lookalike.

Every error the library raises on purpose is a ``LookalikeError``; its message
is one line a person can act on, so the CLI prints ``str(err)`` and nothing else.

    LookalikeError
    ├── InputError                 the image or its source is at fault
    │   ├── NotAnImage             the bytes are not an image of any known kind (includes empty files)
    │   ├── UnsupportedFormat      an image, but of a format outside the allow-list
    │   ├── CorruptImage           a known format whose data cannot be decoded
    │   │   └── TruncatedImage     the data ends before the image does
    │   ├── TooLarge               over the byte or pixel limit (decompression bombs land here)
    │   ├── OverBudget             a decode that would cost more work or time than allowed
    │   │   ├── TooManyScans       a JPEG with more scans than the limit (a progressive scan bomb)
    │   │   └── DecodeTimeout      a decode that ran past its wall-time budget and was stopped
    │   └── FetchError             a path or URL that could not be read
    │       └── NotRegularFile     a FIFO, socket or device where a file was expected: never read
    ├── FingerprintError           a serialised fingerprint that cannot be read back
    ├── StoreError                 the index or its database refused an operation
    │   ├── NotFound               no image with that id (in that scope)
    │   └── AlreadyExists          a row that must be unique exists already (an API key's id or hash)
    ├── ConfigError                settings that do not make sense
    └── ClusterError               the Dask cluster of a scale-out run failed it (a lost scheduler or
                                   worker, a worker without the package or with another version)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

__all__ = [
    "UNEXPECTED_CODE",
    "FileError",
    "AlreadyExists",
    "ClusterError",
    "ConfigError",
    "ErrorBody",
    "ErrorDetail",
    "CorruptImage",
    "FetchError",
    "FingerprintError",
    "InputError",
    "LookalikeError",
    "NotAnImage",
    "NotFound",
    "NotRegularFile",
    "OverBudget",
    "StoreError",
    "DecodeTimeout",
    "TooLarge",
    "TooManyScans",
    "TruncatedImage",
    "UnsupportedFormat",
    "error_body",
    "unexpected_message",
]


class ErrorDetail(TypedDict):
    """What went wrong: a stable ``code`` (``LookalikeError.code``) and one line for a person."""

    code: str
    message: str


class ErrorBody(TypedDict):
    """The one JSON shape of an error, everywhere: the command line's ``--json`` output
    (``{"path": ..., "error": {...}}`` for one file of many) and the HTTP service's error bodies."""

    error: ErrorDetail


def error_body(code: str, message: str, **extra: Any) -> ErrorBody:
    """``{"error": {"code": code, "message": message, **extra}}``, the message on one line."""
    detail: Any = {"code": code, "message": " ".join(message.split()), **extra}
    return ErrorBody(error=detail)


class LookalikeError(Exception):
    """Base of every error lookalike raises on purpose."""

    #: a short stable name, used by the CLI's JSON output and the service's error codes
    code = "lookalike_error"

    def to_dict(self) -> ErrorBody:
        """This error in the one JSON error shape (``error_body``)."""
        return error_body(self.code, str(self))


class InputError(LookalikeError):
    """The image, or the place it was to be read from, is at fault."""

    code = "bad_input"


class NotAnImage(InputError):
    """The bytes are not an image of any kind lookalike knows (empty files included)."""

    code = "not_an_image"


class UnsupportedFormat(InputError):
    """An image, but in a format that is not on the allow-list."""

    code = "unsupported_format"


class CorruptImage(InputError):
    """A known format whose data cannot be decoded."""

    code = "corrupt_image"


class TruncatedImage(CorruptImage):
    """The data ends before the image does."""

    code = "truncated_image"


class TooLarge(InputError):
    """Over the configured byte or pixel limit; refused before decoding pixels."""

    code = "too_large"


class OverBudget(InputError):
    """A decode that would cost more work (or took more time) than the limits allow, whatever its
    size: refused by counting the work before decoding where the format allows, stopped otherwise."""

    code = "over_budget"


class TooManyScans(OverBudget):
    """A JPEG with more scans (SOS markers) than the limit: a progressive JPEG's decoder revisits
    every coefficient of the picture at each scan, so its cost is pixels times scans."""

    code = "too_many_scans"


class DecodeTimeout(OverBudget):
    """A decode (and fingerprint) that ran past its wall-time budget; the work was stopped."""

    code = "decode_timeout"


class FetchError(InputError):
    """A file or URL that could not be read."""

    code = "fetch_failed"


class NotRegularFile(FetchError):
    """A FIFO, socket, device or other special file where an image file was expected: not read,
    since reading one may block for ever (a FIFO with no writer) or never end (a device)."""

    code = "not_regular_file"


class FingerprintError(LookalikeError):
    """A serialised fingerprint that cannot be decoded."""

    code = "bad_fingerprint"


class StoreError(LookalikeError):
    """The index or its database refused an operation."""

    code = "store_error"


class NotFound(StoreError):
    """No image with that id (in that scope)."""

    code = "not_found"


class AlreadyExists(StoreError):
    """A row that must be unique exists already (an API key with this id or hash)."""

    code = "already_exists"


class ConfigError(LookalikeError):
    """Settings that do not make sense."""

    code = "bad_config"


class ClusterError(LookalikeError):
    """The cluster a scale-out run was given failed it: the scheduler was lost, workers died, or a
    worker cannot run this version of lookalike. The message names the cause; the finished
    partitions are kept, so the run goes on with ``--resume``."""

    code = "cluster_failed"


#: the error code of a file whose reading failed in a way no typed error describes (a bug of
#: ours or of a library): reported for that file alone while a run over many goes on
UNEXPECTED_CODE = "read_failed"


def unexpected_message(source: object, exc: BaseException) -> str:
    """The one line reported for ``source`` when reading it raised ``exc``, an untyped error."""
    text = " ".join(str(exc).split())
    return f"{source}: could not be read ({type(exc).__name__}{': ' + text if text else ''})"


@dataclass(frozen=True, slots=True)
class FileError:
    """One file (or URL) of a run over many that could not be read: its path, the error's stable
    code and its message. The one failure type of every batch result (``hash``, ``index``,
    ``check``, ``find``, the scale-out stages); an absent error is ``None``, never an empty one."""

    path: str
    code: str
    message: str

    @classmethod
    def of(cls, path: object, exc: BaseException) -> FileError:
        """The row for ``path`` whose reading raised ``exc``: a typed error keeps its code and
        message, anything else is ``UNEXPECTED_CODE`` with a one-line account."""
        if isinstance(exc, LookalikeError):
            return cls(str(path), exc.code, str(exc))
        return cls(str(path), UNEXPECTED_CODE, unexpected_message(path, exc))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as every ``--json`` prints an unreadable file:
        ``{"path", "error": {"code", "message"}}``."""
        return {"path": self.path, **error_body(self.code, self.message)}
