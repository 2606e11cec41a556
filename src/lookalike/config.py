"""Frozen settings objects. Nothing here reads the environment or a file:
callers build settings explicitly and pass them down."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import ConfigError

__all__ = [
    "ALL_FORMATS",
    "DEFAULT_BURST",
    "DEFAULT_RATE_PER_S",
    "PIXEL_CEILING",
    "SERVICE_SETTINGS_VARIABLE",
    "SETTINGS_FORMAT",
    "DecodeLimits",
    "FetchLimits",
    "LearnedSettings",
    "ServiceSettings",
    "Thresholds",
    "WEB_PORTS",
    "allowed_url_host",
    "default_cache_dir",
    "is_database_url",
]


def default_cache_dir() -> Path:
    """Where lookalike keeps what it can rebuild (``find``'s database, exported models):
    ``$XDG_CACHE_HOME/lookalike``, ``~/.cache/lookalike`` when the variable is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookalike"


#: each API key's request budget when not told otherwise (``lookalike serve`` and ``ServiceSettings``).
#: A 2-core server answers about 40 picture checks a second (decode, hash, search): 50 per second
#: with bursts of 100 lets one client use the whole server briefly, while hash-only checks (~1 ms
#: each) are batched by clients anyway.
DEFAULT_RATE_PER_S = 50.0
DEFAULT_BURST = 100

#: Image formats lookalike decodes, by Pillow's format name. HEIF needs the
#: optional ``heif`` extra (pillow-heif).
ALL_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF"})


#: Pillow's own decompression-bomb error threshold (2 x its default
#: MAX_IMAGE_PIXELS): larger images are refused by Pillow, whatever we allow.
PIXEL_CEILING = 2 * 89_478_485


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """What the decoder accepts.

    ``max_pixels`` is checked against the size the file's header declares,
    before any pixel is decoded, so a decompression bomb costs nothing. It
    cannot exceed ``PIXEL_CEILING``, where Pillow refuses images process-wide.
    ``max_decode_bytes``: when set, the memory a decode is expected to need
    (the declared pixels times what the format's decoder was measured to need
    a pixel, see ``decode.image.DECODE_BYTES_PER_PIXEL``) must stay within it,
    checked at the same time; a server uses it to bound memory per request.
    ``max_scans``: the most scans a JPEG may have (counted before decoding, see
    ``decode.budget``): a progressive JPEG's decode costs its pixels once per scan.
    """

    max_bytes: int = 100 * 1024 * 1024
    max_pixels: int = 178_000_000
    max_decode_bytes: int | None = None
    max_scans: int = 100
    formats: frozenset[str] = field(default=ALL_FORMATS)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.max_scans <= 0:
            raise ConfigError("max_bytes, max_pixels and max_scans must be positive")
        if self.max_decode_bytes is not None and self.max_decode_bytes <= 0:
            raise ConfigError("max_decode_bytes must be positive (or None for no memory estimate)")
        if self.max_pixels > PIXEL_CEILING:
            raise ConfigError(f"max_pixels cannot exceed {PIXEL_CEILING:,} (Pillow refuses larger images)")
        unknown = set(self.formats) - ALL_FORMATS
        if unknown:
            raise ConfigError(f"unknown image formats in allow-list: {', '.join(sorted(unknown))}")


#: the ports a bare ``--allow-url-host HOST`` allows: the web's own
WEB_PORTS = (80, 443)


def allowed_url_host(entry: str) -> tuple[str, tuple[int, ...] | None]:
    """An ``--allow-url-host`` entry read: ``HOST`` (ports 80 and 443), ``HOST:PORT`` (that port
    only) or ``HOST:*`` (every port, said out loud); an IPv6 address in brackets when a port
    follows (``[::1]:8080``). Returns the lower-case host and its ports (None: every port).
    Raises ``ConfigError``."""
    text = entry.strip().lower()
    host, port = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"--allow-url-host {entry!r}: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or "/" in host:
        raise ConfigError(f"--allow-url-host {entry!r}: expected HOST, HOST:PORT or HOST:*")
    if not port:
        return host, WEB_PORTS
    if port == "*":
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--allow-url-host {entry!r}: the port must be a number from 1 to 65535, or *")
    return host, (int(port),)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """How an http(s) URL is fetched: timeouts in seconds, a byte cap and a redirect cap."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_bytes: int = 100 * 1024 * 1024
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0 or self.max_bytes <= 0:
            raise ConfigError("fetch timeouts and max_bytes must be positive")
        if self.max_redirects < 0:
            raise ConfigError("max_redirects must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """Score cut-offs (scores are in [0, 1]) that turn a score into a verdict.

    ``near_duplicate``: at or above, the same picture edited; ``similar``: at or
    above, worth a person's look. ``lookalike calibrate`` measures them for a
    precision the user asks for. The defaults were measured so, on the public
    benchmark corpus's 556 originals (``lookalike calibrate ../shared/bench/corpus
    --precision 0.99``: near_duplicate 0.6239 at precision 0.99, where 90.1% of
    its edited copies were found; similar 0.3047 at precision 0.5), rounded down.
    """

    near_duplicate: float = 0.62
    similar: float = 0.30

    def __post_init__(self) -> None:
        if not 0.0 <= self.similar <= self.near_duplicate <= 1.0:
            raise ConfigError("thresholds must satisfy 0 <= similar <= near_duplicate <= 1")

    def to_dict(self) -> dict[str, float]:
        """``{"near_duplicate": ..., "similar": ...}``, as a settings file holds them."""
        return {"near_duplicate": self.near_duplicate, "similar": self.similar}

    @classmethod
    def from_settings_text(cls, text: str, *, name: str) -> Thresholds:
        """The thresholds of a settings file's content (what ``lookalike calibrate`` writes, format
        ``SETTINGS_FORMAT``); ``name`` says in errors where the text came from. The one parser of
        settings files, with ``LearnedSettings.from_settings_text``: every front end reads them
        through these (the command line's ``cli.settings.settings_from``). Raises ``ConfigError``."""
        data = _settings_data(text, name=name)
        if "thresholds" not in data:  # a file that only turns the learned tier on
            return cls()
        try:
            t = data["thresholds"]
            near, similar = float(t["near_duplicate"]), float(t["similar"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{name}: cannot read settings ({type(exc).__name__}: {exc})") from exc
        try:
            return cls(near_duplicate=near, similar=similar)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from exc


#: the ``format`` of a settings file (``Thresholds.from_settings_text``)
SETTINGS_FORMAT = "lookalike-settings/1"


def _settings_data(text: str, *, name: str) -> dict[str, Any]:
    """The JSON object of a settings file's content. Raises ``ConfigError``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot read settings ({type(exc).__name__}: {exc})") from exc
    found = data.get("format") if isinstance(data, dict) else None
    if found != SETTINGS_FORMAT:
        raise ConfigError(f"{name}: not a lookalike settings file (format {found!r})")
    return dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnedSettings:
    """Whether the learned tier is on (``on``) and with which encoder (``model``: a path to an ONNX
    image encoder or a folder holding one; None for the built-in EfficientNet-Lite0), as a settings
    file asks for it with the keys ``"learned": true`` and ``"learned_model": "PATH"`` (a model
    implies the tier; a relative path is read from the settings file's folder)."""

    on: bool = False
    model: str | None = None

    @classmethod
    def from_settings_text(cls, text: str, *, name: str, folder: Path | None = None) -> LearnedSettings:
        """The learned tier's keys of a settings file's content (both optional: off when absent);
        ``folder``: where a relative ``learned_model`` is found. Raises ``ConfigError`` when a key
        has the wrong type."""
        data = _settings_data(text, name=name)
        on, model = data.get("learned", False), data.get("learned_model")
        if not isinstance(on, bool):
            raise ConfigError(f'{name}: "learned" must be true or false, not {on!r}')
        if model is not None and not (isinstance(model, str) and model):
            raise ConfigError(f'{name}: "learned_model" must be the path of an ONNX image encoder, not {model!r}')
        if model is not None and folder is not None and not Path(model).is_absolute():
            model = str(folder / model)
        return cls(on=on or model is not None, model=model)

    def chosen(self, flag: bool | None, model: str | os.PathLike[str] | None) -> LearnedSettings:
        """These settings under a command's own ``--learned``/``--no-learned`` (``flag``, None when
        not given) and ``--model``, which win: a model turns the tier on with it."""
        if model is not None:
            return LearnedSettings(on=True, model=str(Path(model).resolve()))
        return self if flag is None else LearnedSettings(on=flag, model=self.model if flag else None)


#: how ``lookalike serve`` hands the service's settings to uvicorn's worker processes (the name only:
#: nothing here reads the environment)
SERVICE_SETTINGS_VARIABLE = "LOOKALIKE_SERVICE_SETTINGS"

_URL_PREFIXES = ("postgresql://", "postgres://")


def is_database_url(location: str | os.PathLike[str]) -> bool:
    """True for a PostgreSQL connection URL (as opposed to an SQLite file path)."""
    return isinstance(location, str) and location.startswith(_URL_PREFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """How the HTTP service (``lookalike.service``) runs: built by ``lookalike serve`` or by a program
    that calls ``create_app``, which is why it lives here, below both.

    ``db``: an SQLite file path or a ``postgresql://`` URL. ``storage``: the
    folder uploaded files are kept in. ``allow_url_hosts``: host names (or
    literal addresses) that ``/v1/images/from-url`` may fetch from even when
    they resolve to private or loopback addresses. ``rate_per_s`` and
    ``burst``: each API key's request budget, shared by the processes that
    name the same ``rate_file`` (the workers of one ``lookalike serve``), or
    kept by each process when it is None. ``shared_index_dir``: a folder through which the
    processes naming it (the workers of one ``lookalike serve``) map one copy of the pHash index
    instead of holding one each (see ``lookalike.index.search.hamming_shared``).
    ``max_upload_bytes``: the largest image accepted (request bodies may be a
    little larger, for the multipart envelope). ``max_pixels`` and
    ``max_decode_bytes``: the largest picture decoded, by its declared size
    and by the memory its format's decoder needs for it (see
    ``DecodeLimits``); both are checked before any pixel is decoded, and a
    picture over either is refused with 413. The defaults (50 million pixels,
    512 MB) let one request of a 2-core worker with a few GB decode a 50 MP
    JPEG or PNG, a 32 MP AVIF or a 28 MP WebP (docs/guides/deploy.md works out the
    worst case per request and per worker).
    ``picture_slots``: pictures one worker decodes and fingerprints at once
    (uploads, checks and fetched pictures alike); ``fetch_slots``: URLs one
    worker fetches at once; requests beyond wait their tenant's turn, at most
    ``max_waiting_per_tenant`` of one tenant (429 beyond) and ``max_waiting``
    in all (503 beyond). ``decode_timeout_s``: the wall time one picture's decode and
    fingerprint may take (its process is killed past it, 422); ``max_scans``: the most scans a
    JPEG may have (``DecodeLimits.max_scans``, 422 beyond). ``max_connections_per_client``:
    connections one client address may hold open in one worker (503 beyond);
    ``header_timeout_s``: how long a request's headers may take to arrive (408 beyond); see
    ``service.connections``.
    ``thresholds``: the score cut-offs every verdict the service gives is
    judged by (``lookalike serve`` reads them as every command does: ``--settings`` or
    ``$LOOKALIKE_SETTINGS``); ``GET /v1/settings`` reports them.
    ``learned``: the learned tier (``serve --learned``, or the settings file's ``"learned"``
    key): each picture is embedded in its decoding process, its vector stored with it, and checks
    and ``/similar`` use it as ``check --learned`` and ``find --similar`` do.
    """

    db: str
    storage: Path
    allow_url_hosts: frozenset[str] = frozenset()
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST
    rate_file: Path | None = None
    shared_index_dir: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_decode_bytes: int = 512 * 1024 * 1024
    fetch_timeout_s: float = 20.0
    max_redirects: int = 3
    workers: int = 1
    top: int = 10
    picture_slots: int = 2
    fetch_slots: int = 4
    max_waiting: int = 64
    max_waiting_per_tenant: int = 16
    decode_timeout_s: float = 20.0
    max_scans: int = 100
    max_connections_per_client: int = 64
    header_timeout_s: float = 10.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    learned: LearnedSettings = field(default_factory=LearnedSettings)
    limits: DecodeLimits = field(init=False)
    fetch: FetchLimits = field(init=False)

    def __post_init__(self) -> None:
        self._refuse_bad_values()
        object.__setattr__(self, "allow_url_hosts", frozenset(h.strip().lower() for h in self.allow_url_hosts))
        for entry in self.allow_url_hosts:
            allowed_url_host(entry)  # a bad entry fails at start
        object.__setattr__(self, "storage", Path(self.storage))
        if self.rate_file is not None:
            object.__setattr__(self, "rate_file", Path(self.rate_file))
        if self.shared_index_dir is not None:
            object.__setattr__(self, "shared_index_dir", Path(self.shared_index_dir))
        limits = DecodeLimits(
            max_bytes=self.max_upload_bytes,
            max_pixels=self.max_pixels,
            max_decode_bytes=self.max_decode_bytes,
            max_scans=self.max_scans,
        )
        object.__setattr__(self, "limits", limits)
        object.__setattr__(
            self,
            "fetch",
            FetchLimits(
                connect_timeout_s=min(5.0, self.fetch_timeout_s), read_timeout_s=self.fetch_timeout_s,
                max_bytes=self.max_upload_bytes, max_redirects=self.max_redirects,
            ),
        )  # fmt: skip

    def _refuse_bad_values(self) -> None:
        """Raises ``ConfigError`` for a value no service can run with (checked before any is normalised)."""
        if not self.db:
            raise ConfigError("--db must name an SQLite file or a postgresql:// URL")
        if not is_database_url(self.db) and "://" in self.db:
            raise ConfigError(f"--db {self.db}: only postgresql:// URLs or SQLite file paths are supported")
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ConfigError("the rate limit must be positive and the burst at least 1")
        if self.max_pixels <= 0 or self.max_decode_bytes <= 0:
            raise ConfigError("the pixel and decode memory limits must be positive")
        if self.max_upload_bytes <= 0 or self.fetch_timeout_s <= 0 or self.max_redirects < 0:
            raise ConfigError("upload size and fetch timeout must be positive, redirects not negative")
        if self.workers < 1 or self.top < 1:
            raise ConfigError("workers and top must be at least 1")
        if min(self.picture_slots, self.fetch_slots, self.max_waiting, self.max_waiting_per_tenant) < 1:
            raise ConfigError("slots and queue lengths must be at least 1")
        if self.decode_timeout_s <= 0 or self.max_scans < 1:
            raise ConfigError("the decode time budget must be positive and the scan limit at least 1")
        if self.max_connections_per_client < 1 or self.header_timeout_s <= 0:
            raise ConfigError("connections per client must be at least 1 and the header timeout positive")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read: an upload plus room for the multipart envelope."""
        return self.max_upload_bytes + 64 * 1024

    #: the largest JSON body read: a batch of 500 hash pairs is about 55 KB
    max_json_bytes = 128 * 1024

    def to_json(self) -> str:
        """The settings as JSON (``from_json`` reads it back)."""
        d = asdict(self)
        for derived in ("limits", "fetch"):
            d.pop(derived)
        d["storage"] = str(self.storage)
        d["rate_file"] = None if self.rate_file is None else str(self.rate_file)
        d["shared_index_dir"] = None if self.shared_index_dir is None else str(self.shared_index_dir)
        d["allow_url_hosts"] = sorted(self.allow_url_hosts)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        """Settings from ``to_json``'s output. Raises ``ConfigError``."""
        try:
            d = json.loads(text)
            d["storage"] = Path(d["storage"])
            d["allow_url_hosts"] = frozenset(d["allow_url_hosts"])
            d["thresholds"] = Thresholds(**d["thresholds"])
            d["learned"] = LearnedSettings(**d.get("learned", {}))
            return cls(**d)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"unreadable service settings ({exc})") from exc
