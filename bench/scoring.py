"""Scoring benchmark: a replica's requests/s and latency beside a bare ASGI app's.

Starts one real `modelyard serve` (SQLite, a fresh home), builds two images through
the Python client (an echo driver, and a small scikit-learn LogisticRegression — 4
features, 3 classes, saved with joblib — served by the built-in driver) and deploys,
one after the other, three services of one replica each:

(a) the echo driver: `run(raw)` returns `json.loads(raw)`;
(b) the scikit-learn model through the built-in driver, `batching: {"enabled": false}`;
(c) the same with adaptive batching (the default: at most 32 requests, 2 ms).

Each replica is pinned to one core (`containerResourceReservation: {"cpu": "1"}`: the
supervisor pins it to the least used core) and measured beside a bare ASGI app doing
the same work (`bench/bare_apps.py`: for (a) parse the JSON and encode it again, for
(b) and (c) `predict` in-process, unbatched) on the same stack: uvicorn with the
runtime's settings (uvloop, httptools), the same interpreter and packages (the image
environment's python), started in the image's context with the replica's environment
variables (less its MODELYARD_* settings), pinned to the same core. The load
generator, this process, is pinned to the other cores: a lean asyncio (uvloop)
HTTP/1.1 client, one keep-alive connection per concurrency slot, the request bytes
encoded once, responses read by Content-Length (wrk is not used even where installed:
this client records every latency, and its CPU, printed per run, shows whether it is
the limit). Both sides get the same request bytes (with the service key; the bare app
ignores it), body `{"data": [[5.1, 3.5, 1.4, 0.2]]}`.

Per concurrency (1, 16, 64) the bare app and the service run alternately, `--repeat`
times each (bare, service, bare, service, ...): each run opens its connections, sends
for `--warmup` seconds, then counts the 200 answers completed in the next `--duration`
seconds and their latencies (request written to response read). A side's figures pool
its runs (answers ÷ seconds; p50/p99 over every latency), so the machine's slow and
fast stretches weigh on both sides alike: on a shared VM one run of the same bare app
can differ from the next by 10 %. The ratio is service ÷ bare; for (c) against the
bare app of (b), in-process and unbatched, as the target reads; each repetition's own
ratio is printed too, as a measure of the noise. Every run is printed as it ends with
the CPU the served process, everything else on its core (other processes, the
hypervisor's steal: above 0.05 of a core the run is marked disturbed) and the load
generator used: a generator near a whole core would be the limit, not the server.

Also: seconds from `POST /services` to the first 200 from the scoring URI (polled
every 5 ms; the images are built before, so every environment is cached), and each
replica's resident memory (VmRSS) after its load. Targets (one replica, concurrency
16): echo ≥ 0.85 of the bare app; scikit-learn ≥ 0.9 of the bare in-process app;
batched above that in-process figure; create to first score under 2 s; resident
memory under 150 MB (10^6 bytes) for the scikit-learn replicas.

Needs Linux (affinity, /proc) and, for the first build, PyPI for uv. Run:
`.venv/bin/python bench/scoring.py` (`--help` lists the knobs). Exits non-zero when
a request fails or the server misbehaves; a missed target is printed as FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, cast

import httpx

from bench._server import (
    BenchError,
    ServerProcess,
    cores_busy_seconds,
    cpu_seconds_of,
    free_port,
    load_average,
    percentile,
    positive_int,
    resident_bytes,
)
from modelyard.client import AccountPath, Client

ACCOUNT = AccountPath("bench", "bench", "bench")
BARE_APPS = Path(__file__).with_name("bare_apps.py")
BODY = b'{"data": [[5.1, 3.5, 1.4, 0.2]]}'
ECHO_DRIVER = (
    "import json\n\n\ndef init():\n    pass\n\n\ndef run(raw):\n    return json.loads(raw)\n"
)
FEATURES, CLASSES, TRAINING_ROWS = 4, 3, 300
MAX_CONCURRENT = 256  # maxConcurrentRequestsPerContainer: far above 64, so no 429
TARGET_CONCURRENCY = 16
FIRST_SCORE_TARGET_S = 2.0
RSS_TARGET_BYTES = 150 * 10**6
FIRST_SCORE_POLL_S = 0.005
BUILD_TIMEOUT_S = 900.0
DEPLOY_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 30.0  # for a run's last answers after its window closed
DISTURBED = 0.05  # cores used by others on the served cores that mark a run disturbed
# Variables of this process that must not reach an image environment's python.
SCRUBBED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "UV_PYTHON")
SCALE = (
    ("bare Starlette app", 5300),
    ("the same app calling a small LogisticRegression", 2100),
    ("mlflow models serve, one worker", 450),
    ("bentoml serve, one worker", 280),
)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    image: str
    """"echo" or "sklearn": the image served, and the bare app beside it."""
    batching: bool
    target: float
    """The least service ÷ bare ratio at TARGET_CONCURRENCY."""
    target_text: str


SCENARIOS = (
    Scenario("echo", "(a) echo driver", "echo", False, 0.85, "≥ 0.85 of the bare echo app"),
    Scenario(
        "sklearn",
        "(b) sklearn, built-in driver",
        "sklearn",
        False,
        0.90,
        "≥ 0.9 of the bare app calling predict in-process",
    ),
    Scenario(
        "batched",
        "(c) sklearn, adaptive batching",
        "sklearn",
        True,
        1.0,
        "above the bare in-process (unbatched) app",
    ),
)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One measured window against one side."""

    side: str
    """"service" or "bare"."""
    answered: int
    """200 answers completed in the window."""
    seconds: float
    p50_ms: float
    p99_ms: float
    non_200: dict[str, int]
    """Statuses other than 200 seen at any time of the run (warm-up included)."""
    served_cpu: float | None
    """Cores the served process used in the window (1.0 = one core busy)."""
    others_cpu: float | None
    """Cores anything else used on the served process's cores in the window (other
    processes, interrupts, the hypervisor's steal): above DISTURBED it skews the run."""
    generator_cpu: float
    """Cores this process (the load generator) used in the window."""

    @property
    def disturbed(self) -> bool:
        return self.others_cpu is not None and self.others_cpu > DISTURBED

    @property
    def cpu_us(self) -> float | None:
        """CPU microseconds the served process spent per answer."""
        if self.served_cpu is None:
            return None
        return self.served_cpu * self.seconds / self.answered * 1e6

    @property
    def per_s(self) -> float:
        return self.answered / self.seconds


@dataclass(frozen=True)
class Figures:
    """One side of a cell: its runs pooled (answers over seconds, percentiles over every
    latency), so slow and fast stretches of the machine weigh on both sides alike."""

    per_s: float
    p50_ms: float
    p99_ms: float
    disturbed: bool
    """At least one of the runs was disturbed."""

    @classmethod
    def pooled(cls, runs: list[Run], latencies: list[float]) -> Figures:
        ordered = sorted(latencies)
        return cls(
            per_s=sum(run.answered for run in runs) / sum(run.seconds for run in runs),
            p50_ms=percentile(ordered, 50) * 1000,
            p99_ms=percentile(ordered, 99) * 1000,
            disturbed=any(run.disturbed for run in runs),
        )


@dataclass
class Cell:
    concurrency: int
    service: Figures
    bare: Figures
    service_runs: list[Run]
    bare_runs: list[Run]

    @property
    def ratio(self) -> float:
        return self.service.per_s / self.bare.per_s

    @property
    def paired_ratios(self) -> list[float]:
        """service ÷ bare of each repetition (a bare run and the service run after it)."""
        return [
            service.per_s / bare.per_s
            for service, bare in zip(self.service_runs, self.bare_runs, strict=True)
        ]

    @property
    def non_200(self) -> int:
        return sum(sum(run.non_200.values()) for run in self.service_runs + self.bare_runs)


@dataclass
class Outcome:
    scenario: Scenario
    first_score_s: float
    replica_pid: int
    replica_cpus: list[int]
    generator_cpus: list[int]
    bare_python: str
    cells: list[Cell] = field(default_factory=list)
    replica_rss: int | None = None
    bare_rss: int | None = None

    def cell(self, concurrency: int) -> Cell | None:
        return next((c for c in self.cells if c.concurrency == concurrency), None)


# -- the load generator ------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """The process answering a run, and the cores it is pinned to."""

    pid: int
    cores: set[int]


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self, load: _Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.expected = -1  # bytes of the whole response, once its head is read
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: no subclass

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = perf_counter()
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.expected < 0:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                self.buffer = buffer
                return
            try:
                self.expected = head_end + 4 + _content_length(buffer, head_end)
            except BenchError as exc:
                self.load.fail(self, exc)
                return
        if len(buffer) < self.expected:
            self.buffer = buffer
            return
        now = perf_counter()
        if len(buffer) > self.expected:
            self.load.fail(self, BenchError("more bytes than one response: pipelining?"))
            return
        self.buffer = b""
        self.expected = -1
        self.load.answered(self, buffer[9:12], now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.lost(self, exc)


def _content_length(buffer: bytes, head_end: int) -> int:
    head = buffer[:head_end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise BenchError(f"a response without Content-Length: {buffer[:head_end]!r}")
    stop = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : stop if stop >= 0 else head_end])


class _Load:
    """`concurrency` connections sending `request` back to back for one timed window."""

    def __init__(self, request: bytes, served: Served) -> None:
        self.request = request
        self.served = served
        self.running = True
        self.window = (float("inf"), float("inf"))
        self.latencies: list[float] = []
        self.statuses: Counter[bytes] = Counter()
        self.active: set[_Connection] = set()
        self.failure: BaseException | None = None
        self.finished: asyncio.Future[None] | None = None
        self.cpu_at_start: tuple[float, float | None, float | None, float] = (0, None, None, 0)
        self.cpu_used: tuple[float | None, float | None, float] = (None, None, 0.0)

    def answered(self, connection: _Connection, status: bytes, now: float) -> None:
        if status != b"200":
            self.statuses[status] += 1
        elif self.window[0] <= now < self.window[1]:
            self.latencies.append(now - connection.sent_at)
        if self.running:
            connection.send()
        else:
            self._retire(connection)

    def fail(self, connection: _Connection, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.running = False
        if connection.transport is not None:
            connection.transport.close()
        self._retire(connection)

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        if connection in self.active:  # closed by the server while in use
            self.fail(connection, BenchError(f"the server closed a connection: {exc!r}"))

    def _retire(self, connection: _Connection) -> None:
        self.active.discard(connection)
        if not self.active and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def open_window(self) -> None:
        self.cpu_at_start = (
            perf_counter(),
            cpu_seconds_of(self.served.pid),
            cores_busy_seconds(self.served.cores),
            time.process_time(),
        )

    def close_window(self) -> None:
        self.running = False
        started, served, busy, own = self.cpu_at_start
        elapsed = perf_counter() - started
        served_now = cpu_seconds_of(self.served.pid)
        busy_now = cores_busy_seconds(self.served.cores)
        served_used = None
        if served is not None and served_now is not None:
            served_used = (served_now - served) / elapsed
        others = None
        if served_used is not None and busy is not None and busy_now is not None:
            others = max(0.0, (busy_now - busy) / elapsed - served_used)
        self.cpu_used = (served_used, others, (time.process_time() - own) / elapsed)


async def _drive(
    port: int,
    request: bytes,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    served: Served,
) -> tuple[_Load, float]:
    loop = asyncio.get_running_loop()
    load = _Load(request, served)
    connections = []
    for _ in range(concurrency):
        _, connection = await loop.create_connection(lambda: _Connection(load), "127.0.0.1", port)
        connections.append(connection)
    load.active = set(connections)
    load.finished = loop.create_future()
    started = perf_counter()
    load.window = (started + warmup_s, started + warmup_s + duration_s)
    loop.call_at(loop.time() + warmup_s, load.open_window)
    loop.call_at(loop.time() + warmup_s + duration_s, load.close_window)
    for connection in connections:
        connection.send()
    try:
        await asyncio.wait_for(load.finished, warmup_s + duration_s + DRAIN_TIMEOUT_S)
    except TimeoutError:
        load.failure = load.failure or BenchError(
            f"{len(load.active)} request(s) still unanswered {DRAIN_TIMEOUT_S:.0f} s "
            "after the window closed"
        )
    finally:
        for connection in connections:
            load.active.discard(connection)
            if connection.transport is not None:
                connection.transport.close()
    return load, duration_s


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def generator_name() -> str:
    loop = "uvloop" if _loop_factory() is not None else "asyncio's default loop"
    return f"asyncio HTTP/1.1 keep-alive client on {loop}, one connection per slot"


def measure(
    side: str,
    port: int,
    request: bytes,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    served: Served,
) -> tuple[Run, list[float]]:
    """One run: `concurrency` connections, `warmup_s` unmeasured, `duration_s` measured.

    Returns the run and its latencies in seconds, sorted."""
    gc.collect()
    gc.disable()  # a collection pausing the generator would show as server latency
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            load, seconds = runner.run(
                _drive(port, request, concurrency, warmup_s, duration_s, served)
            )
    finally:
        gc.enable()
    if load.failure is not None:
        raise BenchError(f"{side} at concurrency {concurrency}: {load.failure}")
    ordered = sorted(load.latencies)
    if not ordered:
        raise BenchError(f"{side} at concurrency {concurrency}: no 200 answer in the window")
    run = Run(
        side=side,
        answered=len(ordered),
        seconds=seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        non_200={status.decode("latin-1"): n for status, n in sorted(load.statuses.items())},
        served_cpu=load.cpu_used[0],
        others_cpu=load.cpu_used[1],
        generator_cpu=load.cpu_used[2],
    )
    return run, ordered


def scoring_request(port: int, key: str) -> bytes:
    return (
        f"POST /score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


# -- models, images and services ---------------------------------------------------------


@dataclass(frozen=True)
class Image:
    id: str
    context: Path
    """The build context: replicas run in it."""
    python: str
    """The image environment's interpreter (the context's `local-python`)."""
    stack: str


def write_model(path: Path) -> None:
    import joblib
    import numpy
    from sklearn.linear_model import LogisticRegression

    rng = numpy.random.default_rng(7)
    features = rng.normal(size=(TRAINING_ROWS, FEATURES))
    labels = rng.integers(0, CLASSES, size=TRAINING_ROWS)
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), path)


def build_images(server: ServerProcess, client: Client, inputs: Path) -> dict[str, Image]:
    """The echo and scikit-learn images, built one after the other."""
    (inputs / "score.py").write_text(ECHO_DRIVER)
    (inputs / "echo.bin").write_bytes(b"echo")
    write_model(inputs / "model.pkl")
    version = importlib.metadata.version("scikit-learn")  # what wrote the pickle
    (inputs / "requirements.txt").write_text(f"scikit-learn=={version}\njoblib\n")

    echo_model = client.register_model("bench-echo", path=inputs / "echo.bin")
    driver = client.upload(inputs / "score.py")["url"]
    echo_manifest = client.create_manifest(
        "bench-echo",
        driver="driver",
        assets=[{"id": "driver", "url": driver}],
        model_ids=[echo_model["id"]],
    )
    sklearn_model = client.register_model("bench-sklearn", path=inputs / "model.pkl")
    sklearn_manifest = client.create_manifest(
        "bench-sklearn",
        driver="",  # no driverProgram: the built-in scikit-learn driver
        assets=[],
        model_ids=[sklearn_model["id"]],
        pip_requirements=client.upload(inputs / "requirements.txt")["url"],
    )
    images = {}
    for key, manifest in (("echo", echo_manifest), ("sklearn", sklearn_manifest)):
        started = perf_counter()
        image, operation_id = client.create_image(manifest["id"])
        status = client.wait_operation(operation_id, timeout_s=BUILD_TIMEOUT_S, poll_s=0.2)
        if status["state"] != "Succeeded":
            log = client.read_build_log(image["id"])[0]
            raise BenchError(
                f"image {key}: build {status['state']}: {json.dumps(status.get('error'))}\n"
                f"build log tail:\n{log[-3000:]}"
            )
        context = server.home / "images" / image["id"] / "context"
        python = (context / "local-python").read_text().strip()
        stack = _stack(python)
        print(f"  image {key}: built in {perf_counter() - started:.1f} s; {stack}", flush=True)
        images[key] = Image(image["id"], context, python, stack)
    return images


def _stack(python: str) -> str:
    probe = (
        "import sys, importlib.metadata as m; "
        "print('python %d.%d.%d' % sys.version_info[:3], "
        "*('%s %s' % (p, m.version(p)) for p in ('uvicorn', 'uvloop', 'httptools')), sep=', ')"
    )
    result = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, env=_image_env(), check=False
    )
    if result.returncode != 0:
        raise BenchError(f"{python} cannot run: {result.stderr.strip()}")
    return result.stdout.strip()


def _image_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SCRUBBED}


def replica_env(pid: int) -> dict[str, str]:
    """The replica's environment without its MODELYARD_* settings, for the bare app.

    The same variables as the replica rather than this process's (importing
    scikit-learn here sets a few), so only the app differs; this process's, scrubbed
    as the supervisor scrubs them, if the replica's cannot be read.
    """
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return _image_env()
    pairs = (item.decode(errors="surrogateescape").partition("=") for item in raw.split(b"\0"))
    return {name: value for name, eq, value in pairs if eq and not name.startswith("MODELYARD_")}


def service_settings(scenario: Scenario) -> dict[str, Any]:
    return {
        "numReplicas": 1,
        "maxConcurrentRequestsPerContainer": MAX_CONCURRENT,
        "containerResourceReservation": {"cpu": "1"},
        "batching": {"enabled": scenario.batching},
    }


def create_until_scored(
    client: Client, name: str, image_id: str, settings: dict[str, Any]
) -> tuple[dict[str, Any], str, float]:
    """Create a service and poll its scoring URI until it answers 200.

    Returns the service as first returned, its primary key and the seconds from just
    before `POST /services` to that first 200. A request sent once the service's
    socket listens waits in its accept queue until the replica serves, so the poll
    sees the first moment it could have been answered.
    """
    started = perf_counter()
    service, operation_id = client.create_service(name, image_id, **settings)
    key = client.get_service_keys(service["id"])["primaryKey"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    next_check = started + 0.5
    with httpx.Client(timeout=httpx.Timeout(DEPLOY_TIMEOUT_S, connect=1.0)) as http:
        while True:
            with suppress(httpx.TransportError):
                if http.post(service["scoringUri"], content=BODY, headers=headers).is_success:
                    return service, key, perf_counter() - started
            now = perf_counter()
            if now > next_check:
                status = client.get_operation(operation_id)
                if status["state"] in ("Failed", "Cancelled"):
                    raise BenchError(f"service {name}: {status['state']}: {status.get('error')}")
                if now - started > DEPLOY_TIMEOUT_S:
                    raise BenchError(f"service {name}: no 200 in {DEPLOY_TIMEOUT_S:.0f} s")
                next_check = now + 0.5
            time.sleep(FIRST_SCORE_POLL_S)


def only_replica(client: Client, service_id: str, operation_id: str) -> int:
    status = client.wait_operation(operation_id, timeout_s=DEPLOY_TIMEOUT_S, poll_s=0.1)
    if status["state"] != "Succeeded":
        raise BenchError(f"service {service_id}: {status['state']}: {status.get('error')}")
    instances = client.get_service(service_id)["replicas"]["instances"]
    if len(instances) != 1 or instances[0]["pid"] is None:
        raise BenchError(f"service {service_id}: expected one replica, got {instances}")
    pid: int = instances[0]["pid"]
    return pid


@contextmanager
def bare_app(
    image: Image, kind: str, model: Path, cpus: set[int], env: dict[str, str], log: Path
) -> Iterator[tuple[int, int]]:
    """The bare app run by the image's interpreter in its context, with `env`, pinned to
    `cpus`, as a replica runs: (pid, port)."""
    port = free_port()
    args = [image.python, str(BARE_APPS), kind, "--port", str(port)]
    args += ["--cpus", ",".join(map(str, sorted(cpus)))]
    if kind == "sklearn":
        args += ["--model", str(model)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=image.context
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchError(f"bare {kind} app exited:\n{log.read_text()[-3000:]}")
            with suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"bare {kind} app not ready in {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        yield process.pid, port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# -- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str
    port: int
    served: Served


def measure_cell(
    args: argparse.Namespace, concurrency: int, key: str, bare: Side, service: Side
) -> Cell:
    """`args.repeat` runs of each side, alternating (bare, service, bare, ...), pooled."""
    runs: dict[str, list[Run]] = {bare.name: [], service.name: []}
    latencies: dict[str, list[float]] = {bare.name: [], service.name: []}
    for _ in range(args.repeat):
        for side in (bare, service):
            request = scoring_request(side.port, key)
            run, seen = measure(
                side.name,
                side.port,
                request,
                concurrency,
                args.warmup,
                args.duration,
                side.served,
            )
            runs[side.name].append(run)
            latencies[side.name] += seen
            print_run(concurrency, run)
    return Cell(
        concurrency,
        service=Figures.pooled(runs[service.name], latencies[service.name]),
        bare=Figures.pooled(runs[bare.name], latencies[bare.name]),
        service_runs=runs[service.name],
        bare_runs=runs[bare.name],
    )


def run_scenario(
    args: argparse.Namespace,
    client: Client,
    scenario: Scenario,
    image: Image,
    scratch: Path,
) -> Outcome:
    print(f"\n== {scenario.title}", flush=True)
    name = f"bench-{scenario.key}"
    service, key, first_score_s = create_until_scored(
        client, name, image.id, service_settings(scenario)
    )
    try:
        print(f"  create → first 200: {first_score_s:.2f} s", flush=True)
        pid = only_replica(client, service["id"], service["operationId"])
        mine = os.sched_getaffinity(0)
        replica_cpus = os.sched_getaffinity(pid)
        generator_cpus = mine - replica_cpus
        if not generator_cpus:
            print(
                f"  WARNING: the replica may run on every core this process has "
                f"({sorted(mine)}): the generator shares them",
                flush=True,
            )
            generator_cpus = mine
        outcome = Outcome(
            scenario,
            first_score_s,
            pid,
            sorted(replica_cpus),
            sorted(generator_cpus),
            image.python,
        )
        print(
            f"  replica pid {pid} on core(s) {_cores(replica_cpus)}; bare app on the same, run "
            f"by {image.python} with the replica's environment; load generator on core(s) "
            f"{_cores(generator_cpus)}",
            flush=True,
        )
        service_port = int(service["scoringUri"].split(":")[2].split("/")[0])
        model = scratch / "inputs" / "model.pkl"
        env = replica_env(pid)
        log = scratch / "bare.log"
        with bare_app(image, scenario.image, model, replica_cpus, env, log) as bare:
            bare_pid, bare_port = bare
            os.sched_setaffinity(0, generator_cpus)
            try:
                for concurrency in args.concurrency:
                    bare_side = Side("bare", bare_port, Served(bare_pid, replica_cpus))
                    service_side = Side("service", service_port, Served(pid, replica_cpus))
                    cell = measure_cell(args, concurrency, key, bare_side, service_side)
                    outcome.cells.append(cell)
            finally:
                os.sched_setaffinity(0, mine)
            outcome.replica_rss = resident_bytes(pid)
            outcome.bare_rss = resident_bytes(bare_pid)
        print(
            f"  resident memory after the load: replica {_mb(outcome.replica_rss)}, "
            f"bare app {_mb(outcome.bare_rss)}",
            flush=True,
        )
        return outcome
    finally:
        # If the server is what failed, deleting fails too; stopping it stops the replica.
        with suppress(Exception):
            client.delete_service(service["id"])


def run_all(args: argparse.Namespace, scratch: Path) -> tuple[list[Outcome], float | None]:
    workdir = scratch / "work"
    workdir.mkdir(parents=True)
    (scratch / "inputs").mkdir()
    server = ServerProcess(scratch / "home", workdir)
    try:
        server.start()
        with Client(server.url, server.token, ACCOUNT) as client:
            print("\n== images", flush=True)
            images = build_images(server, client, scratch / "inputs")
            cpu_before = server.cpu_seconds()
            outcomes = [
                run_scenario(args, client, scenario, images[scenario.image], scratch)
                for scenario in SCENARIOS
                if scenario.key in args.only
            ]
            cpu_after = server.cpu_seconds()
        server_cpu = (
            cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        )
        return outcomes, server_cpu
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"{exc!r}\nserver log tail:\n{server.log_tail()}") from exc
    finally:
        server.stop()


# -- reporting ---------------------------------------------------------------------------


def print_run(concurrency: int, run: Run) -> None:
    served = "n/a" if run.served_cpu is None else f"{run.served_cpu:.2f}"
    per_answer = "" if run.cpu_us is None else f" ({run.cpu_us:.0f} µs/answer)"
    others = "n/a" if run.others_cpu is None else f"{run.others_cpu:.2f}"
    errors = f", non-200 {run.non_200}" if run.non_200 else ""
    print(
        f"    c={concurrency:<3} {run.side:<8}{run.per_s:>7.0f} req/s  p50 {run.p50_ms:6.2f} ms"
        f"  p99 {run.p99_ms:6.2f} ms | cores: served {served}{per_answer}, others there "
        f"{others}, generator {run.generator_cpu:.2f}{errors}"
        f"{'  DISTURBED' if run.disturbed else ''}",
        flush=True,
    )


def print_summary(
    outcomes: list[Outcome], server_cpu: float | None, args: argparse.Namespace
) -> None:
    print(
        f"\n== summary: {args.repeat} run(s) per side, alternating, each {args.duration:g} s "
        f"after {args.warmup:g} s warm-up, pooled (answers ÷ seconds, percentiles over every "
        f"latency); {os.cpu_count()} CPU cores, load average now {load_average()}"
    )
    wrk = "not installed" if shutil.which("wrk") is None else "installed, not used"
    print(f"  load generator: {generator_name()}; pinned as above (wrk: {wrk})")
    for outcome in outcomes:
        print(
            f"  {outcome.scenario.title}: replica and bare app on core(s) "
            f"{_cores(outcome.replica_cpus)}, generator on {_cores(outcome.generator_cpus)}; "
            f"bare app run by {outcome.bare_python}"
        )
    print(
        f"\n  {'':<36}{'service':^28}   {'bare ASGI app':^28}\n"
        f"  {'scenario':<31}{'conc':>5}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}   "
        f"{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}{'svc÷bare':>10}{'non-200':>9}"
    )
    runs = disturbed = 0
    for outcome in outcomes:
        for cell in outcome.cells:
            s, b = cell.service, cell.bare
            print(
                f"  {outcome.scenario.title:<31}{cell.concurrency:>5}{_per_s(s):>8}"
                f"{s.p50_ms:>10.2f}{s.p99_ms:>10.2f}   {_per_s(b):>8}{b.p50_ms:>10.2f}"
                f"{b.p99_ms:>10.2f}{cell.ratio:>10.2f}{cell.non_200:>9}"
            )
            everything = cell.service_runs + cell.bare_runs
            runs += len(everything)
            disturbed += sum(run.disturbed for run in everything)
    print(
        "  bare app: (a) parses and re-encodes the JSON; (b) and (c) call predict in-process, "
        "unbatched,\n  so (c)'s ratio is batched service ÷ in-process unbatched app"
    )
    print(
        f"  {disturbed} of {runs} runs disturbed (others used more than {DISTURBED:g} of the "
        "served core); * marks a figure that pools one"
    )
    if server_cpu is not None:
        print(f"  the modelyard server process used {server_cpu:.1f} CPU-s during the scenarios")

    print(f"\n== targets (one replica, concurrency {TARGET_CONCURRENCY})")
    for outcome in outcomes:
        at_target = outcome.cell(TARGET_CONCURRENCY)
        scenario = outcome.scenario
        if at_target is None:
            print(f"  {scenario.title}: not measured at concurrency {TARGET_CONCURRENCY}")
            continue
        met = (
            at_target.ratio > scenario.target
            if scenario.batching
            else at_target.ratio >= scenario.target
        )
        print(
            f"  {_verdict(met)}  {scenario.title}: {at_target.service.per_s:.0f} ÷ "
            f"{at_target.bare.per_s:.0f} req/s = {at_target.ratio:.2f} "
            f"(target {scenario.target_text}); runs: service "
            f"{_spread(at_target.service_runs)}, bare {_spread(at_target.bare_runs)} req/s, "
            f"paired ratios {', '.join(f'{r:.2f}' for r in at_target.paired_ratios)}"
        )
    for outcome in outcomes:
        met = outcome.first_score_s < FIRST_SCORE_TARGET_S
        print(
            f"  {_verdict(met)}  {outcome.scenario.title}: create → first score "
            f"{outcome.first_score_s:.2f} s, environment cached (target < "
            f"{FIRST_SCORE_TARGET_S:g} s)"
        )
    for outcome in outcomes:
        rss = outcome.replica_rss
        if outcome.scenario.image == "sklearn":
            met = rss is not None and rss < RSS_TARGET_BYTES
            prefix = _verdict(met)
            target = f" (target < {RSS_TARGET_BYTES / 1e6:.0f} MB)"
        else:
            prefix, target = "info", " (no target)"
        print(
            f"  {prefix:<4}  {outcome.scenario.title}: replica resident memory {_mb(rss)}"
            f"{target}; bare app {_mb(outcome.bare_rss)}"
        )
    print("\n  for scale (issue text; 2 cores, the server on one):")
    for what, per_s in SCALE:
        print(f"    {what:<52}{per_s:>6} req/s")


def _per_s(figures: Figures) -> str:
    return f"{figures.per_s:.0f}{'*' if figures.disturbed else ''}"


def _spread(runs: list[Run]) -> str:
    rates = sorted(run.per_s for run in runs)
    return f"{rates[0]:.0f}" if len(rates) == 1 else f"{rates[0]:.0f} to {rates[-1]:.0f}"


def _verdict(met: bool) -> str:
    return "PASS" if met else "FAIL"


def _cores(cpus: set[int] | list[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def _mb(value: int | None) -> str:
    return f"{value / 1e6:.0f} MB" if value is not None else "n/a"


def _result_json(outcomes: list[Outcome], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
        "generator": generator_name(),
        "scenarios": {
            o.scenario.key: {
                **asdict(o),
                "cells": [
                    {**asdict(c), "ratio": c.ratio, "paired_ratios": c.paired_ratios}
                    for c in o.cells
                ],
            }
            for o in outcomes
        },
    }


# -- command line ------------------------------------------------------------------------


def _concurrency(raw: str) -> list[int]:
    try:
        levels = [positive_int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not levels:
        raise argparse.ArgumentTypeError("name at least one concurrency")
    return levels


def _scenarios(raw: str) -> list[str]:
    chosen = [part.strip() for part in raw.split(",") if part.strip()]
    known = [s.key for s in SCENARIOS]
    unknown = [key for key in chosen if key not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(known)}")
    return chosen


def _seconds(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0 (got {raw})")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=_seconds, default=5.0, help="measured seconds per run; default 5"
    )
    parser.add_argument(
        "--warmup", type=_seconds, default=1.0, help="unmeasured seconds first; default 1"
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="runs per side and concurrency, alternating bare and service, pooled; default 3",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=[1, 16, 64],
        help="connections, comma separated; default 1,16,64",
    )
    parser.add_argument(
        "--only",
        type=_scenarios,
        default=[s.key for s in SCENARIOS],
        help="scenarios to run, comma separated: echo,sklearn,batched (default all)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the home, logs and inputs for inspection"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("needs Linux (CPU affinity and /proc)", file=sys.stderr)
        return 2
    print(
        f"modelyard scoring benchmark: concurrency {','.join(map(str, args.concurrency))}, "
        f"{args.repeat} run(s) per side of {args.duration:g} s (+{args.warmup:g} s warm-up), "
        f"{os.cpu_count()} CPU cores, load average {load_average()}; load generator: "
        f"{generator_name()}{'' if shutil.which('wrk') is None else ' (wrk found, not used)'}",
        flush=True,
    )
    scratch = Path(tempfile.mkdtemp(prefix="modelyard-bench-scoring-"))
    try:
        outcomes, server_cpu = run_all(args, scratch)
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"\n  kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print_summary(outcomes, server_cpu, args)
    if args.json is not None:
        args.json.write_text(json.dumps(_result_json(outcomes, args), indent=2) + "\n")
        print(f"  results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
