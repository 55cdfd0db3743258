"""``sync`` of many small files: ``tinys3 sync`` beside ``aws s3 sync``, on one SeaweedFS.

Setup (the AWS CLI in a venv of its own, so that it does not move boto3)::

    pip install -e ".[test]"
    python -m venv /tmp/aws && /tmp/aws/bin/pip install awscli
    python bench/sync.py --aws /tmp/aws/bin/aws

For each client, three runs of ``sync DIR s3://bucket/<client>/`` over the
same ``--files`` files of 1 KiB: the first sends everything, the second finds
nothing changed, the third finds ``--changed`` files grown by a byte. Each
run is its own process: wall time, requests (SeaweedFS's own counter, so the
same count for any client) and peak RSS (``wait4``). Then memory over
``--keys`` keys: a second sync of that many files that finds nothing to do
(both listings compared), and a dry-run download of the prefix into an empty
folder. Each client runs with its default concurrency (tinys3 64, aws 10) and
once more with tinys3 at 10.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
import tinys3  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def requests_counted(metrics: str) -> int:
    """Every S3 request SeaweedFS has answered so far, from its Prometheus counters."""
    with urllib.request.urlopen(metrics) as reply:
        lines = reply.read().decode().splitlines()
    return sum(int(float(line.rpartition(" ")[2])) for line in lines if line.startswith("SeaweedFS_s3_request_total{"))


#: Runs a command and writes its peak RSS (KiB) to a file. Linux keeps a process's peak across
#: exec, and a child forked from this (large) benchmark would start with the benchmark's: the
#: command is forked from this small launcher instead.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(command: list[str], env: dict[str, str], metrics: str) -> tuple[float, int, float]:
    """(wall seconds, requests, peak RSS MiB) of one command in its own process."""
    before = requests_counted(metrics)
    with tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, peak.name, *command], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        rss = int(peak.read()) / 1024
    time.sleep(0.5)  # let the counters settle
    return wall, requests_counted(metrics) - before, rss


def make_files(root: Path, count: int) -> None:
    past = time.time() - 3600  # files written before the sync, as in life
    for number in range(count):
        path = root / f"d{number // 100:03d}" / f"f{number:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1024) if count <= 20_000 else b"x")
        os.utime(path, (past, past))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--aws", default=shutil.which("aws"), help="the aws command (skipped if absent)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinys3-sync-bench-"))
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    (work / "server").mkdir()
    with conftest.seaweedfs_server(work / "server", metrics_port=metrics_port) as server:
        conn = tinys3.Connection(server.access_key, server.secret_key, endpoint=server.endpoint)
        bucket = "sync-bench"
        conn.create_bucket(bucket)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
                   AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   PYTHONPATH=str(HERE))  # fmt: skip
        tinys3_cli = [sys.executable, "-m", "tinys3", "sync", "--endpoint-url", server.endpoint]
        clients = {"tinys3": tinys3_cli, "tinys3 --max-concurrency 10": [*tinys3_cli, "--max-concurrency", "10"]}
        if options.aws:
            aws = [options.aws, "s3", "sync", "--endpoint-url", server.endpoint, "--only-show-errors"]
            clients["aws s3 sync"] = aws
        else:
            print("aws: not found (see the setup above); its rows are skipped")
        print(f"{options.files:,} files of 1 KiB; run 3 after {options.changed} changed; SeaweedFS on loopback\n")
        print(f"{'client':<30} {'run':<14} {'wall s':>8} {'requests':>9} {'peak RSS MiB':>13}")
        for name, command in clients.items():
            folder = work / name.replace(" ", "_")
            make_files(folder, options.files)
            target = f"s3://{bucket}/{name.split()[0]}-{len(name)}/"
            for run_name in ("1 first", "2 unchanged", "3 changed"):
                if run_name == "3 changed":
                    for number in range(0, options.files, options.files // options.changed):
                        path = folder / f"d{number // 100:03d}" / f"f{number:06d}.bin"
                        path.write_bytes(path.read_bytes() + b"!")
                wall, requests, rss = run([*command, str(folder), target], env, metrics)
                print(f"{name:<30} {run_name:<14} {wall:8.2f} {requests:9,} {rss:13.1f}", flush=True)
        print(f"\nmemory over {options.keys:,} keys (1-byte files)")
        many = work / "many"
        make_files(many, options.keys)
        target = f"s3://{bucket}/many/"
        wall, requests, rss = run([*tinys3_cli, str(many), target], env, metrics)
        print(f"{'tinys3':<30} {'first':<14} {wall:8.2f} {requests:9,} {rss:13.1f}", flush=True)
        empty = work / "empty"
        empty.mkdir()
        for name, command in clients.items():
            if name.endswith("10"):
                continue
            wall, requests, rss = run([*command, str(many), target], env, metrics)
            print(f"{name:<30} {'unchanged':<14} {wall:8.2f} {requests:9,} {rss:13.1f}", flush=True)
            wall, requests, rss = run([*command, target, str(empty), "--dryrun"], env, metrics)
            print(f"{name:<30} {'dry download':<14} {wall:8.2f} {requests:9,} {rss:13.1f}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
