"""Objects as files: what ``Connection.open()`` costs, beside ``download``/``upload`` and smart_open.

    pip install -e ".[test]" smart_open      # smart_open is optional: measured when installed
    python bench/files.py [--mib 200] [--rounds 3] [--latency MS]

Against a SeaweedFS on loopback, each figure the median of ``--rounds``, each
run in a fresh process (its peak RSS is its own):

- the bytes that came over the wire to extract one 1 MiB member of a zip of
  ``--mib`` MiB (through a relay of this script's that counts them);
- sequential ``read()`` of the whole object in 1 MiB reads, against
  ``download()`` of it to a file;
- writing ``--mib`` MiB in 64 KiB ``write()`` calls, against ``upload()`` of
  a file of the same bytes: throughput and peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

MiB = 1024 * 1024

SETUP = {
    "tinys3": "import tinys3\nc = tinys3.Connection(KEY, SECRET, endpoint=ENDPOINT, default=BUCKET)",
    "smart_open": (
        "import boto3, smart_open\nclient = boto3.client('s3', endpoint_url=ENDPOINT, region_name='us-east-1', "
        "aws_access_key_id=KEY, aws_secret_access_key=SECRET)\n"
        "def opened(key, mode):\n    return smart_open.open(f's3://{BUCKET}/{key}', mode, "
        "transport_params={'client': client})"
    ),
}
MEMBER = {
    "tinys3": "import zipfile\nwith c.open('bundle.zip') as f, zipfile.ZipFile(f) as z:\n"
    "    got = z.read('wanted.bin')",
    "smart_open": "import zipfile\nwith opened('bundle.zip', 'rb') as f, zipfile.ZipFile(f) as z:\n"
    "    got = z.read('wanted.bin')",
}
READ = {
    "tinys3": "with c.open('bundle.zip') as f:\n    while f.read(MiB):\n        pass",
    "tinys3 download()": "c.download('bundle.zip', PATH)",
    "smart_open": "with opened('bundle.zip', 'rb') as f:\n    while f.read(MiB):\n        pass",
}
WRITE = {
    "tinys3": "with c.open('written.bin', 'wb') as f:\n    for _ in range(SIZE // len(PIECE)):\n        f.write(PIECE)",
    "tinys3 upload()": "c.upload('uploaded.bin', Path(PATH))",
    "smart_open": "with opened('written.bin', 'wb') as f:\n    for _ in range(SIZE // len(PIECE)):\n"
    "        f.write(PIECE)",
}


def worker(job: dict[str, Any]) -> dict[str, float]:
    """Run one step in this fresh process: its wall time and this process's peak RSS."""
    import time

    scope: dict[str, Any] = {"Path": Path, "MiB": MiB, "PIECE": os.urandom(64 * 1024), **job["names"]}
    exec(SETUP[job["client"]], scope)
    start = time.perf_counter()
    exec(job["step"], scope)
    wall = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:"))  # fmt: skip
    return {"wall": wall, "rss_mib": peak / 1024}


def run(client: str, step: str, names: dict[str, Any]) -> dict[str, float]:
    job = json.dumps({"client": client.split()[0], "step": step, "names": names})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # compiled once, as installed
    out = subprocess.run([sys.executable, __file__, "--worker", job], capture_output=True, text=True, check=True,
                         env=env)  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class CountingRelay:
    """A TCP relay to the server that counts the bytes coming back (what a client was sent),
    and with ``latency`` holds every piece that long in each direction (a WAN's delay,
    without its bandwidth limit: pieces queue, they do not wait for each other)."""

    def __init__(self, upstream_port: int, latency: float = 0.0) -> None:
        self.latency = latency
        self.received = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._upstream = upstream_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._listener.accept()
            server = socket.create_connection(("127.0.0.1", self._upstream))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        import queue
        import time

        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def deliver() -> None:
            with contextlib.suppress(OSError):
                while True:
                    due, data = pending.get()
                    time.sleep(max(0.0, due - time.monotonic()))
                    if not data:
                        break
                    sink.sendall(data)
            for end in (source, sink):
                end.close()

        threading.Thread(target=deliver, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                pending.put((time.monotonic() + self.latency, data))
                if counted:
                    with self._lock:
                        self.received += len(data)
        pending.put((time.monotonic() + self.latency, b""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0, help="ms added each way by the relay (a WAN)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    import importlib.util

    import tinys3

    clients = ["tinys3"] + (["smart_open"] if importlib.util.find_spec("smart_open") else [])
    import conftest  # here, not at the top: a worker's peak RSS would count pytest's

    with tempfile.TemporaryDirectory() as tmp, conftest.seaweedfs_server(Path(tmp)) as server:
        bucket = server.new_bucket()
        bundle = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(bundle, "w") as archive:  # stored, not deflated: the sizes stay what they say
            with archive.open("big.bin", "w", force_zip64=True) as big:
                for _ in range(args.mib - 1):
                    big.write(os.urandom(MiB))
            archive.writestr("wanted.bin", os.urandom(MiB))
        tinys3.Connection(server.access_key, server.secret_key, endpoint=server.endpoint).upload(
            "bundle.zip", bundle, bucket
        )
        relay = CountingRelay(int(server.endpoint.rsplit(":", 1)[1]), args.latency / 1000)
        names = {"KEY": server.access_key, "SECRET": server.secret_key, "BUCKET": bucket,
                 "ENDPOINT": f"http://127.0.0.1:{relay.port}", "PATH": str(Path(tmp) / "out.bin"),
                 "SIZE": args.mib * MiB}  # fmt: skip
        print(
            f"SeaweedFS; a {bundle.stat().st_size / MiB:.1f} MiB zip; clients: {', '.join(clients)}; "
            f"median of {args.rounds}; {args.latency:g} ms added each way"
        )
        for client in clients:
            received = []
            for _ in range(args.rounds):
                before = relay.received
                run(client, MEMBER[client], names)
                received.append(relay.received - before)
            print(f"  one 1 MiB member of the zip, {client:<18} {statistics.median(received) / MiB:8.2f} MiB received")
        for title, steps in (("sequential read of the zip", READ), ("64 KiB writes of the same size", WRITE)):
            for client, step in steps.items():
                if client.split()[0] not in clients:
                    continue
                if client == "tinys3 upload()":
                    Path(names["PATH"]).write_bytes(bundle.read_bytes()[: args.mib * MiB])
                results = [run(client, step, names) for _ in range(args.rounds)]
                wall = statistics.median(r["wall"] for r in results)
                rss = max(r["rss_mib"] for r in results)
                print(f"  {title}, {client:<18} {args.mib * MiB / 1e6 / wall:8.1f} MB/s, peak RSS {rss:6.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
