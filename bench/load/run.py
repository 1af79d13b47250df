"""Load on `armirror serve`'s on_pull_event: 20,000 Pub/Sub pull events, 2,000 images.

    .venv/bin/python bench/load/run.py [--runs 3] [--events 20000] [--images 2000]

What it does, per run (one seeded source registry serves every run):

1. a fresh stand-in Artifact Registry and a fresh DuckDB store;
2. `armirror serve` on 127.0.0.1 with ARMIRROR_UPSTREAMS=docker.io=<stand-in Docker Hub>;
3. POST every event as a structured-mode CloudEvent to /on_pull_event from 16 client
   threads (one keep-alive connection each), under a hard deadline;
4. wait until the local queue has run every job it accepted (serve logs one line per
   queued job and one per finished copy), read VmHWM from /proc/PID/status, stop serve;
5. open the store and check: rows in pull_events == distinct insertIds sent; jobs
   queued == copies recorded == distinct eligible images, none twice; no job pending.

The events (seeded): 2,000 distinct images, 95% on Docker Hub under several spellings
(``app-0001:1.2``, ``library/…``, ``docker.io/…``) and 5% first-party Artifact Registry
images; kubelet Pulling+Pulled pairs, "already present" starts, and a few Docker Hub
rate-limit failures; 10% of the deliveries are redeliveries of an earlier entry (same
insertId).  An image is eligible when it is third-party and some entry shows demand
for it (a Pulling, or a rate-limited failure, which is mirrored at once): the policy of
ARMIRROR_MIRROR_THRESHOLD=1.  Every Docker Hub image is seeded (tiny, one 256-byte
layer) so that each queued copy really runs.

The script exits non-zero if any count is off, a request fails, or a deadline passes.
Figures go to stdout and bench/.work/load/results.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work" / "load"
sys.path.insert(0, str(ROOT / "infra" / "local"))

from armirror.store import open_store  # noqa: E402
from standins import images  # noqa: E402
from standins.logentries import cloud_event, kubelet_entry  # noqa: E402
from standins.registry import Registry, free_port, start_registry  # noqa: E402

START = datetime(2026, 10, 1, 0, 0, 0, tzinfo=UTC)
CLUSTERS = ("blue", "green", "batch")
NAMESPACES = ("payments", "search", "web", "jobs", "monitoring")
QUEUED_RE = re.compile(r"\bqueued (\S+) -> (\S+) \((\w+)\)")
COPIED_RE = re.compile(r"\bcopy job \S+ (\S+) -> \S+: (\S+)")


# -- the workload ---------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    canonical: str  # docker.io/library/app-0001:1.2, or the first-party reference
    spellings: tuple[str, ...]  # how pod specs write it
    repository: str  # in the source registry ("" for first-party images)
    tag: str
    third_party: bool


@dataclass
class Workload:
    images: list[Image]
    deliveries: list[bytes]  # CloudEvent bodies, in send order
    distinct_entries: int
    eligible: set[str]  # canonical references
    kinds: Counter[str] = field(default_factory=Counter)


def make_images(count: int, rng: random.Random) -> list[Image]:
    first_party = max(1, count // 20)
    out = []
    for i in range(count - first_party):
        tag = f"{i % 5}.{i % 7}"
        if i % 3 == 0:
            repo = f"acme{i % 17}/svc-{i:04d}"
            spellings = (f"{repo}:{tag}", f"docker.io/{repo}:{tag}")
        else:
            repo = f"library/app-{i:04d}"
            short = repo.removeprefix("library/")
            spellings = (f"{short}:{tag}", f"docker.io/{repo}:{tag}", f"{repo}:{tag}")
        out.append(Image(f"docker.io/{repo}:{tag}", spellings, repo, tag, True))
    for i in range(first_party):
        ref = f"europe-west1-docker.pkg.dev/example-prod/apps/svc-{i:03d}:{i % 4}"
        out.append(Image(ref, (ref,), "", "", False))
    rng.shuffle(out)
    return out


def make_workload(events: int, image_count: int, dup_ratio: float, seed: int) -> Workload:
    """``events`` deliveries: distinct entries plus ``dup_ratio`` redeliveries."""
    rng = random.Random(seed)
    imgs = make_images(image_count, rng)
    distinct = events - int(events * dup_ratio)
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(imgs))]  # Zipf-like demand
    entries: list[tuple[datetime, dict[str, Any]]] = []
    demand: set[str] = set()
    kinds: Counter[str] = Counter()
    serial = 0

    def add(image: Image, when: datetime, kind: str, pod: str, cluster: str, ns: str) -> None:
        nonlocal serial
        serial += 1
        spelling = rng.choice(image.spellings)
        entry = kubelet_entry(
            f"{serial:07d}-{rng.getrandbits(40):010x}",
            when,
            kind,
            spelling,
            cluster=cluster,
            pod=pod,
            namespace=ns,
        )
        entries.append((when, entry))
        kinds[kind] += 1

    order = list(range(len(imgs)))  # every image at least once, then by weight
    while len(entries) < distinct:
        index = order.pop() if order else rng.choices(range(len(imgs)), weights)[0]
        image = imgs[index]
        when = START + timedelta(seconds=rng.uniform(0, 86_400))
        cluster, ns = rng.choice(CLUSTERS), rng.choice(NAMESPACES)
        pod = f"{ns}-{rng.getrandbits(24):06x}"
        roll = rng.random()
        room = distinct - len(entries)
        if roll < 0.004 and image.third_party and room >= 2:  # Docker Hub said 429
            add(image, when, "Pulling", pod, cluster, ns)
            add(image, when + timedelta(seconds=1), "Failed", pod, cluster, ns)
            demand.add(image.canonical)
        elif roll < 0.45 and room >= 2:  # a real pull: Pulling, then Pulled
            add(image, when, "Pulling", pod, cluster, ns)
            add(image, when + timedelta(seconds=rng.uniform(0.5, 9)), "Pulled", pod, cluster, ns)
            demand.add(image.canonical)
        else:  # the node had it
            add(image, when, "Present", pod, cluster, ns)
    entries.sort(key=lambda pair: pair[0])
    bodies = [
        json.dumps(cloud_event(entry, f"m{n}")).encode() for n, (_, entry) in enumerate(entries)
    ]
    deliveries = list(bodies)
    for _ in range(events - distinct):  # Pub/Sub redelivers a while later, same insertId
        original = rng.randrange(len(bodies))
        later = min(len(deliveries), original + rng.randint(1, 2_000))
        deliveries.insert(later, bodies[original])
    eligible = {img.canonical for img in imgs if img.third_party and img.canonical in demand}
    return Workload(imgs, deliveries, len(bodies), eligible, kinds)


def seed_source(registry: Registry, imgs: list[Image], jobs: int = 8) -> float:
    started = time.monotonic()

    def push(index_image: tuple[int, Image]) -> None:
        n, image = index_image
        pushed = images.single_image(
            image.repository, image.tag, seed=50_000 + n, layer_sizes=(256,)
        )
        images.push(registry.url, pushed)

    third = [(n, img) for n, img in enumerate(imgs) if img.third_party]
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(push, third))
    return time.monotonic() - started


# -- armirror serve ---------------------------------------------------------------------


class Serve:
    def __init__(self, workdir: Path, env: dict[str, str], command: list[str] | None = None):
        self.port = free_port()
        self.store_path = workdir / "armirror.duckdb"
        self.log = workdir / "serve.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
        full.update({"ARMIRROR_STORE": f"duckdb:///{self.store_path}", **env})
        argv = command or [sys.executable, "-m", "armirror.cli"]
        self.process = subprocess.Popen(
            [*argv, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=full,
            cwd=ROOT,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        assert match, status
        return int(match.group(1)) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the load -------------------------------------------------------------------------


def send_all(
    port: int, deliveries: list[bytes], concurrency: int, deadline: float
) -> tuple[float, list[float], Counter[int]]:
    """POST every body; returns wall seconds, latencies and status counts."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    cursor = iter(range(len(deliveries)))
    headers = {"Content-Type": "application/cloudevents+json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        codes: Counter[int] = Counter()
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    break
                began = time.perf_counter()
                try:
                    conn.request("POST", "/on_pull_event", deliveries[index], headers)
                    response = conn.getresponse()
                    response.read()
                    code = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    code = 0
                mine.append(time.perf_counter() - began)
                codes[code] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                statuses.update(codes)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 35)
    return time.perf_counter() - began, latencies, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_for_queue(
    log: Path, deadline: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Until every queued job has a finished-copy line (or the deadline); both lists."""
    while True:
        text = log.read_text(errors="replace")
        queued = [(m[1], m[2]) for m in QUEUED_RE.finditer(text)]
        copied = [(m[1], m[2]) for m in COPIED_RE.finditer(text)]
        if len(copied) >= len(queued) or time.monotonic() > deadline:
            return queued, copied
        time.sleep(0.25)


def one_run(
    n: int, work: Path, source: Registry, workload: Workload, args: argparse.Namespace
) -> dict[str, Any]:
    run_dir = work / f"run{n}"
    if run_dir.exists():
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    deadline = time.monotonic() + args.timeout
    problems: list[str] = []
    with start_registry(run_dir / "dest") as dest:
        env = {
            "ARMIRROR_DESTINATION": f"{dest.host}/mirror",
            "ARMIRROR_UPSTREAMS": f"docker.io={source.url}",
        }
        command = None
        if args.profile:
            command = [sys.executable, str(Path(__file__).parent / "profiled_serve.py")]
            env["ARMIRROR_BENCH_PROFILE"] = str(run_dir / "ingest-profile.txt")
        serve = Serve(run_dir, env, command)
        try:
            wall, latencies, statuses = send_all(
                serve.port, workload.deliveries, args.concurrency, deadline
            )
            queued, copied = wait_for_queue(serve.log, deadline)
            rss = serve.peak_rss_mb()
        finally:
            serve.stop()
    with open_store(f"duckdb:///{serve.store_path}") as store:
        rows = store.count_rows("pull_events")
        copies = [
            (row["source"], row["status"])
            for row in store._rows("SELECT source, status FROM copies")  # type: ignore[attr-defined]
        ]
        pending = store.pending_jobs()  # type: ignore[attr-defined]

    sent = sum(statuses.values())
    if sent != len(workload.deliveries):
        problems.append(f"sent {sent} of {len(workload.deliveries)} events before the deadline")
    if set(statuses) != {204}:
        problems.append(f"statuses {dict(statuses)} (every delivery should be 204)")
    if rows != workload.distinct_entries:
        problems.append(f"{rows} rows in pull_events, expected {workload.distinct_entries}")
    queued_sources = [source_ for source_, _ in queued]
    doubled = [s for s, c in Counter(queued_sources).items() if c > 1]
    if doubled:
        problems.append(f"{len(doubled)} images queued more than once, e.g. {doubled[:3]}")
    if set(queued_sources) != workload.eligible:
        missing = sorted(workload.eligible - set(queued_sources))
        extra = sorted(set(queued_sources) - workload.eligible)
        problems.append(
            f"queued {len(set(queued_sources))} images, expected {len(workload.eligible)}: "
            f"missing {missing[:3]} extra {extra[:3]}"
        )
    copied_ok = [s for s, status in copies if status in ("copied", "up-to-date")]
    if sorted(copied_ok) != sorted(workload.eligible) or len(copies) != len(copied_ok):
        failed = [row for row in copies if row[1] not in ("copied", "up-to-date")]
        problems.append(
            f"copies table: {len(copied_ok)} successful rows over {len(set(copied_ok))} images, "
            f"expected {len(workload.eligible)}; failed rows {failed[:3]}"
        )
    if len(copied) != len(queued):
        problems.append(f"{len(copied)} copies finished of {len(queued)} queued")
    if pending:
        problems.append(f"{len(pending)} jobs still pending in the journal")
    return {
        "events": sent,
        "seconds": round(wall, 3),
        "events_per_s": round(sent / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "peak_rss_mb": round(rss, 1),
        "rows": rows,
        "jobs_queued": len(queued),
        "copies": len(copies),
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--duplicates", type=float, default=0.10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=150.0, help="hard limit a run, s")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the request threads' stacks (bench/load/profiled_serve.py)",
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    workload = make_workload(args.events, args.images, args.duplicates, args.seed)
    print(
        f"workload: {len(workload.deliveries)} deliveries, {workload.distinct_entries} "
        f"distinct entries ({dict(workload.kinds)}), {len(workload.images)} images, "
        f"{len(workload.eligible)} eligible",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    source_dir = WORK / "source"
    if source_dir.exists():
        subprocess.run(["rm", "-rf", str(source_dir)], check=True)
    with start_registry(source_dir) as source:
        seconds = seed_source(source, workload.images)
        print(f"seeded {sum(i.third_party for i in workload.images)} images in {seconds:.1f} s")
        for n in range(args.runs):
            result = one_run(n, WORK, source, workload, args)
            results.append(result)
            print(json.dumps(result), flush=True)
    summary = {
        key: statistics.median(r[key] for r in results)
        for key in ("events_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "seconds")
    }
    summary.update(
        rows=results[-1]["rows"],
        expected_rows=workload.distinct_entries,
        jobs_queued=results[-1]["jobs_queued"],
        expected_jobs=len(workload.eligible),
    )
    (WORK / "results.json").write_text(json.dumps({"runs": results, "median": summary}, indent=2))
    print("median:", json.dumps(summary))
    failed = [p for r in results for p in r["problems"]]
    for problem in failed:
        print("FAIL:", problem, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
