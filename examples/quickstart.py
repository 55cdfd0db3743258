"""tinys3 in one minute: the 2013 README's workflow, printed step by step.

    python examples/quickstart.py [BUCKET]

With S3 configured (AWS_* variables or ~/.aws, as for the AWS CLI) it works on
BUCKET there (which must exist), or on a bucket of its own that it makes and
removes, and cleans up after itself. With nothing configured it starts a
throwaway moto server on 127.0.0.1 (moto comes with the test extras) and says so.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinys3  # the module beside this folder, even when not installed


@contextmanager
def local_moto() -> Iterator[str]:
    """A moto server on a free loopback port, for as long as the block runs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit(
                        f"quickstart: the moto server exited at once (status {server.returncode})"
                    ) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def configured() -> bool:
    """True when the environment or ~/.aws holds credentials.

    The EC2 metadata service is not asked (unless AWS_EC2_METADATA_DISABLED is
    set to false): off EC2 that would only cost a one-second timeout.
    """
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    try:
        tinys3.Connection()
    except tinys3.CredentialsError:
        return False
    return True


def workflow(conn: tinys3.Connection, bucket: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "some_file.zip"
        path.write_bytes(os.urandom(64 * 1024))
        with open(path, "rb") as f:
            print("upload, cached for an hour:", conn.upload("some_file.zip", f, bucket, expires=3600))
            print("upload with a content type: ", conn.upload("other.zip", f, bucket, content_type="application/zip"))
    print("copy inside the bucket:     ", conn.copy("some_file.zip", bucket, "copy_of_file.zip"))
    print("update its metadata:        ", conn.update_metadata("copy_of_file.zip", {"reviewed": "yes"}, bucket))
    print("read it back:               ", conn.head("copy_of_file.zip", bucket).metadata)
    with tinys3.Pool(size=3, endpoint=conn.endpoint, region=conn.region) as pool:
        keys = ["some_file.zip", "other.zip", "copy_of_file.zip"]
        print("delete all three on a pool: ", pool.all_completed([pool.delete(key, bucket) for key in keys]))


def main() -> int:
    named = sys.argv[1] if len(sys.argv) > 1 else None
    if configured():
        conn = tinys3.Connection()
        try:
            if named is not None:
                if not conn.bucket_exists(named):
                    print(f"quickstart: bucket {named} does not exist: name one that does, or none to have"
                          " the quickstart make (and remove) its own", file=sys.stderr)  # fmt: skip
                    return 1
                print(f"Using {conn.endpoint} as {conn.credentials.access_key}, bucket {named}")
                workflow(conn, named)
                return 0
            bucket = f"tinys3-quickstart-{os.urandom(4).hex()}"
            print(f"Using {conn.endpoint} as {conn.credentials.access_key}; making bucket {bucket}:",
                  conn.create_bucket(bucket))  # fmt: skip
            try:
                workflow(conn, bucket)
            finally:
                print(f"removing bucket {bucket}:", conn.delete_bucket(bucket))
        except tinys3.S3Error as error:
            print(f"quickstart: {error}", file=sys.stderr)
            return 1
        return 0
    if importlib.util.find_spec("moto") is None:
        print("quickstart: no S3 credentials are configured, and moto (a local S3 to try it on) is not installed:"
              " run  python -m pip install -e '.[test]'  or set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
              " (and AWS_ENDPOINT_URL for a service other than AWS)", file=sys.stderr)  # fmt: skip
        return 1
    print("No S3 endpoint or credentials configured: starting a local moto server (from the test extras).")
    with local_moto() as endpoint:
        os.environ.update(AWS_ACCESS_KEY_ID="quickstart", AWS_SECRET_ACCESS_KEY="quickstart")
        conn = tinys3.Connection(endpoint=endpoint)
        bucket = named or "tinys3-quickstart"
        print(f"moto is at {endpoint}; creating bucket {bucket}:", conn.create_bucket(bucket))
        workflow(conn, bucket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
