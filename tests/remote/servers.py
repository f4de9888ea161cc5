"""Local stand-ins for remote checkpoint storage, for tests and benchmarks (no pytest in here).

Everything listens on 127.0.0.1, on a free port picked by the kernel, and runs in threads of this process:

- :class:`RangeServer`: a threaded HTTP/1.1 file server with single-range ``Range`` support (200/206/416), byte and
  request counters, and fault modes (``ignore-range``, ``404``, ``403``, ``drop``, ``truncate``, ``slow``,
  ``flaky``) for error tests. Bodies go out with ``os.sendfile``, so benchmarks can push hundreds of MB through it.
- :class:`HubServer`: the part of the Hugging Face Hub HTTP API that ``huggingface_hub`` needs to read a model repo
  (model info, tree listing, ``resolve`` downloads with the ``X-Repo-Commit``/``X-Linked-*`` headers), with an
  optional bearer token. Same file serving, counters and fault modes as :class:`RangeServer`.
- :func:`lay_out_hf_cache`: writes a repo into a Hugging Face hub cache directory exactly as ``huggingface_hub``
  lays it out (``blobs/``, ``refs/``, ``snapshots/`` with relative symlinks).
- :class:`S3Server`: moto's S3 in server mode (``moto.server.ThreadedMotoServer``), with the environment a client
  (boto3, the Rust ``object_store`` crate's ``AmazonS3Builder::from_env``) needs to reach it.

Pointing ``huggingface_hub`` at a :class:`HubServer` in-process: ``HF_ENDPOINT`` is read once, when
``huggingface_hub`` is imported, so setting it later has no effect in this process. Either pass
``endpoint=server.url`` to ``HfApi``, ``hf_hub_download`` and ``snapshot_download``, or set the values of
:meth:`HubServer.hf_constants` on ``huggingface_hub.constants`` (``ENDPOINT`` alone is not enough:
``hf_hub_url`` formats ``HUGGINGFACE_CO_URL_TEMPLATE``, built from the endpoint at import time). Either way
``huggingface_hub.constants.HF_HUB_OFFLINE`` must be false: the test suite sets ``HF_HUB_OFFLINE=1`` before the
import, and offline mode refuses every request. Subprocesses get :meth:`HubServer.env` instead.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import hashlib
import json
import logging
import os
import re
import select
import shutil
import socket
import socketserver
import stat
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Literal, NamedTuple, get_args

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "LFS_SIZE_THRESHOLD",
    "LFS_SUFFIXES",
    "MODES",
    "ByteRange",
    "HubBlob",
    "HubServer",
    "Mode",
    "RangeNotSatisfiable",
    "RangeServer",
    "RequestRecord",
    "S3Server",
    "default_commit",
    "free_port",
    "hub_blob",
    "lay_out_hf_cache",
    "loopback_no_proxy",
    "parse_byte_range",
    "repo_folder_name",
]

Mode = Literal["normal", "ignore-range", "404", "403", "drop", "truncate", "slow", "flaky"]
"""How a server answers; see :class:`RangeServer`."""
MODES: frozenset[str] = frozenset(get_args(Mode))

HOST = "127.0.0.1"

# Files the Hub stores in LFS: anything over 10 MiB, and weights whatever their size (the default .gitattributes
# of a new Hub repo tracks these suffixes, among others).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
LFS_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx")

_SEND_CHUNK = 8 * 1024 * 1024  # bytes per os.sendfile call (or per read in the fallback)
_WRITE_TIMEOUT_S = 30.0  # a client that reads nothing for this long is dropped
_JOIN_TIMEOUT_S = 5.0
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_RANGE_RE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE)
_DISCONNECT_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN, errno.ESHUTDOWN})
_FIXED_DATE = "2024-01-01T00:00:00.000Z"  # createdAt/lastModified of every HubServer repo
_ACCESS_DENIED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\n"
)


def loopback_no_proxy(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``NO_PROXY``/``no_proxy`` of ``environ`` (default ``os.environ``) with 127.0.0.1 and localhost added.

    Clients that honour ``HTTP_PROXY`` (httpx in ``huggingface_hub``, reqwest in ``object_store``, botocore) would
    otherwise send requests for the local servers to a proxy of the developer's or the CI's environment.
    """
    environ = os.environ if environ is None else environ
    current = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    hosts = [host for host in current.split(",") if host.strip()]
    hosts += [host for host in (HOST, "localhost") if host not in hosts]
    value = ",".join(hosts)
    return {"NO_PROXY": value, "no_proxy": value}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------------------------------
# Range requests


class ByteRange(NamedTuple):
    """A satisfiable byte range: ``start`` and ``end`` inclusive, ``end`` already clamped to the file size."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class RangeNotSatisfiable(ValueError):
    """The ``Range`` header is valid but selects no byte of the file (answered with 416)."""


def parse_byte_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header selects from a file of ``size`` bytes (RFC 9110, section 14).

    Returns ``None`` when there is no header or it is one a server ignores (not ``bytes=``, several ranges, a
    first position after the last): the answer is then 200 with the whole file. ``bytes=a-b`` past the end is
    clamped to ``size - 1``; ``bytes=-n`` is the last ``n`` bytes (the whole file when ``n >= size``).

    Raises:
        RangeNotSatisfiable: ``a >= size``, or a suffix range of zero bytes or on an empty file.
    """
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


# --------------------------------------------------------------------------------------------------------------------
# HTTP servers


class RequestRecord(NamedTuple):
    """One answered request: ``path`` as sent (query string included), ``range`` the ``Range`` header."""

    method: str
    path: str
    range: str | None
    status: int


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means the peer went away (or the server shut the connection down while stopping)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _DISCONNECT_ERRNOS


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning server object; keeps connections alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body leave in separate writes, and Nagle's algorithm would hold the body back until
    # the client's delayed ACK of the headers (40 ms per request on Linux loopback).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def do_HEAD(self) -> None:
        self.server.owner._dispatch(self)

    def send_response(self, code: int, message: str | None = None) -> None:
        headers = getattr(self, "headers", None)
        self.server.owner._record(
            RequestRecord(
                method=getattr(self, "command", None) or "",
                path=getattr(self, "path", None) or "",
                range=headers.get("Range") if headers is not None else None,
                status=code,
            )
        )
        super().send_response(code, message)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as exc:
            if not _is_disconnect(exc):
                raise

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`RangeServer.requests` instead of a log."""


class _HTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` on 127.0.0.1 that tracks its connections and handler threads, to stop cleanly."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connection attempts when a client opens many at once (a fleet's
    # concurrent reads); the client then waits out TCP's SYN retries.
    request_queue_size = 1024

    def __init__(self, owner: _FileServer) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__((HOST, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{type(self.owner).__name__}-{client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not _is_disconnect(sys.exc_info()[1] or Exception()):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut every open connection down, which wakes handlers waiting for a next request or a slow client."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        with self._conn_lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(timeout)


class _Started:
    """``with server:`` starts it and stops it (both server kinds define ``start`` and ``stop``)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _FileServer(_Started):
    """What :class:`RangeServer` and :class:`HubServer` share: the HTTP server, counters, modes, file serving."""

    def __init__(self, mode: Mode = "normal", delay: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        self.mode: Mode = mode
        self.delay = delay
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0  # answers being written
        self._bytes_sent = 0
        self._requests: list[RequestRecord] = []
        self._flaky_seen: set[str] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve from a background thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.url}")
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection (idle keep-alive ones too) and join all threads. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in the "slow" mode
        httpd.shutdown()
        httpd.close_connections()
        httpd.join_handlers(_JOIN_TIMEOUT_S)
        httpd.server_close()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT_S)
        self._httpd = self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://{HOST}:{self.port}"

    # -- counters -----------------------------------------------------------------------------------------------------

    # A client can have a whole answer before the handler thread has counted the last bytes it wrote: the counters
    # are read once no answer is being written (or after SETTLE_TIMEOUT_S), so a test that got its answer reads a
    # count that includes it.
    SETTLE_TIMEOUT_S = 2.0

    def wait_idle(self, timeout: float = SETTLE_TIMEOUT_S) -> bool:
        """Wait until no answer is being written; ``False`` if one still is after ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def bytes_sent(self) -> int:
        """Body bytes written to sockets so far, all requests together (headers not counted)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, self.SETTLE_TIMEOUT_S)
            return self._bytes_sent

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the log of answered requests, oldest first (recorded when the status line is sent)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, self.SETTLE_TIMEOUT_S)
            return list(self._requests)

    def reset(self) -> None:
        """Clear :attr:`bytes_sent` and :attr:`requests` (the "flaky" mode keeps the paths it has seen)."""
        with self._lock:
            self._bytes_sent = 0
            self._requests.clear()

    def _count(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # -- request handling ---------------------------------------------------------------------------------------------

    def _dispatch(self, h: _Handler) -> None:
        """Apply the request-level modes ("slow", "404", "403", "flaky"), then route with :meth:`_respond`."""
        mode = self.mode
        if mode == "slow" and self._stopping.wait(self.delay):
            h.close_connection = True  # stopping: leave without an answer
            return
        with self._lock:
            self._in_flight += 1
        try:
            self._answer(h, mode)
        finally:
            with self._idle:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.notify_all()

    def _answer(self, h: _Handler, mode: Mode) -> None:
        if mode == "404":
            self._send_body(h, 404, b"Not Found\n", {"Content-Type": "text/plain"})
        elif mode == "403":
            self._send_body(h, 403, _ACCESS_DENIED_XML, {"Content-Type": "application/xml"})
        elif mode == "flaky" and h.command == "GET" and self._first_get(urllib.parse.urlsplit(h.path).path):
            self._send_body(h, 503, b"Service Unavailable\n", {"Content-Type": "text/plain", "Retry-After": "0"})
        else:
            self._respond(h)

    def _first_get(self, path: str) -> bool:
        with self._lock:
            first = path not in self._flaky_seen
            self._flaky_seen.add(path)
            return first

    def _respond(self, h: _Handler) -> None:
        raise NotImplementedError

    def _send_body(self, h: _Handler, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """A complete answer with a small in-memory body (none for HEAD, with the same Content-Length)."""
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)
            self._count(len(body))

    def _send_json(self, h: _Handler, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload, indent=None, separators=(",", ":")).encode()
        self._send_body(h, status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    def _serve_file(
        self, h: _Handler, path: Path, *, etag: str | None = None, headers: Mapping[str, str] | None = None
    ) -> bool:
        """Answer GET/HEAD with the regular file at ``path``, honouring a single ``Range`` and the body modes.

        ``etag`` (quoted) replaces the default one built from size, mtime and inode; ``headers`` are added to
        every answer but the 416. Returns ``False``, having sent nothing, when ``path`` is not a regular file.
        """
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return False
            file = open(path, "rb")  # noqa: SIM115 - closed below; the stat above keeps FIFOs out
        except OSError:
            return False
        with file:
            st = os.fstat(file.fileno())
            size = st.st_size
            common = {
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
                "ETag": etag or f'"{size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"',
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                **(headers or {}),
            }
            if h.command == "HEAD":
                self._send_head(h, 200, {**common, "Content-Length": str(size)})
                return True
            range_header = None if self.mode == "ignore-range" else h.headers.get("Range")
            try:
                byte_range = parse_byte_range(range_header, size)
            except RangeNotSatisfiable:
                self._send_body(h, 416, b"", {"Content-Range": f"bytes */{size}"})
                return True
            if byte_range is None:
                status, start, length = 200, 0, size
            else:
                status, start, length = 206, byte_range.start, byte_range.length
                common["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
            to_send = declared = length
            if self.mode == "drop":
                to_send = length // 2
            elif self.mode == "truncate":
                to_send = declared = length // 2
            self._send_head(h, status, {**common, "Content-Length": str(declared)})
            self._send_file_bytes(h, file, start, to_send)
            if self.mode == "drop":
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
        return True

    @staticmethod
    def _send_head(h: _Handler, status: int, headers: Mapping[str, str]) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()

    def _send_file_bytes(self, h: _Handler, file: BinaryIO, offset: int, count: int) -> None:
        """Write ``count`` bytes of ``file`` from ``offset``: ``os.sendfile`` where it works, else 8 MiB reads.

        :attr:`bytes_sent` grows with each write the kernel accepted; a client that goes away ends the connection
        quietly (the "ignore-range" mode sends whole files to clients that wanted a few bytes).
        """
        sock: socket.socket = h.connection
        use_sendfile = hasattr(os, "sendfile")
        try:
            while count > 0:
                chunk = min(count, _SEND_CHUNK)
                if use_sendfile:
                    try:
                        sent = os.sendfile(sock.fileno(), file.fileno(), offset, chunk)
                    except BlockingIOError:  # a socket with a timeout is non-blocking underneath
                        self._wait_writable(sock)
                        continue
                    except OSError as exc:
                        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
                            raise
                        use_sendfile = False
                        continue
                    if sent == 0:  # the file shrank: the promised Content-Length cannot be kept
                        h.close_connection = True
                        break
                    self._count(sent)
                else:
                    file.seek(offset)
                    data = file.read(chunk)
                    if not data:
                        h.close_connection = True
                        break
                    sent = self._send_all(sock, memoryview(data))
                offset += sent
                count -= sent
        except OSError as exc:
            if not _is_disconnect(exc):
                raise
            h.close_connection = True

    def _send_all(self, sock: socket.socket, view: memoryview) -> int:
        total = 0
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                self._wait_writable(sock)
                continue
            self._count(sent)
            total += sent
            view = view[sent:]
        return total

    @staticmethod
    def _wait_writable(sock: socket.socket) -> None:
        _, writable, _ = select.select([], [sock], [], _WRITE_TIMEOUT_S)
        if not writable:
            raise TimeoutError(f"client read nothing for {_WRITE_TIMEOUT_S} s")


def _safe_join(root: Path, relpath: str) -> Path | None:
    """``root / relpath`` for a URL path already unquoted, or ``None`` if it tries to leave ``root``."""
    parts = [part for part in relpath.split("/") if part not in ("", ".")]
    if any(part == ".." or "\x00" in part or "\\" in part for part in parts):
        return None
    return root.joinpath(*parts)


class RangeServer(_FileServer):
    """A threaded HTTP/1.1 server of the files under ``root``, with single byte-range requests.

    ``GET``/``HEAD /<relpath>`` answer with the file (``Accept-Ranges: bytes``, ``Content-Length``, a quoted
    ``ETag`` built from size, mtime and inode, ``Last-Modified``, ``Content-Type: application/octet-stream``).
    ``Range: bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` get 206 with ``Content-Range`` (``b`` clamped to the last
    byte), a first byte past the end gets 416 with ``Content-Range: bytes */size``, no ``Range`` (or one ignored, see
    :func:`parse_byte_range`) gets 200 with the whole file. A missing file, a directory or a path out of ``root``:
    404. Connections stay open between requests.

    ``mode`` makes the server misbehave, for error tests:

    - ``"ignore-range"``: every GET gets 200 and the whole file whatever its ``Range`` (HEAD still advertises
      ``Accept-Ranges: bytes``); a client hanging up early is fine, :attr:`bytes_sent` counts what was written.
    - ``"404"`` / ``"403"``: every request gets 404, or 403 with a small S3-like XML body.
    - ``"drop"``: a GET gets the right status and headers (``Content-Length`` of the whole selected range), then half
      the body, then the connection is shut down. HEAD as normal.
    - ``"truncate"``: a GET gets a well-formed answer, but with half the body: ``Content-Length`` is what is sent
      while ``Content-Range`` still names the whole selected range (a 200 without ``Range`` is half the file).
    - ``"slow"``: every request waits ``delay`` seconds, then is answered normally; :meth:`stop` interrupts the wait.
    - ``"flaky"``: the first GET of each path (query string aside) gets 503 with ``Retry-After: 0``, later ones are
      answered normally (HEAD as normal).

    ``mode`` and ``delay`` are plain attributes and may be changed while the server runs.
    """

    def __init__(self, root: Path | str, mode: Mode = "normal", delay: float = 0.0) -> None:
        super().__init__(mode=mode, delay=delay)
        self.root = Path(root)

    def _respond(self, h: _Handler) -> None:
        relpath = urllib.parse.unquote(urllib.parse.urlsplit(h.path).path)
        target = _safe_join(self.root, relpath)
        if target is None or not self._serve_file(h, target):
            self._send_body(h, 404, b"Not Found\n", {"Content-Type": "text/plain"})


# --------------------------------------------------------------------------------------------------------------------
# Hugging Face Hub: blobs, the cache layout, the HTTP API


def repo_folder_name(repo_id: str) -> str:
    """``models--org--name``: the folder of a model repo in the hub cache."""
    return "--".join(["models", *repo_id.split("/")])


def default_commit(repo_id: str, revision: str = "main") -> str:
    """The commit sha (40 hex) :class:`HubServer` and :func:`lay_out_hf_cache` give a repo: sha1 of its id.

    Revisions other than ``"main"`` get a different commit (sha1 of ``"{repo_id}@{revision}"``).
    """
    key = repo_id if revision == "main" else f"{repo_id}@{revision}"
    return hashlib.sha1(key.encode()).hexdigest()


@dataclass(frozen=True)
class HubBlob:
    """How the Hub stores one file.

    ``git_sha1`` is the git object id of what git stores (the LFS pointer for an LFS file), ``sha256`` the LFS
    object id (LFS files only). :attr:`etag` names the blob in the hub cache, as ``huggingface_hub`` does.
    """

    size: int
    lfs: bool
    git_sha1: str
    sha256: str | None = None
    pointer_size: int | None = None

    @property
    def etag(self) -> str:
        """The unquoted ETag the Hub sends for the file (``X-Linked-Etag`` for LFS files): the blob's cache name."""
        return self.sha256 if self.sha256 is not None else self.git_sha1


def _is_lfs(name: str, size: int) -> bool:
    return size > LFS_SIZE_THRESHOLD or name.endswith(LFS_SUFFIXES)


def _hash_file(path: Path, digest: Any) -> None:
    with open(path, "rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)


def hub_blob(path: Path) -> HubBlob:
    """Hash the file at ``path`` as the Hub would: sha256 + LFS pointer for weights and large files, else git sha1."""
    size = path.stat().st_size
    if _is_lfs(path.name, size):
        sha256 = hashlib.sha256()
        _hash_file(path, sha256)
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256.hexdigest()}\nsize {size}\n"
        pointer_blob = pointer.encode()
        git_sha1 = hashlib.sha1(b"blob %d\0" % len(pointer_blob) + pointer_blob).hexdigest()
        return HubBlob(size, True, git_sha1, sha256.hexdigest(), len(pointer_blob))
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    _hash_file(path, sha1)
    return HubBlob(size, False, sha1.hexdigest())


def _walk_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` (symlinks to files included, symlinked folders not entered), sorted."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(Path(folder, name) for name in files if Path(folder, name).is_file())
    return sorted(found)


def lay_out_hf_cache(
    cache_dir: Path | str, repo_id: str, source: Path | str, revision: str = "main", commit: str | None = None
) -> str:
    """Copy every file under ``source`` into the hub cache ``cache_dir`` (what ``HF_HUB_CACHE`` names) as a model repo.

    The layout is ``huggingface_hub``'s: ``models--{org}--{name}/blobs/<etag>`` (sha256 for LFS files, see
    :func:`hub_blob`, git blob sha1 otherwise), ``refs/<revision>`` holding the commit (unless the revision is the
    commit itself) and ``snapshots/<commit>/<relpath>`` as relative symlinks to the blobs. Calling it again adds a
    revision or replaces the snapshot's links. Returns the commit: ``commit``, else ``revision`` when it is a
    commit sha, else :func:`default_commit` (the one :class:`HubServer` reports for the same repo).
    """
    source = Path(source)
    if not source.is_dir():
        raise NotADirectoryError(f"not a directory: {source}")
    if commit is None:
        commit = revision if _COMMIT_RE.fullmatch(revision) else default_commit(repo_id, revision)
    elif not _COMMIT_RE.fullmatch(commit):
        raise ValueError(f"commit must be 40 lowercase hex digits, got {commit!r}")
    repo_dir = Path(cache_dir) / repo_folder_name(repo_id)
    blobs_dir = repo_dir / "blobs"
    snapshot_dir = repo_dir / "snapshots" / commit
    blobs_dir.mkdir(parents=True, exist_ok=True)
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    for file in _walk_files(source):
        blob_path = blobs_dir / hub_blob(file).etag
        if not blob_path.exists():
            partial = blob_path.with_name(blob_path.name + ".incomplete")
            shutil.copyfile(file, partial)
            os.replace(partial, blob_path)
        link = snapshot_dir / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob_path, link.parent))
    if revision != commit:
        ref = repo_dir / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return commit


def _truthy(values: list[str] | None) -> bool:
    """Whether the last value of a query parameter says yes (``?recursive=true``, ``?blobs=1``)."""
    return values is not None and len(values) > 0 and values[-1].lower() in ("1", "true", "yes")


class HubServer(_FileServer):
    """A stand-in for the Hugging Face Hub HTTP API, serving model repos from local folders (for ``HF_ENDPOINT``).

    ``repos`` maps a repo id ``"org/name"`` to the folder holding its files. Every repo has one commit,
    :func:`default_commit` of its id (:meth:`commit`), reachable as revision ``"main"`` or as the sha itself. Routes:

    - ``GET /api/models/{org}/{name}`` and ``.../revision/{rev}``: the model info (``id``, ``modelId``, ``sha``,
      ``siblings`` with ``rfilename``, plus ``size``/``blobId``/``lfs`` with ``?blobs=true``, ``private: false``).
    - ``GET /api/models/{org}/{name}/tree/{rev}[/{path}]``: the tree listing (``?recursive=true``), which
      ``snapshot_download`` reads; one page, no ``Link`` header.
    - ``GET``/``HEAD /{org}/{name}/resolve/{rev}/{path}``: the file, with ranges as in :class:`RangeServer`, plus
      ``X-Repo-Commit`` and ``ETag`` (git blob sha1), or for LFS files (weights, > 10 MiB) ``ETag`` and
      ``X-Linked-Etag`` both the sha256 and ``X-Linked-Size``. No redirect: the file comes straight back.

    An unknown repo, revision or file gets 404 with ``X-Error-Code`` ``RepoNotFound``, ``RevisionNotFound`` or
    ``EntryNotFound`` (the last with ``X-Repo-Commit``), which ``huggingface_hub`` turns into its own errors. With a
    ``token``, a request without ``Authorization: Bearer <token>`` gets 401 (``X-Error-Code: GatedRepo``, i.e.
    ``GatedRepoError``), one with another token 401 "Invalid credentials in Authorization header".
    ``mode``/``delay`` work as in :class:`RangeServer` on every route. Each file is hashed (sha256 for LFS files)
    on the first request that needs it, and again only once its size, mtime or inode change.
    """

    def __init__(
        self,
        repos: Mapping[str, Path | str],
        token: str | None = None,
        *,
        mode: Mode = "normal",
        delay: float = 0.0,
    ) -> None:
        super().__init__(mode=mode, delay=delay)
        for repo_id in repos:
            if repo_id.count("/") != 1 or not all(repo_id.split("/")):
                raise ValueError(f"repo id must be 'org/name', got {repo_id!r}")
        self.repos: dict[str, Path] = {repo_id: Path(folder) for repo_id, folder in repos.items()}
        self.token = token
        self._blobs: dict[tuple[str, int, int, int], HubBlob] = {}

    def commit(self, repo_id: str) -> str:
        """The commit of ``repo_id``: what revision ``"main"`` resolves to (:func:`default_commit`)."""
        return default_commit(repo_id)

    def hf_constants(self) -> dict[str, object]:
        """Values to set on ``huggingface_hub.constants`` so in-process calls without ``endpoint=`` come here."""
        return {
            "ENDPOINT": self.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False,
        }

    def env(self) -> dict[str, str]:
        """Variables for a subprocess to use this server: ``HF_ENDPOINT``, ``HF_HUB_OFFLINE=0``, ``HF_TOKEN`` when the
        server has a token (to merge into a copy of ``os.environ``; see also :func:`loopback_no_proxy`)."""
        env = {"HF_ENDPOINT": self.url, "HF_HUB_OFFLINE": "0"}
        if self.token is not None:
            env["HF_TOKEN"] = self.token
        return env

    # -- routing ------------------------------------------------------------------------------------------------------

    def _respond(self, h: _Handler) -> None:
        split = urllib.parse.urlsplit(h.path)
        if self.token is not None and not self._authorized(h):
            return
        segments = split.path.split("/")[1:]  # still quoted: a revision may hold an encoded "/"
        query = urllib.parse.parse_qs(split.query)
        if segments[:2] == ["api", "models"] and len(segments) >= 4:
            self._api(h, segments[2:], query)
        elif len(segments) >= 5 and segments[2] == "resolve":
            self._resolve(h, segments)
        else:
            self._send_body(h, 404, b"Not Found\n", {"Content-Type": "text/plain"})

    def _authorized(self, h: _Handler) -> bool:
        given = h.headers.get("Authorization")
        if given == f"Bearer {self.token}":
            return True
        if given is None:
            message = "Access to this model is restricted. You must have access to it and be authenticated."
            self._hub_error(h, 401, "GatedRepo", message)
        else:
            self._hub_error(h, 401, None, "Invalid credentials in Authorization header")
        return False

    def _hub_error(
        self,
        h: _Handler,
        status: int,
        code: str | None,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code is not None:
            extra["X-Error-Code"] = code
        self._send_json(h, status, {"error": message}, extra)

    def _repo(self, h: _Handler, org: str, name: str, revision: str) -> tuple[str, str] | None:
        """``(repo_id, commit)``, or ``None`` after answering 404 for an unknown repo or revision."""
        repo_id = f"{urllib.parse.unquote(org)}/{urllib.parse.unquote(name)}"
        if repo_id not in self.repos:
            self._hub_error(h, 404, "RepoNotFound", "Repository not found")
            return None
        commit = self.commit(repo_id)
        revision = urllib.parse.unquote(revision)
        if revision not in ("main", commit):
            self._hub_error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo_id, commit

    def _api(self, h: _Handler, rest: list[str], query: dict[str, list[str]]) -> None:
        org, name, more = rest[0], rest[1], rest[2:]
        if not more:
            found = self._repo(h, org, name, "main")
            if found is not None:
                self._model_info(h, *found, blobs=_truthy(query.get("blobs")))
        elif more[0] == "revision" and len(more) == 2:
            found = self._repo(h, org, name, more[1])
            if found is not None:
                self._model_info(h, *found, blobs=_truthy(query.get("blobs")))
        elif more[0] == "tree" and len(more) >= 2:
            found = self._repo(h, org, name, more[1])
            if found is not None:
                subpath = "/".join(urllib.parse.unquote(part) for part in more[2:])
                self._tree(h, found[0], found[1], subpath, recursive=_truthy(query.get("recursive")))
        else:
            self._send_body(h, 404, b"Not Found\n", {"Content-Type": "text/plain"})

    def _resolve(self, h: _Handler, segments: list[str]) -> None:
        found = self._repo(h, segments[0], segments[1], segments[3])
        if found is None:
            return
        repo_id, commit = found
        relpath = "/".join(urllib.parse.unquote(part) for part in segments[4:])
        target = _safe_join(self.repos[repo_id], relpath)
        blob = self._blob(target) if target is not None else None
        headers = {"X-Repo-Commit": commit}
        if blob is not None and blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.etag}"'
            headers["X-Linked-Size"] = str(blob.size)
        if target is None or blob is None or not self._serve_file(h, target, etag=f'"{blob.etag}"', headers=headers):
            self._hub_error(h, 404, "EntryNotFound", f"Entry not found: {relpath}", {"X-Repo-Commit": commit})

    # -- payloads -----------------------------------------------------------------------------------------------------

    def _blob(self, path: Path) -> HubBlob | None:
        """:func:`hub_blob` of a regular file, cached while its size, mtime and inode stay; ``None`` otherwise."""
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            cached = self._blobs.get(key)
        if cached is None:
            cached = hub_blob(path)
            with self._lock:
                self._blobs[key] = cached
        return cached

    def _files(self, repo_id: str) -> Iterable[tuple[str, Path]]:
        root = self.repos[repo_id]
        return ((file.relative_to(root).as_posix(), file) for file in _walk_files(root))

    def _model_info(self, h: _Handler, repo_id: str, commit: str, *, blobs: bool) -> None:
        siblings: list[dict[str, Any]] = []
        used_storage = 0
        for relpath, file in self._files(repo_id):
            sibling: dict[str, Any] = {"rfilename": relpath}
            blob = self._blob(file) if blobs else None
            if blob is not None:
                sibling.update(size=blob.size, blobId=blob.git_sha1)
                if blob.lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
                used_storage += blob.size
            siblings.append(sibling)
        org = repo_id.split("/")[0]
        payload = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": org,
            "sha": commit,
            "lastModified": _FIXED_DATE,
            "createdAt": _FIXED_DATE,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if blobs:
            payload["usedStorage"] = used_storage
        self._send_json(h, 200, payload)

    def _tree(self, h: _Handler, repo_id: str, commit: str, subpath: str, *, recursive: bool) -> None:
        root = self.repos[repo_id]
        base = _safe_join(root, subpath)
        if base is None or not base.is_dir():
            self._hub_error(h, 404, "EntryNotFound", f"Entry not found: {subpath}", {"X-Repo-Commit": commit})
            return
        base_rel = base.relative_to(root).as_posix()
        dir_prefix = "" if base_rel == "." else base_rel + "/"
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for relpath, file in self._files(repo_id):
            if not relpath.startswith(dir_prefix):
                continue
            parts = relpath[len(dir_prefix) :].split("/")
            if len(parts) > 1:
                depth = len(parts) if recursive else 2
                folders.update(dir_prefix + "/".join(parts[:i]) for i in range(1, depth))
                if not recursive:
                    continue
            blob = self._blob(file)
            if blob is None:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": blob.git_sha1, "size": blob.size, "path": relpath}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
            entries.append(entry)
        for folder in folders:
            oid = hashlib.sha1(f"{repo_id}:{folder}".encode()).hexdigest()
            entries.append({"type": "directory", "oid": oid, "size": 0, "path": folder})
        self._send_json(h, 200, sorted(entries, key=lambda entry: entry["path"]))


# --------------------------------------------------------------------------------------------------------------------
# S3 through moto


class S3Server(_Started):
    """moto's S3 in server mode on 127.0.0.1, in a thread of this process.

    moto keeps its state in module globals, so every moto server (and ``mock_aws``) of a process shares the same
    buckets. To keep state from leaking, :meth:`start` wipes it (``POST /moto-api/reset``), and only one
    ``S3Server`` may run at a time (starting a second raises ``RuntimeError``): one per test session is the intent
    (the ``s3_server`` fixture), tests use their own bucket names or :meth:`reset`.
    """

    ACCESS_KEY = "testing"
    SECRET_KEY = "testing"
    REGION = "us-east-1"

    _running: ClassVar[S3Server | None] = None
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._moto: Any = None
        self._endpoint: str | None = None
        self._clients: list[Any] = []

    def start(self) -> Self:
        """Start moto on ``port`` (0: any free one) and empty its state; returns ``self``."""
        from moto.server import ThreadedMotoServer

        # moto answers through werkzeug, which logs every request and, on its first one, adds a handler bound to
        # the sys.stderr of that moment (under pytest, one test's capture). Unless someone configured the logger:
        # drop the access log, and give it a handler so werkzeug adds none.
        if self._port:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, self._port))  # fails here: ThreadedMotoServer.start would wait forever
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET and not werkzeug_log.handlers:
            werkzeug_log.setLevel(logging.WARNING)
            werkzeug_log.addHandler(logging.NullHandler())
        with S3Server._running_lock:
            if S3Server._running is not None:
                raise RuntimeError(f"an S3Server already runs at {S3Server._running.endpoint}; moto state is global")
            moto = ThreadedMotoServer(ip_address=HOST, port=self._port, verbose=False)
            moto.start()
            S3Server._running = self
        self._moto = moto
        host, port = moto.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        self.reset()
        return self

    def stop(self) -> None:
        """Close the boto3 clients handed out, stop moto and close its socket. Idempotent."""
        if self._moto is None:
            return
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._moto.stop()
        server = getattr(self._moto, "_server", None)  # ThreadedMotoServer.stop leaves the listening socket open
        if server is not None:
            server.server_close()
        self._moto = None
        self._endpoint = None
        with S3Server._running_lock:
            if S3Server._running is self:
                S3Server._running = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._endpoint is None:
            raise RuntimeError("S3Server is not running")
        return self._endpoint

    def env(self) -> dict[str, str]:
        """What boto3 and ``object_store``'s ``AmazonS3Builder::from_env`` need to reach this server (path style)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "AWS_REGION": self.REGION,
            "AWS_DEFAULT_REGION": self.REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    @staticmethod
    def isolation_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Variables that keep AWS clients off the developer's setup: no config or credentials file, no instance
        metadata, no proxy for 127.0.0.1 (:func:`loopback_no_proxy` of ``environ``, default ``os.environ``)."""
        return {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **loopback_no_proxy(environ),
        }

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess: ``base`` (default ``os.environ``) without any ``AWS_*`` variable, plus
        :meth:`env` and :meth:`isolation_env`."""
        source = os.environ if base is None else base
        env = {name: value for name, value in source.items() if not name.startswith("AWS_")}
        env.update(self.env())
        env.update(self.isolation_env(source))
        return env

    def reset(self) -> None:
        """Delete every bucket and object (of every moto backend in this process)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with opener.open(request, timeout=30) as response:
            response.read()

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style addressing, no proxy), closed by :meth:`stop`."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY, region_name=self.REGION
        )
        client = session.client(
            "s3",
            endpoint_url=self.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, proxies={}),
        )
        self._clients.append(client)
        return client

    def upload_tree(self, bucket: str, local_dir: Path | str, prefix: str = "") -> list[str]:
        """Create ``bucket`` if needed and upload every file under ``local_dir`` as ``prefix/<relpath>``.

        Returns the keys written, sorted. An empty ``prefix`` puts the files at the top of the bucket.
        """
        local_dir = Path(local_dir)
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
        keys = []
        prefix = prefix.strip("/")
        for file in _walk_files(local_dir):
            relpath = file.relative_to(local_dir).as_posix()
            key = f"{prefix}/{relpath}" if prefix else relpath
            client.upload_file(str(file), bucket, key)
            keys.append(key)
        return keys
