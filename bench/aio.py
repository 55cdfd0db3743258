"""asyncio clients side by side: tinys3's AsyncConnection, obstore, aioboto3, and tinys3's Pool.

    pip install -e ".[test]" obstore
    python -m venv /tmp/aiovenv && /tmp/aiovenv/bin/pip install aioboto3   # it pins its own botocore
    python bench/aio.py [--files 1000] [--rtt 0 20] [--rounds 3] [--aioboto3 /tmp/aiovenv/bin/python]

The work of the asyncio issue: ``--files`` PUTs of 4 KiB, all gathered at once, then
as many GETs of them, against a SeaweedFS on 127.0.0.1, directly (``--rtt 0``)
and behind wan.py's relay (a round trip of ``--rtt`` ms, 40 MB/s a connection).
Each client runs in a fresh process of its own; each round the clients take
turns in a new order; the table shows each row's median wall time and the
client's CPU time (user + system) over that work alone (imports and the
connection's setup left out). tinys3's ``Pool(size=64)`` is the blocking way to
the same work, for comparison. aioboto3 is given 64 connections (its default is 10).

With ``--large MIB``: one file of MIB MiB uploaded from its path, then downloaded to
another, by ``AsyncConnection`` awaited and by the blocking ``Connection`` (their
defaults: parts of 8 MiB, 16 at once); the PUTs and GETs columns are then those two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent

#: Each client's program: ``setup`` (an ``ENDPOINT``, ``KEY``, ``SECRET``, ``BUCKET``, ``N``),
#: then ``puts()`` and ``gets()`` (coroutines, or plain functions for the Pool).
CLIENTS = {
    "tinys3": """
import asyncio, tinys3
conn = tinys3.AsyncConnection(KEY, SECRET, endpoint=ENDPOINT, default=BUCKET)
async def puts():
    await asyncio.gather(*[conn.upload(f"o/{n}", DATA) for n in range(N)])
async def gets():
    async def one(n):
        return await (await conn.get(f"o/{n}")).read()
    return await asyncio.gather(*[one(n) for n in range(N)])
""",
    "obstore": """
import asyncio, obstore
from obstore.store import S3Store
store = S3Store(BUCKET, endpoint=ENDPOINT, access_key_id=KEY, secret_access_key=SECRET, region="us-east-1",
                client_options={"allow_http": True})
async def puts():
    await asyncio.gather(*[obstore.put_async(store, f"o/{n}", DATA) for n in range(N)])
async def gets():
    async def one(n):
        return bytes(await (await obstore.get_async(store, f"o/{n}")).bytes_async())
    return await asyncio.gather(*[one(n) for n in range(N)])
""",
    "aioboto3": """
import asyncio, aioboto3
from botocore.config import Config
session = aioboto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1")
clients = {}
async def client():
    if not clients:
        maker = session.client("s3", endpoint_url=ENDPOINT, config=Config(max_pool_connections=64))
        clients["c"] = await maker.__aenter__()
    return clients["c"]
async def puts():
    s3 = await client()
    await asyncio.gather(*[s3.put_object(Bucket=BUCKET, Key=f"o/{n}", Body=DATA) for n in range(N)])
async def gets():
    s3 = await client()
    async def one(n):
        answer = await s3.get_object(Bucket=BUCKET, Key=f"o/{n}")
        return await answer["Body"].read()
    return await asyncio.gather(*[one(n) for n in range(N)])
""",
    "Pool(64)": """
import pathlib, tinys3
pool = tinys3.Pool(KEY, SECRET, endpoint=ENDPOINT, default=BUCKET, size=64)
def puts():
    pool.all_completed([pool.upload(f"o/{n}", DATA) for n in range(N)])
def gets():
    return [r.content for r in pool.all_completed([pool.get(f"o/{n}") for n in range(N)])]
""",
}

#: ``--large``: ``SOURCE`` (a file of ``N`` MiB) up, then down to ``TARGET``.
LARGE = {
    "AsyncConnection": """
import pathlib, tinys3
conn = tinys3.AsyncConnection(KEY, SECRET, endpoint=ENDPOINT, default=BUCKET)
async def puts():
    await conn.upload("large", pathlib.Path(SOURCE))
async def gets():
    await conn.download("large", TARGET)
""",
    "Connection": """
import pathlib, tinys3
conn = tinys3.Connection(KEY, SECRET, endpoint=ENDPOINT, default=BUCKET)
def puts():
    conn.upload("large", pathlib.Path(SOURCE))
def gets():
    conn.download("large", TARGET)
""",
}

#: Times each step after a warm-up request (a connection opened, the imports done), prints JSON.
MEASURE = """
import asyncio, inspect, json, resource, time
DATA = b"x" * 4096
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
async def main():
    figures = {}
    for name, step in (("puts", puts), ("gets", gets)):
        wall, used = time.perf_counter(), cpu()
        got = step()
        if inspect.isawaitable(got):
            got = await got
        figures[name] = (time.perf_counter() - wall, cpu() - used)
        if name == "gets" and got is not None:
            assert len(got) == N and all(bytes(body) == DATA for body in got)
    print(json.dumps(figures))
asyncio.run(main())
"""


def run(python: str, client: str, fields: dict[str, Any]) -> dict[str, tuple[float, float]]:
    setup = "".join(f"{name} = {value!r}\n" for name, value in fields.items())
    out = subprocess.run([python, "-c", setup + {**CLIENTS, **LARGE}[client] + MEASURE], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE), "AWS_EC2_METADATA_DISABLED": "true"},
                         check=False, timeout=600)  # fmt: skip
    printed = out.stdout.splitlines()
    if out.returncode and not (printed and printed[-1].startswith("{")):  # obstore may abort once it printed them
        raise RuntimeError(f"{client} exited {out.returncode}: {out.stderr[-2000:]}{out.stdout[-500:]}")
    return {name: tuple(pair) for name, pair in json.loads(printed[-1]).items()}  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.0, 20.0], help="round trips, ms (0: direct)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--aioboto3", default="/tmp/aiovenv/bin/python", help="a Python with aioboto3")
    parser.add_argument("--large", type=int, metavar="MIB", help="one large file instead, async and blocking")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE / "bench"))
    import wan

    import bench
    import conftest

    pythons = {"tinys3": sys.executable, "obstore": sys.executable, "Pool(64)": sys.executable}
    if Path(args.aioboto3).exists():
        pythons["aioboto3"] = args.aioboto3
    if args.large:
        pythons = dict.fromkeys(LARGE, sys.executable)
        print(f"one file of {args.large} MiB up, then down; wall s / client CPU s, median of {args.rounds}")
    else:
        print(f"{args.files} x 4 KiB, all at once; wall s / client CPU s, median of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp, conftest.seaweedfs_server(Path(tmp)) as server:
        large = str(Path(tmp) / "large.bin")
        if args.large:
            with open(large, "wb") as f:
                for _ in range(args.large):
                    f.write(os.urandom(1024 * 1024))
        for rtt in args.rtt:
            relay = wan.Relay(int(server.endpoint.rpartition(":")[2]), rtt, 40.0, Path(tmp)) if rtt else None
            endpoint = f"http://127.0.0.1:{relay.port}" if relay else server.endpoint
            runs: dict[str, list[dict[str, tuple[float, float]]]] = {}
            try:
                for round_ in range(args.rounds):
                    names = wan.in_turn(list(pythons), round_)
                    for name in names:
                        bucket = server.new_bucket()
                        fields = {"ENDPOINT": endpoint, "KEY": server.access_key, "SECRET": server.secret_key,
                                  "BUCKET": bucket, "N": args.files}  # fmt: skip
                        if args.large:
                            fields.update(SOURCE=large, TARGET=str(Path(tmp) / "down.bin"))
                            bench.Recycled(Path(tmp) / "recycled.bin", 2 * args.large).ready()
                        runs.setdefault(name, []).append(run(pythons[name], name, fields))
            finally:
                if relay:
                    relay.close()
            where = f"{rtt:g} ms RTT" if rtt else "loopback"
            for name, results in runs.items():
                cells = []
                for step in ("puts", "gets"):
                    wall, cpu = sorted(result[step] for result in results)[len(results) // 2]
                    cells.append(f"{step} {wall:5.2f} / {cpu:4.2f}")
                print(f"{where:<12} {name:<9} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sys.exit(main())
