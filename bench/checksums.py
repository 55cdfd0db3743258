"""What checksums cost: client CPU per GiB for uploads and checked downloads, by algorithm.

    pip install -e ".[test]"
    python bench/checksums.py [--mib 256] [--rounds 3]

Each round uploads one file of ``--mib`` MiB to a SeaweedFS on loopback (as
a multipart upload: the parts' checksums, then the composite) and downloads
it with ``checksum=True``, once per algorithm and once without; the figure is
the median over the rounds of this process's CPU time (user + system, all
threads), per GiB. The first lines time the hash functions alone on 256 MiB
in memory: the floor no client can go under.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
import tinys3  # noqa: E402

GiB = 1024**3


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    data = memoryview(os.urandom(256 * 1024 * 1024))
    print("hash alone, in memory (CPU s per GiB)")
    for algorithm in tinys3._CHECKSUMS:
        digest = tinys3._hasher(algorithm)
        start = cpu()
        for offset in range(0, len(data), 1 << 20):
            digest.update(data[offset : offset + (1 << 20)])
        print(f"  {algorithm:<8} {(cpu() - start) * GiB / len(data):6.3f}")
    work = Path(tempfile.mkdtemp(prefix="tinys3-checksum-bench-"))
    source = work / "source.bin"
    source.write_bytes(os.urandom(options.mib * 1024 * 1024))
    size = source.stat().st_size
    (work / "server").mkdir()
    with conftest.seaweedfs_server(work / "server") as server:
        conn = tinys3.Connection(server.access_key, server.secret_key, endpoint=server.endpoint, default="checksums")
        conn.create_bucket()
        results: dict[str, dict[str, list[float]]] = {}
        for _ in range(options.rounds + 1):  # the first round warms up, unmeasured
            for algorithm in (None, *tinys3._CHECKSUMS):
                name = algorithm or "none"
                start = cpu()
                conn.upload(name, source, checksum=algorithm)
                upload = cpu() - start
                target = work / "back.bin"
                target.unlink(missing_ok=True)  # replacing a big file costs the kernel more than the download
                start = cpu()
                conn.download(name, target, checksum=algorithm is not None)
                download = cpu() - start
                row = results.setdefault(name, {"upload": [], "download": []})
                row["upload"].append(upload)
                row["download"].append(download)
                time.sleep(0.2)
        print(f"\n{options.mib} MiB through SeaweedFS, client CPU s per GiB, median of {options.rounds} "
              "(after one warm-up round)")  # fmt: skip
        base = {kind: statistics.median(results["none"][kind][1:]) for kind in ("upload", "download")}
        for name, row in results.items():
            figures = []
            for kind in ("upload", "download"):
                median = statistics.median(row[kind][1:])
                extra = "" if name == "none" else f" (+{(median - base[kind]) * GiB / size:.3f})"
                figures.append(f"{kind} {median * GiB / size:6.3f}{extra}")
            print(f"  {name:<8} " + "   ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
