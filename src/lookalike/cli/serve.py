"""``lookalike serve`` and ``lookalike keys``: running the HTTP service and managing its API keys.

The command line and the service are sibling layers that never import each
other: ``serve`` validates the settings, opens the database once (migrating
it before any worker starts), then hands uvicorn the service's factory by
import string, with the settings in one environment variable, which is also
how uvicorn's worker processes find them.
"""

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lookalike.cli.collection import LearnedOption, ModelOption
from lookalike.cli.output import JsonOption, fail, json_line, reporting_errors, say
from lookalike.cli.settings import SettingsOption, settings_from
from lookalike.config import DEFAULT_BURST, DEFAULT_RATE_PER_S, SERVICE_SETTINGS_VARIABLE, ServiceSettings
from lookalike.errors import ConfigError

if TYPE_CHECKING:
    from lookalike.index.store.interface import Store
    from lookalike.index.store.records import ApiKey

#: where ``serve`` keeps files and its SQLite database when not told otherwise
DEFAULT_STORAGE = "lookalike-files"
DEFAULT_DB = DEFAULT_STORAGE + ".sqlite"
#: the service's factory (see the module docstring for why it is named, not imported)
APP_FACTORY = "lookalike.service.app:create_app_from_environment"
#: the service's HTTP protocol: uvicorn's, with connection caps and a header deadline (named for
#: the same reason as the factory)
HTTP_PROTOCOL = "lookalike.service.connections:GuardedHttpProtocol"


def open_store(location: str) -> "Store":
    """The store at ``location`` (imported here: the store loads NumPy, which ``--help`` should not pay for)."""
    from lookalike.index.store.interface import open_store as open_location

    return open_location(location)


DbUrlOption = Annotated[
    str, typer.Option("--db", help="SQLite file path or postgresql:// URL (the one `lookalike serve` uses).")
]


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``keys`` group to ``app``."""
    app.command("serve")(serve_command)
    keys = typer.Typer(
        help="API keys of the HTTP service (one tenant per key or several keys per tenant).", rich_markup_mode=None
    )
    keys.command("create")(keys_create)
    keys.command("list")(keys_list)
    keys.command("revoke")(keys_revoke)
    app.add_typer(keys, name="keys")


def serve_command(
    db: Annotated[
        str | None,
        typer.Option("--db", help="SQLite file path or postgresql:// URL. Default: STORAGE.sqlite beside the storage."),
    ] = None,
    storage: Annotated[Path, typer.Option("--storage", help="Folder for the uploaded files.")] = Path(DEFAULT_STORAGE),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    allow_url_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-url-host",
            help="Host that /v1/images/from-url may fetch from even if it is internal: HOST (ports 80 and 443), "
            "HOST:PORT or HOST:* (any port); [IPv6]:PORT.",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", help="Requests per second per API key (all workers together).")
    ] = DEFAULT_RATE_PER_S,
    burst: Annotated[int, typer.Option("--burst", min=1, help="Requests an API key may send at once.")] = DEFAULT_BURST,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest image accepted, in MB.")] = 50.0,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", min=1, help="Largest picture decoded, in pixels (as its header declares).")
    ] = 50_000_000,
    max_decode_mb: Annotated[
        int,
        typer.Option("--max-decode-mb", min=1, help="Memory one decode may need, in MB (estimated per format)."),
    ] = 512,
    decode_timeout: Annotated[
        float,
        typer.Option("--decode-timeout", help="Seconds one picture's decode and fingerprint may take (422 beyond)."),
    ] = 20.0,
    max_scans: Annotated[
        int, typer.Option("--max-scans", min=1, help="Most scans a (progressive) JPEG may have (422 beyond).")
    ] = 100,
    max_connections_per_client: Annotated[
        int,
        typer.Option(
            "--max-connections-per-client",
            min=1,
            help="Connections one client address may hold open per worker (503 beyond).",
        ),
    ] = 64,
    header_timeout: Annotated[
        float, typer.Option("--header-timeout", help="Seconds a request's headers may take to arrive (408 beyond).")
    ] = 10.0,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
    settings_file: SettingsOption = None,
    learned: LearnedOption = None,
    model: ModelOption = None,
) -> None:
    """Run the check-before-store HTTP API (OpenAPI docs at /docs)."""
    try:
        import uvicorn
    except ImportError:
        fail("the service needs its extra: pip install 'lookalike[service]'")
    location = db or str(storage.with_name(storage.name + ".sqlite"))
    with reporting_errors():
        if rate <= 0 or max_upload_mb <= 0:
            raise ConfigError("--rate and --max-upload-mb must be positive")
        settings = ServiceSettings(
            db=location, storage=storage.resolve(), allow_url_hosts=frozenset(allow_url_host or []),
            rate_per_s=rate, burst=burst, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_pixels=max_pixels, max_decode_bytes=max_decode_mb * 1024 * 1024, workers=workers,
            decode_timeout_s=decode_timeout, max_scans=max_scans,
            max_connections_per_client=max_connections_per_client, header_timeout_s=header_timeout,
        )  # fmt: skip
        found = settings_from(settings_file)  # the one loader every command uses
        if found.thresholds is not None:
            settings = replace(settings, thresholds=found.thresholds)
        tier = found.learned.chosen(learned, model)
        if tier.on:
            from lookalike.learned import load_embedder

            load_embedder(tier.model)  # fails now, in one line, without the extra; exports the model once
            settings = replace(settings, learned=tier)
        storage.mkdir(parents=True, exist_ok=True)
        _check_temporary_folder()
        open_store(location).close()  # fails now, not in every worker; migrates once
    import shutil
    import tempfile

    rate_file = None
    if workers > 1:  # the workers share each key's budget through this file (see service/ratelimit.py)
        shm = Path("/dev/shm")
        fd, name = tempfile.mkstemp(prefix="lookalike-rate-", dir=shm if shm.is_dir() else None)
        os.close(fd)
        rate_file = Path(name)
    # the workers map one copy of the pHash index from here rather than hold one each
    shared_index_dir = Path(tempfile.mkdtemp(prefix="lookalike-index-")) if workers > 1 else None
    settings = replace(settings, rate_file=rate_file, shared_index_dir=shared_index_dir)
    os.environ[SERVICE_SETTINGS_VARIABLE] = settings.to_json()
    say(f"lookalike: serving http://{host}:{port} (docs at /docs), {workers} worker(s), db {location}")
    options: dict[str, Any] = {"log_level": log_level, "access_log": log_level in ("debug", "trace", "info"),
               "timeout_graceful_shutdown": 10, "http": HTTP_PROTOCOL, "backlog": _backlog()}  # fmt: skip
    try:
        if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
            _supervise(host, port, workers, options)
        else:
            uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, **options)
    finally:
        if rate_file is not None:
            rate_file.unlink(missing_ok=True)
        if shared_index_dir is not None:
            shutil.rmtree(shared_index_dir, ignore_errors=True)


def _check_temporary_folder() -> None:
    """Fail at start, not at the first large upload, when no temporary folder is writable: uploads
    over 1 MB wait in one for their decode (a unit with ``ProtectSystem=strict`` and no
    ``PrivateTmp`` had answered them 400 ``malformed_body``). Raises ``ConfigError``."""
    import tempfile

    try:
        with tempfile.TemporaryFile():
            pass
    except OSError as exc:
        raise ConfigError(
            "no writable temporary folder: uploads over 1 MB wait in one; set TMPDIR to a folder the "
            "service may write (deploy/lookalike.service uses /var/lib/lookalike/tmp)"
        ) from exc


def _backlog() -> int:
    """The listen backlog: also how many connections asyncio accepts in one go before their
    handlers run (and refuse those over the connection caps, ``service.connections``), so it is
    kept to a quarter of the descriptor limit: a burst never takes a worker's last descriptors
    before the handlers can close the connections it must refuse."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 2048 if soft == resource.RLIM_INFINITY else max(64, min(2048, soft // 4))


# ---- several workers -------------------------------------------------------------------------------
#
# uvicorn's own supervisor hands every worker one shared listening socket, and whichever worker wakes
# first accepts: keep-alive connections opened in a burst were seen landing 15 of 16 on one worker,
# leaving the other core idle. Here each worker listens on a socket of its own, all bound to the same
# address with SO_REUSEPORT, so the kernel spreads new connections over them (by a hash of the
# client's address and port). The supervisor replaces a worker that dies, as uvicorn's does.


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` in the address's SO_REUSEPORT group (not listening yet)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any], parent: int) -> None:
    """One worker process: the service on its own socket (settings come in the environment).
    It stops when the supervisor ``parent`` dies, even by SIGKILL, rather than serve on unsupervised."""
    import uvicorn

    from lookalike.processes import die_with_parent

    die_with_parent(parent)

    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[_listening_socket(host, port)])


def _supervise(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` worker processes until SIGINT or SIGTERM, replacing any that dies."""
    import multiprocessing
    import signal
    import threading

    try:
        # a plain bind first: another server's SO_REUSEPORT sockets would let ours join its group
        # and silently share its traffic, so an address in use must fail here, once
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
        # bound but never listening: it holds the address and receives no connections, since only
        # listening sockets join the kernel's balancing
        holder = _listening_socket(host, port)
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}")
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def start() -> multiprocessing.process.BaseProcess:
        proc = spawn.Process(target=_worker, args=(host, port, options, os.getpid()), daemon=False)
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                if not proc.is_alive():
                    say(f"lookalike: worker {proc.pid} ended ({proc.exitcode}); starting another", err=True)
                    procs[i] = start()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(options["timeout_graceful_shutdown"] + 5)
            if proc.is_alive():
                proc.kill()
        holder.close()


def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant (index scope) the key works in.")],
    db: DbUrlOption = DEFAULT_DB,
    name: Annotated[str, typer.Option("--name", help="A note for listings (who holds the key).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Make an API key for a tenant and print it once (only its hash is stored)."""
    from lookalike.index.store.keys import create_api_key

    if not tenant.strip():
        fail("--tenant must not be empty")
    with reporting_errors(as_json=as_json):
        store = open_store(db)
        try:
            key, record = create_api_key(store, tenant, name=name)
        finally:
            store.close()
    if as_json:
        json_line({"key": key, **_key_dict(record)})
    else:
        say(key)
    say(f"key {record.key_id} for tenant {tenant!r}: shown once, keep it now", err=True)


def _key_dict(k: "ApiKey") -> dict[str, object]:
    from lookalike.index.store.records import iso_time

    return {
        "key_id": k.key_id, "tenant": k.scope, "name": k.name, "created_at": iso_time(k.created_at),
        "revoked_at": None if k.revoked_at is None else iso_time(k.revoked_at),
    }  # fmt: skip


def keys_list(
    db: DbUrlOption = DEFAULT_DB,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List keys (ids, tenants, names; never the keys)."""
    with reporting_errors(as_json=as_json):
        store = open_store(db)
        try:
            records = store.api_keys(tenant)
        finally:
            store.close()
    for k in records:
        if as_json:
            json_line(_key_dict(k))
            continue
        state = "revoked" if k.revoked_at is not None else "live"
        say(f"{k.key_id}  {k.scope}  {state}  {k.name}")


def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (lk_<id>_…).")],
    db: DbUrlOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    with reporting_errors(as_json=as_json):
        store = open_store(db)
        try:
            store.revoke_api_key(key_id)
        finally:
            store.close()
    if as_json:
        json_line({"key_id": key_id, "revoked": True})
    else:
        say(f"revoked {key_id}")
