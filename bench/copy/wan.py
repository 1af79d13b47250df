"""Copy and refresh over a WAN-like link: armirror beside a skopeo loop, in one run.

    .venv/bin/python bench/copy/wan.py [--runs 3] [--delay 0.02] [--sections warm,cold,refresh]

Both registries serve HTTPS (a throwaway CA) behind the latency relay
(infra/local/standins/relay.py, its own process), which holds every byte back
``--delay`` seconds each way: a round trip costs 2 x delay (40 ms by default), a new
connection one round trip more.  Every tool goes through the same relay.

- warm: re-sync of 40 small images that are all at the destination already;
- cold: copy of 6 images (4 single-platform, 2 multi-arch) into an empty registry;
- refresh: ``refresh`` over 2,000 mirrored tags (50 repositories of 40 tags, 40 of
  them moved upstream); its peer is ``skopeo inspect --raw`` on a sample of 40 tags,
  per tag, since a 2,000-tag skopeo loop would take minutes.

Each figure is printed beside its physical limit: the round trips that must happen one
after another, times the round-trip time (see ``limits``).  Results go to
bench/.work/wan/wan-results.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus, small_corpus  # noqa: E402
from standins import images  # noqa: E402
from standins.registry import Registry, start_registry  # noqa: E402
from standins.tls import make_certificates  # noqa: E402

WORK = ROOT / "bench" / ".work" / "wan"
ARMIRROR = str(ROOT / ".venv" / "bin" / "armirror")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RELAY = str(ROOT / "infra" / "local" / "standins" / "relay.py")
DEST = "dest.wan.test"  # the destination's registry name; --upstream maps it to the relay
JOBS = 8
SECTIONS = ("warm", "cold", "refresh")
REFRESH_REPOS, REFRESH_TAGS, REFRESH_MOVED = 50, 40, 40
#: The default ARMIRROR_REFRESH_CONCURRENCY, and twice that.
REFRESH_CONCURRENCY = (32, 64)


class RelayProcess:
    """The latency relay in its own process, in front of some loopback registries."""

    def __init__(self, delay: float, *registries: Registry) -> None:
        self.process = subprocess.Popen(
            [PYTHON, RELAY, "--delay", str(delay), *(r.host for r in registries)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        WATCHED["relay"] = self.process.pid
        self.ports: dict[str, int] = {}
        for _ in registries:
            port, target = self.process.stdout.readline().split()
            self.ports[target] = int(port)

    def url(self, registry: Registry) -> str:
        return f"https://127.0.0.1:{self.ports[registry.host]}"

    def host(self, registry: Registry) -> str:
        return f"127.0.0.1:{self.ports[registry.host]}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


#: CPU seconds of the last command run (it and its children) and of the processes
#: watched meanwhile (the registries and the relay), for the CPU floor beside each figure.
LAST_CPU: dict[str, float] = {}
WATCHED: dict[str, int] = {}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    watched = {name: process_cpu(pid) for name, pid in WATCHED.items()}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU.clear()
    LAST_CPU["client"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for name, pid in WATCHED.items():
        LAST_CPU[name] = process_cpu(pid) - watched[name]
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


def names(imgs: list[images.Image]) -> list[str]:
    return [f"{i.repository}:{i.tag}" for i in imgs]


def armirror_cmd(
    src_url: str, dst_url: str, imgs: list[images.Image], *, record: bool = True
) -> list[str]:
    """``armirror copy``; by default it also records the results in its DuckDB store
    (``--no-record`` measures the copy alone)."""
    listing = WORK / f"images-{len(imgs)}.txt"
    listing.write_text("\n".join(f"docker.io/{n}" for n in names(imgs)) + "\n")
    return [
        ARMIRROR, "copy", "-f", str(listing), "--to", f"{DEST}/mirror",
        "--upstream", f"docker.io={src_url}", "--upstream", f"{DEST}={dst_url}",
        "--format", "json", "-j", str(JOBS), "--store", f"duckdb://{WORK}/cli-store.duckdb",
        *([] if record else ["--no-record"]),
    ]  # fmt: skip


def skopeo_cmd(src_host: str, dst_host: str, imgs: list[images.Image], certs: Path) -> list[str]:
    lines = ["set -e"] + [
        f"skopeo copy -q --all --preserve-digests --src-cert-dir {certs} "
        f"--dest-cert-dir {certs} docker://{src_host}/{n} "
        f"docker://{dst_host}/mirror/docker.io/{n}"
        for n in names(imgs)
    ]
    return ["bash", "-c", "\n".join(lines)]


def statuses(stdout: str) -> list[str]:
    return [row["status"] for row in json.loads(stdout)]


def seed_refresh(src: Registry, ca: Path) -> tuple[list[tuple[str, str]], str]:
    """50 repositories of 40 tags naming one small image; (source, digest) per tag."""
    image = images.single_image("library/refresh0", "t0", seed=4242, layer_sizes=(1024,))
    tags: list[tuple[str, str]] = []
    with httpx.Client(base_url=src.url, verify=str(ca), timeout=60) as client:
        for r in range(REFRESH_REPOS):
            repository = f"library/refresh{r}"
            images.push(src.url, images.Image(repository, "t0", image.top, [], image.blobs))
            for t in range(REFRESH_TAGS):
                if t:
                    client.put(
                        f"/v2/{repository}/manifests/t{t}",
                        content=image.top.raw,
                        headers={"Content-Type": image.top.media_type},
                    ).raise_for_status()
                tags.append((f"docker.io/{repository}:t{t}", image.digest))
    return tags, image.digest


def refresh_store(path: Path, tags: list[tuple[str, str]]) -> None:
    """A DuckDB store in which every tag was mirrored; REFRESH_MOVED of them at a digest
    the upstream no longer has (so refresh finds them moved)."""
    from armirror.reference import destination_for, parse
    from armirror.registry import CopyResult
    from armirror.store.duckdb import DuckDBStore

    path.unlink(missing_ok=True)
    stride = len(tags) // REFRESH_MOVED
    with DuckDBStore(path) as store:
        for n, (source, digest) in enumerate(tags):
            recorded = "sha256:" + "0" * 64 if n % stride == 0 else digest
            destination = destination_for(parse(source), f"{DEST}/mirror")
            store.record_copy(CopyResult(source, str(destination), "copied", digest=recorded))


def startup_seconds(env: dict[str, str]) -> float:
    """What starting armirror costs before any request: `armirror copy --help`."""
    return min(run([ARMIRROR, "copy", "--help"], env)[0] for _ in range(3))


def limits(rtt: float, startup: float, tags: int, concurrency: int) -> dict[str, float]:
    """The least wall time each run can take on this link: dependent round trips x RTT.

    - warm: a new connection (TCP and TLS: 2 round trips), then every image's three
      questions (HEAD source, HEAD destination, the source's tags/list) at once: 1.
    - cold: per image, one after another: connection (2), the HEADs (1), GET manifest
      (1), GET platform manifests (1, multi-arch), blob HEAD at the destination (1),
      upload start (1), blob GET and PUT (1, plus the bytes' own time), child
      manifests (1), the tag (1): 10 for a multi-arch image; the images run at once.
    - refresh: a connection (2), then ``tags / concurrency`` HEADs one after another.
    The process start-up (imports) is added to each, measured separately.
    """
    return {
        "warm": startup + 3 * rtt,
        "cold": startup + 10 * rtt,
        "refresh": 2 * rtt + -(-tags // concurrency) * rtt,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds each way")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"--sections: unknown {', '.join(sorted(sections - set(SECTIONS)))}")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    ca, cert, key = make_certificates(WORK / "tls")
    certs = ca.parent
    os.environ["SSL_CERT_FILE"] = str(ca)  # for the seeding below
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    env.update({"SSL_CERT_FILE": str(ca), "DOCKER_CONFIG": str(WORK / "no-docker-config")})
    results: dict[str, dict[str, list[float]]] = {}

    def record(section: str, tool: str, wall: float, *, with_cpu: bool = True) -> None:
        results.setdefault(section, {}).setdefault(tool, []).append(wall)
        cpu = dict(LAST_CPU) if with_cpu else {}
        for name, seconds in cpu.items():
            results[section].setdefault(f"{tool} cpu {name}", []).append(seconds)
        shown = " ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        print(f"{section:8} {tool:34} {wall:7.3f}s  cpu: {shown}", file=sys.stderr)

    def registry(name: str) -> Registry:
        shutil.rmtree(WORK / name, ignore_errors=True)
        started = start_registry(WORK / name, tls=(cert, key))
        WATCHED["source" if name == "source" else "destination"] = started.process.pid
        return started

    rtt = 2 * args.delay
    startup = startup_seconds(env)
    print(f"armirror start-up (copy --help): {startup:.3f}s; RTT {rtt * 1000:.0f} ms")
    small = small_corpus(40)
    full = corpus()
    cold = full[:4] + full[9:11]
    with registry("source") as src:
        for image in small + cold:
            images.push(src.url, image)
        if "warm" in sections:
            with registry("warm-dest") as dst:
                run(armirror_cmd(src.url, dst.url, small), env)  # populate, not timed
                relay = RelayProcess(args.delay, src, dst)
                try:
                    for _ in range(args.runs):
                        wall, out = run(armirror_cmd(relay.url(src), relay.url(dst), small), env)
                        assert set(statuses(out)) == {"up-to-date"}, out[:500]
                        record("warm", "armirror", wall)
                        cmd = armirror_cmd(relay.url(src), relay.url(dst), small, record=False)
                        record("warm", "armirror --no-record", run(cmd, env)[0])
                        cmd = skopeo_cmd(relay.host(src), relay.host(dst), small, certs)
                        record("warm", "skopeo loop", run(cmd, env)[0])
                finally:
                    relay.stop()
        for _ in range(args.runs if "cold" in sections else 0):
            for tool in ("armirror", "skopeo loop"):
                with registry("cold-dest") as dst:
                    relay = RelayProcess(args.delay, src, dst)
                    try:
                        if tool == "armirror":
                            cmd = armirror_cmd(relay.url(src), relay.url(dst), cold)
                            wall, out = run(cmd, env)
                            assert set(statuses(out)) == {"copied"}, out[:500]
                        else:
                            cmd = skopeo_cmd(relay.host(src), relay.host(dst), cold, certs)
                            wall, _ = run(cmd, env)
                        record("cold", tool, wall)
                    finally:
                        relay.stop()
        if "refresh" in sections:
            tags, digest = seed_refresh(src, ca)
            store = WORK / "refresh.duckdb"
            refresh_store(store, tags)
            with registry("refresh-dest") as dst:
                relay = RelayProcess(args.delay, src, dst)
                try:
                    for _ in range(args.runs):
                        for concurrency in REFRESH_CONCURRENCY:
                            cmd = [
                                PYTHON, str(Path(__file__).resolve().parent / "refresh_wan.py"),
                                "--store", str(store), "--destination", f"{DEST}/mirror",
                                "--upstream", f"docker.io={relay.url(src)}",
                                "--upstream", f"{DEST}={relay.url(dst)}",
                                "--concurrency", str(concurrency),
                            ]  # fmt: skip
                            wall, out = run(cmd, env)
                            report = json.loads(out)
                            assert report["checked"] == len(tags), report
                            assert report["changed"] == REFRESH_MOVED, report
                            tool = f"armirror, {concurrency} in flight"
                            record("refresh", f"{tool} (process)", wall)
                            record(
                                "refresh", f"{tool} (refresh call)", report["seconds"],
                                with_cpu=False,
                            )  # fmt: skip
                        sample = [source for source, _ in tags[:40]]
                        lines = ["set -e"] + [
                            f"skopeo inspect --raw --cert-dir {certs} docker://"
                            f"{relay.host(src)}/{s.removeprefix('docker.io/')} > /dev/null"
                            for s in sample
                        ]
                        wall, _ = run(["bash", "-c", "\n".join(lines)], env)
                        record(
                            "refresh",
                            "skopeo inspect loop, per tag",
                            wall / len(sample),
                            with_cpu=False,
                        )
                finally:
                    relay.stop()
            del digest

    summary = {
        section: {tool: statistics.median(values) for tool, values in tools.items()}
        for section, tools in results.items()
    }
    bounds = limits(rtt, startup, REFRESH_REPOS * REFRESH_TAGS, REFRESH_CONCURRENCY[0])
    (WORK / "wan-results.json").write_text(
        json.dumps(
            {"runs": results, "median": summary, "limits": bounds, "startup": startup},
            indent=2,
        )
    )
    for section, tools in summary.items():
        for tool, value in tools.items():
            if " cpu " not in tool:
                print(f"| {section} | {tool} | {value:.3f} s |")
        for tool in [t for t in tools if " cpu " not in t]:
            parts = {
                k.split(" cpu ", 1)[1]: v for k, v in tools.items() if k.startswith(tool + " cpu ")
            }
            if parts:
                shown = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
                floor = sum(parts.values()) / (os.cpu_count() or 1)
                print(f"| {section} | {tool}: CPU-s {shown}; CPU floor {floor:.2f} s |")
        if "armirror" in tools and "skopeo loop" in tools:
            ratio = tools["armirror"] / tools["skopeo loop"]
            print(f"| {section} | armirror / skopeo | {ratio:.4f} |")
        print(f"| {section} | physical limit | {bounds[section]:.3f} s |")
    if "refresh" in summary:
        per_tag = summary["refresh"]["skopeo inspect loop, per tag"]
        print(
            f"| refresh | skopeo inspect loop, 2,000 tags (extrapolated) | "
            f"{per_tag * REFRESH_REPOS * REFRESH_TAGS:.0f} s |"
        )


if __name__ == "__main__":
    main()
