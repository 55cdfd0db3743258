"""Mutation testing for tinys3: does the suite notice a one-line bug?

    python bench/mutations.py             # every mutation (about 2 minutes on 2 cores)
    python bench/mutations.py retry cli   # only those whose name holds one of the words
    python bench/mutations.py --check     # only check that every original line still exists

Each mutation swaps one snippet of ``tinys3.py`` for a wrong one, in a copy of
the repository, and runs the tests that should notice (``pytest -k``). A
mutation is *killed* when they fail, *survived* when they pass. Not part of CI
(too slow); run it after changing the code or the tests, and either kill each
survivor with a test or explain it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What lies between a request's connection checkout and its timing in ``_Transport.send``.
_SEND_TRY = (
    "            paced = _Paced(conn.sock, self._read_timeout, time.monotonic() + self._deadline)\n            try:\n"
)

#: (name, original snippet, mutated snippet, pytest -k expression of the tests that should fail)
MUTATIONS: list[tuple[str, str, str, str]] = [
    # -- streams and open("wb")
    ("streams: a short part's buffer not topped up", "        if buffer is None or len(buffer) < size:",
     "        if buffer is None:", "opened_for_writing or not_end_normally"),
    # -- signing
    ("signing: tilde encoded", 'abcdefghijklmnopqrstuvwxyz0123456789-_.~")',
     'abcdefghijklmnopqrstuvwxyz0123456789-_.")', "signs_like_botocore or encoded_once or aws_"),
    ("signing: query not sorted", "pairs = sorted((_uri_encode(name), _uri_encode(value)) for name, value in query)",
     "pairs = [(_uri_encode(name), _uri_encode(value)) for name, value in query]", "aws_ or botocore"),
    ("signing: header spaces not folded", 'value = " ".join(value.split())', "value = value.strip()",
     "canonicalisation or botocore"),
    ("signing: wrong scope terminator", 'for part in (date, region, service, "aws4_request"):',
     'for part in (date, region, service, "aws4_req"):', "aws_get_vanilla or aws_s3"),
    ("signing: token not signed", '        signed["X-Amz-Security-Token"] = credentials.token',
     "        pass", "session_token or container or renew"),
    ("signing: presigned token dropped", '        query.append(("X-Amz-Security-Token", credentials.token))',
     "        pass", "presigned_urls_carry"),
    # -- retries and transport
    ("retry: 503 not retried", "_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))",
     "_RETRY_STATUSES = frozenset((429, 500, 502, 504))", "survives_a_fault or retry_after"),
    ("retry: backoff cap raised", "cap: float = 20.0", "cap: float = 200.0", "backoff"),
    ("retry: PUT timeouts not retried",
     'idempotent = idempotent or request.method in ("GET", "HEAD", "PUT", "DELETE")',
     'idempotent = idempotent or request.method in ("GET", "HEAD", "DELETE")', "stalled_server"),
    ("retry: Retry-After ignored", "return float(value) if value and value.strip().isdigit() else 0.0",
     "return 0.0", "retry_after"),
    ("tls: no second try on the whole store", "        if used is not self._partial_store or not isinstance(",
     "        if True or not isinstance(", "system_store_is_read"),
    ("tls: the CA directory not tried first", "directory = _hashed_ca_directory() if lazy and verify is True else None",
     "directory = None", "system_store_is_read"),
    ("tls: no second try after widening", "return self.open(origin)\n",
     "return self.open(origin) if False else None\n", "system_store_is_read"),
    ("transport: line breaks reach the head",
     'if head.count("\\n") != len(headers) or head.count("\\r") != len(headers):', "if False:",
     "split_the_request_head"),
    ("transport: idle check off", "            return bool(poller.poll(0))", "            return False",
     "noticed_before_use or thousand_open"),
    ("transport: no re-send on a closed keep-alive", "                self._close(conn)\n"
     "                if reused and not fresh_retry:",
     "                self._close(conn)\n                if False:",
     "closed_by_the_server_is_reopened or dropped_as_the_request_arrives"),
    ("transport: EOF ends the headers",
     '        if state in ("status", "headers"):\n            raise TransportError("the answer was cut short',
     '        if state == "status":\n            raise TransportError("the answer was cut short',
     "blank_line or cut_short_are_never"),
    ("transport: GET read to the close",
     '        raise _no_retry("the answer to GET has neither Content-Length nor chunked encoding',
     '        pass  # ("the answer to GET has neither Content-Length nor chunked encoding',
     "never_for_get"),
    ("transport: cut body accepted", "            raise _cut_short(self.head.length - self._left, self.head.length)",
     "            return", "cut_short_is_an_error or at_most_retries"),
    ("transport: close() closes a socket another thread is reading", "                if not conn.lent:\n",
     "                if True:\n", "lets_a_request_in_flight"),
    ("transport: a socket in use at close() is kept when given back", "if conn.retired or conn.sock is None",
     "if conn.sock is None", "lets_a_request_in_flight"),
    ("asyncio: a line in use at close() goes back to the pool", "not line.lost and line.epoch == pool.epoch and",
     "not line.lost and", "async_close_leaves_no_descriptor"),
    ("asyncio: close() waits for the part threads on the loop", "run_in_executor(closing, super().close)",
     "run_in_executor(closing, print)\n            super().close()", "close_during_an_upload_from_an_async"),
    ("asyncio: close() waits for the part threads on the default executor", "run_in_executor(closing, super().close)",
     "run_in_executor(None, super().close)", "without_the_loops_default_executor"),
    ("asyncio: calls are plain functions returning coroutines", "                setattr(cls, name, call.awaited)",
     "                pass", "coroutine_functions"),
    ("asyncio: max_connections not applied", "        self._transport.lines = lines\n",
     "        self._transport.lines = _ASYNC_LINES\n", "max_connections"),
    ("asyncio: a cancellation during CreateMultipartUpload leaves the upload made",
     "            if isinstance(effect, _Send) and effect.finish:", "            if False:",
     "a_cancelled_multipart_upload_is_aborted"),
    ("asyncio: the cancellation after a finished send is lost",
     "                        deferred, failure = failure, None", "                        failure = None",
     "a_cancelled_multipart_upload_is_aborted"),
    ("loop thread: a close after a submit cut short wakes nobody", "        elif not self._woken:",
     "        elif len(self._inbox) == 1:", "ctrl_c_left_in_its_inbox"),
    ("asyncio: a name looked up on the default executor",
     "connecting = _dial(loop, owner, address, new_line, tls if context else {})",
     "connecting = loop.create_connection(new_line, *address, **(tls if context else {}))",
     "without_the_loops_default_executor"),
    ("asyncio: a connect made as its caller is cancelled is used (as wait_for does)",
     "    except BaseException:\n        task.cancel()\n        task.add_done_callback(_close_made)",
     "    except BaseException:\n        if task.done() and not task.cancelled() and task.exception() is None:\n"
     "            return task.result()[1]  # type: ignore[no-any-return]\n        task.cancel()\n"
     "        task.add_done_callback(_close_made)", "cancellation_as_a_connect"),
    ("asyncio: a place handed to a call cancelled before it woke is lost",
     "            if turn.done() and not turn.cancelled():\n                self.free_place()",
     "            if False:\n                self.free_place()", "place_handed"),
    ("asyncio: a dropped body closed on the thread that dropped it",
     "            self._line.loop.call_soon_threadsafe(self.close)", "            self.close()",
     "dropped_on_another_thread"),
    ("asyncio: TLS's held bytes given one read's buffer",
     'want = sizehint + _TLS_RECORD if self.origin[0] == "https" else 0', "want = 0",
     "connection_lost_while_its_reading_is_paused"),
    ("multipart: close() ends a transfer under way", "                    executor = _part_executor(conn)\n",
     "                    raise\n", "neither_ends_them"),
    ("transport: a read failing after some of the body drops those bytes", "                    self.failed = exc  #",
     "                    raise  #", "resumes_where_it_stopped or resume_too"),
    # -- integrity
    ("integrity: download MD5 unchecked", "if digest is not None and digest.hexdigest() != etag:",
     "if False:", "do_not_match_the_etag or small_downloads_met_by_a_fault"),
    ("integrity: resume without If-Match", '        headers["If-Match"] = etag', "        pass",
     "changed_while or broken_mid_body"),
    ("integrity: resume one byte late",
     "headers[\"Range\"] = f\"bytes={first_byte + offset}-{'' if last_byte is None else last_byte}\"",
     "headers[\"Range\"] = f\"bytes={first_byte + offset + 1}-{'' if last_byte is None else last_byte}\"",
     "broken_mid_body or resume_too"),
    ("integrity: resumed bytes unchecked",
     "if rest.status_code != 206 or _span(rest)[0] != first_byte + offset or rest.headers.get(\"ETag\", etag) != etag:",
     "if False:", "ignores_the_range"),
    ("integrity: 200-with-Error accepted",
     "if response.ok and not (error_in_body and _error_fields(response.content)):",
     "if response.ok:", "error_body or answered_200"),
    # -- multipart
    ("multipart: part without ETag accepted", "wire, part, query), check=_part_etag)", "wire, part, query))",
     "without_etag"),
    ("multipart: NoSuchUpload taken without proof",
     "if head.headers.get(\"ETag\", \"\").strip('\"') != expected or",
     "if False and", "never_happened"),
    ("multipart: no abort on failure",
     "    except BaseException:\n        yield from _abort(conn, bucket, key, upload_id, _picked(headers, _ACCOUNT))\n",
     "    except BaseException:\n", "keeps_failing or failed_multipart"),
    ("multipart: streams do not grow parts", "size = part_size << (number // 1000)", "size = part_size",
     "double_their_parts"),
    ("multipart: completion not retried on timeout",
     "response = yield from conn._attempts(request, error_in_body=True, idempotent=True)",
     "response = yield from conn._attempts(request, error_in_body=True)", "are_retried"),
    ("multipart: lost uploads aborted with their parts",
     'if not any(_local_name(element) == "Part" for element in _xml(parts.content)):', "if True:",
     "lost_answer_to_create"),
    # -- credentials
    ("credentials: endpoint body in the error",
     "raise CredentialsError(f\"{url.split('?')[0]} answered {status}{detail}\")",
     "raise CredentialsError(f\"{url.split('?')[0]} answered {status}{detail} {answer!r}\")",
     "never_carry"),
    ("credentials: repr shows the secret",
     "return f\"Credentials(access_key={self.access_key!r}, secret_key='***'{token})\"",
     "return f\"Credentials(access_key={self.access_key!r}, secret_key={self.secret_key!r}{token})\"", "repr_hides"),
    ("credentials: renewal at expiry",
     "return credentials.expiry - min(300.0, max(0.0, credentials.expiry - self._clock()) / 2)",
     "return credentials.expiry", "renew_before"),
    ("credentials: web identity skipped",
     'if environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") and environ.get("AWS_ROLE_ARN"):',
     "if False:", "web_identity or falls_through"),
    ("credentials: source_profile ignored",
     'source_profile, credential_source = settings.get("source_profile"), settings.get("credential_source")',
     'source_profile, credential_source = None, settings.get("credential_source")', "assumes_a_role"),
    # -- proxies and files
    ("proxy: no_proxy suffixes ignored", 'if host == name or host.endswith("." + name):', "if host == name:",
     "no_proxy_rules"),
    ("proxy: tunnel without credentials",
     'headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}',
     "headers = {}", "connect_tunnel or forbids_the_tunnel"),
    ("download: new files 0600", "fd = os.open(temporary, flags, 0o666)", "fd = os.open(temporary, flags, 0o600)",
     "mode_open_would"),
    # -- the command line's batches (the asyncio driver on a thread)
    ("cli: a small download of another size than listed taken",
     "if _content_length(whole) not in (None, size):", "if False:", "small_downloads_met_by_a_fault"),
    ("asyncio: a stalled answer waited for past the read timeout",
     "await _settle(self.waiter, min(self.heard + read_timeout, until))", "await self.waiter",
     "batch_download_that_stalls"),
    ("asyncio: a body nobody reads buffered whole in memory",
     "                self.pause()\n", "                pass\n", "read_slowly_is_not_buffered"),
    ("downloads: the bytes held for a file's write written twice",
     "                    held = 0\n", "                    pass\n", "download"),
    ("clock: a refusal signed before another thread learnt the offset not signed again",
     "            return True  # learnt already, since that attempt was signed",
     "            return False", "20_minutes_off"),
    # -- responses
    ("responses: a timestamp read as local time", 'parsed = _datetime.fromisoformat(seconds + "+00:00")',
     "parsed = _datetime.fromisoformat(seconds)", "timestamps_read or listing_parses"),
    # -- command line
    ("cli: usage errors exit 1", "return int(exit_.code or 0)", "return 1 if exit_.code else 0", "cli_errors"),
    ("cli: folders lose their slash", 'return prefix if not prefix or prefix.endswith("/") else prefix + "/"',
     "return prefix", "cli_copies_folders"),
    # -- session 4: sync, the object API
    ("cli: sync deletes after a failed copy", "        if extra and self.failures:", "        if extra and False:",
     "keeps_the_target_when"),
    ("cli: a key may climb out of the folder", 'if any(part in ("", ".", "..") for part in parts):',
     "if False:", "outside_the_target"),
    ("cli: listings out of order accepted", "if last is not None and item[0] <= last:", "if False:", "out_of_order"),
    ("cli: a same-size object changed on S3 skipped", "return source_second != target_second",
     "return source_second < target_second", "copy_on_size or stamp_files"),
    ("checksum: body never checked", "                        self._check.verify()\n", "                        pass\n",
     "changed_on_the_way"),
    ("sse-c: key sent over plain HTTP", 'if customer_key is not None and self._route(bucket)[1].scheme != "https":',
     "if False:", "sse_c"),
    ("headers: parts lose requester-pays and SSE-C", "_picked(wire, (*_SSE_C, *_ACCOUNT)), sums)", "{}, sums)",
     "reach_every or sse_c"),
    ("multipart by hand: a replaced part joined",
     "if number not in listed or listed[number][0].strip('\"') != etag.strip('\"'):", "if number not in listed:",
     "someone_replaced"),
    ("cli: the listing runs ahead without bound", "        self._room.acquire()", "        pass", "batch_runs"),
    ("download: 16 ranges at once from a server next door", "_NEAR_RANGES if near else None)", "None)",
     "ranges_in_flight"),
    ("download: near timed with the connection's setup",
     "            conn, reused = self._checkout(origin)\n" + _SEND_TRY + "                sent = time.monotonic()\n",
     "            sent = time.monotonic()\n            conn, reused = self._checkout(origin)\n" + _SEND_TRY,
     "near_is_the_first"),
]  # fmt: skip


def main(argv: list[str]) -> int:
    source = (ROOT / "tinys3.py").read_text()
    stale = [name for name, original, _, _ in MUTATIONS if source.count(original) != 1]
    if stale:
        print("stale (the original snippet is not in tinys3.py exactly once):", *stale, sep="\n  ")
        return 2
    if "--check" in argv:
        print(f"{len(MUTATIONS)} mutations, every original found once")
        return 0
    chosen = [m for m in MUTATIONS if not argv or any(word in m[0] for word in argv)]
    survived = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        for name in ("test_tinys3.py", "conftest.py", "setup.cfg", "pyproject.toml", "README.md", "bench", "examples"):
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, Path(folder) / name)
        for name, original, mutated, tests in chosen:
            (Path(folder) / "tinys3.py").write_text(source.replace(original, mutated))
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "--no-cov", "-p", "no:cacheprovider",
                 "-k", tests],
                cwd=folder, capture_output=True, text=True, check=False,
            )  # fmt: skip
            verdict = (
                "killed" if run.returncode == 1 else "SURVIVED" if run.returncode == 0 else f"error {run.returncode}"
            )
            if run.returncode != 1:
                survived.append(name)
            print(
                f"{verdict:9} {name}  [{run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ''}]", flush=True
            )
    print(f"{len(chosen) - len(survived)} of {len(chosen)} killed in {time.monotonic() - started:.0f} s;"
          f" not killed: {survived or 'none'}")  # fmt: skip
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
