"""Image build benchmark: cold, warm (cached) and concurrent builds of one manifest.

Starts real `modelyard serve` processes (SQLite, embedded workers) on fresh homes and,
through the Python client, registers a tiny model, uploads a driver and a requirements
file, creates one manifest and builds images of it. Each build is timed from
`POST /images` until its operation is seen `Succeeded` (polled every 50 ms):

1. uncached: a fresh `UV_CACHE_DIR` and no environment, so uv downloads every
   package. Bound by the network and PyPI, not modelyard: compare it only between
   runs on the same network. `--skip-uncached` leaves it out; the cold build then
   uses your own uv cache, warm only if these packages were installed before.
2. cold: a second fresh home with the uv cache of (1): resolve, then create the
   environment and install from uv's cache.
3. warm: the same manifest again on that server (`--warm-runs` times): the
   environment is reused from the cache. The target is "builds in about a second".
4. N concurrent builds of the manifest (`--concurrency`, the server runs N workers),
   environment cached: wall time, per-build p50/max, builds/s. Every build log must
   say "reused from the cache" and `<home>/envs` must hold exactly one environment.
5. N concurrent builds on a third fresh home (uv cache warm, no environment): exactly
   one build may say "built" and the others "reused", which is the per-lock flock.

Every build, warm ones too, first resolves its requirements with uv against the
index (the lock's hash is the environment cache key), so its time includes index
requests; `--uv-offline` sets `UV_OFFLINE=1` after phase 1 to leave them out.

Per-step times come from the operation's `progress` as the poller sees it change
(±50 ms); the build log's timestamps have whole seconds only. `server` times are
the operation's `createdTime` to `endTime`, without the client's polling. Every
environment also holds the scoring runtime's requirements (uvicorn, httptools,
uvloop). Run: `.venv/bin/python bench/images.py` (`--help` lists the knobs). Exits
non-zero when a build fails or a check does not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._server import BenchError, ServerProcess, load_average, percentile, positive_int
from modelyard.builder.container import engine_available
from modelyard.builder.environments import READY_MARKER
from modelyard.builder.requirements import RUNTIME_REQUIREMENTS
from modelyard.client import AccountPath, Client

ACCOUNT = AccountPath("bench", "bench", "bench")
POLL_S = 0.05
MODEL_BYTES = 1024
ABOUT_A_SECOND_S = 1.5  # the warm-build verdict: "about a second" at the p50
START_LINE_TIMEOUT_S = 60.0  # concurrent builds wait for each other before the POSTs
DRIVER = "def init():\n    global model\n    model = None\n\ndef run(raw):\n    return raw\n"
# The build log line naming the environment: "environment <sha12> built: <path>" or
# "environment <sha12> reused from the cache: <path>".
ENVIRONMENT_LINE = re.compile(r"environment ([0-9a-f]{12}) (built|reused from the cache): ")
TERMINAL = ("Succeeded", "Failed", "Cancelled")
# The order steps are shown in: the client's, then the worker's `progress` values.
STEP_ORDER = (
    "POST /images",
    "queued",
    "started",
    "resolving requirements",
    "materializing environment",
    "writing build context",
    "building container image",
)


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    image_id: str
    seconds: float
    """`POST /images` until the operation was seen Succeeded."""
    server_seconds: float | None
    """The operation's createdTime to endTime."""
    steps: dict[str, float]
    """Seconds per step as the poller saw `progress` change, in order."""
    environment: str
    """"built" or "reused", from the build log."""
    lock: str
    """The first 12 hex digits of the lock hash."""
    started: float
    ended: float


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    builds: list[Build]
    concurrent: bool
    ready_environments: int
    """Complete environment folders under `<home>/envs` after the phase."""

    @property
    def wall_s(self) -> float:
        return max(b.ended for b in self.builds) - min(b.started for b in self.builds)

    @property
    def p50_s(self) -> float:
        return percentile(sorted(b.seconds for b in self.builds), 50)

    @property
    def max_s(self) -> float:
        return max(b.seconds for b in self.builds)

    @property
    def server_p50_s(self) -> float | None:
        seconds = [b.server_seconds for b in self.builds if b.server_seconds is not None]
        return percentile(sorted(seconds), 50) if seconds else None

    @property
    def builds_per_s(self) -> float:
        return len(self.builds) / self.wall_s

    @property
    def built(self) -> int:
        return sum(b.environment == "built" for b in self.builds)

    @property
    def reused(self) -> int:
        return sum(b.environment == "reused" for b in self.builds)

    def step_p50s(self) -> dict[str, float]:
        """Each step's p50 over the phase's builds (0 where a build never showed it)."""
        seen = {name for build in self.builds for name in build.steps}
        known = [name for name in STEP_ORDER if name in seen]
        names = known + sorted(seen.difference(known))
        return {
            name: percentile(sorted(b.steps.get(name, 0.0) for b in self.builds), 50)
            for name in names
        }


@dataclass(frozen=True)
class Inputs:
    model: Path
    driver: Path
    requirements: Path


# -- servers and manifests ---------------------------------------------------------------


@contextmanager
def running_server(scratch: Path, name: str, env: Mapping[str, str]) -> Iterator[ServerProcess]:
    """A started server on a fresh home under `scratch/name`, stopped afterwards."""
    workdir = scratch / name / "work"
    workdir.mkdir(parents=True)
    server = ServerProcess(scratch / name / "home", workdir, None, env)
    try:
        server.start()
        yield server
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"{name}: {exc!r}\n{server.log_tail()}".rstrip()) from exc
    finally:
        server.stop()


def write_inputs(folder: Path, requirements: list[str]) -> Inputs:
    folder.mkdir(parents=True)
    inputs = Inputs(folder / "model.pkl", folder / "score.py", folder / "requirements.txt")
    inputs.model.write_bytes(os.urandom(MODEL_BYTES))
    inputs.driver.write_text(DRIVER)
    inputs.requirements.write_text("".join(f"{line}\n" for line in requirements))
    return inputs


def connect(server: ServerProcess) -> Client:
    return Client(server.url, server.token, ACCOUNT)


def create_manifest(server: ServerProcess, inputs: Inputs) -> str:
    """Register the model, upload driver and requirements, describe them; the manifest id."""
    with connect(server) as client:
        model = client.register_model("bench-model", path=inputs.model)
        driver = client.upload(inputs.driver)["url"]
        requirements = client.upload(inputs.requirements)["url"]
        manifest = client.create_manifest(
            "bench",
            driver="driver",
            assets=[{"id": "driver", "url": driver}],
            model_ids=[model["id"]],
            pip_requirements=requirements,
        )
    manifest_id: str = manifest["id"]
    return manifest_id


# -- building ----------------------------------------------------------------------------


def build_once(client: Client, manifest_id: str, timeout_s: float) -> Build:
    """Queue one image of the manifest and poll its operation every POLL_S until it ends."""
    started = time.perf_counter()
    image, operation_id = client.create_image(manifest_id)
    posted = time.perf_counter()
    steps = {"POST /images": posted - started}
    step, since = "queued", posted
    while True:
        status = client.get_operation(operation_id)
        now = time.perf_counter()
        state = status["state"]
        if state in TERMINAL:
            break
        seen = (status.get("progress") or "starting") if state == "Running" else "queued"
        if seen != step:
            steps[step] = steps.get(step, 0.0) + now - since
            step, since = seen, now
        if now - started > timeout_s:
            raise BenchError(f"image {image['id']}: still {state} after {timeout_s:.0f} s")
        time.sleep(POLL_S)
    steps[step] = steps.get(step, 0.0) + now - since
    log = client.read_build_log(image["id"])[0]
    if state != "Succeeded":
        raise BenchError(
            f"image {image['id']}: build {state}: {json.dumps(status.get('error'))}\n"
            f"build log tail:\n{log[-3000:]}"
        )
    match = ENVIRONMENT_LINE.search(log)
    if match is None:
        raise BenchError(f"image {image['id']}: the build log names no environment:\n{log}")
    return Build(
        image_id=image["id"],
        seconds=now - started,
        server_seconds=_server_seconds(status),
        steps=steps,
        environment="built" if match.group(2) == "built" else "reused",
        lock=match.group(1),
        started=started,
        ended=now,
    )


def _server_seconds(status: dict[str, Any]) -> float | None:
    try:
        created = datetime.fromisoformat(status["createdTime"])
        ended = datetime.fromisoformat(status["endTime"])
    except (KeyError, TypeError, ValueError):
        return None
    return (ended - created).total_seconds()


def build_sequentially(
    server: ServerProcess, manifest_id: str, runs: int, timeout_s: float
) -> list[Build]:
    with connect(server) as client:
        return [build_once(client, manifest_id, timeout_s) for _ in range(runs)]


def build_concurrently(
    server: ServerProcess, manifest_id: str, count: int, timeout_s: float
) -> list[Build]:
    """`count` builds queued at once, one client thread (and connection) each."""
    start_line = threading.Barrier(count)

    def one(_: int) -> Build:
        with connect(server) as client:
            try:
                client.health()  # the connection is open before the start line
            except BaseException:
                start_line.abort()  # the others stop waiting for this one
                raise
            start_line.wait(START_LINE_TIMEOUT_S)
            return build_once(client, manifest_id, timeout_s)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def environment_folders(home: Path) -> tuple[int, int]:
    """(complete, unfinished) environment folders under `<home>/envs`."""
    root = home / "envs"
    folders = (
        [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f]{64}", p.name)]
        if root.is_dir()
        else []
    )
    ready = sum((p / READY_MARKER).is_file() for p in folders)
    return ready, len(folders) - ready


def phase(
    key: str, title: str, server: ServerProcess, builds: list[Build], concurrent: bool
) -> Phase:
    ready, unfinished = environment_folders(server.home)
    if unfinished:
        raise BenchError(f"{title}: {unfinished} unfinished environment folder(s) left behind")
    result = Phase(key, title, builds, concurrent, ready)
    print_phase(result)
    return result


def expect(condition: bool, what: str, phase: Phase) -> None:
    if not condition:
        detail = ", ".join(f"{b.image_id}: {b.environment} {b.lock}" for b in phase.builds)
        raise BenchError(
            f"{phase.title}: expected {what}; got {phase.built} built, {phase.reused} reused, "
            f"{phase.ready_environments} ready environment folder(s) ({detail})"
        )


def one_lock(phase: Phase) -> None:
    locks = {b.lock for b in phase.builds}
    expect(len(locks) == 1, f"one lock for every build (saw {', '.join(sorted(locks))})", phase)


# -- the phases --------------------------------------------------------------------------


def run_phases(args: argparse.Namespace, scratch: Path) -> list[Phase]:
    n, timeout_s = args.concurrency, args.timeout
    inputs = write_inputs(scratch / "inputs", args.requirements)
    uv_env: dict[str, str] = {}
    phases: list[Phase] = []

    if not args.skip_uncached:
        uv_cache = scratch / "uv-cache"
        uv_cache.mkdir()
        uv_env = {"UV_CACHE_DIR": str(uv_cache)}
        print("\n== 1. uncached: fresh uv cache, fresh home", flush=True)
        print(
            "  (downloads every package: this number measures the network and PyPI as much "
            "as modelyard)",
            flush=True,
        )
        with running_server(scratch, "uncached", uv_env) as server:
            manifest_id = create_manifest(server, inputs)
            builds = build_sequentially(server, manifest_id, 1, timeout_s)
            uncached = phase("uncached", "uncached (fresh uv cache)", server, builds, False)
        expect(uncached.built == 1 and uncached.ready_environments == 1, "1 built", uncached)
        print(f"  uv cache after it: {_tree_mib(uv_cache):.0f} MiB", flush=True)
        phases.append(uncached)
    else:
        print("\n  --skip-uncached: cold builds use your own uv cache", flush=True)

    if args.uv_offline:
        uv_env["UV_OFFLINE"] = "1"
        print("\n  --uv-offline: from here on uv resolves and installs from its cache only")
    workers_env = {**uv_env, "MODELYARD_WORKERS": str(n)}
    print(f"\n== 2-4. a fresh home, the same uv cache, {n} workers", flush=True)
    with running_server(scratch, "cached", workers_env) as server:
        manifest_id = create_manifest(server, inputs)
        print("  2. cold: environment not cached", flush=True)
        builds = build_sequentially(server, manifest_id, 1, timeout_s)
        title = "cold (your uv cache)" if args.skip_uncached else "cold (uv cache warm)"
        cold = phase("cold", title, server, builds, False)
        expect(cold.built == 1 and cold.ready_environments == 1, "1 built", cold)
        phases.append(cold)

        print(f"  3. warm: the same manifest again, {args.warm_runs} time(s)", flush=True)
        builds = build_sequentially(server, manifest_id, args.warm_runs, timeout_s)
        warm = phase("warm", "warm (environment cached)", server, builds, False)
        expect(warm.reused == len(builds) and warm.ready_environments == 1, "all reused", warm)
        phases.append(warm)

        print(f"  4. {n} concurrent builds, environment cached", flush=True)
        builds = build_concurrently(server, manifest_id, n, timeout_s)
        shared = phase("concurrent", f"{n} concurrent, env cached", server, builds, True)
        expect(
            shared.reused == n and shared.ready_environments == 1,
            f"{n} reused and 1 ready environment",
            shared,
        )
        one_lock(shared)
        phases.append(shared)

    print(f"\n== 5. {n} concurrent builds on a fresh home: environment not cached", flush=True)
    with running_server(scratch, "concurrent-cold", workers_env) as server:
        manifest_id = create_manifest(server, inputs)
        builds = build_concurrently(server, manifest_id, n, timeout_s)
        racing = phase("concurrent_cold", f"{n} concurrent, env not cached", server, builds, True)
    expect(
        racing.built == 1 and racing.reused == n - 1 and racing.ready_environments == 1,
        f"exactly 1 built, {n - 1} reused and 1 ready environment",
        racing,
    )
    one_lock(racing)
    phases.append(racing)
    return phases


def _tree_mib(root: Path) -> float:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total / 2**20


# -- reporting ---------------------------------------------------------------------------


def print_phase(p: Phase) -> None:
    count = len(p.builds)
    server = f", server p50 {p.server_p50_s:.2f} s" if p.server_p50_s is not None else ""
    if count == 1:
        timing = f"{p.builds[0].seconds:.2f} s{server}"
    else:
        timing = f"p50 {p.p50_s:.2f} s, max {p.max_s:.2f} s{server}"
        if p.concurrent:
            timing = f"wall {p.wall_s:.2f} s, {p.builds_per_s:.2f} builds/s, per build {timing}"
    locks = ", ".join(sorted({b.lock for b in p.builds}))
    print(
        f"    {p.title}: {count} build(s), {timing}; environment {p.built} built, "
        f"{p.reused} reused (lock {locks}), {p.ready_environments} ready in envs/",
        flush=True,
    )
    steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in p.step_p50s().items())
    print(f"      steps, s{' (p50)' if count > 1 else ''}: {steps}", flush=True)
    if count > 1:
        slowest = max(p.builds, key=lambda b: b.seconds)
        step, seconds = max(slowest.steps.items(), key=lambda item: item[1])
        print(
            f"      slowest build {slowest.image_id[:8]}: {slowest.seconds:.2f} s, "
            f"of which {step} {seconds:.2f} s",
            flush=True,
        )


def print_summary(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"\n== summary: requirements {','.join(args.requirements)}, concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPU cores (shared by client, server and "
        f"uv), load average now {load_average()}"
    )
    print(
        f"  {'phase':<32}{'builds':>7}{'wall s':>9}{'p50 s':>8}{'max s':>8}"
        f"{'server p50':>11}{'builds/s':>10}  environment"
    )
    for p in phases:
        server = f"{p.server_p50_s:.2f}" if p.server_p50_s is not None else "n/a"
        envs = f"{p.built} built, {p.reused} reused; {p.ready_environments} in envs/"
        print(
            f"  {p.title:<32}{len(p.builds):>7}{p.wall_s:>9.2f}{p.p50_s:>8.2f}{p.max_s:>8.2f}"
            f"{server:>11}{p.builds_per_s:>10.2f}  {envs}"
        )
    print("  times: POST /images until Succeeded was seen (polled every 50 ms); server p50:")
    print("  operation createdTime to endTime. wall: first POST to last Succeeded.")
    by_key = {p.key: p for p in phases}
    cold, warm = by_key["cold"], by_key["warm"]
    print(_ratio("warm ÷ cold", warm.p50_s / cold.p50_s, "p50 of the warm builds"))
    if "uncached" in by_key:
        print(_ratio("cold ÷ uncached", cold.p50_s / by_key["uncached"].p50_s, ""))
    shared = by_key["concurrent"]
    print(
        _ratio(
            f"{args.concurrency} concurrent p50 ÷ warm p50",
            shared.p50_s / warm.p50_s,
            "1.0 = builds do not slow each other down",
        )
    )
    racing = by_key["concurrent_cold"]
    print(
        _ratio(
            f"{args.concurrency} concurrent, env not cached: wall ÷ cold",
            racing.wall_s / cold.p50_s,
            "about 1 = one environment build, the rest wait for it",
        )
    )
    print(f"  verdict: {verdict(warm)}")


def _ratio(label: str, value: float, note: str) -> str:
    return f"  {label:<44}{value:>8.2f}x   {note}".rstrip()


def verdict(warm: Phase) -> str:
    p50 = warm.p50_s
    if p50 <= ABOUT_A_SECOND_S:
        outcome = "meets"
    else:
        outcome = f"misses ({p50 / ABOUT_A_SECOND_S:.1f}x the bound)"
    return (
        f'warm builds p50 {p50:.2f} s (max {warm.max_s:.2f} s) {outcome} the "builds in '
        f'about a second" target (p50 ≤ {ABOUT_A_SECOND_S:g} s)'
    )


def _result_json(phases: list[Phase], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "requirements": args.requirements,
        "runtime_requirements": list(RUNTIME_REQUIREMENTS),
        "concurrency": args.concurrency,
        "warm_runs": args.warm_runs,
        "uv_offline": args.uv_offline,
        "cpu_count": os.cpu_count(),
        "phases": {
            p.key: {
                **asdict(p),
                "wall_s": p.wall_s,
                "p50_s": p.p50_s,
                "max_s": p.max_s,
                "server_p50_s": p.server_p50_s,
                "builds_per_s": p.builds_per_s,
                "step_p50s": p.step_p50s(),
            }
            for p in phases
        },
    }


# -- command line ------------------------------------------------------------------------


def _requirements(raw: str) -> list[str]:
    chosen = [r.strip() for r in raw.split(",") if r.strip()]
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one requirement")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--requirements",
        type=_requirements,
        default=_requirements("numpy,six"),
        help="the manifest's pip requirements, comma separated; default numpy,six",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=4,
        help="builds queued at once in phases 4 and 5 (and the server's workers); default 4",
    )
    parser.add_argument(
        "--warm-runs", type=positive_int, default=5, help="warm builds in a row; default 5"
    )
    parser.add_argument(
        "--skip-uncached",
        action="store_true",
        help="leave out the build with a fresh uv cache (the one that downloads everything)",
    )
    parser.add_argument(
        "--uv-offline",
        action="store_true",
        help="run uv with UV_OFFLINE=1 after the uncached phase: no index requests, so "
        "the numbers leave out PyPI's latency and network hiccups (servers normally run "
        "online)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds one build may take; default 900"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the homes, logs and uv cache for inspection"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engine = "docker (builds include docker build)" if engine_available() else "none"
    print(
        f"modelyard image build benchmark: requirements {','.join(args.requirements)} "
        f"(+ the scoring runtime's {', '.join(RUNTIME_REQUIREMENTS)}), concurrency "
        f"{args.concurrency}, warm runs {args.warm_runs}, container engine {engine}, "
        f"uv {'offline after the uncached phase' if args.uv_offline else 'online'}, "
        f"{os.cpu_count()} CPU cores, load average {load_average()}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="modelyard-bench-images-"))
    try:
        phases = run_phases(args, scratch)
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
    print_summary(phases, args)
    if args.json is not None:
        args.json.write_text(json.dumps(_result_json(phases, args), indent=2) + "\n")
        print(f"  results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
