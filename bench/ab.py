"""Two versions of tinys3.py side by side, and the bare http.client loop, on CPU per request.

    python bench/ab.py OLD_COMMIT [--puts 2000] [--rounds 3]

Against a loopback server of a few lines (a thread per connection, ``200`` with
``Content-Length: 0`` to each PUT, 200 MiB of zeros to a GET): ``--puts`` PUTs of
1 KiB one after another, then the 200 MiB GET read by ``iter_content(1 MiB)``; each
client in a fresh process, the rounds alternating; client CPU from
``time.process_time()``. ``http.client`` is the floor: the same PUTs, unsigned,
over one ``HTTPConnection``.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
GET_SIZE = 200 << 20

TINYS3 = """
import sys, time
sys.path.insert(0, {folder!r})
import tinys3
conn = tinys3.Connection("AKIDEXAMPLE", "secret", endpoint="http://127.0.0.1:{port}", default="bkt")
conn.upload("warm", b"x")
data = b"x" * 1024
started = time.process_time()
for n in range({puts}):
    conn.upload("k", data)
puts = (time.process_time() - started) / {puts} * 1000
started = time.process_time()
got = sum(len(chunk) for chunk in conn.get("big").iter_content(1 << 20))
assert got == {size}
print(puts, time.process_time() - started)
"""

FLOOR = """
import http.client, time
conn = http.client.HTTPConnection("127.0.0.1", {port})
data = b"x" * 1024
def put():
    conn.request("PUT", "/bkt/k", body=data)
    conn.getresponse().read()
put()
started = time.process_time()
for n in range({puts}):
    put()
print((time.process_time() - started) / {puts} * 1000, 0.0)
"""


def serve(listener: socket.socket) -> None:
    def one(client: socket.socket) -> None:
        with client, client.makefile("rb") as reader:
            while True:
                head = []
                while (line := reader.readline()) not in (b"\r\n", b""):
                    head.append(line)
                if not head:
                    return
                sized = [int(line.split(b":")[1]) for line in head if line.lower().startswith(b"content-length")]
                length = sized[0] if sized else 0
                reader.read(length)
                if head[0].startswith(b"GET"):
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % GET_SIZE)
                    zeros = bytes(1 << 20)
                    for _ in range(GET_SIZE >> 20):
                        client.sendall(zeros)
                else:
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    while True:
        client, _ = listener.accept()
        threading.Thread(target=one, args=(client,), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="the commit whose tinys3.py is measured beside the working tree's")
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    port = listener.getsockname()[1]
    with tempfile.TemporaryDirectory() as old:
        source = subprocess.run(["git", "show", f"{args.old}:tinys3.py"], cwd=HERE, capture_output=True, check=True)
        (Path(old) / "tinys3.py").write_bytes(source.stdout)
        programs = {
            args.old[:7]: TINYS3.format(folder=old, port=port, puts=args.puts, size=GET_SIZE),
            "now": TINYS3.format(folder=str(HERE), port=port, puts=args.puts, size=GET_SIZE),
            "http.client": FLOOR.format(port=port, puts=args.puts),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
        for round_ in range(args.rounds):
            for name in list(programs)[round_ % 3 :] + list(programs)[: round_ % 3]:
                out = subprocess.run([sys.executable, "-c", programs[name]], capture_output=True, text=True, check=True)
                puts, get = map(float, out.stdout.split())
                results[name].append((puts, get))
    print(f"{args.puts} x 1 KiB PUT, client CPU ms/PUT; 200 MiB GET, client CPU s ({args.rounds} rounds)")
    for name, runs in results.items():
        print(
            f"{name:<12} PUT "
            + " ".join(f"{p:.3f}" for p, _ in runs)
            + "   GET "
            + " ".join(f"{g:.3f}" for _, g in runs)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
