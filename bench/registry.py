"""Registry benchmark: registrations per second and list-page latency, per backend.

For each metadata backend (SQLite, PostgreSQL) this starts a fresh `modelyard serve`
process, then over loopback HTTP:

1. measures the HTTP ceiling: `GET /healthz` from C concurrent workers for ~5 s;
2. registers N small models (`file://` URL of a ~1 KB file) from C workers;
3. walks every list page sequentially, following `nextLink` as-is, and once more
   filtered by name.

It prints each backend's numbers next to that same server's `/healthz` rate, as
ratios, so results compare across machines. Run: `.venv/bin/python bench/registry.py`
(`make bench`); `--help` lists the knobs. Exits non-zero when any request fails.

The client is one thread per worker, each with its own keep-alive connection
(stdlib `http.client` unless `--client httpx`: see `StdlibConnection`). It shares the
machine's cores with the server and, for PostgreSQL, the database, so absolute
numbers are a floor; the ratios to /healthz carry across machines better. Each phase
also shows the server process's CPU per request (Linux): near 1 core busy means the
server, not the client or the database, is the limit.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from bench._server import BenchError, ServerProcess, load_average, percentile, positive_int

API_VERSION = "2017-09-01-preview"
ACCOUNT_PATH = "/api/subscriptions/bench/resourceGroups/bench/accounts/bench"
BACKENDS = ("sqlite", "postgresql")
HEALTHZ_SECONDS = 5.0
NAMES = 50  # models are named m0 .. m49, round robin
FILTER_NAME = "m7"
PROGRESS_EVERY = 2000
MODEL_BYTES = 1024
SERIAL_HEALTHZ_SECONDS = 2.0
CLIENTS = ("stdlib", "httpx")


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Milliseconds, over every timed request of one phase."""

    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ordered = sorted(seconds)
        return cls(percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000)


@dataclass(frozen=True)
class HealthResult:
    requests: int
    seconds: float
    per_second: float
    latency: Latency
    server_cpu_ms: float | None = None  # server process CPU per request (Linux)


@dataclass(frozen=True)
class RegisterResult:
    models: int
    seconds: float
    per_second: float
    latency: Latency
    server_cpu_ms: float | None = None  # server process CPU per request (Linux)


@dataclass(frozen=True)
class WalkResult:
    pages: int
    items: int
    seconds: float
    items_per_second: float
    latency: Latency
    server_cpu_ms: float | None = None  # server process CPU per request (Linux)


@dataclass(frozen=True)
class BackendResult:
    backend: str
    healthz: HealthResult  # C workers: the HTTP ceiling
    healthz_serial: HealthResult  # one worker: the baseline for the sequential page walk
    register: RegisterResult
    walk: WalkResult
    filtered_walk: WalkResult

    @property
    def register_vs_healthz(self) -> float:
        """Registrations/s as a fraction of the HTTP ceiling (1.0 = as fast as /healthz)."""
        return self.register.per_second / self.healthz.per_second

    @property
    def register_p50_vs_healthz(self) -> float:
        """Registration p50 in multiples of /healthz p50, both at C workers."""
        return self.register.latency.p50_ms / self.healthz.latency.p50_ms

    @property
    def page_p50_vs_healthz(self) -> float:
        """List-page p50 in multiples of /healthz p50, both one request at a time."""
        return self.walk.latency.p50_ms / self.healthz_serial.latency.p50_ms


# -- the server under test ---------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one run (dropped afterwards); yields its SQLAlchemy URL."""
    name = f"modelyard_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    scheme = "postgresql+psycopg" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    try:
        yield urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def running_server(backend: str, pg_admin_url: str) -> Iterator[tuple[ServerProcess, Path]]:
    """A started server on a fresh home (and database); yields it and the model file."""
    scratch = Path(tempfile.mkdtemp(prefix=f"modelyard-bench-{backend}-"))
    server: ServerProcess | None = None
    try:
        workdir = scratch / "work"
        workdir.mkdir()
        model_file = workdir / "model.bin"
        model_file.write_bytes(os.urandom(MODEL_BYTES))
        with _database_for(backend, pg_admin_url) as database_url:
            server = ServerProcess(scratch / "home", workdir, database_url)
            try:
                server.start()
                yield server, model_file
            finally:
                server.stop()
    except BenchError:
        raise
    except Exception as exc:
        tail = server.log_tail() if server is not None else ""
        raise BenchError(f"{backend}: {exc!r}\n{tail}".rstrip()) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _database_for(backend: str, pg_admin_url: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None  # the server's default: SQLite in its home
        return
    with postgres_database(pg_admin_url) as url:
        yield url


# -- load generation ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content: bytes

    def describe(self) -> str:
        return f"{self.status} {self.content[:300].decode(errors='replace')}"


class Connection(Protocol):
    """One keep-alive connection to the server: the client side of every timed request."""

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Reply:
        """`url` is a path on the server or an absolute URI (a `nextLink`), used as-is."""
        ...

    def close(self) -> None: ...


class StdlibConnection:
    """`http.client`: ~0.1 ms of client CPU per request, ~6x less than `httpx.Client`.

    On a 2-core machine that difference decides the /healthz ceiling: measured with
    httpx it is the client's (~1,500 req/s here), not the server's (~4,000).
    """

    def __init__(self, server: ServerProcess) -> None:
        self._origin = server.url
        self._headers = {"Authorization": f"Bearer {server.token}"}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120.0)

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Reply:
        if body is None:
            self._http.request(method, self._path_of(url), headers=self._headers)
        else:
            payload = json.dumps(body).encode()
            self._http.request(method, self._path_of(url), payload, self._json_headers)
        response = self._http.getresponse()
        return Reply(response.status, response.read())  # read all: the connection is reused

    def close(self) -> None:
        self._http.close()

    def _path_of(self, url: str) -> str:
        """The request target for this connection; a link to elsewhere is a server bug."""
        if not url.startswith(("http://", "https://")):
            return url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self._origin:
            raise BenchError(f"link {url} points away from the server at {self._origin}")
        return urlunsplit(("", "", parts.path, parts.query, ""))


class HttpxConnection:
    """`httpx.Client` (`--client httpx`), for comparison with what SDK users see."""

    def __init__(self, server: ServerProcess) -> None:
        headers = {"Authorization": f"Bearer {server.token}"}
        self._http = httpx.Client(base_url=server.url, headers=headers, timeout=120.0)

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Reply:
        response = self._http.request(method, url, json=body)
        return Reply(response.status_code, response.content)

    def close(self) -> None:
        self._http.close()


def connect(server: ServerProcess, client: str) -> Connection:
    return HttpxConnection(server) if client == "httpx" else StdlibConnection(server)


_TRANSPORT_ERRORS = (OSError, http.client.HTTPException, httpx.HTTPError)


class CpuMeter:
    """The server's CPU per request over consecutive phases: is the server CPU-bound?"""

    MIN_PHASE_S = 0.3  # /proc counts CPU in 10 ms ticks: shorter phases would be noise

    def __init__(self, server: ServerProcess) -> None:
        self._server = server
        self._last = (server.cpu_seconds(), time.perf_counter())

    def ms_per_request(self, requests: int) -> float | None:
        """Server CPU since the previous call (or creation), in ms per request."""
        now = (self._server.cpu_seconds(), time.perf_counter())
        (cpu_before, wall_before), self._last = self._last, now
        cpu_now, wall_now = now
        if cpu_now is None or cpu_before is None or requests == 0:
            return None
        if wall_now - wall_before < self.MIN_PHASE_S:
            return None
        return (cpu_now - cpu_before) * 1000 / requests


def _in_parallel(workers: int, job: Callable[[int], list[float]]) -> list[float]:
    """Run `job(worker_index)` on `workers` threads; all their latencies, merged."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(job, range(workers)))
    return list(itertools.chain.from_iterable(parts))


def measure_healthz(
    server: ServerProcess, client: str, workers: int, seconds: float
) -> HealthResult:
    """`GET /healthz` from `workers` connections for `seconds`: the HTTP ceiling."""
    start = time.perf_counter()
    deadline = start + seconds
    failures: list[str] = []

    def worker(_: int) -> list[float]:
        latencies: list[float] = []
        with closing(connect(server, client)) as conn:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                reply = conn.request("GET", "/healthz")
                latencies.append(time.perf_counter() - began)
                if reply.status != 200:
                    failures.append(f"/healthz: {reply.describe()}")
        return latencies

    latencies = _in_parallel(workers, worker)
    elapsed = time.perf_counter() - start
    if failures:
        raise BenchError(f"{len(failures)} /healthz requests failed; first: {failures[0]}")
    return HealthResult(len(latencies), elapsed, len(latencies) / elapsed, Latency.of(latencies))


def register_models(
    server: ServerProcess, client: str, model_file: Path, models: int, concurrency: int
) -> RegisterResult:
    next_index = itertools.count()  # next() on a count is atomic under the GIL
    target = f"{ACCOUNT_PATH}/models?api-version={API_VERSION}"
    model_url = model_file.as_uri()
    done_lock = threading.Lock()
    done = 0
    failures: list[str] = []

    def worker(_: int) -> list[float]:
        nonlocal done
        latencies: list[float] = []
        conn = connect(server, client)
        try:
            while (i := next(next_index)) < models:
                body = {
                    "name": f"m{i % NAMES}",
                    "url": model_url,
                    "mimeType": "application/octet-stream",
                    "tags": ["bench"],
                }
                began = time.perf_counter()
                try:
                    reply = conn.request("POST", target, body)
                except _TRANSPORT_ERRORS as exc:
                    failures.append(f"model {i}: {exc!r}")
                    conn.close()
                    conn = connect(server, client)  # a fresh connection for the rest
                    continue
                latencies.append(time.perf_counter() - began)
                if reply.status != 200:
                    failures.append(f"model {i}: {reply.describe()}")
                with done_lock:
                    done += 1
                    if done % PROGRESS_EVERY == 0:
                        print(f"    registered {done:,}/{models:,}", flush=True)
        finally:
            conn.close()
        return latencies

    start = time.perf_counter()
    latencies = _in_parallel(concurrency, worker)
    seconds = time.perf_counter() - start
    if failures:
        shown = "\n      ".join(failures[:5])
        raise BenchError(
            f"{len(failures)} of {models} registrations failed; first ones:\n      {shown}"
        )
    return RegisterResult(models, seconds, models / seconds, Latency.of(latencies))


def walk_pages(
    server: ServerProcess, client: str, page_size: int, expected: int, name: str | None = None
) -> WalkResult:
    """Follow `nextLink` from the first page to the last, one request at a time."""
    query = f"api-version={API_VERSION}&count={page_size}" + (f"&name={name}" if name else "")
    next_link: str | None = f"{ACCOUNT_PATH}/models?{query}"
    ids: set[str] = set()
    items = 0
    latencies: list[float] = []
    with closing(connect(server, client)) as conn:
        start = time.perf_counter()
        while next_link is not None:
            began = time.perf_counter()
            reply = conn.request("GET", next_link)
            latencies.append(time.perf_counter() - began)
            if reply.status != 200:
                raise BenchError(f"list page {len(latencies)}: {reply.describe()}")
            page: dict[str, Any] = json.loads(reply.content)
            values = page["value"]
            items += len(values)
            ids.update(model["id"] for model in values)
            next_link = page.get("nextLink")
        seconds = time.perf_counter() - start
    what = f"walk filtered by name={name}" if name else "walk"
    if items != expected or len(ids) != expected:
        raise BenchError(f"{what}: {items} items, {len(ids)} distinct ids, expected {expected}")
    return WalkResult(len(latencies), items, seconds, items / seconds, Latency.of(latencies))


def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    client, workers = args.client, args.concurrency
    print(f"\n== {backend}: starting a fresh server", flush=True)
    with running_server(backend, args.pg_admin_url) as (server, model_file):
        print(f"  /healthz for {HEALTHZ_SECONDS:.0f} s, {workers} workers", flush=True)
        cpu = CpuMeter(server)
        healthz = measure_healthz(server, client, workers, HEALTHZ_SECONDS)
        healthz = replace(healthz, server_cpu_ms=cpu.ms_per_request(healthz.requests))
        healthz_serial = measure_healthz(server, client, 1, SERIAL_HEALTHZ_SECONDS)
        healthz_serial = replace(
            healthz_serial, server_cpu_ms=cpu.ms_per_request(healthz_serial.requests)
        )
        print(f"  registering {args.models:,} models, {workers} workers", flush=True)
        register = register_models(server, client, model_file, args.models, workers)
        register = replace(register, server_cpu_ms=cpu.ms_per_request(register.models))
        print(f"  walking list pages of {args.page_size}", flush=True)
        walk = walk_pages(server, client, args.page_size, args.models)
        walk = replace(walk, server_cpu_ms=cpu.ms_per_request(walk.pages))
        expected = len(range(int(FILTER_NAME[1:]), args.models, NAMES))
        filtered = walk_pages(server, client, args.page_size, expected, name=FILTER_NAME)
        filtered = replace(filtered, server_cpu_ms=cpu.ms_per_request(filtered.pages))
    result = BackendResult(backend, healthz, healthz_serial, register, walk, filtered)
    print_backend(result)
    return result


# -- reporting ---------------------------------------------------------------------------


def _row(label: str, value: str, detail: str = "") -> str:
    return f"  {label:<28}{value:>16}   {detail}".rstrip()


def _detail(latency: Latency, server_cpu_ms: float | None, extra: str) -> str:
    text = f"p50 {latency.p50_ms:.2f} ms  p99 {latency.p99_ms:.2f} ms"
    if server_cpu_ms is not None:
        text += f"  server CPU {server_cpu_ms:.2f} ms/req"
    return f"{text}  ({extra})"


def print_backend(r: BackendResult) -> None:
    print(f"\n  {r.backend}")
    for label, h in (("/healthz, C workers", r.healthz), ("/healthz, 1 worker", r.healthz_serial)):
        detail = _detail(h.latency, h.server_cpu_ms, f"{h.requests:,} requests")
        print(_row(label, f"{h.per_second:,.0f} req/s", detail))
    reg = r.register
    detail = _detail(reg.latency, reg.server_cpu_ms, f"{reg.models:,} in {reg.seconds:.1f} s")
    print(_row("register, C workers", f"{reg.per_second:,.0f} /s", detail))
    for label, w in (("list pages", r.walk), (f"list pages, name={FILTER_NAME}", r.filtered_walk)):
        detail = _detail(w.latency, w.server_cpu_ms, f"{w.pages} pages, {w.items:,} items")
        print(_row(label, f"{w.items_per_second:,.0f} items/s", detail))
    print(_row("register/s ÷ healthz/s", f"{r.register_vs_healthz:.3f}"))
    print(_row("register p50 ÷ healthz p50", f"{r.register_p50_vs_healthz:.1f}x"))
    print(_row("page p50 ÷ healthz p50 (1 w.)", f"{r.page_p50_vs_healthz:.1f}x"))


def print_summary(results: list[BackendResult], args: argparse.Namespace) -> None:
    print(
        f"\n== summary: {args.models:,} models, concurrency {args.concurrency}, page size "
        f"{args.page_size}, client {args.client}, {os.cpu_count()} CPU cores "
        f"(shared by client, server and database), load average now {load_average()}"
    )
    print(
        f"  {'backend':<11}{'healthz/s':>10}{'reg/s':>8}{'reg÷hz':>8}{'reg p50':>9}"
        f"{'reg p99':>9}{'hz1 p50':>9}{'page p50':>10}{'page p99':>10}{'page÷hz1':>10}"
    )
    for r in results:
        print(
            f"  {r.backend:<11}{r.healthz.per_second:>10,.0f}{r.register.per_second:>8,.0f}"
            f"{r.register_vs_healthz:>8.3f}{r.register.latency.p50_ms:>9.2f}"
            f"{r.register.latency.p99_ms:>9.2f}{r.healthz_serial.latency.p50_ms:>9.2f}"
            f"{r.walk.latency.p50_ms:>10.2f}{r.walk.latency.p99_ms:>10.2f}"
            f"{r.page_p50_vs_healthz:>9.1f}x"
        )
    print("  latencies in ms. reg÷hz: registrations/s ÷ /healthz req/s of the same server,")
    print("  both at C workers. page÷hz1: list-page p50 ÷ /healthz p50, both sequential.")
    by_name = {r.backend: r for r in results}
    if "sqlite" in by_name and "postgresql" in by_name:
        pg, lite = by_name["postgresql"], by_name["sqlite"]
        register_ratio = pg.register.per_second / lite.register.per_second
        page_ratio = pg.walk.latency.p50_ms / lite.walk.latency.p50_ms
        print(
            f"  PostgreSQL ÷ SQLite: registrations/s {register_ratio:.2f}, "
            f"list-page p50 {page_ratio:.2f}"
        )


def _result_json(results: list[BackendResult], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "models": args.models,
        "concurrency": args.concurrency,
        "page_size": args.page_size,
        "client": args.client,
        "cpu_count": os.cpu_count(),
        "backends": {
            r.backend: {
                **asdict(r),
                "register_vs_healthz": r.register_vs_healthz,
                "register_p50_vs_healthz": r.register_p50_vs_healthz,
                "page_p50_vs_healthz": r.page_p50_vs_healthz,
            }
            for r in results
        },
    }


# -- command line ------------------------------------------------------------------------


def _backends(raw: str) -> list[str]:
    chosen = [b.strip() for b in raw.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BACKENDS)} (got {raw!r})")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--models", type=positive_int, default=10_000, help="default 10000")
    parser.add_argument("--concurrency", type=positive_int, default=8, help="default 8")
    parser.add_argument(
        "--backends", type=_backends, default=list(BACKENDS), help="default sqlite,postgresql"
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "MODELYARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="where to create (and drop) the benchmark's PostgreSQL database; "
        "default $MODELYARD_TEST_PG_ADMIN_URL or postgres on 127.0.0.1:5432",
    )
    parser.add_argument("--page-size", type=int, default=100, help="list count, 1..1000")
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="stdlib",
        help="HTTP client for the load: stdlib http.client (default, ~6x less CPU per "
        "request) or httpx",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if not 1 <= args.page_size <= 1000:
        parser.error("--page-size must be between 1 and 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"modelyard registry benchmark: {args.models:,} models, concurrency "
        f"{args.concurrency}, backends {','.join(args.backends)}, client {args.client}, "
        f"{os.cpu_count()} CPU cores, load average {load_average()}"
    )
    results: list[BackendResult] = []
    try:
        for backend in args.backends:
            results.append(run_backend(backend, args))
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print_summary(results, args)
    if args.json is not None:
        args.json.write_text(json.dumps(_result_json(results, args), indent=2) + "\n")
        print(f"  results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
