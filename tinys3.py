"""tinys3: quick and minimal S3 for Python, in one file, with nothing but the stdlib.

Upload, copy, update and delete objects on Amazon S3 or any S3-compatible
service, signed with AWS Signature Version 4, over per-thread keep-alive
connections, one call at a time (``Connection``), many at once (``Pool``), or
awaited on asyncio (``AsyncConnection``)::

    import tinys3

    conn = tinys3.Connection(ACCESS_KEY, SECRET_KEY, default="my-bucket")
    with open("report.pdf", "rb") as f:
        conn.upload("reports/2026/report.pdf", f, expires=3600)

Sections, in the order data flows (search for the heading):

    Errors        the one exception hierarchy, and text from outside made safe to show
    Credentials   the chain: arguments, environment, files, SSO, STS, containers, IMDS
    Signing       AWS Signature Version 4: headers, presigned URLs, POST policies
    Requests      addressing, headers, metadata, bodies and their digests
    Transport     the only code with sockets: keep-alive, proxies, TLS, deadlines
    Response      the answer: status, headers, a streamed or whole body, XML
    Transfers     multipart uploads, ranged downloads, copy by parts: shared by all
    Files         ``Connection.open()``: objects as seekable readers and streamed writers
    Connection    the public calls, thin: check, build, send or hand to a transfer
    Pool          threads returning futures, over one Connection
    asyncio       ``AsyncConnection``: the same calls, awaited, on the same core
    Command line  ``python -m tinys3``: cp, mv, sync, ls, rm, mb, rb, presign

License: MIT.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
import sys
import threading
import time
from collections import deque as _deque
from collections.abc import Mapping as _Mapping
from contextlib import suppress as _suppress
from datetime import datetime as _datetime
from datetime import timedelta as _timedelta
from datetime import timezone as _timezone
from functools import lru_cache as _lru_cache
from functools import partial as _partial
from functools import wraps as _wraps
from itertools import chain as _iter_chain
from weakref import WeakSet as _WeakSet

__version__ = "1.0.0"
__all__ = [
    "AsyncConnection",
    "AsyncResponse",
    "Conn",
    "Connection",
    "Credentials",
    "CredentialsError",
    "HTTPError",
    "InvalidInput",
    "InvalidType",
    "MultipartUpload",
    "NotFound",
    "ObjectInfo",
    "Pool",
    "Response",
    "S3Error",
    "Timeout",
    "TransportError",
    "VersionInfo",
    "__version__",
    "main",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable, Iterator, Mapping
    from concurrent.futures import Future, ThreadPoolExecutor
    from datetime import datetime, timedelta
    from hashlib import _Hash
    from ssl import SSLContext
    from typing import IO, Any, TypeVar, Union

    Body = Union[bytes, bytearray, memoryview, IO[bytes], "os.PathLike[str]"]
    Expires = Union[int, float, str, timedelta, datetime, None]
    Timeouts = Union[float, "tuple[float, float]", "tuple[float, float, float]"]
    Progress = Callable[[int, Union[int, None]], object]
    Query = list[tuple[str, str]]
    T = TypeVar("T")
    from typing import Concatenate, Generic, ParamSpec, overload  # novermin: for type checkers only

    _Effect = Union["_Send", "_Sleep", "_Work", "_Gather", "_Receive"]
    Steps = Generator[_Effect, Any, T]
    P = ParamSpec("P")

    class _Operation(Generic[P, T]):
        """What ``_operation`` makes, as a type checker sees it: the call as the class runs it."""

        steps: Callable[Concatenate[Any, P], Steps[T]]

        @overload
        def __get__(self, conn: None, owner: Any) -> _Operation[P, T]: ...
        @overload
        def __get__(self, conn: AsyncConnection, owner: Any) -> Callable[P, Coroutine[Any, Any, T]]: ...
        @overload
        def __get__(self, conn: Connection | MultipartUpload, owner: Any) -> Callable[P, T]: ...
        def __get__(self, conn: Any, owner: Any) -> Any: ...


###############################################################################
# Errors ######################################################################
###############################################################################
#
# S3Error (OSError)            everything tinys3 raises on purpose
# ├── HTTPError                the server answered with an error (any non-2xx,
# │   │                        or a 200 whose body is an <Error>)
# │   └── NotFound             (also a FileNotFoundError) 404 NoSuchKey, NoSuchBucket
# │                            or NoSuchVersion, whatever the call
# ├── TransportError           no usable answer: refused, reset, cut short, TLS
# │   └── Timeout              (also a TimeoutError) connect or read timed out
# ├── CredentialsError         no credentials were given or found
# ├── InvalidInput             (also a ValueError) a bad argument, caught
# │                            before a byte is sent
# └── InvalidType              (also a TypeError) an argument of the wrong type


class S3Error(OSError):
    """The root of every exception tinys3 raises on purpose."""


class HTTPError(S3Error):
    """S3 answered with an error.

    Attributes: ``status`` (HTTP status), ``code`` (S3 error code such as
    ``NoSuchKey``), ``message``, ``request_id``, ``host_id``, ``bucket``,
    ``key``, ``region`` (the bucket's region when S3 names it) and
    ``response`` (the ``Response``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        host_id: str | None = None,
        bucket: str | None = None,
        key: str | None = None,
        region: str | None = None,
        response: Response | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.host_id = host_id
        self.bucket = bucket
        self.key = key
        self.region = region
        self.response = response
        text = f"{status} {code}: {message}"
        if region:
            text += f" (the bucket is in region {region!r}: pass region={region!r})"
        if response is not None:
            text += f" [{response.method} {response.url}"
            text += f", request id {request_id}]" if request_id else "]"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles and copies with its message and attributes (the Response with its body
        read), so that it comes back whole from a process pool's worker."""
        return (_rebuilt_error, (type(self), str(self)), self.__dict__)


class NotFound(HTTPError, FileNotFoundError):
    """404: the key, the bucket or the version does not exist; ``code`` says which
    (``NoSuchKey``, ``NoSuchBucket``, ``NoSuchVersion``), whatever the call, HEAD included."""


#: The codes of a ``NotFound``.
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion"})


def _rebuilt_error(cls: type[S3Error], text: str) -> S3Error:
    """An error of ``cls`` with the message ``text``, its attributes set after (by pickle)."""
    error = cls.__new__(cls)
    S3Error.__init__(error, text)
    return error


class TransportError(S3Error):
    """The request got no usable answer: refused, reset, cut short, bad TLS.

    ``retry`` is False when trying again cannot help (a bad certificate).
    """

    retry = True


class Timeout(TransportError, TimeoutError):
    """Connecting or waiting for the answer took longer than the timeout."""


class CredentialsError(S3Error):
    """No credentials were given, and none were found where tinys3 looks."""


class InvalidInput(S3Error, ValueError):
    """An argument has a bad value; raised before anything is sent."""


class InvalidType(S3Error, TypeError):
    """An argument has the wrong type; raised before anything is sent."""


def _error_fields(body: bytes) -> dict[str, str]:
    """The children of an S3 ``<Error>`` document, or {} if it is not one."""
    head = body[:512].lstrip()
    if not head.startswith(b"<") or b"<Error" not in head:
        return {}
    try:
        root = _xml(body)
    except TransportError:
        return {}
    if _local_name(root) != "Error":
        return {}
    return {_local_name(child): (child.text or "") for child in root}


def _local_name(element: Any) -> str:
    """An XML element's tag without its namespace (S3 answers with and without one)."""
    return str(element.tag).rpartition("}")[2]


def _http_error(response: Response, secrets: Iterable[str] = ()) -> HTTPError:
    """Build the HTTPError for a response, from its XML body or its status. The server's
    words pass through ``_outside`` (``secrets``: what the request carried that the
    answer must not repeat); the bucket and key are the ones asked for. A 404 without
    a body (HEAD's) is ``NoSuchKey`` when a key was asked for, else ``NoSuchBucket``."""
    fields = _error_fields(response.content)
    headers = response.headers
    region = None
    if response.status_code in (301, 307, 400):
        region = fields.get("Region") or headers.get("x-amz-bucket-region")
    secrets = tuple(secrets)

    def said(text: str | None, limit: int = _MESSAGE_LIMIT) -> str | None:
        return None if text is None else _outside(text, secrets, limit)

    code, message = said(fields.get("Code"), 64), fields.get("Message")
    if code is None and response.status_code == 404 and response.bucket:
        code, message = ("NoSuchKey", "the key does not exist") if response.key else _MISSING_BUCKET
    code = code or _status_code_name(response.status_code)
    return (NotFound if response.status_code == 404 and code in _NOT_FOUND_CODES else HTTPError)(
        response.status_code,
        code,
        _outside(message or _status_message(response), secrets),
        request_id=said(fields.get("RequestId") or headers.get("x-amz-request-id"), 128),
        host_id=said(fields.get("HostId") or headers.get("x-amz-id-2"), 256),
        bucket=response.bucket or said(fields.get("BucketName"), 64),
        key=response.key or said(fields.get("Key"), _MAX_KEY),
        region=said(region, 64),
        response=response,
    )


_MISSING_BUCKET = "NoSuchBucket", "the bucket does not exist"

#: How much of an error answer is read, and of its message shown: a server can send more.
_ERROR_LIMIT = 1 << 20
_MESSAGE_LIMIT = 300


def _outside(text: str, secrets: Iterable[str] = (), limit: int = _MESSAGE_LIMIT) -> str:
    """Text from a server or a credential helper, fit for an exception or a log line: each
    of ``secrets`` masked, control characters escaped, cut to ``limit`` characters."""
    for secret in secrets:
        if len(secret) >= 8:
            text = text.replace(secret, "****")
    text = _escape_controls(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _escape_controls(text: str) -> str:
    """``text`` with control characters (C0, DEL, C1, and the bidirectional overrides that
    reorder what a terminal shows) as ``\\xNN`` or ``\\uNNNN``, the way ``ls -b`` shows them:
    an ESC, BEL or line break from outside never reaches a terminal or a log raw."""
    if text.isprintable():
        return text
    return "".join((f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}") if _is_control(c) else c for c in text)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 32 or 127 <= code < 160 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069


def _status_code_name(status: int) -> str:
    """An error code for an answer without body: the standard phrase, ``NotFound`` for 404."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "Error"


def _status_message(response: Response) -> str:
    """A message for an error answer that has no XML body (HEAD, proxies)."""
    kind = "Client error" if response.status_code < 500 else "Server error"
    if response.status_code < 400:
        kind = "Redirect"
        location = response.headers.get("Location")
        if location:
            return f"Redirect to {location}"
    return f"{kind}: {response.reason or response.status_code}"


###############################################################################
# Credentials #################################################################
###############################################################################


class Credentials:
    """An access key, its secret and (for temporary keys) a session token and expiry.

    Immutable; its repr shows the access key id only, never the secret or the
    token. ``expiry`` is a Unix time, or None for keys that do not expire.
    """

    __slots__ = ("access_key", "expiry", "secret_key", "token")

    access_key: str
    secret_key: str
    token: str | None
    expiry: float | None

    def __init__(self, access_key: str, secret_key: str, token: str | None = None, expiry: float | None = None) -> None:
        for name, value in (("access_key", access_key), ("secret_key", secret_key)):
            if not isinstance(value, str) or not value:
                raise CredentialsError(f"{name} must be a non-empty str")
        if token is not None and not isinstance(token, str):
            raise CredentialsError("session_token must be a str")
        object.__setattr__(self, "access_key", access_key)
        object.__setattr__(self, "secret_key", secret_key)
        object.__setattr__(self, "token", token or None)
        object.__setattr__(self, "expiry", expiry)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        """A pickle or copy carries all four fields, the secret and the token included."""
        return (Credentials, (self.access_key, self.secret_key, self.token, self.expiry))

    def __repr__(self) -> str:
        token = ", token='***'" if self.token else ""
        return f"Credentials(access_key={self.access_key!r}, secret_key='***'{token})"


class _Clock:
    """This machine's clock corrected by ``offset``: the servers' clock less this one's, once a
    clock-skew answer taught it. One per Connection, shared by its S3 and STS requests."""

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        """Seconds since the epoch, corrected."""
        return time.time() + self.offset

    def now(self) -> datetime:
        """The time to sign with: ``time()`` as a UTC datetime."""
        return _datetime.fromtimestamp(self.time(), _timezone.utc)

    def learn(self, date: str | None, signed_with: float) -> bool:
        """Take the offset from a refusing server's ``Date`` header, as the AWS SDKs for
        Java, Go and JavaScript do (boto3 does not). True when the refused attempt's
        offset (``signed_with``) was over a minute off it: only then can a new signature
        fare better. (Another thread may have learnt it meanwhile: many requests signed
        at once with the old offset are all refused, and all go again.)"""
        import email.utils

        try:
            server = email.utils.parsedate_to_datetime(date or "")
        except (TypeError, ValueError, IndexError):
            return False
        if server.tzinfo is None:  # "-0000": UTC, as HTTP dates are
            server = server.replace(tzinfo=_timezone.utc)
        offset = server.timestamp() - time.time()
        if abs(offset - signed_with) < 60:
            return False
        if abs(offset - self.offset) < 60:
            return True  # learnt already, since that attempt was signed
        _log("the clock is %+.0f s off the server's: signing with the server's time from now on", offset)
        self.offset = offset
        return True


class _Lookup:
    """What finding credentials needs: the environment, the region (for STS), how to
    reach remote credential services (the proxy setting, TLS ``verify``), the profiles
    already read (so the files are parsed once per Connection) and the Connection's clock."""

    __slots__ = ("_profiles", "clock", "environ", "proxy", "region", "verify")

    def __init__(
        self,
        environ: Mapping[str, str],
        region: str,
        proxy: str | bool | None,
        verify: bool | str,
        profiles: dict[str, dict[str, str]],
        clock: _Clock,
    ) -> None:
        self.environ, self.region, self.proxy, self.verify = environ, region, proxy, verify
        self._profiles, self.clock = profiles, clock

    def profile(self, name: str) -> dict[str, str]:
        """A profile's settings (``_profile``), read once."""
        if name not in self._profiles:
            self._profiles[name] = _profile(name, self.environ)
        return self._profiles[name]


class _CredentialSource:
    """Where a connection's credentials come from; temporary ones renew themselves.

    ``fetch`` (None for fixed keys) gets fresh credentials; they are renewed,
    under a lock, five minutes before they expire (or halfway, for short-lived
    ones), and on demand when S3 says the token expired.
    """

    #: The clock renewals are timed by (a test may stand in its own).
    _clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, credentials: Credentials, name: str, fetch: Callable[[], Credentials] | None = None) -> None:
        self.name = name
        self._fetch = fetch
        self._lock = threading.Lock()
        self._credentials = credentials
        self._renew_at = self._renewal_time(credentials)
        if fetch is not None:
            _forkable.add(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a renewal under way in another thread stayed in the parent

    def _renewal_time(self, credentials: Credentials) -> float | None:
        if credentials.expiry is None:
            return None
        return credentials.expiry - min(300.0, max(0.0, credentials.expiry - self._clock()) / 2)

    @property
    def access_key(self) -> str:
        """The access key id in use, without renewing anything (for reprs)."""
        return self._credentials.access_key

    @property
    def renews(self) -> bool:
        """Whether these credentials can be fetched again (temporary ones can; keys cannot)."""
        return self._fetch is not None

    def due(self) -> bool:
        """Whether ``current`` would fetch (blocking): the credentials are about to expire."""
        return self._renew_at is not None and self._clock() >= self._renew_at

    def current(self) -> Credentials:
        """The credentials to sign with now, renewed first if they are about to expire."""
        if self.due():
            self.renew(stale=self._credentials)
        return self._credentials

    def renew(self, stale: Credentials | None = None) -> bool:
        """Fetch new credentials (once, however many threads ask); False for fixed keys."""
        if self._fetch is None:
            return False
        with self._lock:
            if stale is None or self._credentials is stale:
                self._credentials = self._fetch()
                self._renew_at = self._renewal_time(self._credentials)
                _log("renewed credentials from %s", self.name)
        return True


#: The name of the source of keys given as arguments (the only ones a pickle carries).
_GIVEN_KEYS = "the arguments"


def _credential_source(
    access_key: str | None,
    secret_key: str | None,
    token: str | None,
    profile: str | None,
    lookup: _Lookup,
) -> _CredentialSource:
    """Explicit keys, or the first source of the AWS CLI's chain that is configured.

    The chain, in order: the environment's keys; web identity from the
    environment (EKS); the profile (``profile``, ``AWS_PROFILE`` or
    ``default``, see ``_profile_source``); the container credentials
    endpoint (ECS, EKS Pod Identity); EC2 instance metadata. A source that is
    configured but fails raises: the chain never falls through to another,
    possibly broader, identity. A profile named explicitly must give keys.
    """
    if access_key is not None or secret_key is not None:
        return _CredentialSource(_given_keys(access_key, secret_key, token), _GIVEN_KEYS)
    environ = lookup.environ
    tried = []
    if profile is None:
        found = _environment_credentials(environ)
        if found is not None:
            return _CredentialSource(found, "environment variables")
        tried.append("the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") and environ.get("AWS_ROLE_ARN"):
        settings = {
            "web_identity_token_file": environ["AWS_WEB_IDENTITY_TOKEN_FILE"],
            "role_arn": environ["AWS_ROLE_ARN"],
        }
        return _fetching(_web_identity_fetcher(settings, lookup), "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)")
    name = profile or environ.get("AWS_PROFILE") or "default"
    found_source = _profile_source(name, lookup, ())
    if found_source is not None:
        return found_source
    files = f"{_aws_file(environ, 'AWS_SHARED_CREDENTIALS_FILE', 'credentials')} and "
    files += _aws_file(environ, "AWS_CONFIG_FILE", "config")
    if profile is not None or environ.get("AWS_PROFILE"):
        if not lookup.profile(name):
            raise CredentialsError(f"profile {name!r} is not in {files}")
        raise CredentialsError(
            f"profile {name!r} has no credentials (keys, role, SSO or credential_process) in {files}"
        )
    tried.append(f"profile {name!r} in {files}")
    fetch, why_not = _container_fetcher(environ)
    if fetch is not None:
        return _fetching(fetch, "the container credentials endpoint")
    tried.append(f"the container credentials endpoint ({why_not})")
    fetch, why_not = _instance_metadata_fetcher(environ)
    if fetch is not None:
        try:
            return _fetching(fetch, "EC2 instance metadata")
        except CredentialsError as error:  # the last source: not being on EC2 is the usual reason
            why_not = str(error)
    tried.append(f"EC2 instance metadata ({why_not})")
    raise CredentialsError(_NO_CREDENTIALS + "; ".join(tried))


#: The start of the error when no source had credentials (the command line words it its own way).
_NO_CREDENTIALS = (
    "no S3 credentials: pass access_key and secret_key, or set the environment variables "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
    "credentials). Tried: "
)


def _fetching(fetch: Callable[[], Credentials], name: str) -> _CredentialSource:
    """A source whose credentials are fetched now, and again before they expire."""
    return _CredentialSource(fetch(), name, fetch)


def _profile_source(name: str, lookup: _Lookup, chain: tuple[str, ...]) -> _CredentialSource | None:
    """A profile's credentials, tried as botocore does: a role to assume
    (``role_arn`` with ``source_profile`` or ``credential_source``), web
    identity (``web_identity_token_file``), IAM Identity Center (``sso_*``),
    keys (credentials file, then config file), ``credential_process``.
    None if the profile configures none of them.
    """
    settings = lookup.profile(name)
    label = f"profile {name!r}"
    if "role_arn" in settings and ("source_profile" in settings or "credential_source" in settings):
        return _fetching(_assume_role_fetcher(name, settings, lookup, chain), f"{label} (assumed role)")
    if "web_identity_token_file" in settings:
        return _fetching(_web_identity_fetcher(settings, lookup), f"{label} (web identity)")
    if "sso_session" in settings or "sso_start_url" in settings:
        return _fetching(_sso_fetcher(name, settings, lookup), f"{label} (IAM Identity Center)")
    found = _key_pair(settings.get("aws_access_key_id"), settings.get("aws_secret_access_key"),
                      settings.get("aws_session_token"))  # fmt: skip
    if found is not None:
        return _CredentialSource(found, label)
    if "credential_process" in settings:
        return _fetching(_process_fetcher(settings["credential_process"]), f"{label} (credential_process)")
    return None


def _given_keys(access_key: str | None, secret_key: str | None, token: str | None) -> Credentials:
    """The keys passed to ``Connection``: both halves of the pair, or a clear error."""
    if not access_key or not secret_key:
        missing = "secret_key" if access_key else "access_key"
        raise CredentialsError(f"{missing} is missing: pass both access_key and secret_key")
    return Credentials(access_key, secret_key, token)


def _key_pair(access_key: str | None, secret_key: str | None, token: str | None) -> Credentials | None:
    """Credentials when both halves of the key pair are there, else None."""
    return Credentials(access_key, secret_key, token or None) if access_key and secret_key else None


def _environment_credentials(environ: Mapping[str, str]) -> Credentials | None:
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN")
    return _key_pair(environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY"), token)


def _aws_file(environ: Mapping[str, str], variable: str, name: str) -> str:
    return environ.get(variable) or os.path.join(os.path.expanduser("~"), ".aws", name)


def _profile(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    """A profile's settings, read as botocore reads them: the config file's
    ``[default]`` or ``[profile NAME]`` (``[profile default]`` too), the
    ``[services NAME]`` section it names, then the credentials file's
    ``[NAME]`` on top. Nested settings (``s3 =`` followed by indented
    ``name = value`` lines) come as ``s3.name``.
    """
    config = _config_file(environ, "AWS_CONFIG_FILE", "config")
    settings: dict[str, str] = {}
    for section in ("default", "profile default") if name == "default" else (f"profile {name}",):
        settings.update(_section(config, section))
    for key, value in _section(config, f"services {settings.get('services')}").items():
        settings.setdefault(key, value)
    settings.update(_section(_config_file(environ, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), name))
    return settings


def _config_file(environ: Mapping[str, str], variable: str, name: str) -> Any:
    """The parsed shared config or credentials file; None if there is none (then
    ``configparser`` is not even imported: Lambda has no such files)."""
    path = _aws_file(environ, variable, name)
    if not os.path.isfile(path):
        return None
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        raise CredentialsError(f"cannot read {path}: {type(error).__name__}") from None
    return parser


def _section(parser: Any, section: str) -> dict[str, str]:
    """A section's settings, nested ones flattened to ``outer.inner``."""
    if parser is None or not parser.has_section(section):
        return {}
    settings = {}
    for key, value in parser.items(section):
        if value.startswith("\n"):
            for line in value.splitlines():
                inner, equals, nested = line.partition("=")
                if equals:
                    settings[f"{key}.{inner.strip()}"] = nested.strip()
        else:
            settings[key] = value
    return settings


#: Hosts a container credentials URL may use over plain HTTP, as the AWS SDKs allow.
_CONTAINER_HOSTS = ("169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost", "::1")


def _container_fetcher(environ: Mapping[str, str]) -> tuple[Callable[[], Credentials] | None, str]:
    """ECS/EKS credentials: a URL from the environment, with an optional token."""
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    url = f"http://169.254.170.2{relative}" if relative else environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not url:
        return None, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set"
    host = url.split("//", 1)[-1].split("/", 1)[0].rpartition(":")[0].strip("[]")
    if url.startswith("http://") and not (host in _CONTAINER_HOSTS or host.startswith("127.")):
        return None, f"{url} is neither HTTPS nor a link-local or loopback address"

    def fetch() -> Credentials:
        headers = {}
        token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            with open(token_file, encoding="utf-8") as file:
                headers["Authorization"] = file.read().strip()
        elif environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"):
            headers["Authorization"] = environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        return _parse_credentials(_metadata_request("GET", url, headers, 2.0), "the container endpoint")

    return fetch, ""


def _instance_metadata_fetcher(environ: Mapping[str, str]) -> tuple[Callable[[], Credentials] | None, str]:
    """EC2 credentials through IMDSv2: a session token, the role's name, then its keys."""
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None, "AWS_EC2_METADATA_DISABLED is true"
    base = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/")
    roles_url = f"{base}/latest/meta-data/iam/security-credentials/"

    def fetch() -> Credentials:
        ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
        headers = {"X-aws-ec2-metadata-token": _metadata_request("PUT", f"{base}/latest/api/token", ttl, 1.0).decode()}
        roles = _metadata_request("GET", roles_url, headers, 1.0).decode().split()
        if not roles:
            raise CredentialsError("the instance has no IAM role")
        return _parse_credentials(_metadata_request("GET", roles_url + roles[0], headers, 1.0), "instance metadata")

    return fetch, ""


def _web_identity_fetcher(settings: Mapping[str, str], lookup: _Lookup) -> Callable[[], Credentials]:
    """EKS (IRSA) and other OIDC tokens: the token file's token traded for a role's
    keys by STS ``AssumeRoleWithWebIdentity`` (a call that needs no keys)."""
    token_file, role_arn = settings["web_identity_token_file"], settings.get("role_arn")
    if not role_arn:
        raise CredentialsError(f"web identity token file {token_file} is set without a role_arn (AWS_ROLE_ARN)")
    session = lookup.environ.get("AWS_ROLE_SESSION_NAME") or settings.get("role_session_name") or _session_name()

    def fetch() -> Credentials:
        try:
            with open(token_file, encoding="utf-8") as file:
                token = file.read().strip()
        except OSError as error:
            raise CredentialsError(f"cannot read the web identity token file {token_file}: {error.strerror}") from None
        params = {"RoleArn": role_arn, "RoleSessionName": session, "WebIdentityToken": token}
        return _sts_credentials("AssumeRoleWithWebIdentity", params, None, settings, lookup)

    return fetch


def _assume_role_fetcher(
    name: str, settings: Mapping[str, str], lookup: _Lookup, chain: tuple[str, ...]
) -> Callable[[], Credentials]:
    """A role assumed with STS ``AssumeRole``, signed by the credentials of the
    ``source_profile`` (which may itself assume a role) or ``credential_source``."""
    if "mfa_serial" in settings:
        raise CredentialsError(f"profile {name!r} needs an MFA code (mfa_serial): tinys3 never prompts for one")
    if name in chain:
        raise CredentialsError(f"profiles {' -> '.join((*chain, name))} assume roles in a loop")
    source = _role_source(name, settings, lookup, chain)
    params = {"RoleArn": settings["role_arn"], "RoleSessionName": settings.get("role_session_name") or _session_name()}
    for setting, param in (("external_id", "ExternalId"), ("duration_seconds", "DurationSeconds")):
        if setting in settings:
            params[param] = settings[setting]
    return lambda: _sts_credentials("AssumeRole", params, source.current(), settings, lookup)


def _role_source(name: str, settings: Mapping[str, str], lookup: _Lookup, chain: tuple[str, ...]) -> _CredentialSource:
    """The credentials that sign a profile's AssumeRole."""
    environ = lookup.environ
    source_profile, credential_source = settings.get("source_profile"), settings.get("credential_source")
    if source_profile == name:  # a profile naming itself: its own keys assume its role
        found = _key_pair(settings.get("aws_access_key_id"), settings.get("aws_secret_access_key"), None)
        if found is None:
            raise CredentialsError(f"profile {name!r} is its own source_profile but has no keys")
        return _CredentialSource(found, f"profile {name!r}")
    if source_profile is not None:
        found_source = _profile_source(source_profile, lookup, (*chain, name))
        if found_source is None:
            raise CredentialsError(f"source_profile {source_profile!r} of profile {name!r} has no credentials")
        return found_source
    if credential_source == "Environment":
        found = _environment_credentials(environ)
        if found is None:
            raise CredentialsError(f"profile {name!r}: credential_source Environment, but AWS_ACCESS_KEY_ID is unset")
        return _CredentialSource(found, "environment variables")
    fetchers = {"Ec2InstanceMetadata": _instance_metadata_fetcher, "EcsContainer": _container_fetcher}
    if credential_source not in fetchers:
        raise CredentialsError(f"profile {name!r}: unknown credential_source {credential_source!r}")
    fetch, why_not = fetchers[credential_source](environ)
    if fetch is None:
        raise CredentialsError(f"profile {name!r}: credential_source {credential_source}: {why_not}")
    return _fetching(fetch, credential_source)


def _session_name() -> str:
    return f"tinys3-{int(time.time())}"


def _sts_credentials(
    action: str,
    params: Mapping[str, str],
    credentials: Credentials | None,
    settings: Mapping[str, str],
    lookup: _Lookup,
) -> Credentials:
    """Call STS (signed with ``credentials``, if any) and return the keys it issues.

    STS is the regional endpoint, unless ``AWS_ENDPOINT_URL_STS``,
    ``AWS_ENDPOINT_URL`` or the profile's ``endpoint_url`` names another.
    """
    from urllib.parse import urlencode, urlsplit

    environ, region = lookup.environ, lookup.region
    endpoint = (
        environ.get("AWS_ENDPOINT_URL_STS") or environ.get("AWS_ENDPOINT_URL")
        or settings.get("sts.endpoint_url") or settings.get("endpoint_url")
        or f"https://sts.{region}.amazonaws.com"
    )  # fmt: skip
    body = urlencode({"Action": action, "Version": "2011-06-15", **params}).encode()
    parts = urlsplit(endpoint)
    host = _parse_endpoint(f"{parts.scheme}://{parts.netloc}", True, "path").authority  # as the request's Host
    headers = {"Host": host, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    sign = None
    if credentials is not None:
        payload = hashlib.sha256(body).hexdigest()
        sign = _partial(_sign, "POST", parts.path or "/", [], headers, payload, credentials, region, service="sts")
    answer = _metadata_request("POST", endpoint, headers, 10.0, body, _sts_error, lookup, sign)
    fields = {}
    for element in _xml(answer).iter():
        fields[_local_name(element)] = element.text or ""
    expiration = fields.get("Expiration")
    expiry = _unix_time(expiration) if expiration else None
    try:
        return Credentials(fields["AccessKeyId"], fields["SecretAccessKey"], fields.get("SessionToken"), expiry)
    except KeyError:
        raise CredentialsError(f"STS answered {action} without credentials") from None


def _sts_error(body: bytes) -> str:
    """The code and message of an STS error answer (never the rest of it)."""
    try:
        fields = {_local_name(element): element.text or "" for element in _xml(body).iter()}
    except TransportError:
        fields = {}
    return _outside(f"{fields.get('Code', 'an error')}: {fields.get('Message', '')}")


def _process_fetcher(command: str) -> Callable[[], Credentials]:
    """``credential_process``: a program run without a shell that prints the keys as
    JSON (``Version`` 1, ``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``,
    ``Expiration``)."""
    import shlex

    argv = shlex.split(command)
    if not argv:
        raise CredentialsError("credential_process is empty")

    def fetch() -> Credentials:
        import json
        import subprocess

        try:
            done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            raise CredentialsError(f"credential_process {argv[0]} could not run: {error}") from None
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"]
            said = _outside(_mask_key_like(lines[-1]))
            raise CredentialsError(f"credential_process {argv[0]} failed (exit {done.returncode}): {said}")
        try:
            data = json.loads(done.stdout)
            if data.get("Version") != 1:
                raise ValueError
        except (ValueError, AttributeError):
            raise CredentialsError(f"credential_process {argv[0]} did not print JSON with Version 1") from None
        return _credentials_from({**data, "Token": data.get("SessionToken")}, argv[0])

    return fetch


def _mask_key_like(text: str) -> str:
    """``text`` with each run of 20 or more base64 or hex characters masked: what a helper
    prints may hold keys tinys3 does not know yet (a secret key is 40 such characters)."""
    import re

    return re.sub(r"[A-Za-z0-9+/=_-]{20,}", "****", text)


def _sso_fetcher(name: str, settings: Mapping[str, str], lookup: _Lookup) -> Callable[[], Credentials]:
    """IAM Identity Center: the token ``aws sso login`` cached, traded for the
    role's keys at the portal (``GetRoleCredentials``)."""
    session = settings.get("sso_session")
    sso: Mapping[str, str] = settings
    if session is not None:
        sso = _section(_config_file(lookup.environ, "AWS_CONFIG_FILE", "config"), f"sso-session {session}")
        if not sso:
            raise CredentialsError(f"profile {name!r} names sso_session {session!r}, which the config file lacks")
    cache_key = session if session is not None else settings.get("sso_start_url", "")
    region = sso.get("sso_region") or settings.get("sso_region")
    account, role = settings.get("sso_account_id"), settings.get("sso_role_name")
    if not (region and account and role):
        raise CredentialsError(f"profile {name!r} lacks sso_region, sso_account_id or sso_role_name")
    cache = os.path.join(os.path.expanduser("~"), ".aws", "sso", "cache",
                         hashlib.sha1(cache_key.encode()).hexdigest() + ".json")  # fmt: skip
    portal = lookup.environ.get("AWS_ENDPOINT_URL_SSO") or f"https://portal.sso.{region}.amazonaws.com"

    def fetch() -> Credentials:
        import json
        from urllib.parse import urlencode

        login = f"run 'aws sso login --profile {name}'"
        try:
            with open(cache, encoding="utf-8") as file:
                cached = json.load(file)
            token, expires = cached["accessToken"], cached["expiresAt"]
        except (OSError, ValueError, KeyError):
            raise CredentialsError(
                f"profile {name!r}: no IAM Identity Center login cached in {cache}: {login}"
            ) from None
        if _unix_time(expires) <= time.time():
            raise CredentialsError(f"profile {name!r}: the IAM Identity Center login expired: {login}")
        query = urlencode({"role_name": role, "account_id": account})
        answer = _metadata_request("GET", f"{portal}/federation/credentials?{query}",
                                   {"x-amz-sso_bearer_token": token}, 10.0, lookup=lookup)  # fmt: skip
        try:
            found = json.loads(answer)["roleCredentials"]
            keys = found["accessKeyId"], found["secretAccessKey"], found["sessionToken"], found["expiration"] / 1000
        except (ValueError, KeyError, TypeError):
            raise CredentialsError("the IAM Identity Center portal answered without credentials") from None
        return Credentials(*keys)

    return fetch


def _parse_credentials(body: bytes, source: str) -> Credentials:
    """Credentials from the JSON a container or instance metadata endpoint answers."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        raise CredentialsError(f"{source} answered without usable credentials") from None
    return _credentials_from(data, source)


def _credentials_from(data: Any, source: str) -> Credentials:
    """Credentials from ``AccessKeyId``, ``SecretAccessKey``, ``Token`` and ``Expiration``
    (ISO 8601) of a decoded answer; a CredentialsError naming ``source`` without them."""
    try:
        expiration = data.get("Expiration")
        expiry = _unix_time(expiration) if expiration else None
        return Credentials(data["AccessKeyId"], data["SecretAccessKey"], data.get("Token"), expiry)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CredentialsError(f"{source} answered without usable credentials") from None


def _unix_time(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time such as ``2026-11-29T12:00:00Z``."""
    return _datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


###############################################################################
# Signing (AWS Signature Version 4) ###########################################
###############################################################################

_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_ALGORITHM = "AWS4-HMAC-SHA256"
#: Headers a proxy may change on the way; signing them breaks the signature.
_UNSIGNED_HEADERS = frozenset(("authorization", "connection", "expect", "transfer-encoding", "user-agent"))
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_UNRESERVED_OR_SLASH = _UNRESERVED | {"/"}
_QUOTED = tuple(chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in range(256))


def _uri_encode(text: str, keep_slash: bool = False) -> str:
    """Percent-encode UTF-8 bytes outside RFC 3986's unreserved set, as S3 does.

    Spaces become ``%20``, ``+`` becomes ``%2B``; with ``keep_slash`` (object
    keys) ``/`` is kept. Nothing is normalised: ``a//b/../c`` stays literal.
    """
    if (_UNRESERVED_OR_SLASH if keep_slash else _UNRESERVED).issuperset(text):
        return text  # the common case, at C speed
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{text!r} is not valid Unicode text: {exc.reason}") from None
    quoted = "".join([_QUOTED[b] for b in data])
    return quoted.replace("%2F", "/") if keep_slash else quoted


def _canonical_query_string(query: Iterable[tuple[str, str]]) -> str:
    """Encoded ``name=value`` pairs sorted by name then value; bare names get ``=``."""
    if not query:
        return ""
    pairs = sorted((_uri_encode(name), _uri_encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(CanonicalHeaders, SignedHeaders): lower-cased, sorted, whitespace folded."""
    folded: dict[str, str] = {}
    for name, value in headers.items():
        name = name.lower()
        if name not in _UNSIGNED_HEADERS:
            value = " ".join(value.split())
            folded[name] = f"{folded[name]},{value}" if name in folded else value
    names = sorted(folded)
    return "".join([f"{name}:{folded[name]}\n" for name in names]), ";".join(names)


def _canonical_request(
    method: str,
    canonical_uri: str,
    canonical_query: str,
    canonical_headers: str,
    signed_headers: str,
    payload_hash: str,
) -> str:
    """Join the parts of a request as SigV4 hashes them.

    CanonicalRequest =
      HTTPRequestMethod + '\\n' + CanonicalURI + '\\n' + CanonicalQueryString + '\\n' +
      CanonicalHeaders + '\\n' + SignedHeaders + '\\n' + HexEncode(Hash(RequestPayload))
    """
    return f"{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"


def _scope(amz_date: str, region: str, service: str) -> str:
    """The credential scope: ``YYYYMMDD/region/service/aws4_request``."""
    return f"{amz_date[:8]}/{region}/{service}/aws4_request"


def _string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """StringToSign = Algorithm \\n RequestDateTime \\n Scope \\n Hex(SHA256(CanonicalRequest))."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{_ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@_lru_cache(maxsize=16)
def _signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """HMAC chain ``AWS4``+secret → date → region → service → ``aws4_request``."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def _signature(signing_key: bytes, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign under the signing key."""
    inner, outer = (state.copy() for state in _hmac_states(signing_key))
    inner.update(string_to_sign.encode("utf-8"))
    outer.update(inner.digest())
    return outer.hexdigest()


@_lru_cache(maxsize=16)
def _hmac_states(key: bytes) -> tuple[_Hash, _Hash]:
    """SHA-256 states that have absorbed the HMAC inner and outer pads of ``key``
    (RFC 2104): a signature then costs two copies, not a whole new HMAC."""
    if len(key) > 64:
        raise ValueError("HMAC keys longer than SHA-256's block are hashed first; signing keys never are")
    block = key.ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block))


def _authorization(access_key: str, scope: str, signed_headers: str, signature: str) -> str:
    """The ``Authorization`` header value."""
    return f"{_ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


def _amz_date(now: datetime) -> str:
    """ISO 8601 basic format in UTC, as ``x-amz-date`` wants it."""
    t = now.astimezone(_timezone.utc)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}Z"


def _sign(
    method: str,
    canonical_uri: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """Return ``headers`` plus ``X-Amz-Date``, the token if any, and ``Authorization``.

    Every header given is signed (but the few proxies rewrite), so the caller
    decides what is covered; ``Host`` must be among them.
    """
    amz_date = _amz_date(now)
    signed = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-amz-date")}
    signed["X-Amz-Date"] = amz_date
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical_headers, signed_headers = _canonical_headers(signed)
    request = _canonical_request(
        method, canonical_uri, _canonical_query_string(query), canonical_headers, signed_headers, payload_hash
    )
    scope = _scope(amz_date, region, service)
    key = _signing_key(credentials.secret_key, amz_date[:8], region, service)
    signature = _signature(key, _string_to_sign(amz_date, scope, request))
    signed["Authorization"] = _authorization(credentials.access_key, scope, signed_headers, signature)
    return signed


def _presign_query(
    method: str,
    canonical_uri: str,
    host: str,
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    now: _datetime,
    expires: int,
    service: str = "s3",
    params: Iterable[tuple[str, str]] = (),
) -> str:
    """The query string of a presigned URL, ``X-Amz-Signature`` last; ``params`` are
    signed with it (``versionId``, ``response-content-type``…).

    The payload is ``UNSIGNED-PAYLOAD``: whoever uses the URL sends the body.
    """
    amz_date = _amz_date(now)
    scope = _scope(amz_date, region, service)
    canonical_headers, signed_headers = _canonical_headers({"host": host, **headers})
    query = [
        ("X-Amz-Algorithm", _ALGORITHM),
        ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", signed_headers),
    ]
    if credentials.token:
        query.append(("X-Amz-Security-Token", credentials.token))
    query_string = _canonical_query_string([*query, *params])
    request = _canonical_request(
        method, canonical_uri, query_string, canonical_headers, signed_headers, "UNSIGNED-PAYLOAD"
    )
    key = _signing_key(credentials.secret_key, amz_date[:8], region, service)
    return f"{query_string}&X-Amz-Signature={_signature(key, _string_to_sign(amz_date, scope, request))}"


def _post_policy(
    bucket: str,
    key: str,
    fields: Mapping[str, str],
    conditions: Iterable[object],
    credentials: Credentials,
    region: str,
    now: _datetime,
    expires: int,
) -> dict[str, str]:
    """The form fields of a presigned POST (a browser upload): the caller's ``fields``,
    the SigV4 ones, ``policy`` (base64 JSON: expiry and conditions, each field an
    exact match) and ``x-amz-signature`` (of the policy, with the S3 signing key).

    A key ending in ``${filename}`` (filled in by the browser) is allowed as a prefix.
    """
    import json

    amz_date = _amz_date(now)
    signed = {**fields, "x-amz-algorithm": _ALGORITHM, "x-amz-credential": f"{credentials.access_key}/"
              f"{_scope(amz_date, region, 's3')}", "x-amz-date": amz_date}  # fmt: skip
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    filename = "${filename}"
    wanted = ["starts-with", "$key", key[: -len(filename)]] if key.endswith(filename) else {"key": key}
    policy = {
        "expiration": f"{now + _timedelta(seconds=expires):%Y-%m-%dT%H:%M:%S.000Z}",
        "conditions": [{"bucket": bucket}, wanted, *({name: value} for name, value in signed.items()), *conditions],
    }
    encoded = _b64(json.dumps(policy).encode())
    signing_key = _signing_key(credentials.secret_key, amz_date[:8], region, "s3")
    return {"key": key, **signed, "policy": encoded, "x-amz-signature": _signature(signing_key, encoded)}


###############################################################################
# Requests: addressing, headers, bodies #######################################
###############################################################################

#: Standard headers S3 stores with an object and returns on GET and HEAD.
_STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-type",
    "expires",
)
#: Headers that pass through as they are; any other name becomes x-amz-meta-*.
_PASS_HEADERS = frozenset((*_STORED_HEADERS, "content-md5", "if-match", "if-none-match"))
#: Headers about one request's body or preconditions, not stored with the object.
_REQUEST_ONLY_HEADERS = frozenset(("content-md5", "if-match", "if-none-match"))
_META = "x-amz-meta-"
_MAX_METADATA = 2048
_MAX_KEY = 1024
_MiB = 1024 * 1024
_MAX_PUT = 5 * 1024**3
_MAX_PARTS = 10000
_MAX_OBJECT = 5 * 1024**4
_CHUNK = _MiB
_ONE_YEAR = 365 * 24 * 3600
#: Headers that frame the message, steer the connection or carry the signature: a caller's
#: would send two of them, or a body the request does not have.
_OWN_HEADERS = frozenset(("host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
                          "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection", "authorization",
                          "x-amz-security-token", "x-amz-date", "x-amz-content-sha256"))  # fmt: skip
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_DNS_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_ADDRESSING = ("auto", "path", "virtual")
#: The media type of the compressed file itself, for names like x.tar.gz.
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Request:
    """One S3 request, unsigned: plain data built by pure functions."""

    __slots__ = ("body", "bucket", "headers", "key", "method", "query")

    def __init__(
        self,
        method: str,
        bucket: str,
        key: str = "",
        headers: dict[str, str] | None = None,
        body: _Body | None = None,
        query: list[tuple[str, str]] | None = None,
    ) -> None:
        self.method = method
        self.bucket = bucket
        self.key = key
        self.headers = headers or {}
        self.body = body
        self.query = query or []


class _Endpoint:
    """Where requests go: scheme, host, port, a path prefix (a gateway's ``/s3``, or
    empty), and how buckets are addressed."""

    __slots__ = ("addressing", "authority", "host", "is_aws", "port", "prefix", "scheme")

    def __init__(self, scheme: str, host: str, port: int, addressing: str, prefix: str = "") -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.addressing = addressing
        self.prefix = prefix
        self.is_aws = host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
        default = 443 if scheme == "https" else 80
        #: host[:port] as the Host header and URLs write it (the port only if not the default)
        self.authority = (f"[{host}]" if ":" in host else host) + ("" if port == default else f":{port}")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.prefix}"

    def locate(self, bucket: str, key: str) -> tuple[str, str]:
        """(Host header, canonical URI) for a bucket and key; the URI is also the path sent."""
        origin, prefix = self.authority, self.prefix
        encoded = _uri_encode(key, keep_slash=True)
        if self._virtual(bucket):
            return f"{bucket}.{origin}", f"{prefix}/{encoded}"
        if not bucket:
            return origin, f"{prefix}/"
        return origin, f"{prefix}/{bucket}/{encoded}" if key else f"{prefix}/{bucket}"

    def connect_host(self, host: str) -> str:
        """The host to connect to for a Host header from ``locate``: the one it names, so
        that DNS, TLS (SNI and the certificate check) and a proxy's ``CONNECT`` see a
        virtual-hosted bucket's own name, as every AWS SDK does."""
        if host == self.authority:
            return self.host
        return host[: len(host) - len(self.authority)] + self.host  # "<bucket>." + the endpoint's host

    def _virtual(self, bucket: str) -> bool:
        if not bucket or self.addressing == "path":
            return False
        if self.addressing == "virtual":
            return True
        dots_ok = self.scheme == "http"
        return self.is_aws and _dns_compatible(bucket, dots_ok)


def _dns_compatible(bucket: str, dots_ok: bool) -> bool:
    """True if the bucket name can be a DNS label under the endpoint host."""
    labels = bucket.split(".") if dots_ok else [bucket]
    return 3 <= len(bucket) <= 63 and all(
        label and set(label) <= _DNS_BUCKET_CHARS and label[0] != "-" and label[-1] != "-" for label in labels
    )


def _parse_endpoint(endpoint: str, tls: bool, addressing: str) -> _Endpoint:
    """An endpoint from ``https://host[:port][/prefix]`` or a bare ``host[:port]``
    (scheme from ``tls``)."""
    if addressing not in _ADDRESSING:
        raise InvalidInput(f"addressing must be one of {', '.join(_ADDRESSING)}; got {addressing!r}")
    if not isinstance(endpoint, str):
        raise InvalidType(f"endpoint must be a URL str like 'https://s3.example.com'; got {type(endpoint).__name__}")
    from urllib.parse import urlsplit

    text = endpoint.strip()
    url = urlsplit(text if "://" in text else ("https://" if tls else "http://") + text)
    try:
        port = url.port
        host = url.hostname
    except ValueError:
        host = None
    if "://" not in text and (host in ("http", "https") or "//" in url.path):
        raise InvalidInput(f"endpoint {endpoint!r} has a broken scheme: write 'http://HOST[:PORT]' or 'https://…'")
    if url.scheme not in ("http", "https") or not host or url.query or url.fragment:
        raise InvalidInput(f"endpoint must be a URL like 'https://s3.example.com:9000'; got {endpoint!r}")
    default = 443 if url.scheme == "https" else 80
    return _Endpoint(url.scheme, host, port or default, addressing, url.path.rstrip("/"))


def _check_bucket(bucket: object) -> str:
    """The bucket name, or InvalidInput/InvalidType naming what is wrong with it."""
    if bucket is None:
        raise InvalidInput("no bucket: pass bucket=... or give the connection a default bucket")
    if not isinstance(bucket, str):
        raise InvalidType(f"bucket must be a str; got {type(bucket).__name__}")
    if not 3 <= len(bucket) <= 255 or not set(bucket) <= _BUCKET_CHARS:
        raise InvalidInput(
            f"invalid bucket name {bucket!r}: use 3 to 63 letters, digits, '.', '-' (or '_' on older services)"
        )
    return bucket


def _check_key(key: object) -> str:
    """The object key, or InvalidInput/InvalidType naming what is wrong with it."""
    if not isinstance(key, str):
        raise InvalidType(f"key must be a str; got {type(key).__name__}")
    if not key:
        raise InvalidInput("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"key {key!r} is not valid Unicode text: {exc.reason}") from None
    if size > _MAX_KEY:
        raise InvalidInput(f"key is {size} bytes in UTF-8; S3 allows at most {_MAX_KEY}")
    return key


def _header_value(name: str, value: object) -> str:
    """A header value as ASCII text, refusing anything that would garble or split a header."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidType(f"header {name!r} must be a str (or int); got {type(value).__name__}")
    text = str(value)
    if not text.isascii() or any((c < " " and c != "\t") or c == "\x7f" for c in text):
        raise InvalidInput(
            f"header {name!r} has a non-ASCII or control character (newlines included); "
            "S3 headers and metadata values must be printable ASCII"
        )
    return text


def _check_header_name(name: object) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
        raise InvalidInput(f"{name!r} is not a valid header or metadata name")
    if name.lower() in _OWN_HEADERS:
        raise InvalidInput(f"header {name!r} is tinys3's own to write (framing, connection or signature): it "
                           f"cannot be given (metadata of that name is x-amz-meta-{name.lower()})")  # fmt: skip
    return name


def _wire_headers(items: Mapping[str, object] | None) -> dict[str, str | None]:
    """Map user headers or metadata to wire names (lower case).

    Standard object headers (Content-Type, Cache-Control, Content-Disposition,
    Content-Encoding, Content-Language, Expires, Content-MD5, If-Match,
    If-None-Match) and ``x-amz-*`` names pass as they are; any other name
    becomes ``x-amz-meta-<name>``. A value of None is kept (it means "remove").
    """
    if items is None:
        return {}
    if not hasattr(items, "items"):
        raise InvalidType(f"headers and metadata must be a dict; got {type(items).__name__}")
    wire: dict[str, str | None] = {}
    for name, value in items.items():
        lower = _check_header_name(name).lower()
        if lower not in _PASS_HEADERS and not lower.startswith("x-amz-"):
            lower = _META + lower
        wire[lower] = None if value is None else _header_value(name, value)
    return wire


def _check_metadata_size(headers: Mapping[str, str]) -> None:
    """Refuse user metadata over S3's 2 KB limit before sending it."""
    size = sum(len(k) - len(_META) + len(v) for k, v in headers.items() if k.startswith(_META))
    if size > _MAX_METADATA:
        raise InvalidInput(f"user metadata is {size} bytes; S3 allows at most {_MAX_METADATA}")


def _http_date(timestamp: float) -> str:
    """An RFC 7231 HTTP date (always English, always GMT)."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _expiry_headers(expires: Expires, public: bool, now: float) -> dict[str, str]:
    """``Cache-Control: max-age=N`` (``, public`` if public) and a matching ``Expires`` date.

    ``expires`` is seconds, ``'max'`` (one year), a timedelta, or a datetime
    (naive means local time, as ``datetime.timestamp`` reads it).
    """
    if expires is None:
        return {}
    if isinstance(expires, _datetime):
        seconds = max(0.0, expires.timestamp() - now)
    elif isinstance(expires, _timedelta):
        seconds = expires.total_seconds()
    elif expires == "max":
        seconds = _ONE_YEAR
    elif isinstance(expires, (int, float)) and not isinstance(expires, bool):
        seconds = expires
    elif isinstance(expires, str):
        raise InvalidInput(f"expires must be seconds, 'max', a timedelta or a datetime; got {expires!r}")
    else:
        raise InvalidType(f"expires must be seconds, 'max', a timedelta or a datetime; got {type(expires).__name__}")
    if not 0 <= seconds < float("inf"):
        raise InvalidInput(f"expires must not be negative; got {expires!r}")
    cache_control = f"max-age={int(seconds)}" + (", public" if public else "")
    return {"cache-control": cache_control, "expires": _http_date(now + seconds)}


_mime_types: Any = None


def _guess_content_type(key: str) -> str:
    """Guess from the key's extension with a private table (the global one is untouched).

    A compressed name such as ``x.tar.gz`` gets the compressed type
    (``application/gzip``): that is what the bytes are.
    """
    global _mime_types
    name = key.rpartition("/")[2]
    if "." not in name.lstrip("."):
        return "application/octet-stream"  # no extension (leading dots do not make one)
    if _mime_types is None:
        import mimetypes

        _mime_types = mimetypes.MimeTypes()
    guessed, encoding = _mime_types.guess_type("x/" + name, strict=False)
    if encoding:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"


_SSE = "x-amz-server-side-encryption"
_SSE_C = (f"{_SSE}-customer-algorithm", f"{_SSE}-customer-key", f"{_SSE}-customer-key-md5")
_COPY_SSE_C = tuple(f"x-amz-copy-source-{name[6:]}" for name in _SSE_C)
#: Headers about who may act that every request of an operation carries (parts, completion, abort).
_ACCOUNT = ("x-amz-request-payer", "x-amz-expected-bucket-owner")


def _sse_headers(sse: str | None, kms_key_id: str | None, customer_key: bytes | None) -> dict[str, str]:
    """Server-side encryption headers: S3-managed (``AES256``), KMS (``aws:kms`` with an
    optional key id; a key id alone means ``aws:kms``), or a customer key (SSE-C)."""
    if sse not in (None, "AES256", "aws:kms", "aws:kms:dsse"):
        raise InvalidInput(f"sse must be 'AES256', 'aws:kms' or 'aws:kms:dsse'; got {sse!r}")
    if kms_key_id is not None and sse == "AES256":
        raise InvalidInput("kms_key_id needs sse='aws:kms', not 'AES256'")
    if customer_key is not None and (sse or kms_key_id):
        raise InvalidInput("sse_customer_key (SSE-C) excludes sse and kms_key_id: an object has one encryption")
    headers = {_SSE: sse or "aws:kms"} if sse or kms_key_id else {}
    if kms_key_id is not None:
        headers[f"{_SSE}-aws-kms-key-id"] = _header_value("kms_key_id", kms_key_id)
    return {**headers, **_customer_key_headers(customer_key, _SSE_C)}


def _customer_key_headers(key: bytes | None, names: tuple[str, ...]) -> dict[str, str]:
    """The three SSE-C headers (``names``: the object's or the copy source's) for a 32-byte key."""
    if key is None:
        return {}
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise InvalidInput("an SSE-C key is 32 bytes (AES-256), given as bytes")
    return dict(zip(names, ("AES256", _b64(key), _content_md5(key))))


def _secrets(credentials: Credentials | None, headers: Mapping[str, str]) -> Iterator[str]:
    """What a request carries that no answer may repeat into a message: the secret key,
    the session token (also percent-encoded), and each SSE-C key as sent (base64), raw
    and in hex."""
    if credentials is not None:
        yield credentials.secret_key
        if credentials.token:
            yield credentials.token
            yield _uri_encode(credentials.token)
    import binascii

    for name in (_SSE_C[1], _COPY_SSE_C[1]):
        if name in headers:
            raw = binascii.a2b_base64(headers[name])
            yield from (headers[name], raw.hex(), raw.hex().upper(), raw.decode("latin-1"))


def _framed(request: _Request) -> dict[str, str]:
    """A request's headers with the body's SHA-256 (signed) and length; a PUT or POST
    without a body says ``Content-Length: 0``, as S3 requires."""
    body, headers = request.body, dict(request.headers)
    headers["x-amz-content-sha256"] = body.sha256 if body is not None else _EMPTY_SHA256
    if body is not None:
        headers["Content-Length"] = str(body.length)
    elif request.method in ("PUT", "POST"):
        headers["Content-Length"] = "0"
    return headers


def _plain(headers: Mapping[str, object] | None) -> dict[str, str]:
    """Request headers as given (checked), for the calls that store nothing."""
    return {_check_header_name(name): _header_value(name, value) for name, value in (headers or {}).items()}


def _picked(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    wanted = set(names)
    return {k: v for k, v in headers.items() if k.lower() in wanted}


def _acl_headers(public: bool) -> dict[str, str]:
    """``x-amz-acl: public-read`` when asked; otherwise nothing (the bucket's default applies)."""
    if not isinstance(public, bool):
        raise InvalidType(f"public must be True or False; got {type(public).__name__}")
    return {"x-amz-acl": "public-read"} if public else {}


def _upload_headers(
    key: str,
    expires: Expires,
    content_type: str | None,
    public: bool,
    headers: Mapping[str, object] | None,
    now: float,
) -> dict[str, str]:
    """All headers of an upload: type, expiry, ACL, then the caller's (which win)."""
    wire = {
        "content-type": _guess_content_type(key)
        if content_type is None
        else _header_value("content_type", content_type)
    }
    wire.update(_expiry_headers(expires, public, now))
    wire.update(_acl_headers(public))
    return _apply(wire, headers)


def _replacement_headers(source: Mapping[str, str], changes: Mapping[str, object] | None) -> dict[str, str]:
    """Headers for a REPLACE copy: the source's stored headers, metadata and
    storage class, with ``changes`` applied (a None value removes a name)."""
    kept = {name: source[name] for name in _STORED_HEADERS if source.get(name) is not None}
    for name, value in source.items():
        name = name.lower()
        if name.startswith(_META) or name == "x-amz-storage-class":
            kept[name] = value
    return _apply(kept, changes)


def _apply(headers: dict[str, str], changes: Mapping[str, object] | None) -> dict[str, str]:
    """``headers`` with the caller's headers or metadata on top (None removes a name),
    checked against S3's metadata limit; without changes, ``headers`` as they are."""
    if changes is None:
        return headers
    for name, change in _wire_headers(changes).items():
        if change is None:
            headers.pop(name, None)
        else:
            headers[name] = change
    _check_metadata_size(headers)
    return headers


def _range_header(value: tuple[int, int | None] | int | str) -> str:
    """A ``Range`` header from ``(first, last)``, ``-n`` (the last n bytes) or ``'bytes=…'``."""
    if isinstance(value, str) and value.startswith("bytes="):
        return _header_value("range", value)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return f"bytes={value}"
    if isinstance(value, tuple) and len(value) == 2:
        first, last = value
        if isinstance(first, int) and first >= 0 and (last is None or (isinstance(last, int) and last >= first)):
            return f"bytes={first}-{'' if last is None else last}"
    raise InvalidInput(f"range must be (first, last), (first, None), -n or 'bytes=...'; got {value!r}")


def _xml_text(text: str) -> str:
    """Text escaped for an XML body; refuses characters XML 1.0 cannot carry."""
    if any((c < " " and c not in "\t\n\r") or c in "\ufffe\uffff" for c in text):
        raise InvalidInput(f"key {text!r} has a control character that an XML request cannot carry")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _delete_body(items: Iterable[tuple[str, str | None]]) -> bytes:
    """The XML of a quiet DeleteObjects request: (key, version id or None) each."""
    objects = "".join(
        f"<Object><Key>{_xml_text(key)}</Key>{'' if v is None else f'<VersionId>{_xml_text(v)}</VersionId>'}</Object>"
        for key, v in items
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>{objects}</Delete>'.encode()


def _tagging(tags: Mapping[str, object] | None) -> dict[str, str]:
    """The ``x-amz-tagging`` header of a tag dict (URL-encoded, as S3 wants it), checked
    against S3's limits: at most 10 tags, keys of 1-128 characters, values up to 256."""
    if tags is None:
        return {}
    return {"x-amz-tagging": "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in _check_tags(tags).items())}


def _check_tags(tags: Mapping[str, object]) -> dict[str, str]:
    if not hasattr(tags, "items"):
        raise InvalidType(f"tags must be a dict of str; got {type(tags).__name__}")
    if len(tags) > 10:
        raise InvalidInput(f"S3 keeps at most 10 tags on an object; got {len(tags)}")
    for name, value in tags.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidType(f"tag names and values must be str; got {name!r}: {value!r}")
        if not 1 <= len(name) <= 128 or len(value) > 256:
            raise InvalidInput(f"tag {name!r}: S3 takes names of 1 to 128 characters and values up to 256")
    return dict(tags)  # type: ignore[arg-type]


def _tags_body(tags: Mapping[str, str]) -> bytes:
    """The XML of PutObjectTagging."""
    listed = "".join(f"<Tag><Key>{_xml_text(k)}</Key><Value>{_xml_text(v)}</Value></Tag>" for k, v in tags.items())
    return f"<Tagging><TagSet>{listed}</TagSet></Tagging>".encode()


def _content_md5(body: bytes) -> str:
    """``Content-MD5``: base64 of the MD5 digest (DeleteObjects requires it)."""
    return _b64(hashlib.md5(body).digest())


def _b64(raw: bytes) -> str:
    """Bytes in base64, as text (digests, keys and policies in headers and forms)."""
    import base64

    return base64.b64encode(raw).decode()


def _presign_params(params: Mapping[str, str] | None, what: str = "params") -> list[tuple[str, str]]:
    """Extra query parameters (or form fields) to sign: str names and values; the
    signature's own (``X-Amz-*``) are tinys3's to set."""
    if params is None:
        return []
    if not hasattr(params, "items"):
        raise InvalidType(f"{what} must be a dict of str; got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise InvalidType(f"{what} must map str to str; got {name!r}: {value!r}")
        if name.lower() in _SIGNATURE_FIELDS:
            raise InvalidInput(f"{name!r} is part of the signature; tinys3 sets it")
    return list(params.items())


#: Query parameters and form fields that make up a signature: never the caller's to set.
_SIGNATURE_FIELDS = frozenset(
    ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signedheaders",
     "x-amz-security-token", "x-amz-signature", "policy", "key")
)  # fmt: skip


def _copy_source(bucket: str, key: str, version_id: str | None = None) -> str:
    """``x-amz-copy-source``: ``/bucket/key`` URL-encoded like a path (and ``?versionId=``)."""
    version = "" if version_id is None else f"?versionId={_uri_encode(_check_version(version_id))}"
    return f"/{bucket}/{_uri_encode(key, keep_slash=True)}{version}"


def _version(version_id: str | None) -> list[tuple[str, str]]:
    """The query naming one version of an object (none for the newest)."""
    return [] if version_id is None else [("versionId", _check_version(version_id))]


def _check_version(version_id: object) -> str:
    if not isinstance(version_id, str) or not version_id:
        raise InvalidInput(f"version_id must be a non-empty str; got {version_id!r}")
    return version_id


class _Body:
    """A request body of known length that can be sent again (retries).

    Bytes in memory, or ``length`` bytes of a seekable binary file from
    ``start``, read with ``os.pread`` when the file is a regular file (so the
    parts of one file can go out on several threads at once). The SHA-256 is
    computed on first use.
    """

    __slots__ = ("_sha256", "data", "fd", "file", "length", "owned", "recycle", "start")

    def __init__(
        self,
        data: bytes | bytearray | memoryview | None,
        file: IO[bytes] | None = None,
        start: int = 0,
        length: int = 0,
        owned: bool = False,
        fd: int | None = None,
    ) -> None:
        self.data = data
        self.file = file
        self.start = start
        self.length = len(data) if data is not None else length
        self.owned = owned
        self.fd = fd
        self._sha256: str | None = None
        #: Called by ``close`` once the body is sent: the buffer is free for the next part.
        self.recycle: Callable[[], None] | None = None

    @classmethod
    def of_file(cls, file: IO[bytes], start: int, length: int, owned: bool = False) -> _Body:
        """A region of a file; regular files are read with pread, others with seek and read."""
        fd = None
        if hasattr(os, "pread"):
            try:
                fd = file.fileno()
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    fd = None
            except (AttributeError, OSError, ValueError):
                fd = None
        return cls(None, file, start, length, owned, fd)

    @classmethod
    def of_path(cls, path: os.PathLike[str]) -> _Body:
        """A file by its path. One of up to 64 KiB (what goes out with the request's head)
        is read at once: one read, not one to hash it and another to send it."""
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed here or with the body
        try:
            found = os.fstat(file.fileno())
            size = found.st_size
            if size > _COALESCE or not stat.S_ISREG(found.st_mode):
                return cls.of_file(file, 0, size, owned=True)
            data = file.read(size) or b""
        except BaseException:
            file.close()
            raise
        file.close()
        if len(data) < size:
            raise _ended_early(size - len(data))
        return cls(data)

    def checksum(self, algorithm: str) -> str:
        """The body's ``x-amz-checksum-<algorithm>`` (base64); SHA-256 is the signature's."""
        if algorithm == "sha256":
            return _b64(bytes.fromhex(self.sha256))
        digest = _hasher(algorithm)
        for chunk in self.chunks():
            digest.update(chunk)
        return _b64(digest.digest())

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the body (one read pass for a file, then cached)."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            for chunk in self.chunks():
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The body from its start, in chunks; a file that ends early is an error.

        File chunks are views of this thread's one read buffer, valid until
        the next chunk: hash them or send them, don't keep them.
        """
        if self.data is not None:
            yield memoryview(self.data) if isinstance(self.data, bytearray) else self.data
            return
        assert self.file is not None
        position, end = self.start, self.start + self.length
        if self.fd is None:
            self.file.seek(position)
        buffer = _read_buffer(self.length)
        while position < end:
            view = buffer[: min(len(buffer), end - position)]
            n = _read_into(self.file, self.fd, view, position)
            if not n:
                raise _ended_early(end - position)
            position += n
            yield view[:n]

    def read_at(self, offset: int, most: int) -> bytes:
        """Up to ``most`` bytes of a file body from ``offset``, in bytes of their own (not a
        view of a reused buffer); a file that ends early is an error."""
        assert self.file is not None
        size = min(most, self.length - offset)
        if self.fd is not None:
            data = os.pread(self.fd, size, self.start + offset)
        else:
            self.file.seek(self.start + offset)
            data = bytes(self.file.read(size) or b"")
        if len(data) < size:
            raise _ended_early(size - len(data))
        return data

    def part(self, offset: int, length: int) -> _Body:
        """``length`` bytes from ``offset``: a view of memory or of the file, read now otherwise."""
        if self.data is not None:
            return _Body(memoryview(self.data)[offset : offset + length])
        if self.fd is not None:
            return _Body(None, self.file, self.start + offset, length, fd=self.fd)
        assert self.file is not None
        self.file.seek(self.start + offset)
        return _Body(_read_up_to(self.file, length))

    def close(self) -> None:
        if self.owned and self.file is not None:
            self.file.close()
        if self.recycle is not None:
            self.data, recycle, self.recycle = None, self.recycle, None
            recycle()


def _ended_early(missing: int) -> InvalidInput:
    return InvalidInput(f"the file ended {missing} bytes early: was it changed while uploading?")


_buffers = threading.local()


def _buffer_size(size: int | None) -> int:
    """A read buffer's size for ``size`` bytes (None: unknown): at least 1, at most 1 MiB."""
    return _CHUNK if size is None else min(max(size, 1), _CHUNK)


def _read_buffer(size: int | None = _CHUNK) -> memoryview:
    """This thread's reusable buffer, at least ``size`` bytes (None: unknown) up to 1 MiB:
    reading files allocates nothing per chunk, and a thread that only ever moves small
    files holds a small one (64 threads of ``cp -r`` would otherwise hold 64 MiB)."""
    want = _buffer_size(size)
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < want:
        buffer = _buffers.buffer = memoryview(bytearray(want))
    return buffer


def _read_into(file: Any, fd: int | None, view: memoryview, position: int) -> int:
    """Fill ``view`` from ``position`` of a regular file (pread), else from the file's position."""
    if fd is not None:
        if hasattr(os, "preadv"):
            return int(os.preadv(fd, [view], position))
        data = os.pread(fd, len(view), position)
    elif hasattr(file, "readinto"):
        return int(file.readinto(view) or 0)
    else:
        data = file.read(len(view))
    view[: len(data)] = data
    return len(data)


def _body(source: Body, rewind: bool, limit: int) -> tuple[_Body, IO[bytes] | None]:
    """Turn what the caller gave into a ``_Body``; refuse text and unknown types.

    bytes-like → in memory; a path → opened; a seekable binary file → read in
    place from its position (from 0 with ``rewind``). Anything else readable
    is an unsized stream: up to ``limit`` bytes are read into memory, and the
    stream is returned too when it did not end there (more follows).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _Body(memoryview(source).cast("B")), None
    if isinstance(source, str):
        raise InvalidType(
            "upload takes bytes or a binary file, not str: pass data.encode() "
            "or open(path, 'rb') (or a pathlib.Path to upload that file)"
        )
    if isinstance(source, os.PathLike):
        return _Body.of_path(source), None
    if isinstance(source, io.TextIOBase) or "b" not in getattr(source, "mode", "b"):
        raise InvalidType("the file is open in text mode: open it with open(path, 'rb')")
    if not callable(getattr(source, "read", None)):
        raise InvalidType(f"upload takes bytes, a path or a binary file; got {type(source).__name__}")
    if _seekable(source):
        if rewind:
            source.seek(0)
        start = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(start)
        return _Body.of_file(source, start, end - start), None
    head = _read_up_to(source, limit)  # the first part of a stream, uncopied, when more follows
    return _Body(head), (source if len(head) == limit else None)


def _seekable(source: Any) -> bool:
    try:
        return bool(source.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_up_to(
    stream: Any, size: int, start: bytes | memoryview = b"", into: memoryview | None = None
) -> bytes | memoryview:
    """``start``, then the stream's bytes until ``size`` in all or the end of the stream,
    in one buffer of the full size: ``into``, else one mapped for it, not taken from the
    heap, so that its memory goes back whole once it is let go of (buffers grown by
    appends are copied as they grow, and big ones from the heap leave tens of MiB behind)."""
    done, view = len(start), _mapped(size) if into is None else into
    view[:done] = start
    while done < size:
        with view[done:size] as window:
            n = _read_into_window(stream, window)
        if not n:
            break
        done += n
    return view[:done] if done == size or into is not None else bytes(view[:done])


def _mapped(size: int) -> memoryview:
    """``size`` bytes of anonymous memory, given back to the system when let go of."""
    import mmap

    return memoryview(mmap.mmap(-1, size)) if size else memoryview(bytearray())


def _read_into_window(stream: Any, window: memoryview) -> int:
    """One read into ``window`` (0 at the end): ``readinto`` where the stream has it, else
    ``read`` of 1 MiB at most (what it returns is a copy); refuse text."""
    try:
        return int(stream.readinto(window) or 0)
    except (AttributeError, NotImplementedError):  # a stream with read() only
        chunk = stream.read(min(len(window), _CHUNK))
    if chunk is None:  # a non-blocking stream's "nothing yet": taken as its end, as read() always was
        return 0
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise InvalidType(f"the stream gave {type(chunk).__name__}, not bytes: open it in binary mode")
    window[: len(chunk)] = chunk
    return len(chunk)


def _part_size(total: int | None, minimum: int) -> int:
    """A part size (whole MiB) that keeps a multipart upload within 10,000 parts."""
    size = minimum if total is None else max(minimum, -(-total // _MAX_PARTS))
    return -(-size // _MiB) * _MiB


def _sized_parts(body: _Body, part_size: int) -> Iterator[_Body]:
    for offset in range(0, body.length, part_size):
        yield body.part(offset, min(part_size, body.length - offset))


def _stream_parts(head: bytes | memoryview, stream: IO[bytes], part_size: int) -> Iterator[_Body]:
    """Parts of a stream of unknown length, ``head`` its first bytes; the size doubles
    every 1,000 parts, so 10,000 parts reach past S3's 5 TiB limit from parts of 5.25 MiB
    up (the default 8 MiB reach 8.5 TB; the smallest, 5 MiB, 5.36 TB). A stream's parts
    are in memory: at most ``_STREAM_BUFFERS`` of them, whatever ``max_concurrency``, each
    buffer read into again once its part is sent (pages once touched are not paid for
    again)."""
    buffers = _PartBuffers(_STREAM_BUFFERS)
    whole: memoryview | None = buffers.hold(memoryview(head))  # one of them, until its first part is sent
    buffer: bytes | memoryview | None = whole  # taken over, not copied
    del head
    number = 0
    while True:
        size = part_size << (number // 1000)
        if buffer is None or len(buffer) < size:
            if whole is not None:  # a head shorter than a part: copied into the new buffer
                buffers.give(whole)
            whole = buffers.take(size)
            buffer = _read_up_to(stream, size, buffer or b"", whole)
        if not buffer:
            return
        part, buffer = _Body(buffer[:size]), (buffer[size:] or None)
        if whole is not None:
            part.recycle, whole = _partial(buffers.give, whole), None
        number += 1
        last = part.length < size and buffer is None
        yield part
        if last:
            return
        del part


#: The parts of a stream (or of ``open(key, "wb")``) held in memory at once.
_STREAM_BUFFERS = 4


class _PartBuffers:
    """The buffers of one stream's parts: at most ``limit`` exist; a part done (sent or
    failed: nobody reads it then) gives its buffer back, and ``take`` waits for one."""

    def __init__(self, limit: int) -> None:
        self._ready = threading.Condition()
        self._free: list[memoryview] = []
        self._made, self._limit = 0, limit

    def hold(self, view: memoryview) -> memoryview:
        """Count ``view`` (a buffer made elsewhere) as one of them."""
        with self._ready:
            self._made += 1
        return view

    def take(self, size: int) -> memoryview:
        with self._ready:
            while True:
                while self._free:
                    view = self._free.pop()
                    if len(view) == size and not view.readonly:
                        return view
                    self._made -= 1  # of another size, or bytes given as the head: let go of
                if self._made < self._limit:
                    self._made += 1
                    return _mapped(size)
                self._ready.wait()

    def give(self, view: memoryview) -> None:
        with self._ready:
            self._free.append(view)
            self._ready.notify()


def _complete_body(parts: Iterable[tuple[int, str]], sums: _Sums | None = None) -> bytes:
    """The XML of CompleteMultipartUpload: every part, in order, (number, ETag), with
    its checksum when the upload has them."""
    tag = "" if sums is None else f"Checksum{sums.algorithm.upper()}"
    listed = "".join(
        f"<Part><PartNumber>{number}</PartNumber><ETag>{_xml_text(etag)}</ETag>"
        + (f"<{tag}>{sums.parts[number]}</{tag}>" if sums is not None else "")
        + "</Part>"
        for number, etag in parts
    )
    return f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()


#: The checksums S3 takes (``x-amz-checksum-*``) that the standard library computes.
_CHECKSUMS = ("crc32", "sha1", "sha256")


class _Crc32:
    """zlib's CRC-32 behind hashlib's ``update``/``digest``."""

    def __init__(self) -> None:
        import zlib

        self._crc32 = zlib.crc32
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self._crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _hasher(algorithm: str) -> Any:
    return _Crc32() if algorithm == "crc32" else hashlib.new(algorithm)


def _check_checksum(checksum: object) -> str | None:
    if checksum is not None and checksum not in _CHECKSUMS:
        raise InvalidInput(f"checksum must be 'crc32', 'sha1' or 'sha256' (what Python computes); got {checksum!r}")
    return checksum


class _Sums:
    """The checksums of a multipart upload's parts (base64, by part number) and the
    composite S3 makes of them: the digest of their digests, then ``-`` and their number."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.parts: dict[int, str] = {}

    def composite(self) -> str:
        import base64

        digest = _hasher(self.algorithm)
        for number in sorted(self.parts):
            digest.update(base64.b64decode(self.parts[number]))
        return f"{_b64(digest.digest())}-{len(self.parts)}"


class _Send:
    """Effect: send one request and give back its answer, ``(status, reason, headers,
    body)`` (the body a ``bytes``, or for a 2xx answer to a ``stream`` request, the
    driver's stream of it), or raise its TransportError. ``headers`` are signed, Host
    aside (the driver writes it). ``finish``: the core must learn what the request made,
    to undo it, even if the caller gives up while it is under way: the asyncio driver
    then still reads the answer and hands it over, and throws the cancellation into the
    core at the next effect it yields."""

    __slots__ = ("body", "endpoint", "finish", "headers", "host", "method", "stream", "target")

    def __init__(self, endpoint: _Endpoint, host: str, target: str, method: str, headers: dict[str, str],
                 body: _Body | None, stream: bool, finish: bool = False) -> None:  # fmt: skip
        self.endpoint, self.host, self.target, self.method = endpoint, host, target, method
        self.headers, self.body, self.stream, self.finish = headers, body, stream, finish


class _Sleep:
    """Effect: wait ``seconds`` (a backoff) before the core goes on."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _Receive:
    """Effect: fill ``buffer`` with the next bytes of a streamed body (``within_deadline``:
    the attempt's deadline bounds the wait too) and give back their count, 0 at its end."""

    __slots__ = ("buffer", "stream", "within_deadline")

    def __init__(self, stream: Any, buffer: memoryview, within_deadline: bool) -> None:
        self.stream, self.buffer, self.within_deadline = stream, buffer, within_deadline


class _Gather:
    """Effect: run sub-operations (core generators) at once and give back their results in
    order. ``operations`` is an iterator, advanced only when another can start (a part is
    read then, not before). At most ``most`` run at once, if given, besides the driver's
    own limit. Each returns ``(ETag or "", bytes)``: ``progress`` is told the running sum
    of bytes, of ``total`` (None: a stream's parts, whose reads may wait on its writer). The
    first failure starts no more; once those under way ended, it is raised."""

    __slots__ = ("most", "operations", "progress", "total")

    def __init__(self, operations: Iterator[Generator[_Effect, Any, tuple[str, int]]], total: int | None,
                 progress: Progress | None, most: int | None = None) -> None:  # fmt: skip
        self.operations, self.total, self.progress, self.most = operations, total, progress, most


class _Work:
    """Effect: run ``call`` (blocking: a credential fetch, a file read, a digest) and give
    back its result, or raise its exception. ``waits``: it may wait on the caller's own
    code (a stream or an async iterable being uploaded), not only compute or read."""

    __slots__ = ("call", "waits")

    def __init__(self, call: Callable[[], Any], waits: bool = False) -> None:
        self.call, self.waits = call, waits


#: What a driver performs; anything else a core generator yields is data for the caller
#: (a body's views, a listing's entries), handed on by the driver's ``_iterate``.
_EFFECTS = (_Send, _Sleep, _Work, _Gather, _Receive)


###############################################################################
# Transport: the only code that touches sockets ###############################
###############################################################################


#: Limits on an answer's status and header lines, as http.client's.
_MAX_LINE = 65536
_MAX_HEADERS = 100
#: A server may send "100 Continue" before its answer; one that keeps sending them is not answering.
_MAX_INTERIM = 16
#: A body up to this size goes out in one send with the request's head.
_COALESCE = 64 * 1024
#: A larger body goes out in sends of this size, each bounded by the read timeout: the
#: timeout then bounds how long the server takes nothing, not how long the body takes.
#: (Over TLS each send costs more than its bytes: see bench/RESULTS.md for the size.)
_SLICE = 512 * 1024


class _Headers:
    """An answer's headers as ``http.client`` gives them (an ``email`` message's
    interface): in order, repeated names kept, names case-insensitive, a missing one None."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of ``name`` (a str), else ``default``."""
        lowered = name.lower()
        return next((value for key, value in self._items if key.lower() == lowered), default)

    def get_all(self, name: str, default: Any = None) -> Any:
        """Every value of ``name`` (a list of str), else ``default``."""
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered] or default

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<headers {self._items!r}>"

    def keys(self) -> list[str]:
        return [key for key, _ in self._items]

    def values(self) -> list[str]:
        return [value for _, value in self._items]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


class _Head:
    """The head of an answer: ``version`` ("HTTP/1.1"), ``status``, ``reason``, ``headers``
    (``_Headers``), and how its body is framed: ``length`` (None when
    chunked or delimited by the connection closing), ``by_chunks``, and ``closes`` (the
    server closes the connection after it)."""

    __slots__ = ("by_chunks", "closes", "headers", "length", "reason", "status", "version")

    def __init__(self, version: str, status: int, reason: str, headers: _Headers) -> None:
        self.version, self.status, self.reason, self.headers = version, status, reason, headers
        self.length: int | None = None
        self.by_chunks = self.closes = False


#: ``_AnswerReader.next_event``: the answer is over.
_END = "end"


class _AnswerReader:
    """One HTTP/1.x answer read from bytes, with no socket (h11's way): the drivers ``feed``
    what they receive (``feed_eof`` once the connection closed) and take ``next_event()``
    until it returns None ("need more"): the ``_Head``, then body bytes, then ``_END``.

    Every framing rule is here once: interim "100 Continue" answers skipped (at most
    ``_MAX_INTERIM``), lines and header counts bounded, a body framed by Content-Length
    (conflicting lengths refused) or chunks, none for HEAD, 204 and 304, else delimited by
    the connection closing. A head, a sized body or chunks cut short by the connection
    closing raise a retryable ``TransportError``; closing before any byte raises
    ``ConnectionResetError`` (a kept connection the server had let go). ``reusable`` is
    True only once the answer was read to its framed end, nothing came after it, and the
    server keeps the connection (the request having gone out whole is the driver's to know).
    """

    def __init__(self, method: str) -> None:
        self._method = method
        self._data = bytearray()
        self._pos = 0  # what of ``_data`` is consumed
        # status, headers, length, chunk-size, chunk-data, chunk-end, trailers, close, done, over
        self._state = "status"
        self._lines: list[tuple[str, str]] = []
        self._status: tuple[str, int, str] = ("", 0, "")
        self._interim = 0
        self._left = 0  # body bytes due: of the length, or of the chunk
        self._eof = False
        self.head: _Head | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes that came, in order."""
        if self._pos > 65536 and self._pos * 2 > len(self._data):
            del self._data[: self._pos]
            self._pos = 0
        self._data += data

    def feed_eof(self) -> None:
        """The connection closed: what was fed is all there is."""
        self._eof = True

    @property
    def began(self) -> bool:
        """Some of the answer came."""
        return bool(self._data) or self._state != "status"

    @property
    def ended(self) -> bool:
        """The answer was read to its framed end."""
        return self._state in ("done", "over")

    @property
    def overrun(self) -> bool:
        """Bytes came after the answer's framed end: the server does not frame as it says."""
        return self.ended and self._pos < len(self._data)

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet taken."""
        return len(self._data) - self._pos

    @property
    def reusable(self) -> bool:
        """The connection may carry another request (see the class)."""
        head = self.head
        return self.ended and not self.overrun and not self._eof and head is not None and not head.closes

    def body_due(self) -> int:
        """Body bytes a driver may read straight into its own buffer, past this reader
        (then ``took``): those of a Content-Length body once nothing is buffered; else 0."""
        return self._left if self._state == "length" and self._pos == len(self._data) else 0

    def took(self, count: int) -> None:
        """``count`` bytes of the body (at most ``body_due()``) went straight to the driver."""
        self._left -= count
        if self._left == 0:
            self._finish()

    def next_event(self, most: int = 1 << 20) -> _Head | bytes | str | None:
        """The next thing the bytes fed say: the ``_Head``, body bytes (at most ``most``),
        ``_END``; or None when more bytes are needed."""
        while True:
            state = self._state
            if state == "done":
                self._state = "over"
                return _END
            if state == "over":
                return None
            if state in ("length", "chunk-data", "close"):
                return self._body(most)
            line = self._line()
            if line is None:
                return None
            if state == "status":
                self._status_line(line)
            elif state in ("headers", "trailers"):
                head = self._header_line(line)
                if head is not None:
                    return head
            elif state == "chunk-size":
                self._chunk_size(line)
            elif line:  # chunk-end: the line break after a chunk's data
                raise TransportError("the answer's chunks are malformed: no line break after a chunk")
            else:
                self._state = "chunk-size"

    def _line(self) -> str | None:
        """The next line, without its line break; None until it is whole."""
        end = self._data.find(b"\n", self._pos)
        if end < 0:
            if len(self._data) - self._pos > _MAX_LINE:
                raise TransportError("the answer holds a line over 64 KiB")
            if self._eof:
                self._cut()
            return None
        if end - self._pos > _MAX_LINE:
            raise TransportError("the answer holds a line over 64 KiB")
        line = self._data[self._pos : end].decode("iso-8859-1")
        self._pos = end + 1
        return line[:-1] if line.endswith("\r") else line

    def _cut(self) -> None:
        """The connection closed before the answer's framed end."""
        state = self._state
        if state == "status" and not self._interim and self._pos == len(self._data) == 0:
            raise ConnectionResetError("the server closed the connection without answering")
        if state in ("status", "headers"):
            raise TransportError("the answer was cut short: the connection closed inside its status line or headers")
        if state == "length":
            assert self.head is not None and self.head.length is not None
            raise _cut_short(self.head.length - self._left, self.head.length)
        raise TransportError("the answer was cut short inside its chunks")

    def _status_line(self, line: str) -> None:
        version, _, rest = line.strip().partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not (len(code) == 3 and code.isascii() and code.isdigit()):
            raise TransportError(f"the answer does not begin with an HTTP/1 status line: {_outside(line, (), 80)}")
        self._status, self._lines, self._state = (version, int(code), reason.strip()), [], "headers"

    def _header_line(self, line: str) -> _Head | None:
        """A header line (a line starting with a space or tab continues the one before, one
        without a colon is skipped); at the blank line, the head is complete."""
        if line:
            if len(self._lines) >= _MAX_HEADERS:
                raise TransportError(f"the answer has more than {_MAX_HEADERS} header lines")
            if line[0] in " \t" and self._lines:
                name, value = self._lines[-1]
                self._lines[-1] = (name, f"{value} {line.strip()}")
            elif ":" in line:
                name, _, value = line.partition(":")
                self._lines.append((name.strip(), value.strip()))
            return None
        if self._state == "trailers":
            self._finish()
            return None
        version, status, reason = self._status
        if 100 <= status < 200:  # an interim answer: the real one follows
            self._interim += 1
            if self._interim > _MAX_INTERIM:
                raise TransportError(f"over {_MAX_INTERIM} interim answers ('100 Continue') in a row")
            self._state = "status"
            return None
        headers = _Headers(self._lines)
        head = self.head = _Head(version, status, reason, headers)
        head.closes = _closes(version != "HTTP/1.0", headers)
        coding = headers.get("Transfer-Encoding", "").lower()
        lengths = {value.strip() for value in ",".join(headers.get_all("Content-Length") or ()).split(",")} - {""}
        if self._method == "HEAD" or status in (204, 304) or (self._method == "CONNECT" and status == 200):
            head.length = 0
            self._finish()
        elif coding:
            head.by_chunks = coding.rsplit(",", 1)[-1].strip() == "chunked"
            self._state = "chunk-size" if head.by_chunks else "close"
        elif lengths:
            (length,) = lengths if len(lengths) == 1 else (None,)
            if length is None or not (length.isascii() and length.isdigit()):
                raise TransportError(f"the answer's Content-Length is not one number: {sorted(lengths)}")
            head.length = self._left = int(length)
            self._state = "length"
            if not self._left:
                self._finish()
        else:
            self._state = "close"
        if self._state == "close":
            head.closes = True
        return head

    def _chunk_size(self, line: str) -> None:
        size = line.partition(";")[0].strip()
        if not size or len(size) > 16 or not all(c in "0123456789abcdefABCDEF" for c in size):
            raise TransportError("the answer's chunks are malformed: a chunk size is not a hex number")
        self._left = int(size, 16)
        self._state = "chunk-data" if self._left else "trailers"

    def _body(self, most: int) -> bytes | str | None:
        available = len(self._data) - self._pos
        if self._state == "close":
            if not available:
                if self._eof:
                    self._state = "over"
                    return _END
                return None
            take = min(available, most)
        else:
            take = min(available, most, self._left)
            if not take:
                if self._eof:
                    self._cut()
                return None
            self._left -= take
        piece = bytes(self._data[self._pos : self._pos + take])
        self._pos += take
        if self._state != "close" and not self._left:
            if self._state == "length":
                self._finish()
            else:
                self._state = "chunk-end"
        return piece

    def _finish(self) -> None:
        """The answer is read to its framed end."""
        self._state = "done"


class _Paced:
    """A connected socket whose every wait is bounded by the read timeout and, until
    ``deadline`` (a ``time.monotonic()``) is lifted, by the time left to it: a server that
    drips a byte a second, or sends endless "100 Continue", cannot hold an attempt past its
    deadline. (A socket timeout alone bounds each wait, not their sum.)"""

    __slots__ = ("deadline", "read_timeout", "sock")

    def __init__(self, sock: Any, read_timeout: float, deadline: float | None) -> None:
        self.sock, self.read_timeout, self.deadline = sock, read_timeout, deadline

    def wait(self) -> None:
        """Set the socket's timeout for the next wait; past the deadline, time out now.
        (Set only when it changes: each change is a system call, and a thread's
        system calls are where others take the GIL from it.)"""
        timeout = self.read_timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                import socket

                raise socket.timeout("the attempt ran past its deadline")
        if timeout != self.sock.gettimeout():
            self.sock.settimeout(timeout)

    def sendall(self, data: bytes | memoryview) -> None:
        self.wait()
        self.sock.sendall(data)

    def recv(self, most: int) -> bytes:
        self.wait()
        return self.sock.recv(most)  # type: ignore[no-any-return]

    def recv_into(self, buffer: memoryview) -> int:
        self.wait()
        return int(self.sock.recv_into(buffer))


def _request_head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """A request's line and header lines, with the blank line that ends them."""
    if not (target.isascii() and target.isprintable()) or " " in target:
        raise _no_retry(f"the request target {target!r} holds a space or a control character")
    return b"%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method.encode(), target.encode(), _header_block(host, headers))


def _write_request(paced: _Paced, head: bytes, chunks: Iterator[bytes | memoryview]) -> None:
    """Send a request: a body's first chunk of up to ``_COALESCE`` bytes in the same send as
    the head (one packet, one TLS record for a small PUT), the rest in ``_SLICE`` sends,
    each bounded by the read timeout: the timeout bounds silence, not how long a body takes."""
    first = next(chunks, b"")
    if len(first) <= _COALESCE:
        paced.sendall(head + first)
    else:
        paced.sendall(head)
        chunks = _iter_chain((first,), chunks)
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), _SLICE):
            paced.sendall(view[start : start + _SLICE])


class _Answer:
    """An answer read from a connection by an ``_AnswerReader``: its ``head`` at once, its
    body as the caller asks, each wait paced. A sized body is read straight into the
    caller's buffer; what came with the head, and chunks, pass through the reader."""

    __slots__ = ("failed", "head", "paced", "reader")

    def __init__(self, paced: _Paced, method: str) -> None:
        self.paced, self.reader = paced, _AnswerReader(method)
        self.failed: OSError | None = None
        head = self._next(0)
        assert isinstance(head, _Head)  # the reader's first event
        self.head = head

    def _next(self, most: int) -> _Head | bytes | str:
        while (event := self.reader.next_event(most)) is None:
            data = self.paced.recv(65536)
            if data:
                self.reader.feed(data)
            else:
                self.reader.feed_eof()
        return event

    def read(self, most: int) -> bytes:
        """Up to ``most`` bytes of the body; b"" at its end."""
        event = self._next(most)
        return event if isinstance(event, bytes) else b""

    def readinto(self, buffer: memoryview) -> int:
        """Fill the start of ``buffer`` with body bytes; 0 at the body's end. A sized body
        fills it whole (or to the body's end): a TLS read gives one record, 16 KiB, and
        the caller's step per read would cost more than the read."""
        if self.failed is not None:
            raise self.failed
        due = self.reader.body_due()
        if due:
            wanted, count = min(len(buffer), due), 0
            while count < wanted:
                try:
                    got = self.paced.recv_into(buffer[count:wanted])
                except OSError as exc:
                    if not count:
                        raise
                    self.failed = exc  # raised by the next read: the bytes before it are the caller's
                    break
                if not got:
                    if count:
                        break
                    self.reader.feed_eof()
                    self.read(len(buffer))  # the reader says how the body was cut short: it raises
                self.reader.took(got)
                count += got
            return count
        piece = self.read(len(buffer))
        buffer[: len(piece)] = piece
        return len(piece)


def _closes(http11: bool, message: _Headers) -> bool:
    """True when the server closes the connection after this answer (as far as its
    headers say): HTTP/1.1 on ``Connection: close``; HTTP/1.0 unless told to keep it."""
    connection = message.get("connection", "").lower()
    if http11:
        return "close" in connection
    return not (message.get("keep-alive") or "keep-alive" in connection)


#: What holds sockets, threads or locks that a forked child must not take over as they are
#: (transports, connections, pools, renewing credential sources): each has ``_after_fork``.
_forkable: _WeakSet[Any] = _WeakSet()


def _after_fork_in_child() -> None:
    """In a child of ``os.fork()`` (multiprocessing's fork, gunicorn --preload, Celery
    prefork): only the forking thread came along, so the parent's threads, the locks
    they held and its sockets are left behind, never used (two processes reading one
    keep-alive socket take each other's answers)."""
    for owner in list(_forkable):
        owner._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Idle(threading.local):
    """This thread's idle keep-alive connections, by (scheme, host, port); and how long
    its latest answer took to begin once its request was sent (seconds)."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, str, int], _Connection] = {}
        self.waited = 0.0


class _Transport:
    """Sends requests over one keep-alive connection per thread per host.

    A connection carries one request at a time, so each thread keeps its
    own in a ``threading.local``; a connection the server closed while idle
    is noticed (the socket turned readable) and replaced before use.
    """

    def __init__(
        self,
        timeout: tuple[float, float, float],
        verify: bool | str,
        proxy: str | bool | None,
        environ: Mapping[str, str],
    ) -> None:
        self._connect_timeout, self._read_timeout, self._deadline = timeout
        self._verify = verify
        self._proxy_setting = proxy
        self._environ = environ
        self._proxies: dict[tuple[str, str, int], _Proxy | None] = {}
        self._idle = _Idle()
        self._lock = threading.Lock()
        self._ssl_context: SSLContext | None = None
        self._partial_store: SSLContext | None = None  # the context with the system's CA directory only
        self._open: _WeakSet[_Connection] = _WeakSet()
        _forkable.add(self)

    def _after_fork(self) -> None:
        """Drop the parent's connections in a forked child, sending nothing on them:
        closing a descriptor the parent shares sends no FIN (the parent still holds
        it) and no TLS close_notify, so the parent's connections keep working."""
        inherited = list(self._open)
        self._open, self._idle, self._lock = _WeakSet(), _Idle(), threading.Lock()
        for conn in inherited:
            conn.close()

    def _context(self) -> SSLContext:
        """One SSL context per Connection, made on first HTTPS use."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context, partial = _ssl_context(self._verify, lazy=True)
                self._partial_store = self._ssl_context if partial else None
            return self._ssl_context

    def _widen_store(self, exc: OSError, used: SSLContext) -> bool:
        """True when a certificate check failed on the system's CA directory alone
        (``used``): the context now holds the whole system store (its CA file too),
        so that the check runs again with exactly the CAs a default context trusts."""
        import ssl  # loaded already: ``used`` is an SSL context

        if used is not self._partial_store or not isinstance(exc, ssl.SSLCertVerificationError):
            return False
        with self._lock:
            if self._ssl_context is used:  # not yet widened by another thread
                _log("%s with the CA directory only: loading the whole CA store", exc)
                self._ssl_context = _ssl_context(self._verify)[0]
        return True

    def proxy(self, origin: tuple[str, str, int]) -> _Proxy | None:
        """The proxy requests to ``origin`` go through (worked out once per origin)."""
        if origin not in self._proxies:
            self._proxies[origin] = _proxy_for(*origin, self._proxy_setting, self._environ)
        return self._proxies[origin]

    def _checkout(self, origin: tuple[str, str, int]) -> tuple[_Connection, bool]:
        """Take this thread's live connection to ``origin`` (or open one); True if reused.

        The connection leaves the thread's pool while in use, so a streamed
        answer still being read never shares it with the next request.
        """
        conn = self._idle.connections.pop(origin, None)
        if conn is not None:
            with self._lock:  # from here ``close`` leaves it to its request
                conn.lent = conn.sock is not None
            if conn.lent and not _dropped(conn.sock):
                return conn, True
            self._close(conn)
        return self.open(origin), False

    def open(self, origin: tuple[str, str, int]) -> _Connection:
        """A new connection to ``origin``, connected: through the proxy if one applies, TLS done."""
        scheme, host, port = origin
        proxy = self.proxy(origin)
        context = self._context() if scheme == "https" else None
        conn = _Connection(host, port, proxy, self._connect_timeout, context)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            if context is not None and self._widen_store(exc, context):
                return self.open(origin)
            raise _connect_error(exc, host, port, proxy, context is not None) from exc
        assert conn.sock is not None
        conn.sock.settimeout(self._read_timeout)
        with self._lock:
            self._open.add(conn)
        return conn

    def _checkin(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        """Give a connection whose answer was read in full back to this thread's pool
        (or close it, if the transport was closed while it was in use)."""
        with self._lock:
            conn.lent = False
        if conn.retired or conn.sock is None or self._idle.connections.setdefault(origin, conn) is not conn:
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def route(self, request: _Send) -> tuple[tuple[str, str, int], _Proxy | None, bytes]:
        """Where a request goes, ``(scheme, host, port)``; the proxy on the way, if any; and
        its head as the bytes that go out (through a plain-HTTP proxy: the whole URL, and
        the proxy's credentials)."""
        endpoint, host = request.endpoint, request.host
        origin = (endpoint.scheme, endpoint.connect_host(host), endpoint.port)
        proxy = self.proxy(origin)
        target, headers = _through_proxy(proxy, endpoint.scheme, host, request.target, request.headers)
        return origin, proxy, _request_head(request.method, target, host, headers)

    def send(self, request: _Send) -> tuple[int, str, _Headers, bytes | _Stream]:
        """Perform a ``_Send``: (status, reason, headers, body).

        The body is read in full, except a 2xx answer with ``stream``, which
        comes as a ``_Stream``. A reused connection that turns out closed is
        replaced once, at once.
        """
        method, body = request.method, request.body
        origin, proxy, head = self.route(request)
        for fresh_retry in (False, True):
            conn, reused = self._checkout(origin)
            paced = _Paced(conn.sock, self._read_timeout, time.monotonic() + self._deadline)
            try:
                sent = time.monotonic()
                _write_request(paced, head, body.chunks() if body is not None else iter(()))
                answer = _Answer(paced, method)
                self._idle.waited = time.monotonic() - sent
                status, reason = answer.head.status, answer.head.reason
                _refuse(answer.head, method, proxy)
                if request.stream and 200 <= status < 300:
                    reply = _Stream(answer, _partial(self._checkin, origin, conn), _partial(self._close, conn))
                    return status, reason, answer.head.headers, reply
                capped = _read_whole(answer, method)
                content = capped.content()
            except (ConnectionResetError, BrokenPipeError) as exc:
                self._close(conn)
                if reused and not fresh_retry:
                    continue
                raise _transport_error(exc, "the server closed the connection") from exc
            except S3Error:
                self._close(conn)
                raise
            except OSError as exc:
                self._close(conn)
                raise _transport_error(exc, f"{method} failed") from exc
            if capped.whole and answer.reader.reusable:
                self._checkin(origin, conn)
            else:  # the rest of an over-long error answer is never read: the connection goes
                self._close(conn)
            return status, reason, answer.head.headers, content
        raise AssertionError("unreachable")

    def waited(self) -> float:
        """How long this thread's latest answer took to begin once its request was out:
        the round trip and the server's own time, without this process's setup
        (imports, CA store, connect, TLS handshake)."""
        return self._idle.waited

    def close(self) -> None:
        """Close every connection this transport opened, in any thread: idle ones now, and
        those in use once their request is done with them. A socket is never closed under
        another thread's request: it would wait out its read timeout, or (TLS reads by
        descriptor number) read from whatever connection is given that number next."""
        with self._lock:  # a checkout takes a connection under it: closed first, or lent first
            conns, self._open = list(self._open), _WeakSet()
            for conn in conns:
                conn.retired = conn.lent
                if not conn.lent:
                    conn.close()
        self._idle.connections.clear()


def _header_block(host: str, headers: Mapping[str, str]) -> bytes:
    """A request's header lines, Host first, without the blank line that ends them.

    One join for the whole block. Names and values were checked when the request was
    built; a line break (from credentials, say) still cannot split the head: each adds
    to the count.
    """
    head = "\r\n".join([f"Host: {host}", *[f"{name}: {value}" for name, value in headers.items()]])
    if head.count("\n") != len(headers) or head.count("\r") != len(headers):
        raise _no_retry("a request header holds a line break; nothing was sent")
    return head.encode("latin-1")


class _Stream:
    """The unread body of a streamed answer.

    Reads check the length against Content-Length, so a body cut short is an
    error, never a silently short result. At the end the connection goes back
    to the pool; ``close`` before the end closes it instead. Each read is bounded
    by the read timeout; the attempt's deadline is lifted (an object body goes at
    the pace its reader sets) until ``within_deadline`` puts it back.
    """

    def __init__(self, answer: _Answer, release: Callable[[], None], discard: Callable[[], None]) -> None:
        self._answer, self._deadline, answer.paced.deadline = answer, answer.paced.deadline, None
        self._release: Callable[[], None] | None = release
        self._discard = discard
        self.length: int | None = answer.head.length
        self.read_so_far = 0

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` from the body; 0 at the end."""
        if self._release is None:
            return 0
        try:
            n = self._answer.readinto(buffer) if len(buffer) else 0
        except OSError as exc:
            self.close()
            if isinstance(exc, S3Error):
                raise
            raise _transport_error(exc, "reading the answer failed") from exc
        self.read_so_far += n
        if n == 0 or self._answer.reader.ended:
            self._finish()
        return n

    def within_deadline(self) -> None:
        """Bound the rest of the body by the attempt's deadline too: for a body of bounded
        size that tinys3 reads whole itself (``content``, a range of a download)."""
        self._answer.paced.deadline = self._deadline

    def _finish(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            if self._answer.reader.reusable:
                release()
            else:
                self._discard()

    def close(self) -> None:
        """Stop reading: the connection cannot be reused, so it is closed."""
        if self._release is not None:
            self._release = None
            self._discard()


#: No S3 answer tinys3 reads whole (listings, results, errors aside) comes near this.
_ANSWER_LIMIT = 64 << 20


class _Capped:
    """An answer's body read whole by a driver, ``add``-ed as it comes until ``add`` says it
    is full. An error answer is cut at ``_ERROR_LIMIT`` (``whole`` False: the rest is never
    read, and the connection goes); any other over ``_ANSWER_LIMIT`` is refused, so a
    hostile server cannot fill memory."""

    def __init__(self, status: int, method: str) -> None:
        self._limit, self._method = (_ANSWER_LIMIT if 200 <= status < 300 else _ERROR_LIMIT), method
        self._chunks: list[bytes] = []
        self._size = 0
        self.whole = True

    def add(self, chunk: bytes) -> bool:
        """Take the next bytes of the body; True once past the limit (read no more)."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size <= self._limit:
            return False
        if self._limit == _ANSWER_LIMIT:
            raise _no_retry(
                f"the answer to {self._method} is over {self._limit >> 20} MiB, more than any S3 answer of its kind"
            )
        self.whole = False
        return True

    def content(self) -> bytes:
        return b"".join(self._chunks)[: self._limit]


def _read_whole(answer: _Answer, method: str) -> _Capped:
    """A blocking answer's body, read as far as ``_Capped`` takes it."""
    capped = _Capped(answer.head.status, method)
    while (chunk := answer.read(1 << 20)) and not capped.add(chunk):
        pass
    return capped


def _refuse(head: _Head, method: str, proxy: _Proxy | None) -> None:
    """Raise for an answer no request can use: a proxy's 407, a 2xx GET body with no framing."""
    if head.status == 407 and proxy is not None:
        raise _no_retry(f"proxy {proxy} refused the request: 407 {head.reason}")
    if head.length is None and not head.by_chunks and method == "GET" and 200 <= head.status < 300:
        raise _no_retry("the answer to GET has neither Content-Length nor chunked encoding: its end is unknowable")


def _no_retry(message: str) -> TransportError:
    """A TransportError that trying again cannot mend."""
    error = TransportError(message)
    error.retry = False
    return error


def _cut_short(got: int, expected: int | None) -> TransportError:
    return TransportError(f"the answer was cut short: got {got} of {expected} bytes")


def _metadata_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    body: bytes | None = None,
    explain: Callable[[bytes], str] | None = None,
    lookup: _Lookup | None = None,
    sign: Callable[..., dict[str, str]] | None = None,
) -> bytes:
    """One small request to a credentials endpoint; any failure is a CredentialsError.

    Its message never holds the answer's body, which may carry keys; only
    what ``explain`` picks out of an error answer (such as STS's error code).
    Remote services (STS, IAM Identity Center: given a ``lookup``) are reached
    through the connection's proxy and verified with its CA bundle; the
    link-local metadata endpoints always directly. ``sign(now=...)`` gives the
    headers signed at the lookup's clock (STS): a refusal dated over a minute
    off it teaches the clock, and the request is signed and sent once more.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    endpoint = _parse_endpoint(f"{parts.scheme}://{parts.netloc}", True, "path")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy, verify, environ = (None, True, {}) if lookup is None else (lookup.proxy, lookup.verify, lookup.environ)
    transport = _Transport((timeout, timeout, timeout), verify, proxy, environ)
    clock = None if sign is None or lookup is None else lookup.clock
    payload = None if body is None else _Body(body)
    try:
        for attempt in (1, 2):
            signed_with = 0.0 if clock is None else clock.offset
            given = headers if clock is None or sign is None else sign(now=clock.now())
            signed = {name: value for name, value in given.items() if name.lower() != "host"}
            if body is not None:
                signed["Content-Length"] = str(len(body))
            request = _Send(endpoint, endpoint.authority, path, method, signed, payload, False)
            status, _, answered, answer = transport.send(request)
            skewed = attempt == 1 and clock is not None and status in (400, 403)
            if not (skewed and clock is not None and clock.learn(answered.get("Date"), signed_with)):
                break
    except OSError as exc:
        cause = exc.__cause__ or exc
        raise CredentialsError(f"{url.split('?')[0]} did not answer: {type(cause).__name__}") from None
    finally:
        transport.close()
    assert isinstance(answer, bytes)
    if status != 200:
        detail = f": {explain(answer)}" if explain is not None else ""
        raise CredentialsError(f"{url.split('?')[0]} answered {status}{detail}")
    return answer


def _ssl_context(verify: bool | str, lazy: bool = False) -> tuple[SSLContext, bool]:
    """A TLS client context: the system's CAs, a CA bundle's (``verify`` a path), or
    none; and whether it holds the system's CA directory only.

    With ``lazy``, the system store is its hashed CA directory alone when it has
    one (Debian, Ubuntu, Alpine): OpenSSL then reads the one issuer a server
    needs instead of parsing every certificate of the CA file up front (the bench's two
    cold HTTPS rows show the difference). A check that fails on the directory
    alone is tried again on the whole store (``_Transport._widen_store``).
    """
    import ssl

    directory = _hashed_ca_directory() if lazy and verify is True else None
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None, capath=directory)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context, directory is not None


def _hashed_ca_directory() -> str | None:
    """The system's CA directory (``SSL_CERT_DIR`` or OpenSSL's) when it holds
    certificates by subject hash (``5ad8a5d6.0``), as OpenSSL looks issuers up."""
    import ssl

    directory = ssl.get_default_verify_paths().capath
    if not directory:
        return None
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                name, _, number = entry.name.partition(".")
                if len(name) == 8 and number.isdigit() and all(c in "0123456789abcdef" for c in name):
                    return directory
    except OSError:
        pass
    return None


class _Connection:
    """One connection: ``connect()`` opens ``sock`` — to ``host`` directly, through a
    ``CONNECT`` tunnel of ``proxy`` (HTTPS), or to ``proxy`` itself (plain HTTP, whose
    requests then name their whole URL) — with TLS when there is a ``context``."""

    def __init__(self, host: str, port: int, proxy: _Proxy | None, timeout: float, context: SSLContext | None) -> None:
        self.host, self.port, self.proxy, self.timeout, self.context = host, port, proxy, timeout, context
        self.sock: Any = None
        self.lent = True  # in use by a request (a transport's, under its lock); False while idle
        self.retired = False  # the transport was closed while it was lent: closed when given back

    def connect(self, wrap: bool = True) -> None:
        """Connect (blocking); TLS too, unless ``wrap`` is False (an event loop's handshake follows)."""
        import socket

        proxy = self.proxy
        address = (proxy.host, proxy.port) if proxy is not None else (self.host, self.port)
        sock = socket.create_connection(address, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                if proxy is not None:
                    self._tunnel(sock, proxy)
                if wrap:
                    sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def _tunnel(self, sock: Any, proxy: _Proxy) -> None:
        """Ask the proxy for a tunnel to the host; its answer is read like any other."""
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
        paced = _Paced(sock, self.timeout, time.monotonic() + self.timeout)
        _write_request(paced, _request_head("CONNECT", where, where, headers), iter(()))
        answer = _Answer(paced, "CONNECT")
        if answer.head.status != 200 or not answer.reader.ended or answer.reader.overrun:
            raise OSError(f"Tunnel connection failed: {answer.head.status} {answer.head.reason}")

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()


def _through_proxy(
    proxy: _Proxy | None, scheme: str, authority: str, target: str, headers: Mapping[str, str]
) -> tuple[str, Mapping[str, str]]:
    """A plain-HTTP request's target and headers as a proxy takes them: the absolute
    URL and its ``Proxy-Authorization``. Unchanged without a proxy, and for HTTPS,
    which goes through a tunnel."""
    if proxy is None or scheme != "http":
        return target, headers
    if proxy.authorization:
        headers = {**headers, "Proxy-Authorization": proxy.authorization}
    return f"http://{authority}{target}", headers


def _connect_error(exc: OSError, host: str, port: int, proxy: _Proxy | None, tls: bool) -> S3Error:
    """A failed connect, naming the proxy (never its password) when there is one; a TLS
    handshake that met plain HTTP is a wrong endpoint (``InvalidInput``), not worth a retry."""
    if tls and getattr(exc, "reason", None) in _PLAIN_HTTP_REASONS:
        return InvalidInput(
            f"{host}:{port} answered in plain HTTP, not TLS: write the endpoint as http://{host}:{port}"
        )
    if proxy is None:
        return _transport_error(exc, f"cannot connect to {host}:{port}")
    text = str(exc)
    if text.startswith("Tunnel connection failed"):
        status = text.partition(": ")[2]
        error = TransportError(f"proxy {proxy} refused the tunnel to {host}:{port}: {status}")
        error.retry = status[:1] == "5"  # the proxy's own trouble may pass; a refusal will not
        return error
    return _transport_error(exc, f"cannot connect to {host}:{port} through proxy {proxy}")


#: What OpenSSL says when the answer to its hello is not TLS (an HTTP answer, say), by version.
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"})


class _Proxy:
    """A forward proxy from its URL: host, port, and the Basic credentials of its
    ``user:password@`` (sent as ``Proxy-Authorization``, never shown)."""

    __slots__ = ("authorization", "host", "port")

    def __init__(self, url: str) -> None:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if parts.scheme != "http" or not host:
            raise InvalidInput(
                "a proxy must be an http:// URL such as http://proxy.example:3128 (HTTPS goes through it "
                f"in a CONNECT tunnel); got one with scheme {parts.scheme!r} and host {host!r}"
            )
        self.host, self.port = host, port or 80
        self.authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.authorization = "Basic " + _b64(pair)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _proxy_for(
    scheme: str, host: str, port: int, setting: str | bool | None, environ: Mapping[str, str]
) -> _Proxy | None:
    """The proxy for one origin. ``setting``: a proxy URL for every request, None or
    False for none, True to read ``https_proxy``/``http_proxy`` (then ``all_proxy``;
    lower case first, then upper) and ``no_proxy``, as curl and requests do."""
    if setting is None or setting is False:
        return None
    if isinstance(setting, str):
        return _Proxy(setting)
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    url = next((environ[name] for name in names if environ.get(name)), None)
    if not url or _bypassed(host, port, environ.get("no_proxy") or environ.get("NO_PROXY") or ""):
        return None
    return _Proxy(url)


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """True if ``no_proxy`` sends ``host`` (at ``port``) directly: ``*``; a name,
    which covers its subdomains too (``example.com``, ``.example.com``,
    ``*.example.com``); an IP address or a CIDR block; each with or without ``:port``."""
    host = host.lower().strip("[]")
    for rule in no_proxy.replace(" ", "").lower().split(","):
        if rule.startswith("["):
            name, _, rest = rule[1:].partition("]")
            rule_port = rest.lstrip(":")
        elif rule.count(":") == 1:
            name, _, rule_port = rule.partition(":")
        else:
            name, rule_port = rule, ""
        if not name or (rule_port and rule_port != str(port)):
            continue
        if name == "*":
            return True
        if "/" in name:
            import ipaddress

            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _dropped(sock: Any) -> bool:
    """True if an idle keep-alive socket is readable: the server closed it.

    ``poll`` works at any file descriptor number; ``select`` (kept for
    Windows, where there is no ``poll`` and no such limit) fails past 1,023.
    """
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _transport_error(exc: BaseException, what: str) -> TransportError:
    """Wrap a socket-level failure in the right tinys3 error, with its cause."""
    import socket

    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Timeout(f"{what}: timed out")
    error = TransportError(f"{what}: {type(exc).__name__}: {exc}")
    error.retry = not isinstance(exc, ValueError)  # ssl.SSLCertVerificationError is one
    return error


def _debugging() -> Any:
    """The ``tinys3`` logger when it logs debug lines, else None (always, for a program
    that never imported ``logging``: tinys3 does not import it; and while another
    thread is still importing it, as ``concurrent.futures`` does on first use: until
    ``captureWarnings``, among the last names the module defines, is there)."""
    logging = sys.modules.get("logging")
    if logging is None or not hasattr(logging, "captureWarnings"):
        return None
    logger = logging.getLogger("tinys3")
    return logger if logger.isEnabledFor(logging.DEBUG) else None


def _log(message: str, *args: object) -> None:
    """A debug line on the ``tinys3`` logger (only if the program uses logging at all)."""
    logger = _debugging()
    if logger is not None:
        logger.debug(message, *args)


def _log_request(
    request: _Request, outcome: int | Exception, attempt: int, started: float,
    headers: _Headers | None = None, content: object = None,
) -> None:  # fmt: skip
    """The debug line of one attempt: method, bucket/key and query, status (or error),
    attempt, time and bytes each way. No header is logged, nor any ``X-Amz-`` query
    parameter: nothing secret is."""
    logger = _debugging()
    if logger is None:
        return
    got = len(content) if isinstance(content, bytes) else headers.get("Content-Length", "?") if headers else "?"
    query = "&".join(f"{name}={value}" if value else name for name, value in request.query
                     if not name.lower().startswith("x-amz-"))  # fmt: skip
    where = _escape_controls(f"{request.bucket or ''}/{request.key or ''}{'?' if query else ''}{query}")
    sent = request.body.length if request.body is not None else 0
    milliseconds = (time.monotonic() - started) * 1000
    logger.debug("%s %s: %s (attempt %d, %.0f ms, %d bytes sent, %s received)", request.method, where,
                 outcome if isinstance(outcome, int) else _outside(str(outcome)), attempt, milliseconds, sent,
                 got)  # fmt: skip


def _backoff(attempt: int, at_least: float = 0.0, cap: float = 20.0, base: float = 0.25) -> float:
    """Seconds to wait before another try: random up to base·2^attempt (full jitter), but
    at least ``at_least`` (a server's Retry-After); never more than ``cap``."""
    import random

    return min(cap, max(at_least, random.uniform(0, base * 2**attempt)))


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After: N`` header (its date form is ignored)."""
    return float(value) if value and value.strip().isdigit() else 0.0


###############################################################################
# Response ####################################################################
###############################################################################


class Response:
    """An S3 answer: ``status_code``, ``reason``, ``headers``, ``content``, ``url``.

    ``headers`` are case-insensitive; ``ok`` is true for 2xx. The body of a
    ``get`` streams: ``content`` reads it all, ``iter_content`` reads it in
    chunks without holding it. Errors are raised before you see a Response,
    so ``raise_for_status()`` (which returns the response) matters only for
    responses you build or keep.
    """

    __slots__ = (
        "_check",
        "_conn",
        "_content",
        "_progress",
        "_reopen",
        "_resumes",
        "_stream",
        "_within_deadline",
        "attempts",
        "bucket",
        "headers",
        "key",
        "method",
        "reason",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: _Headers,
        content: bytes | _Stream,
        url: str,
        method: str = "GET",
        bucket: str | None = None,
        key: str | None = None,
        progress: Progress | None = None,
        attempts: int = 1,
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.url = url
        self.method = method
        self.bucket = bucket
        self.key = key
        #: How many times the request was sent to get this answer (1: no retry).
        self.attempts = attempts
        self._progress = progress
        #: The connection whose driver reads a streamed body, and resumes it where it broke.
        self._conn: Connection | None = None
        self._reopen: Callable[[Response, int], Steps[Any]] | None = None  # (this response, offset)
        self._resumes = 0
        self._check: _Checker | None = None
        #: Whether the attempt's deadline bounds the body too (one tinys3 reads whole itself).
        self._within_deadline = False
        self._stream = None if isinstance(content, bytes) else content
        self._content = content if isinstance(content, bytes) else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.status_code}]>"

    def __reduce__(self) -> tuple[Any, ...]:
        """A Response pickles (to come back from another process) with its body read now;
        a body already read as a stream (by ``iter_content``, ``download``) stays read."""
        content = self.content if self._stream is not None else self._content
        return (Response, (self.status_code, self.reason, self.headers, content, self.url, self.method,
                           self.bucket, self.key, None, self.attempts))  # fmt: skip

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def content(self) -> bytes:
        """The whole body (read now if it was streaming)."""
        if self._content is None:
            self._within_deadline = True
            self._content = b"".join(self.iter_content(_CHUNK))
        return self._content

    @property
    def version_id(self) -> str | None:
        """The object version this answer is about (``x-amz-version-id``): on a versioned
        bucket, the version a write made or a read returned."""
        version: str | None = self.headers.get("x-amz-version-id")
        return version

    @property
    def metadata(self) -> dict[str, str]:
        """User metadata (``x-amz-meta-*`` headers) without the prefix."""
        return {k.lower()[len(_META) :]: v for k, v in self.headers.items() if k.lower().startswith(_META)}

    def iter_content(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes, read as you go.

        Raises:
            TransportError: the body was cut short or the connection failed.
            S3Error: the body was already read by an earlier iteration.
        """
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        for view in self._views(memoryview(bytearray(chunk_size))):
            yield bytes(view)

    def _views(self, buffer: memoryview) -> Iterator[memoryview]:
        """The streaming body as views of ``buffer``, each valid until the next: ``_body_steps``
        run by the connection's driver."""
        stream = self._take_stream()
        assert self._conn is not None  # a stream comes from a connection
        return self._conn._iterate(self._body_steps(stream, buffer))

    def _body_steps(
        self, stream: Any, buffer: memoryview, sink: Callable[[memoryview], object] | None = None
    ) -> Generator[Any, Any, None]:
        """The core of reading a streamed body: it yields effects, and each view of ``buffer``
        filled: as data (the driver hands it on, then goes on) as the bytes come, or with a
        ``sink``, as the blocking work of ``sink(view)`` (a file's write) once the buffer is
        full or the body over: one write for many receives.

        When the connection breaks mid-body (reset, cut short, read timeout)
        and the response can resume, the rest is asked for from the next
        byte on, so the views continue where they stopped. With
        ``_within_deadline`` each attempt's deadline bounds its part of the body.
        A checksum asked for is checked as the bytes pass, and at the end.
        """
        done, total, resumes = 0, stream.length, self._resumes
        held = 0  # bytes in ``buffer`` not yet given to the sink
        try:
            while True:
                try:
                    n = yield _Receive(stream, buffer[held:], self._within_deadline)
                except TransportError as exc:
                    stream.close()
                    if self._reopen is None or not exc.retry or resumes < 1:
                        raise
                    _log("resuming %s at byte %d after %s", self.url, done, exc)
                    yield _Sleep(_backoff(self._resumes - resumes))
                    resumes -= 1
                    stream = yield from self._reopen(self, done)
                    continue
                if n:
                    done += n
                    if self._check is not None:
                        self._check.update(buffer[held : held + n])
                    if self._progress is not None:
                        self._progress(done, total)
                    if sink is None:
                        yield buffer[:n]
                        continue
                    held += n
                if sink is not None and held and (held == len(buffer) or not n):
                    yield _Work(_partial(sink, buffer[:held]))
                    held = 0
                if not n:
                    if self._check is not None:
                        self._check.verify()
                    return
        finally:
            stream.close()

    def _take_stream(self) -> Any:
        """The unread body, handed over to another reader."""
        stream, self._stream = self._stream, None
        if stream is None:
            raise S3Error("the body was already read (by iter_content or download)")
        return stream

    def close(self) -> None:
        """Drop an unread body (its connection is closed rather than reused)."""
        self._drop_body()

    def _drop_body(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._content = b""

    def raise_for_status(self) -> Response:
        """Raise ``HTTPError`` unless the status is 2xx; return the response otherwise."""
        if not self.ok:
            raise _http_error(self)
        return self


class ObjectInfo(_Mapping):  # type: ignore[type-arg]
    """One entry of ``Connection.list``: ``key``, ``size``, ``last_modified``
    (an aware UTC datetime), ``etag`` (without quotes), ``storage_class``.

    With a delimiter, a rolled-up "folder" has ``is_prefix`` True, its
    prefix as ``key``, size 0 and None elsewhere. It is also a read-only
    mapping of those five names, as the 2013 tinys3's dicts were:
    ``entry["key"]``, ``entry.get("etag")``, ``dict(entry)``, ``entry == {...}``.
    """

    __slots__ = ("etag", "is_prefix", "key", "last_modified", "size", "storage_class")
    _FIELDS: tuple[str, ...] = ("key", "size", "last_modified", "etag", "storage_class")

    def __init__(
        self,
        key: str,
        size: int = 0,
        last_modified: _datetime | None = None,
        etag: str | None = None,
        storage_class: str | None = None,
        is_prefix: bool = False,
    ) -> None:
        self.key = key
        self.size = size
        self.last_modified = last_modified
        self.etag = etag
        self.storage_class = storage_class
        self.is_prefix = is_prefix

    def __getitem__(self, name: str) -> object:
        if name not in self._FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._FIELDS)

    def __len__(self) -> int:
        return len(self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ObjectInfo):
            names = (*self._FIELDS, "is_prefix")
            return type(self) is type(other) and all(getattr(self, n) == getattr(other, n) for n in names)
        if isinstance(other, _Mapping):
            return dict(self) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.is_prefix:
            return f"ObjectInfo(key={self.key!r}, is_prefix=True)"
        return f"ObjectInfo(key={self.key!r}, size={self.size}, last_modified={self.last_modified!r})"


class VersionInfo(ObjectInfo):
    """One entry of ``Connection.list_versions``: an ``ObjectInfo`` with ``version_id``,
    ``is_latest`` and ``is_delete_marker`` (a delete marker has size 0 and no etag)."""

    __slots__ = ("is_delete_marker", "is_latest", "version_id")
    _FIELDS = (*ObjectInfo._FIELDS, "version_id", "is_latest", "is_delete_marker")

    def __init__(
        self,
        key: str,
        size: int = 0,
        last_modified: _datetime | None = None,
        etag: str | None = None,
        storage_class: str | None = None,
        version_id: str | None = None,
        is_latest: bool = False,
        is_delete_marker: bool = False,
    ) -> None:
        super().__init__(key, size, last_modified, etag, storage_class)
        self.version_id = version_id
        self.is_latest = is_latest
        self.is_delete_marker = is_delete_marker

    def __repr__(self) -> str:
        kind = "delete marker" if self.is_delete_marker else f"size={self.size}"
        latest = ", latest" if self.is_latest else ""
        return f"VersionInfo(key={self.key!r}, version_id={self.version_id!r}, {kind}{latest})"


def _parse_versions(root: Any) -> list[VersionInfo]:
    """The versions and delete markers of one ListObjectVersions page, in its order."""
    decode = _decoder(root)
    found = []
    for element in root:
        tag = _local_name(element)
        if tag in ("Version", "DeleteMarker"):
            fields = _children(element)
            found.append(
                VersionInfo(
                    decode(_text(fields, "Key") or ""),
                    int(_text(fields, "Size") or 0),
                    _parse_time(_text(fields, "LastModified")),
                    (_text(fields, "ETag") or "").strip('"') or None,
                    _text(fields, "StorageClass"),
                    _text(fields, "VersionId"),
                    _text(fields, "IsLatest") == "true",
                    tag == "DeleteMarker",
                )
            )
    return found


def _span(response: Response) -> tuple[int, int | None]:
    """(first, last) byte offsets in the object of a GET answer's body; last None if unknown."""
    if response.status_code == 206:
        unit, _, rest = response.headers.get("Content-Range", "").partition(" ")
        first, _, last = rest.partition("/")[0].partition("-")
        if unit == "bytes" and first.isdigit() and last.isdigit():
            return int(first), int(last)
        raise _no_retry(f"a 206 answer without a valid Content-Range: {response.headers.get('Content-Range')!r}")
    length = response.headers.get("Content-Length")
    return 0, (int(length) - 1 if length and length.isdigit() else None)


#: S3's answers hold some thousands of elements a page (each opened and closed: two tags).
_XML_TAGS = 400_000


def _xml(body: bytes) -> Any:
    """The root element of an XML answer; anything else is a TransportError naming it.
    An answer with more than ``_XML_TAGS`` tags is refused unparsed (counting ``<`` costs a
    hundredth of parsing), so neither its elements nor its depth can fill memory; expat
    expands no external entity and refuses entity expansions that blow up."""
    from xml.etree import ElementTree

    if body.count(b"<") > _XML_TAGS:
        raise _no_retry(f"the server's XML answer holds over {_XML_TAGS} tags, more than any S3 answer: refused")
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise _no_retry(f"the server's answer is not the XML expected ({exc}): {body[:100]!r}") from None


def _children(element: Any) -> dict[str, Any]:
    """An XML element's children by local name (namespaces ignored); the last of a name wins."""
    return {_local_name(child): child for child in element}


def _text(children: Mapping[str, Any], name: str) -> str | None:
    child = children.get(name)
    return None if child is None else (child.text or "")


def _parse_time(text: str | None) -> _datetime | None:
    """An S3 timestamp (``2026-01-02T03:04:05.000Z``, fraction optional) as aware UTC.

    The usual shape goes to ``fromisoformat`` (a listing holds one a key, and
    ``strptime`` costs several times as much); any other, or one it refuses, to
    ``strptime``, which decides."""
    if not text:
        return None
    seconds, _, fraction = text.rstrip("Z").partition(".")
    parsed = None
    if len(seconds) == 19 and seconds[4:17:3] == "--T::":
        try:
            parsed = _datetime.fromisoformat(seconds + "+00:00")
        except ValueError:  # digits it does not read, a day the month lacks: strptime decides
            parsed = None
    if parsed is None:
        parsed = _datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_timezone.utc)
    return parsed.replace(microsecond=int((fraction + "000000")[:6])) if fraction.isdigit() else parsed


def _parse_listing(body: bytes) -> tuple[list[ObjectInfo], str | None]:
    """The entries of one ListObjectsV2 page, folders first (as ``aws s3 ls`` shows them),
    and the token of the next page (or None)."""
    root = _xml(body)
    top = _children(root)
    decode = _decoder(root)
    folders, entries = [], []
    for element in root:
        tag = _local_name(element)
        fields = _children(element)
        if tag == "Contents":
            entries.append(
                ObjectInfo(
                    decode(_text(fields, "Key") or ""),
                    int(_text(fields, "Size") or 0),
                    _parse_time(_text(fields, "LastModified")),
                    (_text(fields, "ETag") or "").strip('"') or None,
                    _text(fields, "StorageClass"),
                )
            )
        elif tag == "CommonPrefixes":
            folders.append(ObjectInfo(decode(_text(fields, "Prefix") or ""), is_prefix=True))
    token = _text(top, "NextContinuationToken") if _text(top, "IsTruncated") == "true" else None
    return folders + entries, token or None


def _delete_errors(body: bytes) -> dict[tuple[str, str | None], str]:
    """(key, version id or None) → error code for each ``<Error>`` of a DeleteObjects answer."""
    errors = {}
    for element in _xml(body):
        if _local_name(element) == "Error":
            fields = _children(element)
            errors[(_text(fields, "Key") or "", _text(fields, "VersionId") or None)] = _text(fields, "Code") or "Error"
    return errors


def _parse_uploads(root: Any) -> list[tuple[str, str, _datetime | None, str | None]]:
    """(key, upload id, initiated, initiator id) of each upload in a ListMultipartUploads answer."""
    decode = _decoder(root)
    uploads = []
    for element in root:
        if _local_name(element) == "Upload":
            fields = _children(element)
            initiator = _children(fields["Initiator"]) if "Initiator" in fields else {}
            uploads.append(
                (
                    decode(_text(fields, "Key") or ""),
                    _text(fields, "UploadId") or "",
                    _parse_time(_text(fields, "Initiated")),
                    _text(initiator, "ID"),
                )
            )
    return uploads


def _decoder(root: Any) -> Callable[[str], str]:
    """How to read the keys of a listing: URL-decoded if it says ``EncodingType`` url."""
    from urllib.parse import unquote_plus

    return unquote_plus if _text(_children(root), "EncodingType") == "url" else str


def _etag_of_file(path: str, part: int | None) -> str:
    """The ETag S3 gives the bytes of the file at ``path`` uploaded whole (``part`` None: their
    MD5), or in parts of ``part`` bytes (the MD5 of the parts' MD5s, ``-``, their number)."""
    digests, running, filled = [], hashlib.md5(), 0
    with open(path, "rb") as file:
        while piece := file.read(_MiB if part is None else min(_MiB, part - filled)):
            running.update(piece)
            filled += len(piece)
            if filled == part:
                digests.append(running.digest())
                running, filled = hashlib.md5(), 0
    if part is None:
        return running.hexdigest()
    if filled or not digests:
        digests.append(running.digest())
    return _multipart_etag([digest.hex() for digest in digests]) or ""  # every digest is an MD5: never ""


def _multipart_etag(etags: list[str]) -> str | None:
    """S3's ETag of a multipart object: the MD5 of its parts' MD5s, then ``-`` and their
    number; None when a part's ETag is not an MD5 (SSE-KMS, some services)."""
    digests = [etag.strip('"') for etag in etags]
    if not all(len(digest) == 32 and all(c in "0123456789abcdefABCDEF" for c in digest) for digest in digests):
        return None
    return f"{hashlib.md5(bytes.fromhex(''.join(digests))).hexdigest()}-{len(digests)}"


def _upload_id(body: bytes) -> str:
    """The ``UploadId`` of a CreateMultipartUpload answer."""
    upload_id = _text(_children(_xml(body)), "UploadId")
    if not upload_id:
        raise TransportError("the server's answer to CreateMultipartUpload has no UploadId")
    return upload_id


def _part_etag(response: Response) -> str:
    """The ETag of an UploadPart answer (a header).

    A part stored without one could never be named in the completion, so
    its absence is a retryable TransportError.
    """
    return _etag_or_retry(response.headers.get("ETag"), response)


def _copy_part_etag(response: Response) -> str:
    """The ETag of an UploadPartCopy answer (in its XML body)."""
    return _etag_or_retry(_text(_children(_xml(response.content)), "ETag"), response)


def _etag_or_retry(etag: str | None, response: Response) -> str:
    """The ETag, or a retryable TransportError if the answer carried none."""
    if not etag:
        raise TransportError(f"the answer to {response.method} {response.url} carries no ETag")
    return etag


class _Checker:
    """Checks a GET body, as it streams, against the ``x-amz-checksum-*`` S3 reported:
    the whole object's digest, or for a composite one (``…-N``) each part's
    digest (parts of ``sizes`` bytes), then the digest of those."""

    def __init__(self, algorithm: str, expected: str, sizes: list[int] | None) -> None:
        self.algorithm, self.expected, self.sizes = algorithm, expected, sizes
        self._digest = _hasher(algorithm)
        self._left = sizes[0] if sizes else 0
        self._parts: list[bytes] = []
        self._extra = False

    def update(self, view: memoryview) -> None:
        if self.sizes is None:
            self._digest.update(view)
            return
        while len(view):
            if len(self._parts) == len(self.sizes):
                self._extra = True  # more bytes than the parts hold: it cannot match
                return
            take = view[: self._left]
            self._digest.update(take)
            self._left -= len(take)
            view = view[len(take) :]
            if not self._left:
                self._parts.append(self._digest.digest())
                self._digest = _hasher(self.algorithm)
                self._left = self.sizes[len(self._parts)] if len(self._parts) < len(self.sizes) else 0

    def verify(self) -> None:
        if self.sizes is None:
            got = _b64(self._digest.digest())
        else:
            whole = _hasher(self.algorithm)
            for digest in self._parts:
                whole.update(digest)
            got = "" if self._extra or len(self._parts) != len(self.sizes) else _b64(whole.digest())
        if got != self.expected:
            raise _no_retry(
                f"the body does not match the {self.algorithm.upper()} checksum S3 keeps for it "
                f"({got or 'other sizes'} here, {self.expected} there): it changed on the way"
            )


###############################################################################
# Transfers: multipart uploads, ranged downloads, copy by parts ###############
###############################################################################
#
# The machinery every caller shares (upload, download, copy, open(), the Pool,
# the command line, MultipartUpload): functions of the Connection they work for.


class _Counter:
    """Adds up bytes done across threads and reports them, in order, to ``progress``."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self._progress = progress
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._done += n
                self._progress(self._done, self._total)


def _content_length(response: Response) -> int | None:
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isascii() and length.isdigit() else None


def _object_size(response: Response) -> int | None:
    """The whole object's size from a GET answer (``Content-Range: bytes a-b/size``, or the length)."""
    if response.status_code == 206:
        size = response.headers.get("Content-Range", "").rpartition("/")[2]
        return int(size) if size.isdigit() else None
    return _content_length(response)


def _write_at(response: Response, fd: int, offset: int) -> Steps[int]:
    """Write a streaming body into ``fd`` from ``offset`` on; the bytes written."""
    written = 0

    def write(view: memoryview) -> None:
        nonlocal written
        while len(view):
            n = os.pwrite(fd, view, offset + written)
            written, view = written + n, view[n:]

    response._within_deadline = True  # a range: of bounded size
    yield from response._body_steps(response._take_stream(), _body_buffer(response), write)
    return written


def _body_buffer(response: Response) -> memoryview:
    """A buffer of its own for one body read in steps (up to 1 MiB): a driver's loop may
    read many bodies at once, so none may share a thread's buffer."""
    return memoryview(bytearray(_buffer_size(_content_length(response))))


def _etag_md5(headers: _Headers) -> str | None:
    """The MD5 of the object an answer is about, when its ETag is one: a single-part
    object not encrypted with KMS or a customer key (their ETags are something else)."""
    etag = headers.get("ETag", "").strip('"')
    encrypted = headers.get("x-amz-server-side-encryption", "AES256") != "AES256"
    encrypted = encrypted or _SSE_C[0] in headers  # S3 names an SSE-C object's algorithm in every answer
    return etag if len(etag) == 32 and not encrypted else None


class _RangeDigest:
    """The MD5 of a file assembled from ranges that finish in any order, computed
    while the others still download: whichever thread finishes the range at the
    hashed frontier reads the finished run back (from the page cache, through
    the read-write descriptor) and hashes it; the others only note their range.
    """

    def __init__(self, fd: int, etag: str) -> None:
        self._fd = fd
        self._etag = etag
        self._md5 = hashlib.md5()
        self._lock = threading.Lock()
        self._finished: dict[int, int] = {}  # start -> end + 1 of ranges written, not yet hashed
        self._busy = False
        self.hashed = 0  # bytes hashed, from the start

    def written(self, start: int, stop: int) -> None:
        """Bytes ``start`` to ``stop - 1`` are in the file."""
        with self._lock:
            self._finished[start] = stop
            if self._busy:
                return  # the thread hashing now will come to it
            self._busy = True
        buffer = _read_buffer()
        while True:
            with self._lock:
                stop = self._finished.pop(self.hashed, -1)
                if stop < 0:
                    self._busy = False
                    return
            while self.hashed < stop:
                n = _read_into(None, self._fd, buffer[: min(len(buffer), stop - self.hashed)], self.hashed)
                if not n:
                    raise _no_retry("the file being downloaded into was cut short by something else")
                self._md5.update(buffer[:n])
                self.hashed += n

    def check(self, total: int) -> None:
        """Raise unless all ``total`` bytes were hashed and their MD5 is the ETag."""
        digest, etag = self._md5.hexdigest(), self._etag
        if self.hashed != total or digest != etag:
            raise _no_retry(f"the download does not match its ETag (MD5 {digest} of {self.hashed} bytes, ETag {etag})")


def _save(response: Response, target: str | os.PathLike[str] | IO[bytes]) -> Steps[Response]:
    """Stream a GET body into a binary file object, or into a temporary file beside a
    path that is renamed into place only once all of it arrived intact."""
    try:
        if not isinstance(target, (str, os.PathLike)):
            yield from _copy_verified(response, _partial(_write_whole, target, response))
            return response
        fd, temporary = yield _Work(_partial(_temporary_beside, os.fspath(target)))
        try:
            try:  # straight to the descriptor: a file object costs three more system calls
                yield from _copy_verified(response, _partial(_write_all, fd))
            finally:
                os.close(fd)
            yield _Work(_partial(_move_into_place, temporary, target))
        except BaseException:
            os.unlink(temporary)
            raise
    finally:
        response._drop_body()
    return response


def _write_whole(target: IO[bytes], response: Response, view: memoryview) -> None:
    """Write all of ``view`` to a binary file object, however little its ``write`` takes a
    call: a raw file may take part of it, and the rest goes in the next calls. A raw file
    that takes nothing (``None``: non-blocking, it would block) is an error, never a
    silent loss; any other object's ``None`` is the duck-typed "took it all"."""
    while len(view):
        n = target.write(view)
        if n is None:
            if not isinstance(target, io.RawIOBase):
                return
            raise S3Error(f"{response.bucket}/{response.key}: the file object took none of a write (a non-blocking "
                          "raw file?): download into a blocking or buffered file")  # fmt: skip
        view = view[n:]


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view) :]


def _copy_verified(response: Response, write: Callable[[memoryview], object]) -> Steps[None]:
    """Write a streaming body with ``write``, checking its MD5 when the ETag is one."""
    etag = _etag_md5(response.headers)
    digest = hashlib.md5() if etag is not None else None

    def written(view: memoryview) -> None:
        write(view)
        if digest is not None:
            digest.update(view)

    yield from response._body_steps(response._take_stream(), _body_buffer(response), written)
    if digest is not None and digest.hexdigest() != etag:
        raise TransportError(f"the download does not match its ETag (MD5 {digest.hexdigest()}, ETag {etag})")


def _temporary_beside(path: str) -> tuple[int, str]:
    """A new file beside ``path`` to write it in full before renaming: (fd, name).

    The folder is made if it is missing, as ``aws s3 cp`` does. The descriptor
    reads too (a download assembled from ranges is read back for its MD5). It
    gets the mode of the file it will replace, or else the mode a plain
    ``open(path, "w")`` gives (0666 less the umask), unlike ``mkstemp``'s 0600.
    """
    folder, name = os.path.split(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    try:
        mode: int | None = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = None
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(folder, f".{name}.{os.urandom(6).hex()}.tinys3")
        try:
            fd = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        return fd, temporary
    raise FileExistsError(f"no free temporary name beside {path}")


def _move_into_place(temporary: str, path: str | os.PathLike[str]) -> None:
    """Rename a whole download over ``path``. An error (a folder in the way, say) names
    ``path``, never the temporary file, which the caller removes."""
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise type(error)(error.errno, error.strerror, path) from None


def _checker(conn: Connection, response: Response, request: _Request) -> Steps[_Checker | None]:
    """What checks the body of a GET asked with checksum mode: None when S3 keeps no checksum.

    A composite checksum (``…-N``, a multipart upload's) is checked part by
    part: the part sizes come from HEAD ``partNumber`` 1 and N when the parts
    are equal but the last, else from a HEAD for each part.
    """
    prefix = "x-amz-checksum-"
    found = [
        (name.lower()[len(prefix) :], value)
        for name, value in response.headers.items()
        if name.lower().startswith(prefix) and name.lower() not in ("x-amz-checksum-type", "x-amz-checksum-mode")
    ]
    if not found:
        return None
    algorithm, value = found[0]
    if algorithm not in _CHECKSUMS:
        raise S3Error(
            f"S3 keeps a {algorithm.upper()} checksum for {request.key!r}, which Python's standard library "
            "cannot compute: read it with checksum=False"
        )
    expected, _, count = value.partition("-")
    if not count:
        return _Checker(algorithm, expected, None)
    total, parts = int(response.headers["Content-Length"]), int(count)

    def size(number: int) -> Steps[int]:
        query = [*request.query, ("partNumber", str(number))]
        head = yield from conn._attempts(
            _Request("HEAD", request.bucket, request.key, dict(request.headers), query=query)
        )
        return int(head.headers["Content-Length"])

    first = yield from size(1)
    last = (yield from size(parts)) if parts > 1 else first
    if parts > 1 and (parts - 1) * first + last != total:
        sizes = []
        for number in range(1, parts + 1):
            sizes.append((yield from size(number)))
        return _Checker(algorithm, expected, sizes)
    return _Checker(algorithm, expected, [first] * (parts - 1) + [last])


#: A first answer this quick (seconds from its request, the connection's setup left out:
#: imports, the CA store and a handshake can take longer than this) comes from this host or
#: its LAN: there the CPU, not one connection, caps a download, and a few ranges at once
#: carry as much as 16 for less CPU (bench/RESULTS.md). S3 answers in 10 ms or more even
#: from its own region, so a real network keeps all 16.
_NEAR, _NEAR_RANGES = 0.01, 4


def _download_ranges(
    conn: Connection,
    key: str,
    path: str,
    bucket: str | None,
    progress: Progress | None,
    version_id: str | None,
    headers: Mapping[str, object] | None,
    sse_customer_key: bytes | None,
) -> Steps[Response]:
    """``download`` to a path: the first ``multipart_size`` bytes ask for the object's
    size; a bigger object's other ranges follow in parallel, each pinned by
    ``If-Match`` to the first answer's ETag (so a change midway fails the
    download instead of mixing two versions) and resumed where it breaks.
    Bytes go through each thread's 1 MiB buffer into the file at their
    offset (``pwrite``): memory does not grow with the object.
    """
    step = conn.multipart_size
    getting = _partial(Connection.get.steps, conn, key, bucket)

    def one_stream() -> Steps[Response]:
        whole = yield from getting(None, headers, progress, version_id, sse_customer_key)
        return (yield from _save(whole, path))

    try:
        first = yield from getting((0, step - 1), headers, None, version_id, sse_customer_key)
    except HTTPError as error:
        if error.status != 416:  # an empty object has no byte 0
            raise
        return (yield from one_stream())
    start, end = _span(first)
    total = _object_size(first)
    etag, version = first.headers.get("ETag"), first.version_id
    if start != 0:
        first._drop_body()
        raise _no_retry(f"asked for the start of {key!r}, the server sent bytes {start}-{end}")
    if total is None or end is None or end == total - 1:
        first._progress, first._within_deadline = progress, True
        return (yield from _save(first, path))  # the whole object came at once, as a first range: of bounded size
    if not (etag or version):  # nothing to pin the ranges to one object by: one stream, then
        first._drop_body()
        return (yield from one_stream())
    pinned = {**dict(headers or {}), **({"If-Match": etag} if etag else {})}

    def fetching(fd: int, digest: _RangeDigest | None) -> Callable[[int, tuple[int, int]], Steps[tuple[str, int]]]:
        return _partial(_fetch_range, conn, key, bucket, fd, pinned, version_id or version, sse_customer_key, digest)

    step = max(step, -(-total // _MAX_PARTS))  # at most 10,000 ranges, as for uploads
    near = conn._transport.waited() < _NEAR
    assembling = _assemble(first, end + 1, path, total, step, fetching, progress, _NEAR_RANGES if near else None)
    return (yield from assembling)


def _assemble(
    first: Response,
    head: int,
    path: str,
    total: int,
    step: int,
    fetching: Callable[[int, _RangeDigest | None], Callable[[int, tuple[int, int]], Steps[tuple[str, int]]]],
    progress: Progress | None,
    most: int | None,
) -> Steps[Response]:
    """Write ``first`` (the object's first ``head`` bytes) and the other ranges, ``step`` bytes
    each, in parallel, into a temporary file beside ``path``, MD5-checked as they land
    when the ETag is one; rename it into place only once the whole object is there.
    The first answer's body is one of the parallel parts: on a slow link, reading it
    alone before the others start would cost the time one connection takes to carry it.
    At most ``most`` ranges at once, if given (besides the connection's slots)."""
    md5 = _etag_md5(first.headers)
    fd, temporary = yield _Work(_partial(_temporary_beside, path))
    try:
        try:
            yield _Work(_partial(os.ftruncate, fd, total))
            digest = _RangeDigest(fd, md5) if md5 is not None else None
            fetch = fetching(fd, digest)

            def part(number: int, span: tuple[int, int]) -> Steps[tuple[str, int]]:
                if number > 1:
                    return (yield from fetch(number, span))
                written = yield from _write_at(first, fd, 0)
                if written != head:
                    raise _no_retry(f"the first range of {first.key!r} held {written} bytes, not {head}")
                if digest is not None:
                    yield _Work(_partial(digest.written, 0, written))
                return "", written

            def spans() -> Iterator[tuple[int, int]]:
                yield 0, head - 1
                for start in range(head, total, step):
                    yield start, min(start + step, total) - 1

            yield _Gather(_numbered(part, spans()), total, progress, most)
            if digest is not None:
                yield _Work(_partial(digest.check, total))
        finally:
            first._drop_body()
            os.close(fd)
        yield _Work(_partial(_move_into_place, temporary, path))
    except BaseException:
        os.unlink(temporary)
        raise
    return first


def _fetch_range(
    conn: Connection,
    key: str,
    bucket: str | None,
    fd: int,
    headers: dict[str, object],
    version_id: str | None,
    sse_customer_key: bytes | None,
    digest: _RangeDigest | None,
    number: int,
    span: tuple[int, int],
) -> Steps[tuple[str, int]]:
    """One range of a parallel download, written at its offset (and hashed in
    order when the ETag is an MD5); (``""``, its size)."""
    try:
        response = yield from Connection.get.steps(conn, key, bucket, span, headers, None, version_id, sse_customer_key)
    except HTTPError as error:
        if error.status == 412:
            raise _no_retry(f"{key!r} changed while it was being downloaded: {error}") from error
        raise
    try:
        if response.status_code != 206 or _span(response) != span:
            raise _no_retry(f"asked for bytes {span[0]}-{span[1]} of {key!r}, the server sent others")
        written = yield from _write_at(response, fd, span[0])
    finally:
        response._drop_body()
    if digest is not None:
        yield _Work(_partial(digest.written, span[0], span[0] + written))
    return "", written


def _multipart(
    conn: Connection,
    bucket: str,
    key: str,
    headers: dict[str, str],
    work: Callable[[str, int, T], Generator[_Effect, Any, tuple[str, int]]],
    items: Iterator[T],
    total: int | None,
    progress: Progress | None,
    sums: _Sums | None = None,
) -> Generator[_Effect, Any, Response]:
    """Create a multipart upload, run ``work`` on each item in parallel, complete it.

    The caller's ``Content-MD5`` (of a whole body) is not sent and its
    ``If-Match``/``If-None-Match`` go with the completion, where S3 checks
    them. Creation and completion are retried like idempotent requests,
    also after a read timeout (see ``_complete`` and ``_abort_lost``). On
    any failure (or interruption) the upload is aborted, so S3 keeps no
    orphaned parts, and the error is raised.
    """
    stored = {k: v for k, v in headers.items() if k not in _REQUEST_ONLY_HEADERS}
    began = time.monotonic()
    creating = _Request("POST", bucket, key, stored, query=[("uploads", "")])
    created = yield from conn._attempts(creating, idempotent=True, finish=True)  # a cancellation waits for its id
    upload_id = _upload_id(created.content)
    try:
        if created.attempts > 1:
            yield from _abort_lost(conn, bucket, key, upload_id, time.monotonic() - began)
        parts = yield _Gather(_numbered(_partial(work, upload_id), items), total, progress)
        conditions = _picked(headers, ("if-match", "if-none-match", *_ACCOUNT))
        return (yield from _complete(conn, bucket, key, upload_id, parts, conditions, sums=sums))
    except BaseException:
        yield from _abort(conn, bucket, key, upload_id, _picked(headers, _ACCOUNT))
        raise


def _complete(
    conn: Connection,
    bucket: str,
    key: str,
    upload_id: str,
    parts: list[tuple[str, int]],
    conditions: dict[str, str],
    numbers: Iterable[int] | None = None,
    sums: _Sums | None = None,
) -> Generator[_Effect, Any, Response]:
    """CompleteMultipartUpload, retried like an idempotent request.

    If an attempt completed the upload but its answer was lost, the retry
    hears ``NoSuchUpload``. That is success only if the object now holds
    exactly the parts sent: its ETag is the MD5 of their MD5s (S3's
    multipart ETag) and its size their sum; the answer is then the HEAD's.
    Otherwise the error stands. With part checksums, the composite S3
    answers must be the one computed from them.
    """
    numbered = zip(numbers or range(1, len(parts) + 1), (etag for etag, _ in parts))
    body = _Body(_complete_body(numbered, sums))
    headers = {"Content-Type": "application/xml", **conditions}
    request = _Request("POST", bucket, key, headers, body, [("uploadId", upload_id)])
    try:
        response = yield from conn._attempts(request, error_in_body=True, idempotent=True)
    except HTTPError as error:
        expected = _multipart_etag([etag for etag, _ in parts])
        if error.code != "NoSuchUpload" or expected is None:
            raise
        try:
            head = yield from conn._attempts(_Request("HEAD", bucket, key, _picked(conditions, _ACCOUNT)))
        except HTTPError:
            raise error from None
        size = sum(length for _, length in parts)
        if head.headers.get("ETag", "").strip('"') != expected or head.headers.get("Content-Length") != str(size):
            raise
        _log("completing %s answered NoSuchUpload, but the object holds exactly the parts sent", key)
        return head
    if sums is not None:
        told = _text(_children(_xml(response.content)), f"Checksum{sums.algorithm.upper()}")
        composite = sums.composite()
        if told and told != composite:
            raise _no_retry(f"S3 stored {key!r} with checksum {told}, not {composite} as its parts were sent")
    return response


def _abort(
    conn: Connection, bucket: str, key: str, upload_id: str, headers: dict[str, str] | None = None
) -> Generator[_Effect, Any, None]:
    """Abort a multipart upload, then check with ListParts that it is gone.

    S3 may keep a part whose upload was still under way when the abort
    came, so an upload still listed is aborted again (``retries`` times in
    all). Failures are logged, not raised: the caller is raising already.
    """
    query = [("uploadId", upload_id)]
    for _ in range(conn._retries):
        try:
            yield from conn._attempts(_Request("DELETE", bucket, key, dict(headers or {}), query=query))
            yield from conn._attempts(_Request("GET", bucket, key, dict(headers or {}), query=query))
        except S3Error as error:
            if not (isinstance(error, HTTPError) and error.status == 404):  # 404: gone, as it should be
                _log("could not abort multipart upload %s of %s: %s", upload_id, key, error)
            return
    _log("multipart upload %s of %s is still listed after %d aborts", upload_id, key, conn._retries)


def _abort_lost(
    conn: Connection, bucket: str, key: str, upload_id: str, seconds: float
) -> Generator[_Effect, Any, None]:
    """Abort the uploads that lost answers to CreateMultipartUpload may have made.

    When creation needed more than one attempt, an earlier one may have
    created an upload whose id never arrived. Those are aborted, under a
    rule that spares other writers' uploads: same key, same initiator
    (where the server names one), begun no earlier than ``seconds`` (+1 s
    for clocks counting whole seconds) before ours and no later, and
    holding no part. Best effort: failures are logged.
    """
    try:
        listing = yield from conn._attempts(_Request("GET", bucket, "", query=[("prefix", key), ("uploads", "")]))
        uploads = _parse_uploads(_xml(listing.content))
        ours = next((upload for upload in uploads if upload[1] == upload_id), None)
        if ours is None or ours[2] is None:
            return
        earliest = ours[2] - _timedelta(seconds=seconds + 1)
        for other_key, other_id, initiated, initiator in uploads:
            if other_key != key or other_id == upload_id or initiator != ours[3]:
                continue
            if initiated is None or not earliest <= initiated <= ours[2]:
                continue
            parts = yield from conn._attempts(_Request("GET", bucket, key, query=[("uploadId", other_id)]))
            if not any(_local_name(element) == "Part" for element in _xml(parts.content)):
                _log("aborting multipart upload %s of %s, made by a lost CreateMultipartUpload", other_id, key)
                yield from _abort(conn, bucket, key, other_id)
    except S3Error as error:
        _log("could not look for uploads left by lost answers for %s: %s", key, error)


class _Slots:
    """A connection's part slots and, if ``most`` is given, a call's own fewer: taken and
    given back together."""

    def __init__(self, shared: threading.Semaphore, most: int | None) -> None:
        self._shared, self._own = shared, threading.BoundedSemaphore(most) if most else None

    def acquire(self) -> None:
        if self._own is not None:
            self._own.acquire()
        self._shared.acquire()

    def release(self) -> None:
        self._shared.release()
        if self._own is not None:
            self._own.release()


def _numbered(
    work: Callable[[int, T], Generator[_Effect, Any, tuple[str, int]]], items: Iterator[T]
) -> Iterator[Generator[_Effect, Any, tuple[str, int]]]:
    """``work(number, item)`` for the items numbered from 1, as S3 numbers parts: at most 10,000."""
    for number, item in enumerate(items, 1):
        if number > _MAX_PARTS:
            raise InvalidInput("the upload would need more than 10,000 parts: raise multipart_size")
        yield work(number, item)


def _gather_on_threads(conn: Connection, gather: _Gather) -> list[tuple[str, int]]:
    """The blocking driver's ``_Gather``: each sub-operation runs on a part thread.

    The connection's ``max_concurrency`` slots bound the parts in flight
    (and so the memory) across all transfers, and ``gather.most``, if given,
    this one's; an operation is taken from the iterator only once a slot is free.
    A ``close()`` meanwhile does not end the transfer.
    """
    from concurrent.futures import wait

    executor = _part_executor(conn)
    futures: list[Future[tuple[str, int]]] = []
    failed = threading.Event()
    counter = _Counter(gather.progress, gather.total)
    slots = _Slots(conn._part_slots, gather.most)
    operations = gather.operations

    def finished(future: Future[tuple[str, int]]) -> None:
        slots.release()
        if future.cancelled() or future.exception() is not None:
            failed.set()
        else:
            counter.add(future.result()[1])

    try:
        while not failed.is_set():
            slots.acquire()
            try:  # the slot is given back by ``finished`` once submitted, here on any other way out
                operation = next(operations, None)
                if operation is None:
                    slots.release()
                    break
                try:
                    future = executor.submit(conn._drive, operation)
                except RuntimeError:  # close() shut these threads down: the transfer goes on, on new ones
                    executor = _part_executor(conn)
                    future = executor.submit(conn._drive, operation)
            except BaseException:
                slots.release()
                raise
            future.add_done_callback(finished)
            futures.append(future)
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        wait(futures)
        raise


def _part_executor(conn: Connection, lane: str = "part") -> ThreadPoolExecutor:
    """One of the connection's pools of threads, made on first use: ``"part"``, its
    ``max_concurrency`` part threads; ``"work"`` and ``"send"``, the asyncio driver's
    (see ``_off_loop``)."""
    with conn._part_lock:
        if lane not in conn._parts:
            from concurrent.futures import ThreadPoolExecutor

            threads = {"part": conn.max_concurrency, "work": _WORK_THREADS, "send": 1}[lane]
            conn._parts[lane] = ThreadPoolExecutor(threads, thread_name_prefix=f"tinys3-{lane}")
        return conn._parts[lane]


def _upload_part(
    conn: Connection,
    bucket: str,
    key: str,
    headers: dict[str, str],
    sums: _Sums | None,
    upload_id: str,
    number: int,
    part: _Body,
) -> Generator[_Effect, Any, tuple[str, int]]:
    query = [("partNumber", str(number)), ("uploadId", upload_id)]
    wire = dict(headers)
    if sums is not None:
        wire["x-amz-sdk-checksum-algorithm"] = sums.algorithm.upper()
        checksum = yield _Work(_partial(part.checksum, sums.algorithm))
        wire[f"x-amz-checksum-{sums.algorithm}"] = sums.parts[number] = checksum
    try:
        response = yield from conn._attempts(_Request("PUT", bucket, key, wire, part, query), check=_part_etag)
    finally:
        part.close()  # done with: a stream's buffer takes the next part
    return response.headers["ETag"], part.length


def _upload_whole(
    conn: Connection,
    target: tuple[str, str],
    wire: dict[str, str],
    body: _Body,
    algorithm: str | None,
    progress: Progress | None,
) -> Generator[_Effect, Any, Response]:
    """Upload ``body`` in one PutObject request (with its checksum, given ``algorithm``)."""
    if algorithm is not None:
        wire["x-amz-sdk-checksum-algorithm"] = algorithm.upper()
        wire[f"x-amz-checksum-{algorithm}"] = yield _Work(_partial(body.checksum, algorithm))
    response = yield from conn._attempts(_Request("PUT", *target, wire, body))
    if progress is not None:
        progress(body.length, body.length)
    return response


def _upload_by_parts(
    conn: Connection,
    target: tuple[str, str],
    wire: dict[str, str],
    body: _Body,
    more: IO[bytes] | None,
    algorithm: str | None,
    progress: Progress | None,
) -> Generator[_Effect, Any, Response]:
    """Upload ``body`` (and, for a stream, ``more`` of it) as a multipart upload: a file
    in parts read where they lie, a stream in parts read as they come (growing every
    1,000 parts); with ``algorithm``, a checksum per part and their composite."""
    bucket, key = target
    if body.length > _MAX_OBJECT:
        raise InvalidInput(f"the file is {body.length} bytes; an S3 object holds at most 5 TiB")
    if more is not None:
        assert isinstance(body.data, (bytes, memoryview))
        parts = _stream_parts(body.data, more, conn.multipart_size)
        body.data = None  # the parts' buffer holds it now, once
    else:
        parts = _sized_parts(body, _part_size(body.length, conn.multipart_size))
    total = None if more is not None else body.length
    sums = None if algorithm is None else _Sums(algorithm)
    if sums is not None:
        wire["x-amz-checksum-algorithm"] = sums.algorithm.upper()
    work = _partial(_upload_part, conn, bucket, key, _picked(wire, (*_SSE_C, *_ACCOUNT)), sums)
    return (yield from _multipart(conn, bucket, key, wire, work, parts, total, progress, sums))


def _copy_headers(
    to_key: str, metadata: Mapping[str, object] | None, replace: bool, source: Response | None
) -> dict[str, str]:
    """The copy's headers and metadata: the source's (unless replaced) with ``metadata`` applied."""
    if replace:
        return _apply({"content-type": _guess_content_type(to_key)}, metadata)
    assert source is not None
    return _replacement_headers({name.lower(): value for name, value in source.headers.items()}, metadata)


def _copy_whole(
    conn: Connection,
    target: tuple[str, str],
    wire: dict[str, str],
    replaced: dict[str, str] | None,
    tagging: dict[str, str] | None,
) -> Generator[_Effect, Any, Response | None]:
    """Copy in one CopyObject request, with ``replaced`` headers and metadata (None: the
    source's, unread) and ``tagging`` (None: the source's tags). None when S3 said the
    object is too large for one copy and its size was not known before (``replaced`` is
    then None too): the caller copies it by parts."""
    wire = {**(replaced or {}), **wire, "x-amz-metadata-directive": "COPY" if replaced is None else "REPLACE"}
    if tagging is not None:
        wire.update(tagging, **{"x-amz-tagging-directive": "REPLACE"})
    try:
        return (yield from conn._attempts(_Request("PUT", *target, wire), error_in_body=True))
    except HTTPError as error:
        if replaced is not None or not (error.code == "InvalidRequest" and "larger" in error.message):
            raise
    return None


def _copy_by_parts(
    conn: Connection,
    source: Response,
    copy_source: str,
    target: tuple[str, str],
    extra: dict[str, str],
    stored: dict[str, str],
    tagging: dict[str, str],
) -> Generator[_Effect, Any, Response]:
    """Copy an object over ``multipart_copy_threshold`` (S3 copies at most 5 GiB in one
    request) as a multipart upload of UploadPartCopy ranges, each pinned to the source's
    ETag as the HEAD (``source``) saw it; ``stored`` are the copy's headers and metadata,
    ``tagging`` its tags."""
    to_bucket, to_key = target
    size = int(source.headers["Content-Length"])
    created = {k: v for k, v in extra.items() if k not in _COPY_SSE_C}
    step = _part_size(size, conn.multipart_size)
    ranges = ((first, min(first + step, size) - 1) for first in range(0, size, step))
    carried = _picked(extra, (*_SSE_C, *_COPY_SSE_C, *_ACCOUNT))
    work = _partial(_copy_part, conn, to_bucket, to_key, carried, copy_source, source.headers.get("ETag", ""))
    return (yield from _multipart(conn, to_bucket, to_key, {**stored, **created, **tagging}, work, ranges, size, None))


def _copy_part(
    conn: Connection,
    bucket: str,
    key: str,
    carried: dict[str, str],
    source: str,
    etag: str,
    upload_id: str,
    number: int,
    span: tuple[int, int],
) -> Generator[_Effect, Any, tuple[str, int]]:
    headers = {**carried, "x-amz-copy-source": source, "x-amz-copy-source-range": f"bytes={span[0]}-{span[1]}"}
    if etag:
        headers["x-amz-copy-source-if-match"] = etag
    query = [("partNumber", str(number)), ("uploadId", upload_id)]
    response = yield from conn._attempts(_Request("PUT", bucket, key, headers, query=query), error_in_body=True,
                                         check=_copy_part_etag)  # fmt: skip
    return _copy_part_etag(response), span[1] - span[0] + 1


def _reopen(conn: Connection, request: _Request, first: Response, offset: int) -> Steps[Any]:
    """The rest of a GET body that broke after ``offset`` bytes: the same object,
    pinned by ``If-Match`` on its ETag (else by its version id), from the next byte.

    Raises:
        TransportError: the object changed meanwhile (412), or the server
            did not answer with exactly the bytes asked for.
    """
    first_byte, last_byte = _span(first)
    etag = first.headers.get("ETag")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("range", "if-match")}
    headers["Range"] = f"bytes={first_byte + offset}-{'' if last_byte is None else last_byte}"
    query = list(request.query)
    if etag:
        headers["If-Match"] = etag
    elif not any(name == "versionId" for name, _ in query):
        query.append(("versionId", first.headers["x-amz-version-id"]))
    try:
        rest = yield from conn._attempts(
            _Request("GET", request.bucket, request.key, headers, query=query), stream=True
        )
    except HTTPError as error:
        if error.status != 412:
            raise
        raise _no_retry(f"the object changed while it was being read: {error}") from error
    if rest.status_code != 206 or _span(rest)[0] != first_byte + offset or rest.headers.get("ETag", etag) != etag:
        rest.close()
        raise _no_retry(f"resuming at byte {first_byte + offset}, the server sent other bytes ({rest.status_code})")
    return rest._take_stream()


###############################################################################
# Files: Connection.open() ####################################################
###############################################################################

#: The first range a reader asks for, after opening or a seek: enough for a zip's directory
#: or a member's header. Each range read to its end doubles the next, up to multipart_size.
_FIRST_RANGE = 256 * 1024
#: A forward seek within the open range by at most this much reads through, not anew.
_SKIP_READ = 256 * 1024


class _ObjectReader(io.RawIOBase):
    """The raw file under ``Connection.open(key, "rb")``: the object's bytes by ranged GETs,
    each pinned to the ETag (and version) of ``head``, the answer the file was opened on, so
    a change midway raises instead of mixing two objects. Sequential reads ask for ever
    larger ranges; a seek away drops the open range; a body that breaks is asked for again
    from where it broke. Its reads are core steps (``read_steps``), run by its connection's
    driver: ``AsyncConnection.open`` awaits the same."""

    def __init__(self, conn: Connection, key: str, bucket: str | None, version_id: str | None,
                 headers: Mapping[str, object] | None, sse_customer_key: bytes | None,
                 head: Response) -> None:  # fmt: skip
        super().__init__()
        etag = head.headers.get("ETag")
        self.name, self.size = key, int(head.headers.get("Content-Length") or 0)
        self._conn, self._bucket, self._customer_key = conn, bucket, sse_customer_key
        self._version = version_id or head.version_id
        self._headers = {**dict(headers or {}), **({"If-Match": etag} if etag else {})}
        self._position, self._ahead = 0, _FIRST_RANGE
        self._stream: Any = None
        self._at = self._end = 0  # the open range: its next byte, and its end (exclusive)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"whence must be 0, 1 or 2; got {whence!r}")
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read of a closed file")
        return self._conn._drive(self._readinto_steps(memoryview(buffer).cast("B")))

    def readall(self) -> bytes:
        """The rest of the object, read into one buffer (``io`` would read it 8 KiB a call)."""
        if self.closed:
            raise ValueError("read of a closed file")
        return self._conn._drive(self.read_steps(-1))

    def read_steps(self, size: int) -> Steps[bytes]:
        """The next ``size`` bytes (the rest of the object if negative), fewer only at its end."""
        left = max(0, self.size - self._position)
        buffer = bytearray(left if size < 0 else min(size, left))
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            n = yield from self._readinto_steps(view[done:])
            if not n:
                break
            done += n
        view.release()
        del buffer[done:]
        return bytes(buffer)

    def _readinto_steps(self, view: memoryview) -> Steps[int]:
        if self._position >= self.size or not len(view):
            return 0
        for attempt in range(1, self._conn._retries + 1):
            try:
                stream = yield from self._aim()
                n: int = yield _Receive(stream, view[: self._end - self._at], False)
            except TransportError as error:
                self._drop()
                if not error.retry or attempt == self._conn._retries:
                    raise
                _log("resuming %r at byte %d after %s", self.name, self._position, error)
                yield _Sleep(_backoff(attempt))
                continue
            if not n:  # a range that ends early is never the end of the file
                self._drop()
                raise _cut_short(self._at, self._end)
            self._position = self._at = self._at + n
            return n
        raise AssertionError("unreachable")

    def _aim(self) -> Steps[Any]:
        """A range whose next byte is the position: the open one (read through a short
        skip), else a new one, twice as long as the last if that one was read to its end."""
        stream = self._stream
        if stream is not None and self._at <= self._position < self._end and self._position - self._at <= _SKIP_READ:
            scratch = memoryview(bytearray(min(65536, self._position - self._at)))
            while self._at < self._position:
                skipped = yield _Receive(stream, scratch[: self._position - self._at], False)
                if not skipped:
                    raise _cut_short(self._at, self._end)
                self._at += skipped
            return stream
        cap = max(self._conn.multipart_size, _FIRST_RANGE)
        if stream is not None:  # read to its end (go on, further) or left by a seek (start small)
            self._ahead = min(2 * self._ahead, cap) if self._position == self._end else _FIRST_RANGE
            self._drop()
        # Ranges grown to the cap mean a reader going through: the rest comes in one streamed
        # GET (a round trip per range would bound it on a far link), dropped at the next seek.
        end = self.size if self._ahead >= cap else min(self.size, self._position + self._ahead)
        try:
            response = yield from Connection.get.steps(self._conn, self.name, self._bucket, (self._position, end - 1),
                                                       self._headers, version_id=self._version,
                                                       sse_customer_key=self._customer_key)  # fmt: skip
        except HTTPError as error:
            if error.status == 412:
                raise _no_retry(f"{self.name!r} changed while it was open for reading: {error}") from error
            raise
        first, last = _span(response)
        if first != self._position:
            response._drop_body()
            raise _no_retry(f"asked for byte {self._position} of {self.name!r}, the server sent bytes from {first}")
        self._stream, self._at, self._end = response._take_stream(), first, end if last is None else last + 1
        return self._stream

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._drop()
        super().close()


class _Pipe:
    """Bytes from ``write`` calls, copied straight into the buffer of the upload that reads
    them on its own thread: no copy in between, no memory of its own. The reader offers
    room (``readinto``) and waits until it is full or the writer ended; the writer waits
    for room. The writer ends it (or aborts it: the reader then raises, and nothing is
    stored); a reader that failed makes the next write raise its error. Each wait is
    bounded and its condition checked again: a wake-up lost to a Ctrl-C landing inside
    ``Condition.wait`` costs a second, never a hang."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._room: memoryview | None = None  # the reader's, being filled
        self._filled = 0
        self._ended = False
        self._abort: BaseException | None = None
        self.failure: BaseException | None = None
        #: The reader was given the end: everything written was read.
        self.drained = False

    def put(self, data: memoryview) -> None:
        with self._ready:
            while data:
                while self._room is None and self.failure is None:
                    self._ready.wait(1.0)
                if self.failure is not None:
                    raise self.failure
                assert self._room is not None
                n = min(len(data), len(self._room) - self._filled)
                self._room[self._filled : self._filled + n] = data[:n]
                self._filled += n
                data = data[n:]
                if self._filled == len(self._room):
                    self._room = None
                    self._ready.notify_all()

    def end(self, abort: BaseException | None = None) -> None:
        with self._ready:
            self._ended, self._abort = True, abort
            self._ready.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._ready:
            self.failure = error
            self._ready.notify_all()

    def readinto(self, view: memoryview) -> int:
        with self._ready:
            if not self._ended:
                self._room, self._filled = view, 0
                self._ready.notify_all()
                while self._room is not None and not self._ended:
                    self._ready.wait(1.0)
            if self._abort is not None:
                raise self._abort
            done, self._room, self._filled = self._filled, None, 0
            self.drained = self._ended and not done
            return done

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size > 0 else _CHUNK)
        return bytes(buffer[: self.readinto(memoryview(buffer))])


class _ObjectWriter(io.RawIOBase):
    """The raw file under ``Connection.open(key, "wb")``: what is written streams, through
    a ``_Pipe``, into ``upload`` running on a thread of its own (one PUT for a small object,
    multipart parts sent while writing goes on for a big one). ``close`` waits for it; the
    object exists only once that succeeded. ``abort`` (an exception in the ``with`` block,
    a file dropped unclosed) makes the upload fail: nothing is stored, no part is left."""

    def __init__(self, conn: Connection, key: str, bucket: str | None, options: dict[str, Any]) -> None:
        super().__init__()
        self.name = key
        self._pipe = _Pipe()
        self.response: Response | None = None
        self._thread = threading.Thread(target=self._upload, args=(conn, key, bucket, options), daemon=True,
                                        name=f"tinys3 open({key!r}, 'wb')")  # fmt: skip
        self._thread.start()

    def _upload(self, conn: Connection, key: str, bucket: str | None, options: dict[str, Any]) -> None:
        try:
            self.response = conn.upload(key, self._pipe, bucket, **options)  # type: ignore[arg-type]
            if not self._pipe.drained:
                raise S3Error(f"the upload of {key!r} ended before what was written did: it is not complete")
        except BaseException as error:  # handed to the writer: its next write or close raises it
            self._pipe.fail(error)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        with memoryview(data) as view, view.cast("B") as flat:
            self._pipe.put(flat)
            return len(flat)

    def close(self) -> None:
        """Finish the upload and wait for it; raises what made it fail (nothing is stored then)."""
        if not self.closed:
            super().close()
            self._pipe.end()
            self._thread.join()
            if self._pipe.failure is not None:
                raise self._pipe.failure

    def abort(self) -> None:
        """Give up: the upload fails (a multipart one is aborted), nothing is stored."""
        if not self.closed:
            super().close()
            self._pipe.end(S3Error(f"{self.name!r} was not closed normally: nothing was stored"))
            self._thread.join()


@_lru_cache(maxsize=4)
def _abort_on_error(cls: type[Any]) -> type[Any]:
    """A subclass of ``io.BufferedWriter`` or ``io.TextIOWrapper`` over an ``_ObjectWriter``
    that aborts, not finishes, the upload when its ``with`` block raises or it is dropped
    unclosed (where ``io`` would close it, storing what was written so far)."""

    class AbortOnError(cls):  # type: ignore[misc]
        def __exit__(self, kind: Any, *rest: Any) -> None:
            if kind is not None:
                _writer_of(self).abort()
            super().__exit__(kind, *rest)

        def __del__(self) -> None:
            if not self.closed:
                _writer_of(self).abort()
            super().__del__()

    AbortOnError.__name__ = AbortOnError.__qualname__ = f"S3{cls.__name__}"
    return AbortOnError


def _writer_of(file: Any) -> _ObjectWriter:
    raw = file.buffer.raw if hasattr(file, "buffer") else file.raw
    assert isinstance(raw, _ObjectWriter)
    return raw


###############################################################################
# Connection ##################################################################
###############################################################################

_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
_EXPIRED_CODES = frozenset(("ExpiredToken", "TokenRefreshRequired"))
_RETRY_CODES = frozenset(("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"))
#: Answers that can mean "your clock is off" (S3, S3-compatible servers, other AWS services;
#: "Forbidden" is a 403 without a body, as to HEAD): the Date header tells whether it is.
_SKEW_CODES = frozenset(("RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture", "InvalidSignatureException",
                         "SignatureDoesNotMatch", "AuthFailure", "Forbidden", "AccessDenied"))  # fmt: skip


#: The default deadline of one attempt (see ``_Paced``): generous for a part or a request.
_DEADLINE = 900.0


def _parse_timeout(timeout: Timeouts) -> tuple[float, float, float]:
    """(connect, read, deadline) seconds from one number, a pair or a triple."""
    given = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    if len(given) not in (2, 3) or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0
                                           for t in given):  # fmt: skip
        raise InvalidInput(f"timeout must be seconds > 0, or a (connect, read[, deadline]) tuple; got {timeout!r}")
    connect, read, deadline = (*given, _DEADLINE) if len(given) == 2 else given
    return float(connect), float(read), float(deadline)


_UNVERIFIED = (
    "TLS certificates are not verified (verify=False): anyone on the network path can read "
    "and change every request and answer, keys and data included"
)


def _pick_verify(verify: object, environ: Mapping[str, str], settings: Mapping[str, str]) -> bool | str:
    """``verify=``, else ``AWS_CA_BUNDLE``, else the profile's ``ca_bundle``, else True.
    False warns (once per Connection, at the line that made it), as curl and requests do."""
    if verify is None:
        return environ.get("AWS_CA_BUNDLE") or settings.get("ca_bundle") or True
    if not isinstance(verify, (bool, str)):
        raise InvalidType(f"verify must be True, False or a CA bundle path; got {type(verify).__name__}")
    if verify is False:
        import warnings

        warnings.warn(_UNVERIFIED, stacklevel=3)
    return verify


def _check_proxy(proxy: object) -> None:
    """A proxy URL is parsed now, so a bad one is refused before any request."""
    if isinstance(proxy, str):
        _Proxy(proxy)
    elif not isinstance(proxy, (bool, type(None))):
        raise InvalidType(f"proxy must be a URL str, None or a bool; got {type(proxy).__name__}")


def _pick_retries(retries: object, environ: Mapping[str, str], settings: Mapping[str, str]) -> int:
    """``retries=``, else ``AWS_MAX_ATTEMPTS`` or the profile's ``max_attempts``, else
    the retry mode's default: 3 (``standard``, ``adaptive``) or 5 (``legacy``)."""
    if retries is None:
        mode = environ.get("AWS_RETRY_MODE") or settings.get("retry_mode") or "standard"
        if mode not in ("standard", "adaptive", "legacy"):
            raise InvalidInput(f"retry_mode must be standard, adaptive or legacy; got {mode!r}")
        configured = environ.get("AWS_MAX_ATTEMPTS") or settings.get("max_attempts")
        if configured is None:
            return 5 if mode == "legacy" else 3
        if not configured.strip().isdigit():
            raise InvalidInput(f"max_attempts (AWS_MAX_ATTEMPTS) must be a whole number >= 1; got {configured!r}")
        retries = int(configured)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise InvalidInput(f"retries must be an int >= 1 (attempts in all); got {retries!r}")
    return retries


def _configured_endpoint(environ: Mapping[str, str], settings: Mapping[str, str]) -> str | None:
    """The endpoint the environment or the profile sets for S3, as botocore finds it:
    ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the profile's ``s3``
    ``endpoint_url`` (nested, or in its ``services`` section), its
    ``endpoint_url``; none at all with ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``."""
    ignore = environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or settings.get("ignore_configured_endpoint_urls")
    if (ignore or "").lower() == "true":
        return None
    return (
        environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        or settings.get("s3.endpoint_url") or settings.get("endpoint_url")
    )  # fmt: skip


def _is_region_name(text: str, extra: str = "") -> bool:
    """A region name as AWS spells them (``eu-west-1``: ASCII lowercase, digits, ``-``), and
    ``extra`` characters more; at most 64. Anything else could carry a host into a URL."""
    allowed = "abcdefghijklmnopqrstuvwxyz0123456789-" + extra
    return 0 < len(text) <= 64 and all(char in allowed for char in text)


def _check_region(region: str) -> str:
    """A region given by the user (argument, environment or profile): AWS's letters, plus the
    uppercase and ``_`` some S3-compatible services' region names carry."""
    if not isinstance(region, str) or not _is_region_name(region, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"):
        raise InvalidInput(f"region must be a region name such as 'eu-west-1'; got {region!r}")
    return region


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an int from {low} to {high}; got {value!r}")
    return value


def _unpickled(cls: type[Connection], settings: dict[str, Any], aws_default: bool) -> Connection:
    """A Connection made from a pickle's settings (``Connection._settings``)."""
    conn = cls.__new__(cls)
    init: Any = AsyncConnection.__init__ if issubclass(cls, AsyncConnection) else Connection.__init__
    init(conn, **settings)
    conn._aws_default = aws_default  # the endpoint was AWS's own: a bucket elsewhere moves to its region's host
    return conn


def _pick(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    """One of two spellings of an argument (the 2013 API has both)."""
    if value is not None and alias_value is not None and value != alias_value:
        raise InvalidInput(f"{name}= and {alias}= are the same setting; give one")
    return value if value is not None else alias_value


def _operation(steps: Callable[Concatenate[Any, P], Steps[T]]) -> _Operation[P, T]:
    """A public call, written once as core steps (a generator of effects); the class it is
    called on runs them with its driver (``_drive``). Its steps stay at ``.steps``, for
    other steps to ``yield from``."""

    @_wraps(steps)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._drive(steps(self, *args, **kwargs))

    @_wraps(steps)
    async def awaited(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._drive(steps(self, *args, **kwargs))

    call.steps = awaited.steps = steps  # type: ignore[attr-defined]
    call.awaited = awaited  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


def _coroutine_calls(cls: type[T]) -> type[T]:
    """``cls`` (a class decorator) with each call its bases wrote as core steps
    (``_operation``) made a coroutine function, as ``inspect.iscoroutinefunction``
    tells (frameworks and retry decorators ask it before awaiting what a call returns)."""
    for base in cls.__mro__[1:]:
        for name, call in vars(base).items():
            if hasattr(call, "awaited") and name not in vars(cls):
                setattr(cls, name, call.awaited)
    return cls


class Connection:
    """A client for one S3 endpoint; safe to share between threads.

    Args:
        access_key, secret_key: the key pair; when both are omitted they come
            from the AWS CLI's chain: ``AWS_ACCESS_KEY_ID``/
            ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), the shared
            credentials and config files, the container credentials endpoint,
            then EC2 instance metadata; temporary ones renew themselves.
        default_bucket (alias ``default``): bucket used when a call names none.
        tls (alias ``ssl``): HTTPS (default True) for an endpoint without scheme.
        endpoint: ``https://host[:port]`` of an S3-compatible service; else
            ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or AWS in ``region``.
        region: the signing region; else ``AWS_REGION``, ``AWS_DEFAULT_REGION``,
            the profile's ``region`` or ``us-east-1``.
        session_token: the token of temporary credentials.
        profile: the profile of ``~/.aws/credentials`` and ``~/.aws/config``
            to take keys, ``region`` and ``endpoint_url`` from (else
            ``AWS_PROFILE``, else ``default``).
        timeout: seconds, or a (connect, read) pair, or (connect, read,
            deadline); default (10, 60, 900). ``read`` bounds each wait for
            data; ``deadline`` one attempt's sending and its answer's head
            (and whole body, but for object bodies, which you pace).
        verify: check TLS certificates (True), or a CA bundle path; else
            ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle``.
        addressing: ``'auto'`` (virtual-host on AWS when the bucket name
            allows it, path-style elsewhere), ``'path'`` or ``'virtual'``;
            else the profile's S3 ``addressing_style``.
        retries: attempts in all for a request that failed in a way worth
            retrying (1 disables retries); else ``AWS_MAX_ATTEMPTS`` or the
            profile's ``max_attempts``, else 3 (5 in ``legacy`` retry mode).
        anonymous: send every request unsigned (public buckets).
        proxy: a proxy URL (``http://user:password@host:port``) for every
            request, None or False for none; by default (True) the
            environment's ``https_proxy``/``http_proxy`` and ``no_proxy``.
        multipart_threshold: larger uploads go as multipart uploads (8 MiB).
        multipart_size: the smallest part (8 MiB, at least 5 MiB); parts grow
            so that an upload needs at most 10,000.
        max_concurrency: parts in flight at once, across the connection (16).
        multipart_copy_threshold: larger copies go part by part (5 GiB).

    Raises:
        CredentialsError: no key pair was given or found.
        InvalidInput, InvalidType: an argument is wrong.
    """

    #: What performs a ``_Send`` for this class's driver, and the answers it gives.
    _transport_class: type[_Transport] = _Transport
    _response_class: type[Response] = Response

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        default_bucket: str | None = None,
        tls: bool | None = None,
        endpoint: str | None = None,
        *,
        ssl: bool | None = None,
        default: str | None = None,
        region: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        timeout: Timeouts = (10.0, 60.0),
        verify: bool | str | None = None,
        addressing: str | None = None,
        retries: int | None = None,
        anonymous: bool = False,
        proxy: str | bool | None = True,
        multipart_threshold: int = 8 * _MiB,
        multipart_size: int = 8 * _MiB,
        max_concurrency: int = 16,
        multipart_copy_threshold: int = _MAX_PUT,
    ) -> None:
        environ = os.environ
        tls = _pick("tls", tls, "ssl", ssl)
        self.default_bucket: str | None = _pick("default_bucket", default_bucket, "default", default)
        if self.default_bucket is not None:
            _check_bucket(self.default_bucket)
        profile_name = profile or environ.get("AWS_PROFILE") or "default"
        settings = _profile(profile_name, environ)
        self.region: str = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
        self.region = _check_region(self.region or settings.get("region") or "us-east-1")
        verify = _pick_verify(verify, environ, settings)
        retries = _pick_retries(retries, environ, settings)
        endpoint = endpoint or _configured_endpoint(environ, settings)
        self._aws_default = endpoint is None
        if endpoint is None:
            endpoint = f"s3.{self.region}.amazonaws.com"
        addressing = addressing or settings.get("s3.addressing_style") or "auto"
        self._endpoint = _parse_endpoint(endpoint, tls is not False, addressing)
        self._bucket_routes: dict[str, tuple[str, _Endpoint]] = {}
        _check_proxy(proxy)
        self._clock = _Clock()
        lookup = _Lookup(environ, self.region, proxy, verify, {profile_name: settings}, self._clock)
        self._credential_source = None if anonymous else _credential_source(
            access_key, secret_key, session_token, profile, lookup
        )  # fmt: skip
        self._profile = profile
        self._retries = retries
        self.multipart_threshold = _check_int("multipart_threshold", multipart_threshold, 0, _MAX_PUT)
        self.multipart_size = _check_int("multipart_size", multipart_size, 5 * _MiB, _MAX_PUT)
        self.max_concurrency = _check_int("max_concurrency", max_concurrency, 1, 1000)
        self.multipart_copy_threshold = _check_int("multipart_copy_threshold", multipart_copy_threshold, 0, _MAX_PUT)
        self._parts: dict[str, ThreadPoolExecutor] = {}  # by lane (``_part_executor``)
        self._part_lock = threading.Lock()
        self._part_slots = threading.BoundedSemaphore(self.max_concurrency)
        _forkable.add(self)
        self._transport = self._transport_class(_parse_timeout(timeout), verify, proxy, environ)

    @property
    def endpoint(self) -> str:
        """The endpoint URL requests go to, such as ``https://s3.us-east-1.amazonaws.com``."""
        return str(self._endpoint)

    @property
    def tls(self) -> bool:
        """True when requests go over HTTPS."""
        return self._endpoint.scheme == "https"

    @property
    def credentials(self) -> Credentials | None:
        """The credentials requests are signed with now (their repr hides the secret);
        None for an anonymous connection."""
        return None if self._credential_source is None else self._credential_source.current()

    def __repr__(self) -> str:
        access_key = None if self._credential_source is None else self._credential_source.access_key
        return (
            f"<{type(self).__name__} endpoint={self.endpoint!r} region={self.region!r} "
            f"bucket={self.default_bucket!r} access_key={access_key!r}>"
        )

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """A Connection pickles as its settings and is made anew from them where it is
        unpickled (``ProcessPoolExecutor``, multiprocessing's spawn, Dask, Ray)."""
        return (_unpickled, (type(self), self._settings(), self._aws_default))

    def _settings(self) -> dict[str, Any]:
        """What a pickle carries: the configuration as resolved here, and the keys only
        when they were given as arguments. Credentials the chain found (environment,
        files, STS, SSO, container, instance metadata) are not carried: the copy looks
        them up again where it runs. Nothing learnt on the way travels (regions of
        buckets, the clock's offset, connections)."""
        transport = self._transport
        settings: dict[str, Any] = {
            "endpoint": str(self._endpoint), "addressing": self._endpoint.addressing, "region": self.region,
            "default_bucket": self.default_bucket, "profile": self._profile, "retries": self._retries,
            "timeout": (transport._connect_timeout, transport._read_timeout, transport._deadline),
            "verify": transport._verify,
            "proxy": transport._proxy_setting, "anonymous": self._credential_source is None,
            "multipart_threshold": self.multipart_threshold, "multipart_size": self.multipart_size,
            "max_concurrency": self.max_concurrency, "multipart_copy_threshold": self.multipart_copy_threshold,
        }  # fmt: skip
        source = self._credential_source
        if source is not None and source.name == _GIVEN_KEYS:
            keys = source.current()
            settings.update(access_key=keys.access_key, secret_key=keys.secret_key, session_token=keys.token)
        return settings

    def _after_fork(self) -> None:
        """In a forked child the part threads and the locks they held stayed in the parent."""
        self._parts = {}
        self._part_lock = threading.Lock()
        self._part_slots = threading.BoundedSemaphore(self.max_concurrency)

    def close(self) -> None:
        """Close the keep-alive connections and part threads; the object stays usable."""
        with self._part_lock:
            parts, self._parts = self._parts, {}
        for executor in parts.values():
            executor.shutdown(wait=True)
        self._transport.close()

    # -- operations ----------------------------------------------------------

    @_operation
    def upload(
        self,
        key: str,
        local_file: Body,
        bucket: str | None = None,
        expires: Expires = None,
        content_type: str | None = None,
        public: bool = False,
        headers: Mapping[str, object] | None = None,
        rewind: bool = True,
        close: bool = False,
        progress: Progress | None = None,
        tags: Mapping[str, str] | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        sse_customer_key: bytes | None = None,
        checksum: str | None = None,
    ) -> Steps[Response]:
        """Store ``local_file`` (bytes, a path, or a binary file/stream) under ``key``.

        Above ``multipart_threshold`` bytes (and for streams that go past it) the object
        is sent as a multipart upload, its parts in parallel; a failed multipart upload
        is aborted, so no parts are left behind.

        Args:
            expires: seconds, ``'max'`` (a year), timedelta or datetime (Cache-Control, Expires).
            content_type: else guessed from the key, else ``application/octet-stream``.
            public: send ``x-amz-acl: public-read``; by default no ACL is sent.
            headers: extra headers; names that are not standard headers or ``x-amz-*``
                become user metadata (``x-amz-meta-<name>``).
            rewind: upload a seekable file from its start, not its position.
            close: close ``local_file`` afterwards, even on error.
            progress: called as ``progress(bytes_sent, total_or_None)`` as parts (or
                the whole object) are stored.
            tags: the object's tags (at most 10), stored with it.
            sse, kms_key_id: server-side encryption, ``'AES256'`` or ``'aws:kms'``
                (with the KMS key, else the account's).
            sse_customer_key: 32 bytes to encrypt with (SSE-C; HTTPS only): every read
                then needs the same key.
            checksum: ``'crc32'``, ``'sha1'`` or ``'sha256'``: S3 checks the bytes
                against it and keeps it (for a multipart upload, one per part and their
                composite). Off by default: some services refuse the headers.

        Raises:
            InvalidInput, InvalidType: before sending, for bad arguments.
            HTTPError, TransportError: when the upload did not succeed.
        """
        source: Any = local_file
        try:
            target, wire, algorithm = self._upload_wire(key, bucket, expires, content_type, public, headers, tags,
                                                        sse, kms_key_id, sse_customer_key, checksum)  # fmt: skip
            if hasattr(local_file, "__aiter__"):
                source = self._async_source(local_file)
            taking = _partial(_body, source, rewind, self.multipart_threshold + 1)
            in_memory = isinstance(local_file, (bytes, bytearray, memoryview))
            # off the loop; a stream (an async iterable too) may wait on its writer, as its parts may
            body, more = taking() if in_memory else (yield _Work(taking, not isinstance(source, os.PathLike)))
            try:
                if more is None and body.length <= self.multipart_threshold:
                    return (yield from _upload_whole(self, target, wire, body, algorithm, progress))
                return (yield from _upload_by_parts(self, target, wire, body, more, algorithm, progress))
            finally:
                body.close()
        finally:
            if close and hasattr(local_file, "close"):
                local_file.close()
            if source is not local_file:  # the async iterable's reader: no thread waits on for it
                source.close()

    def _async_source(self, chunks: Any) -> IO[bytes]:
        """An async iterable of bytes to upload: ``AsyncConnection``'s alone."""
        raise InvalidType("an async iterable of bytes is for AsyncConnection.upload; give this one bytes or a file")

    def _upload_wire(
        self, key: str, bucket: str | None, expires: Expires, content_type: str | None, public: bool,
        headers: Mapping[str, object] | None, tags: Mapping[str, str] | None, sse: str | None,
        kms_key_id: str | None, sse_customer_key: bytes | None, checksum: str | None,
    ) -> tuple[tuple[str, str], dict[str, str], str | None]:  # fmt: skip
        """An upload's arguments checked and made headers: ((bucket, key), headers, checksum algorithm)."""
        key, bucket = _check_key(key), self._bucket(bucket)
        wire = _upload_headers(key, expires, content_type, public, headers, self._clock.time())
        if tags is not None:
            wire.update(_tagging(tags))
        if sse is not None or kms_key_id is not None or sse_customer_key is not None:
            wire.update(self._encryption(bucket, sse, kms_key_id, sse_customer_key))
        return (bucket, key), wire, _check_checksum(checksum)

    def open(
        self,
        key: str,
        mode: str = "rb",
        bucket: str | None = None,
        *,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
        sse_customer_key: bytes | None = None,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        **upload: Any,
    ) -> IO[Any]:
        """An object as a file: ``"rb"`` (or ``"r"``, text) reads it, seekable, by ranged
        GETs pinned to the version opened; ``"wb"`` (or ``"w"``) writes it, streaming.

        Reading asks only for what is read (a zip's directory and one member, say),
        in ranges that grow while reads go on in order. Writing sends a small object
        as one PUT and a big one as multipart parts while you write; the object
        exists once ``close()`` (or the end of a ``with`` block) succeeded, and an
        exception in the block, or a file dropped unclosed, stores nothing.

        Args:
            headers, sse_customer_key: as for ``get`` (reading) or ``upload`` (writing).
            encoding, errors, newline: for text modes, as ``open()`` takes them.
            upload: writing only, what ``upload`` takes: ``expires``,
                ``content_type``, ``public``, ``tags``, ``sse``, ``kms_key_id``,
                ``checksum``.

        Raises:
            InvalidInput, InvalidType: before anything is sent, for bad arguments.
            HTTPError, TransportError: as reads or writes go, when they fail.
        """
        if mode not in ("rb", "r", "wb", "w"):
            raise InvalidInput(f"mode must be 'rb', 'r', 'wb' or 'w'; got {mode!r}")
        if "b" in mode and (encoding, errors, newline) != (None, None, None):
            raise InvalidInput("encoding, errors and newline are for text modes ('r', 'w')")
        options = self._file_options(key, mode, bucket, version_id, headers, sse_customer_key, upload)
        if options is None:
            head = self.head(key, bucket, headers, version_id, sse_customer_key)
            raw = _ObjectReader(self, key, bucket, version_id, headers, sse_customer_key, head)
            reader = io.BufferedReader(raw, _CHUNK)
            return reader if mode == "rb" else io.TextIOWrapper(reader, encoding or "utf-8", errors, newline)
        writer: IO[Any] = _abort_on_error(io.BufferedWriter)(_ObjectWriter(self, key, bucket, options), _CHUNK)
        return (
            writer if mode == "wb" else _abort_on_error(io.TextIOWrapper)(writer, encoding or "utf-8", errors, newline)
        )

    def _file_options(
        self, key: str, mode: str, bucket: str | None, version_id: str | None, headers: Mapping[str, object] | None,
        sse_customer_key: bytes | None, upload: dict[str, Any],
    ) -> dict[str, Any] | None:  # fmt: skip
        """``open``'s arguments checked: None to read, else the options of the upload that writes."""
        _check_key(key)
        if mode.startswith("r"):
            if upload:
                raise InvalidInput(f"{', '.join(sorted(upload))}: for writing, not for mode {mode!r}")
            return None
        allowed = {"expires", "content_type", "public", "tags", "sse", "kms_key_id", "checksum"}
        if version_id is not None or not set(upload) <= allowed:
            wrong = sorted(set(upload) - allowed) or ["version_id"]
            raise InvalidInput(f"{', '.join(wrong)}: not an option of open() for writing")
        options = {**upload, "headers": headers, "sse_customer_key": sse_customer_key}
        self._upload_wire(key, bucket, options.get("expires"), options.get("content_type"),
                          options.get("public", False), headers, options.get("tags"), options.get("sse"),
                          options.get("kms_key_id"), sse_customer_key, options.get("checksum"))  # fmt: skip
        return options

    @_operation
    def copy(
        self,
        from_key: str,
        from_bucket: str | None,
        to_key: str,
        to_bucket: str | None = None,
        metadata: Mapping[str, object] | None = None,
        public: bool = False,
        headers: Mapping[str, object] | None = None,
        replace_metadata: bool = False,
        tags: Mapping[str, str] | None = None,
        version_id: str | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        sse_customer_key: bytes | None = None,
        source_sse_customer_key: bytes | None = None,
    ) -> Steps[Response]:
        """Copy an object inside S3; ``to_bucket`` defaults to ``from_bucket``.

        Without ``metadata`` the copy keeps the source's metadata. With it, the
        source's standard headers and user metadata are read (HEAD) and kept,
        with ``metadata`` applied on top (a None value removes a name).

        Args:
            headers: headers of the copy request that S3 does not keep as metadata,
                such as ``x-amz-storage-class`` or ``x-amz-acl``.
            replace_metadata: give the copy ``metadata`` alone (and a Content-Type
                guessed from ``to_key`` unless it names one), none of the source's.
            tags: the copy's tags instead of the source's.
            version_id: copy that version of the source.
            sse, kms_key_id, sse_customer_key: the copy's encryption, as for ``upload``.
            source_sse_customer_key: the SSE-C key of the source, if it has one.

        Raises:
            InvalidInput, InvalidType: before sending, for bad arguments.
            HTTPError, TransportError: when the copy did not succeed (S3's 200 answer
                with an error body included).
        """
        from_key, to_key, from_bucket = _check_key(from_key), _check_key(to_key), self._bucket(from_bucket)
        to_bucket = _check_bucket(to_bucket or from_bucket)
        extra = {**_acl_headers(public), **{k: v for k, v in _wire_headers(headers).items() if v is not None}}
        extra.update(self._encryption(to_bucket, sse, kms_key_id, sse_customer_key))
        extra.update(self._encryption(from_bucket, None, None, source_sse_customer_key, _COPY_SSE_C))
        reading = {**_picked(extra, _ACCOUNT), **_customer_key_headers(source_sse_customer_key, _SSE_C)}  # HEAD, tags
        tagging = _tagging(tags)
        _check_metadata_size({k: v for k, v in _wire_headers(metadata).items() if v is not None})
        stored = _partial(_copy_headers, to_key, metadata, replace_metadata)
        copy_source = _copy_source(from_bucket, from_key, version_id)
        try:
            source = None
            if (metadata is not None and not replace_metadata) or self.multipart_copy_threshold < _MAX_PUT:
                source = yield from Connection.head.steps(self, from_key, from_bucket, reading, version_id)
            if source is None or int(source.headers.get("Content-Length", 0)) <= self.multipart_copy_threshold:
                replaced = None if source is None and not replace_metadata else stored(source)
                wire, retagged = {**extra, "x-amz-copy-source": copy_source}, None if tags is None else tagging
                copied = yield from _copy_whole(self, (to_bucket, to_key), wire, replaced, retagged)
                if copied is not None:
                    return copied
                source = yield from Connection.head.steps(self, from_key, from_bucket, reading, version_id)
            if tags is None and source.headers.get("x-amz-tagging-count", "0") != "0":  # parts carry no tags
                tags = yield from Connection.get_tags.steps(self, from_key, from_bucket, version_id,
                                                            _picked(extra, _ACCOUNT))  # fmt: skip
                tagging = _tagging(tags)
            copying = _copy_by_parts(self, source, copy_source, (to_bucket, to_key), extra, stored(source), tagging)
            return (yield from copying)
        except NotFound as missing:  # a copy's request names its target: say which side is missing
            with _suppress(S3Error):
                if (missing.bucket, missing.key) == (to_bucket, to_key) and (
                    missing.code != "NoSuchBucket" or (yield from Connection.bucket_exists.steps(self, to_bucket))
                ):
                    missing.bucket, missing.key = from_bucket, from_key
            raise

    def _encryption(
        self,
        bucket: str,
        sse: str | None,
        kms_key_id: str | None,
        customer_key: bytes | None,
        names: tuple[str, ...] = _SSE_C,
    ) -> dict[str, str]:
        """``_sse_headers`` (or the copy source's SSE-C headers, by ``names``), refusing
        to send an SSE-C key where it would travel in clear, as S3 itself does."""
        if customer_key is not None and self._route(bucket)[1].scheme != "https":
            raise InvalidInput("an SSE-C key is sent only over HTTPS (it would travel in clear)")
        if names is not _SSE_C:
            return _customer_key_headers(customer_key, names)
        return _sse_headers(sse, kms_key_id, customer_key)

    @_operation
    def update_metadata(
        self,
        key: str,
        metadata: Mapping[str, object] | None = None,
        bucket: str | None = None,
        public: bool = False,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[Response]:
        """Change an object's headers and user metadata in place (a copy onto itself).

        Its Content-Type, other standard headers and user metadata are kept
        unless ``metadata`` overrides them (a None value removes a name). The
        ACL is reset to private, or public-read with ``public=True``. With
        ``version_id``, that version is copied, as the newest.

        Raises:
            InvalidInput, InvalidType: before sending, for bad arguments.
            HTTPError, TransportError: when the update did not succeed.
        """
        bucket = self._bucket(bucket)
        copying = Connection.copy.steps(self, key, bucket, key, bucket, metadata or {}, public, headers,
                                        version_id=version_id)  # fmt: skip
        return (yield from copying)

    @_operation
    def delete(
        self,
        key: str,
        bucket: str | None = None,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[Response]:
        """Delete an object (S3 answers 204 even when it did not exist).

        On a versioned bucket this adds a delete marker; with ``version_id``
        it removes that version for good.

        Raises:
            InvalidInput, InvalidType: before sending, for bad arguments.
            HTTPError, TransportError: when the delete did not succeed.
        """
        key, bucket = _check_key(key), self._bucket(bucket)
        return (yield from self._attempts(_Request("DELETE", bucket, key, _plain(headers), query=_version(version_id))))

    @_operation
    def get(
        self,
        key: str,
        bucket: str | None = None,
        range: tuple[int, int | None] | int | str | None = None,
        headers: Mapping[str, object] | None = None,
        progress: Progress | None = None,
        version_id: str | None = None,
        sse_customer_key: bytes | None = None,
        checksum: bool = False,
    ) -> Steps[Response]:
        """Fetch an object (or one version of it). Its body streams: read ``.content``
        or iterate ``.iter_content()``.

        Args:
            range: ``(first, last)`` byte offsets (inclusive; ``last`` may be
                None), ``-n`` for the last n bytes, or a ``bytes=`` string.
            headers: request headers such as ``If-None-Match``.
            progress: called as ``progress(bytes_read, total_or_None)``.
            sse_customer_key: the object's SSE-C key (32 bytes), if it has one.
            checksum: check the body, as it is read, against the checksum S3
                keeps for the object (CRC32, SHA-1, SHA-256, whole or
                composite); one S3 keeps in another algorithm raises S3Error
                at once. An object without one is read unchecked.

        Raises:
            InvalidInput, InvalidType: before sending, for bad arguments.
            HTTPError, TransportError: when the object cannot be read.
        """
        if hasattr(range, "items"):  # the 2013 signature was get(key, bucket, headers)
            range, headers = None, range
        key, bucket = _check_key(key), self._bucket(bucket)
        wire = self._read_headers(bucket, headers, sse_customer_key)
        if range is not None:
            if checksum:
                raise InvalidInput("checksum=True checks whole objects: a range has no checksum of its own")
            wire["Range"] = _range_header(range)
        if checksum:
            wire["x-amz-checksum-mode"] = "ENABLED"
        request = _Request("GET", bucket, key, wire, query=_version(version_id))
        response = yield from self._attempts(request, stream=True, progress=progress)
        if checksum:
            try:
                response._check = yield from _checker(self, response, request)
            except BaseException:
                response._drop_body()
                raise
        if response.headers.get("ETag") or response.headers.get("x-amz-version-id", "null") != "null":
            response._reopen = _partial(_reopen, self, request)  # not the response: no cycle to outlive it
            response._resumes = self._retries - 1
        return response

    @_operation
    def head(
        self,
        key: str,
        bucket: str | None = None,
        headers: Mapping[str, object] | None = None,
        version_id: str | None = None,
        sse_customer_key: bytes | None = None,
    ) -> Steps[Response]:
        """An object's headers without its body; ``.metadata`` holds its user metadata.

        Raises:
            NotFound: ``NoSuchKey`` or ``NoSuchBucket`` (a HEAD's 404 does not say which:
                a HEAD of the bucket tells them apart), or ``NoSuchVersion``.
            HTTPError: another error.
        """
        try:
            return (yield from self._head(key, bucket, headers, version_id, sse_customer_key))
        except NotFound as missing:
            try:
                bucket_missing = missing.code == "NoSuchKey" and not (
                    yield from Connection.bucket_exists.steps(self, missing.bucket)
                )
            except S3Error:
                bucket_missing = False
            if bucket_missing:
                code, message = _MISSING_BUCKET
                raise NotFound(404, code, message, request_id=missing.request_id, host_id=missing.host_id,
                               bucket=missing.bucket, response=missing.response) from None  # fmt: skip
            raise

    def _head(
        self, key: str, bucket: str | None, headers: Mapping[str, object] | None, version_id: str | None,
        sse_customer_key: bytes | None,
    ) -> Steps[Response]:  # fmt: skip
        key, bucket = _check_key(key), self._bucket(bucket)
        wire = self._read_headers(bucket, headers, sse_customer_key)
        return (yield from self._attempts(_Request("HEAD", bucket, key, wire, query=_version(version_id))))

    def _read_headers(
        self, bucket: str, headers: Mapping[str, object] | None, sse_customer_key: bytes | None
    ) -> dict[str, str]:
        """The caller's headers for a read, and the SSE-C key's."""
        return {**_plain(headers), **self._encryption(bucket, None, None, sse_customer_key)}

    @_operation
    def head_object(
        self, key: str, bucket: str | None = None, headers: Mapping[str, object] | None = None
    ) -> Steps[Response]:
        """``head``, by its 2013 name."""
        return (yield from Connection.head.steps(self, key, bucket, headers))

    @_operation
    def exists(
        self,
        key: str,
        bucket: str | None = None,
        headers: Mapping[str, object] | None = None,
        version_id: str | None = None,
        sse_customer_key: bytes | None = None,
    ) -> Steps[bool]:
        """True if the object (or that version) exists, False on 404; other errors raise."""
        try:
            yield from self._head(key, bucket, headers, version_id, sse_customer_key)
        except HTTPError as error:
            if error.status == 404:
                return False
            raise
        return True

    @_operation
    def download(
        self, key: str, target: str | os.PathLike[str] | IO[bytes], bucket: str | None = None,
        progress: Progress | None = None, version_id: str | None = None,
        headers: Mapping[str, object] | None = None, sse_customer_key: bytes | None = None,
        checksum: bool = False,
    ) -> Steps[Response]:  # fmt: skip
        """Stream an object into a file path or a binary file object, in bounded memory.

        A path is written to a temporary file beside it and renamed into
        place only once the whole object arrived intact (length checked, and
        MD5 checked when the ETag is one), so a failure never leaves a half
        file. An object over ``multipart_threshold`` bytes going to a path
        comes as ranges of ``multipart_size`` bytes, ``max_concurrency`` at
        a time, each written in place, all pinned to the first answer's ETag
        (see ``_download_ranges``). Returns the response of the first request
        (its body is consumed).

        Raises:
            HTTPError, TransportError: when the object could not be read whole.
        """
        if isinstance(target, (str, os.PathLike)) and not checksum and hasattr(os, "pwrite"):
            return (yield from _download_ranges(self, key, os.fspath(target), bucket, progress, version_id, headers,
                                                sse_customer_key))  # fmt: skip
        getting = Connection.get.steps(
            self, key, bucket, None, headers, progress, version_id, sse_customer_key, checksum
        )
        return (yield from _save((yield from getting), target))

    @_operation
    def delete_many(
        self,
        keys: Iterable[str | tuple[str, str]],
        bucket: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[dict[str | tuple[str, str], str]]:
        """Delete many objects, up to 1,000 a request (DeleteObjects).

        ``keys`` are keys, or (key, version id) pairs to remove versions for
        good. Returns those that could not be deleted, as given, each with
        its S3 error code (an empty dict when all went). Keys that did not
        exist count as deleted. A service without DeleteObjects
        (``NotImplemented``, as Google Cloud Storage answers) gets one DELETE
        per key instead.

        Raises:
            InvalidInput, InvalidType: before sending, for a bad key or bucket.
            HTTPError, TransportError: when a whole request failed.
        """
        bucket = self._bucket(bucket)
        given = list(keys)
        checked: list[tuple[str, str | None]] = [
            (_check_key(item[0]), _check_version(item[1])) if isinstance(item, tuple) else (_check_key(item), None)
            for item in given
        ]
        failed: dict[tuple[str, str | None], str] = {}
        for start in range(0, len(checked), 1000):
            batch = checked[start : start + 1000]
            body = _delete_body(batch)
            wire = {**_plain(headers), "Content-Type": "application/xml", "Content-MD5": _content_md5(body)}
            request = _Request("POST", bucket, "", wire, _Body(body), [("delete", "")])
            try:
                failed.update(_delete_errors((yield from self._attempts(request, error_in_body=True)).content))
            except HTTPError as error:
                if error.code != "NotImplemented":
                    raise
                _log("bucket %s has no DeleteObjects: deleting %d keys one by one", bucket, len(batch))
                failed.update((yield from self._delete_each(batch, bucket, _plain(headers))))
        return {item: failed[pair] for item, pair in zip(given, checked) if pair in failed}

    def _delete_each(
        self, items: list[tuple[str, str | None]], bucket: str, headers: dict[str, str]
    ) -> Steps[dict[tuple[str, str | None], str]]:
        """DELETE every key, ``max_concurrency`` at a time; the failed ones with their codes."""

        def delete(item: tuple[str, str | None]) -> Steps[tuple[str, int]]:
            try:
                yield from Connection.delete.steps(self, item[0], bucket, item[1], headers)
            except HTTPError as error:
                return error.code, 0
            return "", 0

        codes = yield _Gather(map(delete, items), None, None)
        return {item: code for item, (code, _) in zip(items, codes) if code}

    @_operation
    def create_bucket(
        self, bucket: str | None = None, public: bool = False, headers: Mapping[str, object] | None = None
    ) -> Steps[Response]:
        """Create a bucket in the connection's region (``public=True``: public-read ACL).

        Outside us-east-1 (and R2's ``auto``) the region goes in the body as
        the bucket's LocationConstraint, as S3 requires.

        Raises:
            HTTPError: e.g. ``BucketAlreadyOwnedByYou`` or ``BucketAlreadyExists``.
        """
        bucket = self._bucket(bucket)
        body = None
        region = self._route(bucket)[0]
        if region not in ("us-east-1", "auto"):
            constraint = f"<LocationConstraint>{_xml_text(region)}</LocationConstraint>"
            body = _Body(f"<CreateBucketConfiguration>{constraint}</CreateBucketConfiguration>".encode())
        request = _Request("PUT", bucket, "", {**_acl_headers(public), **_plain(headers)}, body)
        return (yield from self._attempts(request))

    @_operation
    def delete_bucket(self, bucket: str | None = None, headers: Mapping[str, object] | None = None) -> Steps[Response]:
        """Delete an empty bucket.

        Raises:
            HTTPError: e.g. ``BucketNotEmpty`` or ``NoSuchBucket``.
        """
        return (yield from self._attempts(_Request("DELETE", self._bucket(bucket), "", _plain(headers))))

    @_operation
    def list_buckets(self) -> Steps[list[tuple[str, _datetime | None]]]:
        """The buckets the credentials own, as (name, creation time), every page.

        Raises:
            HTTPError, TransportError: when the listing fails.
        """
        buckets: list[tuple[str, _datetime | None]] = []
        token = None
        while True:
            query: Query = [("continuation-token", token)] if token else []
            root = _xml((yield from self._attempts(_Request("GET", "", "", query=query))).content)
            for element in root.iter():
                if _local_name(element) == "Bucket":
                    fields = _children(element)
                    buckets.append((_text(fields, "Name") or "", _parse_time(_text(fields, "CreationDate"))))
            token = _text(_children(root), "ContinuationToken")
            if not token:
                return buckets

    @_operation
    def head_bucket(self, bucket: str | None = None, headers: Mapping[str, object] | None = None) -> Steps[Response]:
        """HEAD the bucket: its ``x-amz-bucket-region`` header names its region.

        Raises:
            HTTPError: 404 (no such bucket), 403 (it exists, but not for these keys).
        """
        return (yield from self._attempts(_Request("HEAD", self._bucket(bucket), "", _plain(headers))))

    @_operation
    def bucket_exists(self, bucket: str | None = None, headers: Mapping[str, object] | None = None) -> Steps[bool]:
        """True if the bucket exists and these keys may use it, False on 404; other errors raise
        (a 403 means the bucket exists but is someone else's, or the keys may not read it)."""
        try:
            yield from Connection.head_bucket.steps(self, bucket, headers)
        except HTTPError as error:
            if error.status == 404:
                return False
            raise
        return True

    @_operation
    def get_tags(
        self,
        key: str,
        bucket: str | None = None,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[dict[str, str]]:
        """An object's tags (GetObjectTagging)."""
        key, bucket = _check_key(key), self._bucket(bucket)
        query = [("tagging", ""), *_version(version_id)]
        root = _xml((yield from self._attempts(_Request("GET", bucket, key, _plain(headers), query=query))).content)
        tags = {}
        for element in root.iter():
            if _local_name(element) == "Tag":
                fields = _children(element)
                tags[_text(fields, "Key") or ""] = _text(fields, "Value") or ""
        return tags

    @_operation
    def set_tags(
        self,
        key: str,
        tags: Mapping[str, str],
        bucket: str | None = None,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[Response]:
        """Replace an object's tags (at most 10) with ``tags``."""
        key, bucket = _check_key(key), self._bucket(bucket)
        body = _tags_body(_check_tags(tags))
        wire = {**_plain(headers), "Content-Type": "application/xml", "Content-MD5": _content_md5(body)}
        return (
            yield from self._attempts(
                _Request("PUT", bucket, key, wire, _Body(body), [("tagging", ""), *_version(version_id)])
            )
        )

    @_operation
    def delete_tags(
        self,
        key: str,
        bucket: str | None = None,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Steps[Response]:
        """Remove every tag of an object."""
        key, bucket = _check_key(key), self._bucket(bucket)
        query = [("tagging", ""), *_version(version_id)]
        return (yield from self._attempts(_Request("DELETE", bucket, key, _plain(headers), query=query)))

    @_operation
    def initiate_multipart_upload(
        self, key: str, bucket: str | None = None, headers: Mapping[str, object] | None = None
    ) -> Steps[MultipartUpload]:
        """Begin a multipart upload to drive by hand (``upload`` does it all by itself).

        ``headers`` are stored with the object, as with ``upload``: Content-Type
        (else guessed from the key), Cache-Control, ``x-amz-acl``, metadata.
        """
        key, bucket = _check_key(key), self._bucket(bucket)
        wire = _upload_headers(key, None, None, False, headers, self._clock.time())
        request = _Request("POST", bucket, key, wire, query=[("uploads", "")])
        created = yield from self._attempts(request, idempotent=True)
        return self._multipart_upload(bucket, key, _upload_id(created.content))

    def _multipart_upload(self, bucket: str, key: str, upload_id: str) -> MultipartUpload:
        return MultipartUpload(self, bucket, key, upload_id)

    def list_multipart_uploads(
        self,
        prefix: str = "",
        bucket: str | None = None,
        encoding: str | None = None,
        max_uploads: int = 1000,
        key_marker: str = "",
        upload_id_marker: str = "",
    ) -> Iterator[MultipartUpload]:
        """The multipart uploads begun and neither completed nor aborted, every page.

        Keys come decoded whatever ``encoding`` says (kept for 0.1.12 callers).
        """
        bucket = self._bucket(bucket)
        _check_int("max_uploads", max_uploads, 1, 1000)
        return self._iterate(self._uploads(bucket, prefix, max_uploads, key_marker, upload_id_marker))

    def _uploads(
        self,
        bucket: str,
        prefix: str,
        page: int,
        key_marker: str,
        id_marker: str,
        into: list[MultipartUpload] | None = None,
    ) -> Generator[Any, Any, None]:
        """Steps that yield each upload as data, or with ``into``, put them there."""  # fmt: skip
        query = [("max-uploads", str(page)), ("prefix", prefix), ("uploads", "")]
        ids = ("upload-id-marker", "NextUploadIdMarker")

        def uploads(root: Any) -> Iterable[MultipartUpload]:
            found = [self._multipart_upload(bucket, key, upload_id) for key, upload_id, _, _ in _parse_uploads(root)]
            if into is None:
                return found
            into.extend(found)
            return ()

        yield from self._marked_pages(bucket, query, {}, ids, uploads, key_marker, id_marker)

    def _marked_pages(
        self,
        bucket: str,
        query: Query,
        headers: dict[str, str],
        ids: tuple[str, str],
        entries: Callable[[Any], Iterable[Any]],
        key_marker: str = "",
        id_marker: str = "",
    ) -> Generator[Any, Any, None]:
        """Steps that yield the ``entries`` of each XML page of a listing that goes on by a
        key marker and an id marker (ListMultipartUploads, ListObjectVersions); ``ids``: the
        id marker's query parameter and the answer's field for the next one."""
        while True:
            markers = [(name, value) for name, value in (("key-marker", key_marker), (ids[0], id_marker)) if value]
            page = [("encoding-type", "url"), *query, *markers]
            root = _xml((yield from self._attempts(_Request("GET", bucket, "", dict(headers), query=page))).content)
            yield from entries(root)
            top = _children(root)
            if _text(top, "IsTruncated") != "true":
                return
            key_marker = _decoder(root)(_text(top, "NextKeyMarker") or "")
            id_marker = _text(top, ids[1]) or ""

    def list_versions(
        self, prefix: str = "", bucket: str | None = None, headers: Mapping[str, object] | None = None
    ) -> Iterator[VersionInfo]:
        """Every version and delete marker under ``prefix`` (ListObjectVersions, every page),
        in the server's order: by key, and on S3 newest first (some services list a key's
        delete markers after its versions; ``is_latest`` says which is current).

        Raises:
            InvalidInput, InvalidType: at once, for bad arguments.
            HTTPError, TransportError: while iterating, when a page fails.
        """
        bucket = self._bucket(bucket)
        if not isinstance(prefix, str):
            raise InvalidType(f"prefix must be str; got {type(prefix).__name__}")
        ids = ("version-id-marker", "NextVersionIdMarker")
        return self._iterate(self._marked_pages(bucket, [("prefix", prefix), ("versions", "")], _plain(headers), ids,
                                                _parse_versions))  # fmt: skip

    @_operation
    def get_all_multipart_uploads(self, bucket: str | None = None, prefix: str = "") -> Steps[list[MultipartUpload]]:
        """``list_multipart_uploads`` as a list (note: bucket first, as in 0.1.12)."""
        uploads: list[MultipartUpload] = []
        listing = self._uploads(self._bucket(bucket), prefix, 1000, "", "", uploads)
        yield from listing
        return uploads

    def presign(
        self,
        key: str,
        bucket: str | None = None,
        expires: int | _timedelta = 3600,
        method: str = "GET",
        headers: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
        version_id: str | None = None,
    ) -> str:
        """A URL that lets anyone holding it do one ``method`` on the object until it expires.

        Args:
            expires: seconds (1 to 604,800, seven days) or a timedelta.
            method: ``GET``, ``PUT``, ``HEAD``, ``DELETE`` or ``POST``.
            headers: headers the user of the URL must send exactly (they are
                signed), e.g. ``{"Content-Type": "image/png"}`` for a PUT.
            params: query parameters signed into the URL, e.g.
                ``{"response-content-disposition": "attachment"}`` or
                ``{"uploadId": …, "partNumber": "3"}`` for a part's PUT.
            version_id: the version a GET or HEAD reads (``versionId``).

        Raises:
            InvalidInput, InvalidType: for bad arguments.
        """
        key, bucket = _check_key(key), self._bucket(bucket)
        seconds = self._presign_seconds(expires)
        if method not in ("GET", "PUT", "HEAD", "DELETE", "POST"):
            raise InvalidInput(f"method must be GET, PUT, HEAD, DELETE or POST; got {method!r}")
        query = [*_presign_params(params), *_version(version_id)]
        region, endpoint = self._route(bucket)
        host, path = endpoint.locate(bucket, key)
        wire = _plain(headers)
        credentials = self.credentials
        if credentials is None:  # anonymous: the plain URL is all anyone needs
            return f"{endpoint.scheme}://{host}{path}" + (f"?{_canonical_query_string(query)}" if query else "")
        now = self._clock.now()
        signed = _presign_query(method, path, host, wire, credentials, region, now, int(seconds), params=query)
        return f"{endpoint.scheme}://{host}{path}?{signed}"

    def presign_post(
        self,
        key: str,
        bucket: str | None = None,
        expires: int | _timedelta = 3600,
        conditions: Iterable[object] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """What an HTML form needs to upload straight to S3 from a browser:
        ``{"url": …, "fields": {…}}`` (a SigV4 POST policy).

        The form posts ``fields`` as hidden inputs, then the file as the last
        input, named ``file``, to ``url``.

        Args:
            key: the object's key; one ending in ``${filename}`` lets the
                browser put the file's name there.
            conditions: more POST policy conditions, such as
                ``["content-length-range", 1, 10485760]`` or
                ``["starts-with", "$Content-Type", "image/"]``.
            fields: form fields to send (and to require, exactly), such as
                ``Content-Type``, ``success_action_status``, ``acl`` or
                ``x-amz-meta-*``.

        Raises:
            InvalidInput, InvalidType: for bad arguments.
        """
        key, bucket = _check_key(key), self._bucket(bucket)
        seconds = self._presign_seconds(expires)
        given = dict(_presign_params(fields, "fields"))
        extra = list(conditions or ())
        for condition in extra:
            if not (isinstance(condition, dict) and len(condition) == 1) and not (
                isinstance(condition, list) and len(condition) == 3
            ):
                raise InvalidInput(f"a condition is a one-item dict or a list of three; got {condition!r}")
        region, endpoint = self._route(bucket)
        host, path = endpoint.locate(bucket, "")
        url = f"{endpoint.scheme}://{host}{path.rstrip('/')}/"
        credentials = self.credentials
        if credentials is None:
            return {"url": url, "fields": {"key": key, **given}}
        now = self._clock.now()
        return {"url": url, "fields": _post_policy(bucket, key, given, extra, credentials, region, now, int(seconds))}

    def _presign_seconds(self, expires: int | _timedelta) -> float:
        """A presigned lifetime in seconds, checked (warning when the credentials expire first)."""
        seconds = expires.total_seconds() if isinstance(expires, _timedelta) else expires
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 1 <= seconds <= 604800:
            raise InvalidInput(f"expires must be 1 to 604800 seconds (7 days); got {expires!r}")
        credentials = self.credentials
        if credentials is not None and credentials.expiry is not None and time.time() + seconds > credentials.expiry:
            import warnings

            warnings.warn(
                f"the URL asks for {int(seconds)} s but the temporary credentials signing it expire in "
                f"{max(0, int(credentials.expiry - time.time()))} s: it will stop working then",
                stacklevel=3,
            )
        return seconds

    # -- plumbing ------------------------------------------------------------

    def _bucket(self, bucket: str | None) -> str:
        return _check_bucket(bucket if bucket is not None else self.default_bucket)

    def list(
        self,
        prefix: str = "",
        bucket: str | None = None,
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int | None = None,
        headers: Mapping[str, object] | None = None,
    ) -> Iterator[ObjectInfo]:
        """Iterate over the objects under ``prefix`` (ListObjectsV2, every page).

        With a ``delimiter`` (usually ``"/"``), keys below the next delimiter
        are rolled up into one entry whose ``is_prefix`` is True, like folders;
        each page gives its folders first, then its objects. ``max_keys``
        stops after that many entries (asking for no more than needed).

        Raises:
            InvalidInput, InvalidType: at once, for bad arguments.
            HTTPError, TransportError: while iterating, when a page fails.
        """
        bucket = self._bucket(bucket)
        query = [("list-type", "2"), ("encoding-type", "url"), ("prefix", prefix)]
        for name, value in (("delimiter", delimiter), ("start-after", start_after)):
            if value is not None:
                query.append((name, value))
        for _, value in query:
            if not isinstance(value, str):
                raise InvalidType(f"prefix, delimiter and start_after must be str; got {type(value).__name__}")
        left = None if max_keys is None else _check_int("max_keys", max_keys, 0, 2**63)
        return self._iterate(self._pages(bucket, query, left, _plain(headers)))

    def _pages(self, bucket: str, query: Query, left: int | None, headers: dict[str, str]) -> Generator[Any, Any, None]:
        token = None
        while left != 0:
            page = query + ([("continuation-token", token)] if token else [])
            if left is not None:
                page.append(("max-keys", str(min(left, 1000))))
            response = yield from self._attempts(_Request("GET", bucket, "", dict(headers), query=page))
            entries, token = _parse_listing(response.content)
            if left is not None:
                entries, left = entries[:left], max(0, left - len(entries))
            yield from entries
            if not token:
                return

    def _route(self, bucket: str) -> tuple[str, _Endpoint]:
        """The region and endpoint for a bucket: the connection's, unless S3 named another."""
        return self._bucket_routes.get(bucket, (self.region, self._endpoint))

    def _learn_region(self, bucket: str, region: str) -> None:
        """Remember a bucket's region; on AWS's own endpoint, also its regional host."""
        endpoint = self._endpoint
        if self._aws_default:
            endpoint = _parse_endpoint(f"s3.{region}.amazonaws.com", endpoint.scheme == "https", endpoint.addressing)
        self._bucket_routes[bucket] = (region, endpoint)

    def _mend(
        self, bucket: str, response: Response, error: HTTPError, region: str, mended: set[str], signed_with: float
    ) -> bool:
        """Learn what the refusal taught, each at most once per request: the bucket's
        region from the answer, the clock's offset from the server's (``signed_with``: the
        offset the refused attempt was signed with). True when the request goes again."""
        if error.region and error.region != region and "region" not in mended:
            mended.add("region")
            if not _is_region_name(error.region):  # a forged answer must not name the host keys go to
                raise _no_retry(f"the answer for bucket {bucket!r} names {error.region!r} as its region, "
                                "which is not a region name") from error  # fmt: skip
            _log("bucket %s is in region %s, not %s: retrying there", bucket, error.region, region)
            self._learn_region(bucket, error.region)
            return True
        if error.code in _SKEW_CODES and error.status in (400, 403) and "clock" not in mended:
            mended.add("clock")
            return self._clock.learn(response.headers.get("Date"), signed_with)
        return False

    def _signed(
        self, request: _Request, path: str, headers: dict[str, str], credentials: Credentials | None, region: str
    ) -> dict[str, str]:
        """The headers to send, signed for ``region`` at the (corrected) time; without
        credentials (anonymous), unsigned. Host is left out: the transport writes it."""
        if credentials is None:
            return {k: v for k, v in headers.items() if k not in ("Host", "x-amz-content-sha256")}
        signed = _sign(request.method, path, request.query, headers, headers["x-amz-content-sha256"], credentials,
                       region, self._clock.now())  # fmt: skip
        del signed["Host"]
        return signed

    def _addressed(
        self, request: _Request, headers: dict[str, str], credentials: Credentials | None
    ) -> tuple[str, _Endpoint, str, str, dict[str, str]]:
        """Where one attempt goes and what it says: (region, endpoint, host, target, signed headers)."""
        region, endpoint = self._route(request.bucket)
        host, path = endpoint.locate(request.bucket, request.key)
        query = _canonical_query_string(request.query)
        headers["Host"] = host
        signed = self._signed(request, path, headers, credentials, region)
        return region, endpoint, host, f"{path}?{query}" if query else path, signed

    def _drive(self, steps: Generator[_Effect, Any, T]) -> T:
        """The blocking driver: perform each effect the core yields, here, on this thread, and
        send back its result (or throw in its exception) until the core returns its own."""
        outcome: _deque[T] = _deque()
        for _ in self._iterate(steps, outcome):
            raise AssertionError("an operation's steps yield effects only")
        return outcome[0]

    def _iterate(self, steps: Generator[Any, Any, Any], outcome: _deque[Any] | None = None) -> Iterator[Any]:
        """The blocking driver over steps that may also yield data (a body's views, a listing's
        entries): each effect performed here, each datum handed on as it comes; what the
        steps return goes into ``outcome``."""
        reply: Any = None
        failure: BaseException | None = None
        try:
            while True:
                try:
                    effect = steps.send(reply) if failure is None else steps.throw(failure)
                except StopIteration as done:
                    if outcome is not None:
                        outcome.append(done.value)
                    return
                if isinstance(effect, _EFFECTS):
                    reply, failure = self._perform(effect)
                else:
                    reply = None
                    yield effect
        finally:
            steps.close()

    def _perform(self, effect: _Effect) -> tuple[Any, BaseException | None]:
        """One effect, here, blocking: (its result, None) or (None, what it raised: a Ctrl-C
        too, so that the core aborts what it started)."""
        try:
            if isinstance(effect, _Send):
                return self._transport.send(effect), None
            if isinstance(effect, _Receive):
                if effect.within_deadline:
                    effect.stream.within_deadline()
                return effect.stream.readinto(effect.buffer), None
            if isinstance(effect, _Sleep):
                time.sleep(effect.seconds)
                return None, None
            if isinstance(effect, _Gather):
                return _gather_on_threads(self, effect), None
            return effect.call(), None
        except BaseException as exc:
            return None, exc

    def _attempts(
        self,
        request: _Request,
        error_in_body: bool = False,
        stream: bool = False,
        progress: Progress | None = None,
        check: Callable[[Response], object] | None = None,
        idempotent: bool = False,
        finish: bool = False,
    ) -> Generator[_Effect, Any, Response]:
        """The policy of one request, socket-free: sign, send, judge the answer; return a
        2xx Response or raise. It yields effects for a driver to perform (``_Send``,
        ``_Sleep``, ``_Work``) and never blocks itself. ``finish``: see ``_Send``.

        ``check`` vets a 2xx answer: a retryable TransportError from it is
        retried like a failed request. Read timeouts are retried for GET,
        HEAD, PUT, DELETE and requests marked ``idempotent``. What one more try
        can put right is put right once per request: expired credentials
        renewed, the bucket's region learnt from a 301/400 (and remembered for
        the bucket), the clock's offset learnt from a clock-skew refusal.
        Anything else retryable (``_RETRY_STATUSES``, ``_RETRY_CODES``, a
        transport failure) is tried again after a backoff, up to ``retries``
        attempts in all.
        """
        body = request.body
        if body is not None and body.length > _COALESCE:  # hashing a file or a large body is blocking work
            yield _Work(lambda: body.sha256)
        headers = _framed(request)
        idempotent = idempotent or request.method in ("GET", "HEAD", "PUT", "DELETE")
        source = self._credential_source
        attempt = 0
        mended: set[str] = set()
        while True:
            attempt += 1
            if source is not None and source.due():
                yield _Work(source.current)
            credentials = self.credentials
            signed_with = self._clock.offset
            region, endpoint, host, target, signed = self._addressed(request, headers, credentials)
            started = time.monotonic()
            try:
                status, reason, reply_headers, content = yield _Send(
                    endpoint, host, target, request.method, signed, body, stream, finish
                )
                _log_request(request, status, attempt, started, reply_headers, content)
                response = self._response_class(
                    status, reason, reply_headers, content, f"{endpoint.scheme}://{host}{target}", request.method,
                    request.bucket, request.key or None, progress, attempt,
                )  # fmt: skip
                response._conn = self
                if response.ok and not (error_in_body and _error_fields(response.content)):
                    if check is not None:
                        check(response)
                    return response
            except TransportError as exc:
                _log_request(request, exc, attempt, started)
                if attempt >= self._retries or not exc.retry or (isinstance(exc, Timeout) and not idempotent):
                    raise
                _log("retrying %s %s after %s (attempt %d)", request.method, target.partition("?")[0], exc, attempt)
                yield _Sleep(_backoff(attempt))
                continue
            error = _http_error(response, _secrets(credentials, headers))
            if error.code in _EXPIRED_CODES and "credentials" not in mended and source is not None and source.renews:
                mended.add("credentials")
                yield _Work(_partial(source.renew, stale=credentials))
                continue
            if self._mend(request.bucket, response, error, region, mended, signed_with):
                continue
            if attempt >= self._retries or not (status in _RETRY_STATUSES or error.code in _RETRY_CODES):
                raise error
            where = target.partition("?")[0]
            _log("retrying %s %s after %s %s (attempt %d)", request.method, where, status, error.code, attempt)
            yield _Sleep(_backoff(attempt, _retry_after(response.headers.get("Retry-After"))))


###############################################################################
# Pool ########################################################################
###############################################################################


#: The 2013 name of ``Connection``.
Conn = Connection


class MultipartUpload:
    """A multipart upload driven by hand, as with tinys3 0.1.12 (``upload`` does all
    of this by itself, in parallel, and is what most programs want).

    ``conn.initiate_multipart_upload(key)`` begins one; ``upload_part_from_file``
    sends each part; ``complete_upload()`` joins them into the object, or
    ``cancel_upload()`` drops them. Attributes: ``key``, ``bucket``,
    ``uploadId`` (also ``upload_id``). Safe to share between threads.
    """

    def __init__(self, conn: Connection, bucket: str, key: str, upload_id: str) -> None:
        self.conn, self.bucket, self.key, self.uploadId = conn, bucket, key, upload_id
        self._sent: dict[int, str] = {}

    @property
    def upload_id(self) -> str:
        return self.uploadId

    def __repr__(self) -> str:
        return f"<MultipartUpload {self.key!r} in {self.bucket!r}: {self.uploadId}>"

    def _drive(self, steps: Steps[T]) -> T:
        """Its calls run on its connection's driver (awaited, for an ``AsyncConnection``'s)."""
        return self.conn._drive(steps)

    @_operation
    def upload_part_from_file(
        self,
        fp: Body,
        part_num: int,
        length: int | str | None = None,
        md5: str | None = None,
        close: bool = False,
        rewind: bool = True,
    ) -> Steps[Response]:
        """Send part ``part_num`` (1 to 10,000; each part but the last at least 5 MiB).

        The part is ``length`` bytes of ``fp`` (bytes, a path or a binary
        file) from its start (``rewind``) or from its position, else all of
        it. ``md5``: the part's Content-MD5 (base64), which S3 checks.

        Raises:
            InvalidInput, InvalidType: before sending (a part number out of
                range, a file shorter than ``length``, a part over 5 GiB).
            HTTPError, TransportError: when the part was not stored.
        """
        try:
            number = _check_int("part_num", part_num, 1, _MAX_PARTS)
            size = None if length is None else _check_int("length", _as_int(length), 0, _MAX_PUT)
            body = yield _Work(_partial(_part_body, fp, rewind, size))
            try:
                headers = {} if md5 is None else {"Content-MD5": _header_value("md5", md5)}
                query = [("partNumber", str(number)), ("uploadId", self.uploadId)]
                request = _Request("PUT", self.bucket, self.key, headers, body, query)
                response = yield from self.conn._attempts(request, check=_part_etag)
            finally:
                body.close()
        finally:
            if close and hasattr(fp, "close"):
                fp.close()
        self._sent[number] = response.headers["ETag"]
        return response

    def list_parts(
        self, encoding: str | None = None, max_parts: int = 1000, part_number_marker: str | int = ""
    ) -> Iterator[dict[str, Any]]:
        """The parts S3 holds, every page, as 0.1.12's dicts: ``part_number`` (int),
        ``last_modified`` (S3's text), ``etag`` (with its quotes), ``size`` (int)."""
        _check_int("max_parts", max_parts, 1, 1000)
        return self.conn._iterate(self._parts(max_parts, str(part_number_marker)))

    def _parts(
        self, max_parts: int, marker: str, into: list[dict[str, Any]] | None = None
    ) -> Generator[Any, Any, None]:
        """Steps that yield each part as data, or with ``into``, put them there."""
        while True:
            query = [("max-parts", str(max_parts)), ("uploadId", self.uploadId)]
            query += [("part-number-marker", marker)] if marker else []
            root = _xml((yield from self.conn._attempts(_Request("GET", self.bucket, self.key, query=query))).content)
            for element in root:
                if _local_name(element) == "Part":
                    fields = _children(element)
                    part = {
                        "part_number": int(_text(fields, "PartNumber") or 0),
                        "last_modified": _text(fields, "LastModified"),
                        "etag": _text(fields, "ETag"),
                        "size": int(_text(fields, "Size") or 0),
                    }
                    if into is None:
                        yield part
                    else:
                        into.append(part)
            top = _children(root)
            if _text(top, "IsTruncated") != "true":
                return
            marker = _text(top, "NextPartNumberMarker") or ""

    @_operation
    def number_of_parts(self) -> Steps[int]:
        parts: list[dict[str, Any]] = []
        yield from self._parts(1000, "", parts)
        return len(parts)

    @_operation
    def complete_upload(self) -> Steps[Response]:
        """Join the parts S3 holds, in order, into the object.

        Every part sent through this object must be listed with the ETag its
        upload answered: otherwise (a part replaced by another writer, or
        missing) nothing is joined and ``InvalidInput`` says which part.
        """
        parts: list[dict[str, Any]] = []
        yield from self._parts(1000, "", parts)
        listed = {part["part_number"]: (part["etag"], part["size"]) for part in parts}
        for number, etag in sorted(self._sent.items()):
            if number not in listed or listed[number][0].strip('"') != etag.strip('"'):
                raise InvalidInput(f"part {number} is not as sent (S3 lists {listed.get(number)}); not completed")
        if not listed:
            raise InvalidInput(f"the upload of {self.key!r} holds no part; not completed")
        numbers = sorted(listed)
        joining = _complete(self.conn, self.bucket, self.key, self.uploadId, [listed[n] for n in numbers], {}, numbers)
        return (yield from joining)

    @_operation
    def cancel_upload(self) -> Steps[None]:
        """Abort the upload: S3 drops its parts (checked, and aborted again if still listed)."""
        yield from _abort(self.conn, self.bucket, self.key, self.uploadId)


def _as_int(value: int | str) -> object:
    """0.1.12 took numbers as text too (``length='5242880'``)."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _part_body(source: Body, rewind: bool, length: int | None) -> _Body:
    """``length`` bytes of ``source`` (all of it when None) as one part's body."""
    body, more = _body(source, rewind, _MAX_PUT + 1 if length is None else length)
    if length is None:
        if more is not None or body.length > _MAX_PUT:
            body.close()
            raise InvalidInput("a part holds at most 5 GiB: pass length= to send a slice")
        return body
    if body.length < length:
        body.close()
        raise InvalidInput(f"length is {length}, but the file holds {body.length} bytes from there")
    if body.data is not None:
        return _Body(body.data[:length])
    assert body.file is not None
    return _Body.of_file(body.file, body.start, length, owned=body.owned)


class _OnPool:
    """A ``Pool`` method: the ``Connection`` method of the same name, run on the pool's
    threads, returning a Future of its result (``read`` first finishes a lazy result there)."""

    def __init__(self, read: Callable[..., Any] | None = None) -> None:
        self._read = read
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self.__doc__ = f"``Connection.{name}`` on the pool's threads: a Future of its result."

    def __get__(self, pool: Pool | None, owner: type) -> Any:
        if pool is None:
            return self
        method = getattr(pool.connection, self._name)
        return _partial(pool._submit, method) if self._read is None else _partial(pool._submit, self._read, method)


#: ``Pool.upload`` sends bytes up to this size on its event loop.
_SMALL_PUT = 64 * 1024


def _read_body(get: Callable[..., Response], *args: Any, **kwargs: Any) -> Response:
    response = get(*args, **kwargs)
    response.content  # noqa: B018 - read now, in the pool's thread
    return response


def _read_list(list_: Callable[..., Iterator[T]], *args: Any, **kwargs: Any) -> list[T]:
    return [*list_(*args, **kwargs)]


def _unpickled_pool(cls: type[Pool], connection: Connection, size: int) -> Pool:
    pool = cls.__new__(cls)
    pool._start(connection, size)
    return pool


class Pool:
    """Runs Connection operations on a pool of threads; each returns a Future.

    Takes the same arguments as ``Connection`` plus ``size`` (threads,
    default 5; the sixth positional argument, as in 0.1.12). Each thread
    keeps its own keep-alive connection.
    """

    #: The Connection whose operations the pool runs.
    connection: Connection

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        default_bucket: str | None = None,
        tls: bool | None = None,
        endpoint: str | None = None,
        size: int = 5,
        **kwargs: Any,
    ) -> None:
        _check_int("size", size, 1, 1000)
        self._start(Connection(access_key, secret_key, default_bucket, tls, endpoint, **kwargs), size)

    def _start(self, connection: Connection, size: int) -> None:
        self.connection = connection
        self.size = size
        self._executor: ThreadPoolExecutor | None = None
        self._loop: tuple[_LoopThread, AsyncConnection] | None = None  # small uploads (made on first use)
        self._lock = threading.Lock()
        _forkable.add(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """A Pool pickles as its Connection (see ``Connection._settings``) and its size;
        the copy starts threads of its own on its first call."""
        return (_unpickled_pool, (type(self), self.connection, self.size))

    def _after_fork(self) -> None:
        """A forked child gets threads of its own on its first call (the parent's stayed there)."""
        self._executor, self._loop = None, None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Pool size={self.size} connection={self.connection!r}>"

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._executor is None:
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="tinys3")
            return self._executor.submit(fn, *args, **kwargs)

    def upload(self, key: str, local_file: Body, *args: Any, **kwargs: Any) -> Future[Response]:
        """``Connection.upload`` on the pool: a Future of its Response.

        Bytes up to 64 KiB go on the asyncio driver, on an event loop of the pool's own
        thread, ``size`` at once (a thread each would cost a GIL hand-over at each
        system call). Their Futures are resolved, and their callbacks run, on that
        thread: keep callbacks short.
        """
        if not isinstance(local_file, (bytes, bytearray, memoryview)) or len(local_file) > _SMALL_PUT:
            return self._submit(self.connection.upload, key, local_file, *args, **kwargs)
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread(), _asyncio_twin(self.connection, self.size)
            loop, twin = self._loop
        return loop.submit(twin.upload, key, bytes(local_file), *args, **kwargs)

    # Each runs the Connection method of its name on the pool's threads and returns a Future of its result.
    copy = _OnPool()
    update_metadata = _OnPool()
    delete = _OnPool()
    head = _OnPool()
    exists = _OnPool()
    download = _OnPool()
    delete_many = _OnPool()
    create_bucket = _OnPool()
    delete_bucket = _OnPool()
    list_buckets = _OnPool()
    get_tags = _OnPool()
    set_tags = _OnPool()
    delete_tags = _OnPool()
    head_object = _OnPool()
    head_bucket = _OnPool()
    bucket_exists = _OnPool()
    initiate_multipart_upload = _OnPool()
    get_all_multipart_uploads = _OnPool()
    #: Its body read in full by the pool's thread.
    get = _OnPool(_read_body)
    #: Every page read by the pool's thread: the Future holds a list.
    list_versions = _OnPool(_read_list)
    list_multipart_uploads = _OnPool(_read_list)

    def presign(self, *args: Any, **kwargs: Any) -> str:
        """``Connection.presign`` (no request is sent, so no Future)."""
        return self.connection.presign(*args, **kwargs)

    def presign_post(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``Connection.presign_post`` (no request is sent, so no Future)."""
        return self.connection.presign_post(*args, **kwargs)

    @staticmethod
    def as_completed(futures: Iterable[Future[Response]], timeout: float | None = None) -> Iterator[Response]:
        """Yield each result as soon as its request finishes (re-raising its error).

        Raises ``concurrent.futures.TimeoutError`` if ``timeout`` seconds pass first.
        """
        from concurrent.futures import as_completed

        for future in as_completed(futures, timeout):
            yield future.result()

    @staticmethod
    def all_completed(futures: Iterable[Future[Response]], timeout: float | None = None) -> list[Response]:
        """Wait for all; return their results in the order given.

        Raises the first failed request's error (in that order), or
        ``concurrent.futures.TimeoutError`` if ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        return [
            future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            for future in list(futures)
        ]

    def close(self, wait: bool = True) -> None:
        """Finish the pending work (with ``wait``), stop the threads, close connections."""
        with self._lock:
            loop, self._loop = self._loop, None
            executor, self._executor = self._executor, None
        if loop is not None and wait:
            loop[0].close(loop[1])
        if executor is not None:
            executor.shutdown(wait=wait)
        self.connection.close()

    def list(self, *args: Any, **kwargs: Any) -> Future[list[ObjectInfo]]:
        """``Connection.list`` on the pool, every page read: the Future holds a list."""
        return self._submit(_read_list, self.connection.list, *args, **kwargs)


###############################################################################
# asyncio: AsyncConnection, the same calls on the same core ###################
###############################################################################


#: Connections an ``AsyncConnection`` keeps open at once in one event loop: calls past it wait
#: for one to be free (an ``asyncio.gather`` of thousands queues, never times out waiting).
_ASYNC_LINES = 128
#: The loop's scratch buffer, which the asyncio driver reads what it cannot put in place into,
#: and how much an answer's reader may hold with no read waiting before the loop pauses.
_SCRATCH = 64 * 1024
#: The most plaintext one TLS record holds.
_TLS_RECORD = 16 * 1024
#: Threads of an ``AsyncConnection`` that read and write files and compute digests (see ``_off_loop``).
_WORK_THREADS = 2


@_lru_cache(maxsize=1)
def _line_protocol() -> type[_AsyncLine]:
    """``_AsyncLine`` as an ``asyncio.BufferedProtocol`` (which a loop tells by its class),
    made on first use: importing asyncio with tinys3 would cost every program the time."""
    import asyncio

    return type("_AsyncLine", (_AsyncLine, asyncio.BufferedProtocol), {})


class _AsyncLine:
    """One keep-alive connection of the asyncio driver, as the loop's buffered protocol
    (``_line_protocol``): the loop reads what arrives straight into a waiting read's buffer
    while a sized body is due (no copy), else into the loop's scratch buffer, from which
    the answer's reader is fed. Once more than ``_SCRATCH`` bytes wait in the reader with
    no read to take them, the loop stops reading the connection until the next read: a
    body read slowly waits in the socket (over TLS, what asyncio's TLS layer holds too),
    not in memory. Bytes nobody asked for, or a close, make the line unusable.
    ``waiter`` is the future the reading coroutine awaits."""

    def __init__(self, loop: Any, origin: tuple[str, str, int], pool: _LoopLines) -> None:
        self.loop, self.origin, self.pool, self.epoch = loop, origin, pool, pool.epoch
        self.transport: Any = None
        self.reader: _AnswerReader | None = None
        self.waiter: Any = None
        self.writable: Any = None  # a future while the transport's buffer is full
        self.into: memoryview | None = None  # a waiting read's buffer: a sized body's next bytes go there
        self.got = 0  # how many did
        self.direct = False  # the loop reads into ``into`` now, not into the scratch buffer
        self.paused = False  # the loop does not read the connection
        self.lost = False
        self.heard = loop.time()  # when bytes last came

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the loop reads the next bytes into: the waiting read's buffer, up to the sized
        body's due bytes, else the scratch buffer.

        Over TLS, ``sizehint`` is what asyncio's TLS layer holds, and the buffer takes all of
        it, and a record more (what it decrypted but did not hand over yet): once the server
        closed, that layer fills one buffer and drops the rest (CPython 3.11 to 3.13), which
        would cut short a body that came whole."""
        reader, into = self.reader, self.into
        want = sizehint + _TLS_RECORD if self.origin[0] == "https" else 0
        if into is not None and reader is not None and self.got < len(into) and (due := reader.body_due()):
            room = min(len(into) - self.got, due)
            if room == due or room >= want:
                self.direct = True
                return into[self.got : self.got + room]
        self.direct = False
        if len(self.pool.scratch) < want:
            self.pool.scratch = memoryview(bytearray(want))
        return self.pool.scratch

    def buffer_updated(self, count: int) -> None:
        self.heard = self.loop.time()
        reader = self.reader
        if reader is None:  # an idle line spoke: it can carry no request after that
            self.lost = True
            self.transport.abort()
            return
        if self.direct:
            reader.took(count)
            self.got += count
        else:
            reader.feed(self.pool.scratch[:count])
            if reader.buffered > _SCRATCH:  # no read took them (a sized body's due bytes go in place)
                self.pause()
        self._wake(self.waiter)
        self._wake(self.writable)  # an answer while the request waits to be sent: it is sent no further

    def pause(self) -> None:
        """Stop the loop reading the connection: what comes waits in the socket."""
        if not self.paused and not self.lost:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Let the loop read the connection again (a read waits, or the line goes idle, where
        a close must be noticed). A lost line's transport is not steered any more."""
        if self.paused and not self.lost:
            self.paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.lost = True
        if self.reader is not None:
            self.reader.feed_eof()
        self._wake(self.waiter)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof_received()
        self._wake(self.writable)

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        self._wake(writable)

    @staticmethod
    def _wake(future: Any) -> None:
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, until: float, read_timeout: float, into: memoryview | None = None) -> int:
        """Wait for the next bytes, as long as the server is not silent for ``read_timeout``
        seconds and ``until`` (loop time: the attempt's deadline) has not passed. With ``into``,
        a sized body's bytes go straight there: how many did (0: they went to the reader)."""
        self.into, self.got, self.waiter = into, 0, self.loop.create_future()
        self.resume()
        try:
            await _settle(self.waiter, min(self.heard + read_timeout, until))
        finally:
            self.into, self.waiter = None, None
            if self.got and self.reader is not None and self.reader.body_due():
                self.pause()  # more of the body is due: it waits for the next read, to go straight into its buffer
        return self.got

    async def next_event(self, until: float, read_timeout: float, most: int = 1 << 20) -> _Head | bytes | str:
        """The reader's next event (of at most ``most`` body bytes), waiting for bytes as
        ``wait`` does."""
        reader = self.reader
        assert reader is not None
        while (event := reader.next_event(most)) is None:
            await self.wait(until, read_timeout)
        return event


async def _settle(future: Any, until: float) -> None:
    """Await ``future``; ``Timeout`` if it is not done by ``until`` (its loop's time). Not
    ``asyncio.wait_for``: before Python 3.12 it returns a result that came as its caller was
    cancelled, and the cancellation is lost."""
    timer = future.get_loop().call_at(until, _time_out, future)
    try:
        await future
    finally:
        timer.cancel()


async def _connected(loop: Any, connecting: Coroutine[Any, Any, Any], timeout: float) -> _AsyncLine:
    """The line ``connecting`` (a ``loop.create_connection``) makes, or ``Timeout`` after
    ``timeout`` seconds; a line made all the same, once the caller was cancelled or timed
    out, is closed."""
    task = loop.create_task(connecting)
    done = loop.create_future()
    task.add_done_callback(lambda _: done.done() or done.set_result(None))
    try:
        await _settle(done, loop.time() + timeout)
    except BaseException:
        task.cancel()
        task.add_done_callback(_close_made)
        raise
    return task.result()[1]  # type: ignore[no-any-return]


async def _dial(
    loop: Any, owner: AsyncConnection, address: tuple[str, int], new_line: Callable[[], Any], tls: dict[str, Any]
) -> tuple[Any, Any]:
    """``loop.create_connection`` over a socket connected to the first of ``address``'s
    addresses that accepts, each tried in turn as asyncio does. The name is looked up on
    the connection's part threads: asyncio would look it up on the loop's default executor,
    which the caller's own work may fill."""
    import socket

    found = await _off_loop(owner, socket.getaddrinfo, *address, 0, socket.SOCK_STREAM, lane="part")
    errors: list[OSError] = []
    for family, kind, protocol, _, socket_address in found:
        sock = socket.socket(family, kind, protocol)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, socket_address)
            return await loop.create_connection(new_line, sock=sock, **tls)  # type: ignore[no-any-return]
        except OSError as exc:
            sock.close()
            errors.append(exc)
        except BaseException:
            sock.close()
            raise
    raise errors[0]


def _close_made(task: Any) -> None:
    """A connect given up on: the line it made anyway is closed."""
    if not task.cancelled() and task.exception() is None:
        task.result()[0].abort()


def _time_out(future: Any) -> None:
    if not future.done():
        future.set_exception(Timeout("the answer did not come in time: timed out"))


def _off_loop(conn: AsyncConnection, call: Callable[..., Any], *args: Any, lane: str = "work") -> Any:
    """A future of ``call(*args)`` run on the connection's threads, off the loop, in a lane:
    ``"part"`` (its part threads) for a call that waits on the network or on the caller's
    code; ``"work"`` (``_WORK_THREADS``) for one that computes or reads or writes files (more
    threads would only take the GIL from the loop, making it late, for no speed on the
    cores there are); ``"send"`` (one thread) for the next piece of a file being sent, which
    must not queue behind the digests of the parts to come. Or right here, blocking the loop:
    on a loop of tinys3's own (``_work_here``) in any lane but the part lane, and once the
    interpreter is exiting (``concurrent.futures`` then takes no new work, and what is left to finish
    needs the call more than the loop does)."""
    import asyncio

    loop = asyncio.get_running_loop()
    if lane == "part" or not conn._work_here:
        with _suppress(RuntimeError):
            return loop.run_in_executor(_part_executor(conn, lane), call, *args)
    done = loop.create_future()
    try:
        done.set_result(call(*args))
    except Exception as exc:
        done.set_exception(exc)
    return done


class _AsyncStream:
    """The unread body of a streamed answer on the asyncio driver (``_Stream``'s twin): at
    its framed end the line goes back to its pool, ``close`` before then closes it."""

    def __init__(self, transport: _AsyncTransport, line: _AsyncLine, length: int | None, deadline: float) -> None:
        self._transport, self._line, self.length, self.deadline = transport, line, length, deadline
        self._open = True

    async def readinto(self, buffer: memoryview, within_deadline: bool = False) -> int:
        """Fill ``buffer`` with the body's next bytes, as many as came; 0 at its end. Bytes of a
        sized body that arrive while this waits go straight into ``buffer``. Each wait is
        bounded by the read timeout and, ``within_deadline``, by the attempt's deadline (a
        body read whole)."""
        if not self._open:
            return 0
        line = self._line
        reader = line.reader
        assert reader is not None
        until = self.deadline if within_deadline else float("inf")
        try:
            while (event := reader.next_event(len(buffer))) is None:
                got = await line.wait(until, self._transport._read_timeout, buffer)
                if got:
                    return got
        except BaseException:
            self.close()
            raise
        if isinstance(event, bytes):
            buffer[: len(event)] = event
            return len(event)
        self._open = False
        self._transport.release(line)
        return 0

    def close(self) -> None:
        """Stop reading: the connection cannot be reused, so it is closed."""
        if self._open:
            self._open = False
            self._line.transport.abort()
            self._transport.release(self._line)

    def __del__(self) -> None:
        """A body dropped unread and unclosed: its connection is closed and its place in the
        loop's limit freed, so that forgotten responses cannot use the limit up. By the loop,
        whichever thread let go of it last: a loop's transports are for its thread only."""
        if self._open and not self._line.loop.is_closed():
            self._line.loop.call_soon_threadsafe(self.close)


class _LoopLines:
    """An ``_AsyncTransport``'s lines in one event loop: the idle ones by origin, the
    places for lines in use (``free``, and the requests queued for one), how many are in
    use by origin, and the requests waiting for one of those to be released (their
    connects were refused); the scratch buffer they read into; and the count of ``aclose``
    calls (a line opened before the latest one is closed when released)."""

    __slots__ = ("busy", "epoch", "free", "freed", "idle", "queue", "scratch")

    def __init__(self, most: int) -> None:
        self.idle: dict[tuple[str, str, int], list[_AsyncLine]] = {}
        self.free = most
        self.queue: _deque[Any] = _deque()  # a future for each request queued for a place, in order
        self.busy: dict[tuple[str, str, int], int] = {}
        self.freed: dict[tuple[str, str, int], list[Any]] = {}
        self.scratch = memoryview(bytearray(_SCRATCH))  # the loop's lines take turns: it is emptied at once
        self.epoch = 0

    async def claim_place(self, loop: Any) -> None:
        """A place for a line in use: at once if one is free and nobody queues, else in turn.
        A place handed to a request cancelled before it woke goes on to the next. (Not an
        ``asyncio.Semaphore``: Python 3.9's loses that place, and every later call waits
        for ever.)"""
        if self.free and not self.queue:
            self.free -= 1
            return
        turn = loop.create_future()
        self.queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.free_place()
            raise

    def free_place(self) -> None:
        """Give a place back: to the first request queued for one (a cancelled one is passed over)."""
        while self.queue:
            turn = self.queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1


class _AsyncTransport(_Transport):
    """The asyncio driver's ``_Send``: keep-alive connections kept per event loop (at most
    ``_ASYNC_LINES`` open in each), each an ``_AsyncLine``. Connections are opened by the
    loop (DNS and a proxy's tunnel on the connection's threads), TLS too. A line goes
    back to its pool only once its request went out whole and its answer was read to its
    framed end; anything else, a cancellation too, closes it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        from weakref import WeakKeyDictionary

        self._loops: WeakKeyDictionary[Any, _LoopLines] = WeakKeyDictionary()
        self.lines = _ASYNC_LINES  # open at once in each loop

    def _after_fork(self) -> None:
        super()._after_fork()
        self._loops.clear()

    def _pool(self, loop: Any) -> _LoopLines:
        """This loop's lines."""
        found = self._loops.get(loop)
        if found is None:
            found = self._loops[loop] = _LoopLines(self.lines)
        return found

    async def _connect(self, loop: Any, origin: tuple[str, str, int], owner: AsyncConnection) -> _AsyncLine:
        """A new line to ``origin``: connected by the loop (``_dial``), or through a proxy's
        CONNECT tunnel opened on the connection's threads; TLS on the loop."""
        scheme, host, port = origin
        proxy = self.proxy(origin)
        context = None
        if scheme == "https":
            context = self._ssl_context or await _off_loop(owner, self._context)
        tls = {"ssl": context, "server_hostname": host, "ssl_handshake_timeout": self._connect_timeout}
        tunnel, opening = None, None
        new_line = _partial(_line_protocol(), loop, origin, self._pool(loop))
        try:
            if proxy is not None and context is not None:
                tunnel = _Connection(host, port, proxy, self._connect_timeout, context)
                opening = _off_loop(owner, tunnel.connect, False, lane="part")
                await opening
                connecting = loop.create_connection(new_line, sock=tunnel.sock, **tls)
            else:
                address = (proxy.host, proxy.port) if proxy is not None else (host, port)
                connecting = _dial(loop, owner, address, new_line, tls if context else {})
            return await _connected(loop, connecting, self._connect_timeout)
        except OSError as exc:
            if tunnel is not None:
                tunnel.close()
            if context is not None and self._widen_store(exc, context):
                return await self._connect(loop, origin, owner)
            raise _connect_error(exc, host, port, proxy, context is not None) from exc
        except BaseException:
            if opening is not None:
                opening.add_done_callback(lambda _: tunnel.close())  # type: ignore[union-attr]
            raise

    def release(self, line: _AsyncLine) -> None:
        """A line's request is over: back to its loop's pool if its answer was read to its
        framed end and it is still open (and opened since the latest ``aclose``); closed
        otherwise. Its place is free either way, and requests waiting for a line to its
        origin look again."""
        pool = self._pool(line.loop)
        reader, line.reader = line.reader, None
        usable = not line.lost and line.epoch == pool.epoch and not line.transport.is_closing()
        if reader is not None and reader.reusable and usable:
            line.resume()
            pool.idle.setdefault(line.origin, []).append(line)
        else:
            line.transport.abort()
        pool.busy[line.origin] -= 1
        for waiter in pool.freed.pop(line.origin, ()):
            if not waiter.done():
                waiter.set_result(None)
        pool.free_place()

    async def _line_to(
        self, loop: Any, pool: _LoopLines, origin: tuple[str, str, int], owner: AsyncConnection
    ) -> tuple[_AsyncLine, bool]:
        """An idle line to ``origin`` (True: reused), else a new one. A connect refused while
        other lines to ``origin`` are in use waits for one of them instead: a server at its
        limit of connections takes the work on those it keeps."""
        while True:
            idle = pool.idle.get(origin)
            while idle and idle[-1].lost:
                idle.pop().transport.abort()
            if idle:
                return idle.pop(), True
            try:
                return await self._connect(loop, origin, owner), False
            except TransportError:
                if not pool.busy.get(origin):
                    raise
                _log("a connect to %s:%s was refused: waiting for a line in use", origin[1], origin[2])
                waiter = loop.create_future()
                pool.freed.setdefault(origin, []).append(waiter)
                await waiter

    async def send(  # type: ignore[override]
        self, request: _Send, owner: AsyncConnection
    ) -> tuple[int, str, _Headers, bytes | _AsyncStream]:
        """Perform a ``_Send`` on the running loop: (status, reason, headers, body)."""
        import asyncio

        loop = asyncio.get_running_loop()
        origin, proxy, head = self.route(request)
        pool = self._pool(loop)
        await pool.claim_place(loop)
        for fresh_retry in (False, True):
            try:
                line, reused = await self._line_to(loop, pool, origin, owner)
            except BaseException:
                pool.free_place()
                raise
            pool.busy[origin] = pool.busy.get(origin, 0) + 1
            line.reader = _AnswerReader(request.method)
            try:
                return await self._exchange(line, head, request, proxy, owner)
            except (ConnectionResetError, BrokenPipeError) as exc:  # closed before any byte of the answer
                self.release(line)
                if reused and not fresh_retry:  # the server had let the idle line go: once more, on a new one
                    await pool.claim_place(loop)
                    continue
                raise _transport_error(exc, "the server closed the connection") from exc
            except BaseException:
                self.release(line)
                raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, line: _AsyncLine, head: bytes, request: _Send, proxy: _Proxy | None, owner: AsyncConnection
    ) -> tuple[int, str, _Headers, bytes | _AsyncStream]:
        loop, reader = line.loop, line.reader
        assert reader is not None
        sent = line.heard = loop.time()
        until = sent + self._deadline
        body = request.body
        offset = 0
        if body is not None and body.data is not None and body.length <= _COALESCE:
            line.transport.write(head + body.data)  # one write, as the blocking driver sends it
            offset = body.length
        else:
            line.transport.write(head)
        reading = None  # a file's next piece, read while the one before goes out
        try:
            while body is not None and offset < body.length and not reader.began:
                if body.data is not None:
                    piece: bytes | memoryview = memoryview(body.data)[offset : offset + _SLICE]
                else:  # into bytes of its own: the loop's transport keeps them
                    piece = await (reading or _off_loop(owner, body.read_at, offset, _CHUNK, lane="send"))
                    ahead = offset + len(piece)
                    reading = None
                    if ahead < body.length:
                        reading = _off_loop(owner, body.read_at, ahead, _CHUNK, lane="send")
                if line.writable is not None:
                    await _settle(line.writable, loop.time() + self._read_timeout)
                if line.lost and not reader.began:
                    raise ConnectionResetError("the connection closed while the request was sent")
                line.transport.write(piece)
                offset += len(piece)
        finally:
            if reading is not None:  # the answer came early, or sending failed
                reading.cancel()
        answer = await line.next_event(until, self._read_timeout)
        assert isinstance(answer, _Head)
        self._idle.waited = loop.time() - sent  # this loop's thread's, as ``waited`` reads it
        if body is not None and offset < body.length:  # answered early: the rest of the body is never sent
            line.lost = True  # so the line is closed, never reused
            if 200 <= answer.status < 300:
                raise TransportError("the server answered before the whole request was sent")
        _refuse(answer, request.method, proxy)
        if request.stream and 200 <= answer.status < 300:
            return answer.status, answer.reason, answer.headers, _AsyncStream(self, line, answer.length, until)
        capped = _Capped(answer.status, request.method)
        while isinstance(event := await line.next_event(until, self._read_timeout), bytes):
            if capped.add(event):
                break
        content = capped.content()
        self.release(line)
        return answer.status, answer.reason, answer.headers, content

    async def aclose(self) -> None:
        """Close this loop's idle lines, their descriptors closed when this returns (lines in
        use close as their answers end)."""
        import asyncio

        pool = self._pool(asyncio.get_running_loop())
        pool.epoch += 1
        closing = [line for idle in pool.idle.values() for line in idle]
        for idle in pool.idle.values():
            idle.clear()
        for line in closing:
            line.transport.abort()
        if closing:
            await asyncio.sleep(0)  # the loop closes an aborted transport's socket on its next turn


class _AsyncChunks(io.RawIOBase):
    """An async iterable of bytes as a blocking binary stream, read by the connection's
    threads (an upload reads its stream there), each chunk fetched on the loop. Never
    read on the loop's own thread: it would wait for itself. ``close`` (the upload was
    given up) cancels the fetch being waited for, so that no thread waits on for it."""

    def __init__(self, chunks: Any, loop: Any) -> None:
        super().__init__()
        self._chunks, self._loop, self._left = chunks.__aiter__(), loop, memoryview(b"")
        self._lock = threading.Lock()
        self._fetching: Future[Any] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import asyncio

        while not self._left:
            with self._lock:
                if self.closed:
                    raise ValueError("read of a closed stream: the upload was given up")
                self._fetching = asyncio.run_coroutine_threadsafe(self._chunks.__anext__(), self._loop)
            try:
                chunk = self._fetching.result()
            except StopAsyncIteration:
                return 0
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise InvalidType(f"the async iterable to upload gave a {type(chunk).__name__}, not bytes")
            self._left = memoryview(chunk).cast("B")
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n

    def close(self) -> None:
        with self._lock:
            if self._fetching is not None:
                self._fetching.cancel()
            super().close()


class AsyncResponse(Response):
    """A ``Response`` of ``AsyncConnection``: its body is awaited. ``await read()`` gives
    all of it, ``async for chunk in iter_content(n)`` pieces as they come; ``async with``
    or ``await close()`` drops what is unread (its connection is closed, never reused)."""

    __slots__ = ()

    @property
    def content(self) -> bytes:
        """The whole body, once ``read`` has been awaited."""
        if self._content is None:
            raise S3Error("the body of an AsyncResponse is awaited: use await response.read()")
        return self._content

    async def read(self) -> bytes:
        """The whole body (read now if it was streaming)."""
        if self._content is None:
            self._within_deadline = True
            self._content = b"".join([chunk async for chunk in self.iter_content(_CHUNK)])
        return self._content

    async def iter_content(self, chunk_size: int = 65536) -> AsyncIterator[bytes]:  # type: ignore[override]
        """The body in chunks of at most ``chunk_size`` bytes, read as you go."""
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        assert isinstance(self._conn, AsyncConnection)
        async for view in self._conn._iterate(self._body_steps(self._take_stream(), memoryview(bytearray(chunk_size)))):
            yield bytes(view)

    async def close(self) -> None:  # type: ignore[override]
        """Drop an unread body (its connection is closed rather than reused)."""
        self._drop_body()

    async def __aenter__(self) -> AsyncResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._drop_body()


class _AsyncReader:
    """The file of ``AsyncConnection.open(key, "rb")``: an ``_ObjectReader`` (made on entering
    the block, or on the first call, from the object's HEAD) whose reads are awaited."""

    def __init__(self, conn: AsyncConnection, key: str, bucket: str | None, version_id: str | None,
                 headers: Mapping[str, object] | None, sse_customer_key: bytes | None) -> None:  # fmt: skip
        self.name, self._conn = key, conn
        self._opening = (bucket, version_id, headers, sse_customer_key)
        self._raw: _ObjectReader | None = None

    async def _opened(self) -> _ObjectReader:
        if self._raw is None:
            bucket, version_id, headers, customer_key = self._opening
            head = await self._conn.head(self.name, bucket, headers, version_id, customer_key)
            self._raw = _ObjectReader(self._conn, self.name, bucket, version_id, headers, customer_key, head)
        if self._raw.closed:
            raise ValueError("read of a closed file")
        return self._raw

    @property
    def size(self) -> int | None:
        """The object's size, once opened."""
        return None if self._raw is None else self._raw.size

    async def read(self, size: int = -1) -> bytes:
        """The next ``size`` bytes (the rest if negative), fewer only at the end of the object."""
        raw = await self._opened()
        return await self._conn._drive(raw.read_steps(size))

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return (await self._opened()).seek(offset, whence)

    def tell(self) -> int:
        return 0 if self._raw is None else self._raw.tell()

    async def close(self) -> None:
        """Drop the range being read (its connection is closed, not reused)."""
        if self._raw is not None:
            self._raw.close()

    async def __aenter__(self) -> _AsyncReader:
        await self._opened()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _AsyncWriter:
    """The file of ``AsyncConnection.open(key, "wb")``: each chunk written goes to ``upload``,
    running as a task with an async iterable of bytes (one PUT for a small object, parts
    sent while writing goes on for a big one); ``write`` waits while the upload has not
    taken the last chunk yet. ``close`` awaits the upload: the object exists once it
    succeeded. An exception in the block (or ``abort``, or a writer dropped unclosed)
    cancels the upload: nothing is stored, no part is left."""

    def __init__(self, conn: AsyncConnection, key: str, bucket: str | None, options: dict[str, Any]) -> None:
        self.name, self._conn, self._bucket, self._options = key, conn, bucket, options
        self._task: Any = None
        self._queue: Any = None  # of one chunk: what the upload has not taken yet
        self.response: AsyncResponse | None = None
        self.closed = False

    def _upload(self) -> Any:
        """The upload's task, started on the first call."""
        import asyncio

        if self._task is None:
            self._queue = asyncio.Queue(1)
            upload = self._conn.upload(self.name, self._chunks(), self._bucket, **self._options)  # type: ignore[arg-type]
            self._task = asyncio.ensure_future(upload)
        return self._task

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def _hand(self, chunk: bytes | None) -> None:
        """Give the upload ``chunk`` (None: the end) once it took the one before; if it ended
        first, raise what made it fail."""
        import asyncio

        task = self._upload()
        if not task.done():
            put = asyncio.ensure_future(self._queue.put(chunk))
            try:
                await asyncio.wait({put, task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                taken = put.done()
                put.cancel()  # the chunk stays with the writer, unless it was taken
            if taken:
                return
        if task.cancelled():  # by abort: not a cancellation of the caller's task
            raise S3Error(f"the upload of {self.name!r} was given up: nothing was stored")
        await task  # raises what made it fail
        raise S3Error(f"the upload of {self.name!r} ended before what was written did: it is not complete")

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        chunk = bytes(data)
        await self._hand(chunk)
        return len(chunk)

    async def close(self) -> None:
        """Finish the upload and await it; raises what made it fail (nothing is stored then)."""
        if not self.closed:
            self.closed = True
            await self._hand(None)
            self.response = await self._task

    async def abort(self) -> None:
        """Give up: the upload is cancelled (a multipart one is aborted); nothing is stored."""
        import asyncio

        self.closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def __aenter__(self) -> _AsyncWriter:
        self._upload()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            await self.close()
        else:
            await self.abort()

    def __del__(self) -> None:
        """A writer dropped unclosed: its upload is cancelled, by the loop (see ``_AsyncStream``)."""
        if self._task is not None and not self._task.done() and not self._task.get_loop().is_closed():
            self._task.get_loop().call_soon_threadsafe(self._task.cancel)


@_coroutine_calls
class _AsyncMultipartUpload(MultipartUpload):
    """An ``AsyncConnection``'s ``MultipartUpload``: its calls are coroutine functions."""


@_coroutine_calls
class AsyncConnection(Connection):
    """``Connection``'s calls as coroutines, for asyncio; its arguments and settings, and
    ``max_connections``.

    It may be made anywhere, a running loop or none, and used from several loops in
    turn (``asyncio.run`` after ``asyncio.run``): connections are kept per loop,
    while the credentials, the buckets' regions and the clock's offset are shared.
    Nothing blocks the loop: reading files, hashing, loading the CA store, opening
    connections and fetching credentials run on the connection's threads.
    ``presign`` and ``presign_post`` stay plain calls (they do no I/O).
    """

    _transport_class = _AsyncTransport
    _transport: _AsyncTransport
    _response_class = AsyncResponse
    #: Blocking work (file reads and writes, digests, credentials) runs on the loop: only for
    #: a loop of tinys3's own (``_asyncio_twin``), where a thread hop would cost more than it.
    _work_here = False

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        default_bucket: str | None = None,
        tls: bool | None = None,
        endpoint: str | None = None,
        *,
        max_connections: int = _ASYNC_LINES,
        **kwargs: Any,
    ) -> None:
        """``Connection``'s arguments, and ``max_connections``: how many connections it
        keeps open at once in each event loop (128); calls past that wait for one to come
        free."""
        lines = _check_int("max_connections", max_connections, 1, 100_000)
        super().__init__(access_key, secret_key, default_bucket, tls, endpoint, **kwargs)
        self._transport.lines = lines

    @property
    def max_connections(self) -> int:
        """How many connections it keeps open at once in each event loop."""
        return self._transport.lines

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "max_connections": self.max_connections}

    def _multipart_upload(self, bucket: str, key: str, upload_id: str) -> MultipartUpload:
        return _AsyncMultipartUpload(self, bucket, key, upload_id)

    def _async_source(self, chunks: Any) -> IO[bytes]:
        """``upload`` takes an async iterable of bytes too: read, as streams are, on the
        connection's threads."""
        import asyncio

        return _AsyncChunks(chunks, asyncio.get_running_loop())  # type: ignore[return-value]

    def open(  # type: ignore[override]
        self,
        key: str,
        mode: str = "rb",
        bucket: str | None = None,
        *,
        version_id: str | None = None,
        headers: Mapping[str, object] | None = None,
        sse_customer_key: bytes | None = None,
        **upload: Any,
    ) -> _AsyncReader | _AsyncWriter:
        """An object as a file, for ``async with``: ``"rb"`` reads it (``await f.read(n)``,
        ``await f.seek(offset, whence)``, ``f.tell()``), ``"wb"`` writes it (``await f.write(data)``),
        as ``Connection.open`` does in binary modes. A writer's object exists once its block
        ended (or ``await f.close()``) without an exception; with one, nothing is stored."""
        if mode not in ("rb", "wb"):
            raise InvalidInput(f"AsyncConnection.open takes mode 'rb' or 'wb'; got {mode!r}")
        options = self._file_options(key, mode, bucket, version_id, headers, sse_customer_key, upload)
        if options is None:
            return _AsyncReader(self, key, bucket, version_id, headers, sse_customer_key)
        return _AsyncWriter(self, key, bucket, options)

    async def _drive(self, steps: Steps[T]) -> T:  # type: ignore[override]
        """The asyncio driver: perform each effect the core yields on the running loop (or
        on the connection's threads), until the core returns. A cancellation from outside is
        thrown into the core, which aborts what it started, and then goes on as it came."""
        outcome: _deque[T] = _deque()
        async for _ in self._iterate(steps, outcome):
            raise AssertionError("an operation's steps yield effects only")
        return outcome[0]

    async def _iterate(  # type: ignore[override]
        self, steps: Generator[Any, Any, Any], outcome: _deque[Any] | None = None
    ) -> AsyncIterator[Any]:
        """The asyncio driver over steps that may also yield data (``Connection._iterate``'s twin)."""
        reply: Any = None
        failure: BaseException | None = None
        deferred: BaseException | None = None  # a cancellation that came with an answer the core takes first
        try:
            while True:
                try:
                    effect = steps.send(reply) if failure is None else steps.throw(failure)
                except StopIteration as done:
                    if outcome is not None:
                        outcome.append(done.value)
                    return
                if isinstance(effect, _EFFECTS):
                    reply, failure = (None, deferred) if deferred else await self._perform(effect)
                    if reply is not None and failure is not None:  # a ``_Send`` to ``finish``, then a cancellation
                        deferred, failure = failure, None
                    else:
                        deferred = None
                else:
                    reply = None
                    yield effect
        finally:
            steps.close()

    async def _perform(self, effect: _Effect) -> tuple[Any, BaseException | None]:  # type: ignore[override]
        """One effect on the running loop, or on the connection's threads: (its result,
        None) or (None, what it raised)."""
        import asyncio

        transport = self._transport
        try:
            if isinstance(effect, _Send) and effect.finish:
                return await _finished(transport.send(effect, self))
            if isinstance(effect, _Send):
                return await transport.send(effect, self), None
            if isinstance(effect, _Receive):
                return await effect.stream.readinto(effect.buffer, effect.within_deadline), None
            if isinstance(effect, _Sleep):
                await asyncio.sleep(effect.seconds)
                return None, None
            if isinstance(effect, _Gather):
                return await self._gather(effect), None
            return await _off_loop(self, effect.call, lane="part" if effect.waits else "work"), None
        except BaseException as exc:
            return None, exc

    async def _gather(self, gather: _Gather) -> list[tuple[str, int]]:
        """``_Gather`` as tasks, at most ``max_concurrency`` (and ``gather.most``) at once; the
        first failure cancels the others (the core then aborts what it started)."""
        import asyncio

        most = min(self.max_concurrency, gather.most or self.max_concurrency)
        counter = _Counter(gather.progress, gather.total)
        running: set[Any] = set()
        tasks = []
        taking = True
        try:
            while taking or running:
                if taking and len(running) < most:  # the next operation is taken (a part read) as blocking work,
                    lane = "part" if gather.total is None else "work"  # which waits when a stream's is
                    operation = await _off_loop(self, next, gather.operations, None, lane=lane)
                    taking = operation is not None
                    if operation is not None:
                        tasks.append(asyncio.ensure_future(self._drive(operation)))
                        running.add(tasks[-1])
                    continue
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    counter.add(task.result()[1])
            return [task.result() for task in tasks]
        except BaseException:  # the first failure, or a cancellation: the others are cancelled
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
            raise

    async def close(self) -> None:  # type: ignore[override]
        """Close this loop's keep-alive connections and the connection's threads. The threads
        are waited for on a thread of their own: what they are finishing may need this loop."""
        import asyncio

        await self._transport.aclose()
        from concurrent.futures import ThreadPoolExecutor

        closing = ThreadPoolExecutor(1, thread_name_prefix="tinys3-close")  # not the loop's default executor,
        try:  # which the caller's own work may fill
            await asyncio.get_running_loop().run_in_executor(closing, super().close)
        finally:
            closing.shutdown(wait=False)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _finished(sending: Coroutine[Any, Any, T]) -> tuple[T | None, BaseException | None]:
    """(the answer, None) of a ``_Send`` to ``finish``; if the caller is cancelled while it
    is under way, the answer is still awaited (bounded by the timeouts), and comes with the
    cancellation: (the answer, or None if it failed, the cancellation). A second
    cancellation is not waited out: it cancels the send."""
    import asyncio

    task = asyncio.ensure_future(sending)
    try:
        return await asyncio.shield(task), None
    except asyncio.CancelledError as cancelled:
        try:
            return await task, cancelled
        except Exception:
            return None, cancelled


def _asyncio_twin(conn: Connection, lines: int) -> AsyncConnection:
    """An AsyncConnection for ``conn``'s blocking callers (``Pool``'s small uploads, the
    command line's batches): the same settings, credentials, learnt regions and clock
    offset (shared, not copied), connections of its own, at most ``lines`` open at once."""
    twin = AsyncConnection.__new__(AsyncConnection)
    twin.__dict__.update(conn.__dict__)
    twin._parts, twin._part_lock = {}, threading.Lock()  # threads of its own: closing it leaves conn's
    blocking = conn._transport
    timeout = (blocking._connect_timeout, blocking._read_timeout, blocking._deadline)
    transport = twin._transport = _AsyncTransport(timeout, blocking._verify, blocking._proxy_setting, blocking._environ)
    transport._context = blocking._context  # type: ignore[method-assign]  # one CA store, loaded once
    transport._widen_store = blocking._widen_store  # type: ignore[method-assign]
    transport.lines = lines
    twin._work_here = True
    _forkable.add(twin)
    return twin


class _LoopThread:
    """An event loop on a thread of its own, run while it has work: where blocking callers
    hand coroutines of the asyncio driver (``submit`` gives a ``concurrent.futures.Future``).
    Once nothing is left the thread ends, the loop and its idle connections kept for the next
    work, which starts another thread. Not a daemon: as with ``concurrent.futures``, the
    interpreter waits at exit for the work handed to it.

    A Ctrl-C may cut the caller's thread anywhere, a ``submit`` too: the caller's side only
    ever appends to the inbox, then wakes the loop; what runs is counted on the loop's side,
    and ``close`` wakes the loop itself, so that work stranded in the inbox still runs and
    ``close`` still returns."""

    def __init__(self) -> None:
        self.loop: Any = None  # made on the first work
        self._lock = threading.Lock()
        self._inbox: list[
            tuple[Callable[[], Coroutine[Any, Any, Any]], Future[Any]]
        ] = []  # handed over, not yet started
        self._started: set[Any] = set()  # the tasks of those handed over, until each has ended
        self._running = False  # a thread runs the loop (or is about to): the lock held to change it
        self._woken = False  # the loop will look at the inbox: no other wake-up is needed
        self._thread: threading.Thread | None = None  # the one running the loop, or that last ran it
        _forkable.add(self)

    def _after_fork(self) -> None:
        """A forked child runs a loop of its own (the parent's thread stayed there, and its
        loop's selector watches the parent's sockets)."""
        self.__init__()  # type: ignore[misc]

    def submit(self, call: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``call(*args, **kwargs)`` on the loop; its Future, as an executor's, cannot be
        cancelled once it runs. The coroutine is made there: one made here and cut off from
        the inbox by a Ctrl-C would be reported as never awaited."""
        from concurrent.futures import Future

        future: Future[T] = Future()
        with self._lock:
            if self.loop is None:
                import asyncio

                self.loop = asyncio.new_event_loop()
            self._inbox.append((_partial(call, *args, **kwargs), future))
            self._wake()
        return future

    def _wake(self) -> None:
        """(The lock held.) Have the loop start what the inbox holds: a thread runs the loop
        if none does (the one that ran it last has stopped it, or is stopping it), else the
        loop is woken, once for all handed over until it looks."""
        if not self._running:
            thread = threading.Thread(target=self._run, args=(self._thread,), name="tinys3-loop")
            self._thread, self._running, self._woken = thread, True, True
            thread.start()  # a Ctrl-C as it waits for the thread to begin leaves it running
        elif not self._woken:
            self.loop.call_soon_threadsafe(self._start)
            self._woken = True

    def _run(self, previous: threading.Thread | None) -> None:
        if previous is not None:  # it leaves the loop once the stop it was given is done
            previous.join()
        self.loop.call_soon(self._start)
        self.loop.run_forever()

    def _start(self) -> None:
        """On the loop: each call handed over as a task, unless its future was cancelled first."""
        with self._lock:
            inbox, self._inbox, self._woken = self._inbox, [], False
        for call, future in inbox:
            if future.set_running_or_notify_cancel():
                task = self.loop.create_task(call())
                self._started.add(task)
                task.add_done_callback(_partial(self._ended, future))
        self._stop_if_idle()

    def _ended(self, future: Future[T], task: Any) -> None:
        """On the loop: a task really ended (a cancelled one, once its cleanup is done)."""
        import asyncio

        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        if error is None:
            future.set_result(task.result())
        else:
            future.set_exception(error)
        self._started.discard(task)
        self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        """On the loop: once nothing handed over is left to run, the loop stops (its thread
        ends)."""
        with self._lock:
            if self._started or self._inbox:
                return
            self._running = False
            self.loop.stop()

    def cancel(self) -> None:
        """Cancel every coroutine under way (each aborts what it started)."""
        import asyncio

        if self.loop is not None:
            self.loop.call_soon_threadsafe(lambda: [task.cancel() for task in asyncio.all_tasks(self.loop)])

    def close(self, conn: AsyncConnection) -> None:
        """Once the work handed over has ended, close ``conn``'s connections, then the loop."""
        if self.loop is None:  # it never had work: nothing was opened
            return
        self.submit(self._close_last, conn).result()
        assert self._thread is not None  # the one that ran the last coroutine: it ends as the loop stops
        self._thread.join()
        self.loop.close()

    async def _close_last(self, conn: AsyncConnection) -> None:
        """On the loop: once every other coroutine handed over has ended, ``conn`` closed."""
        import asyncio

        while others := self._started - {asyncio.current_task()}:
            await asyncio.wait(others)
        await conn.close()


###############################################################################
# Command line ################################################################
###############################################################################

_USAGE_EXAMPLES = """
examples:
  tinys3 cp photo.jpg s3://my-bucket/photos/       upload (to photos/photo.jpg)
  tinys3 cp s3://my-bucket/photos/photo.jpg .      download
  tinys3 cp - s3://my-bucket/logs/today.gz         upload standard input
  tinys3 sync ./site s3://my-bucket/site --delete  mirror a folder
  tinys3 ls -h s3://my-bucket/photos/
  tinys3 rm -r s3://my-bucket/tmp/
  tinys3 presign --expires-in 600 s3://my-bucket/report.pdf
  tinys3 mb s3://my-new-bucket

Credentials, region and endpoint come from the options, else from the AWS
environment variables and ~/.aws files, as for the AWS CLI.
"""

_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
         "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")  # fmt: skip
#: The options that set what an upload or copy stores (none applies to a download).
_OBJECT_OPTIONS = ("content_type", "cache_control", "expires", "metadata", "metadata_directive", "acl", "public",
                   "sse", "sse_kms_key_id", "storage_class")  # fmt: skip


def _cli_parents(parser: Any) -> tuple[Any, Any, Any]:
    """The option groups commands share, as argparse parents: (global options, which go
    before or after the command as with aws; options of commands that touch many objects;
    what uploads and copies store)."""
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--help", action="help", help="show this help and exit")
    for options in (parser, common):  # global options go before or after the command, as with aws
        # Only the top level sets defaults: a subcommand's would overwrite what came before it.
        unset: dict[str, Any] = {"default": argparse.SUPPRESS} if options is common else {}
        flag: dict[str, Any] = {"action": "store_true", **unset}
        options.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible service", **unset)
        options.add_argument("--region", help="the region to sign for", **unset)
        options.add_argument("--profile", help="the profile of ~/.aws/credentials and ~/.aws/config", **unset)
        options.add_argument("--no-sign-request", help="send requests unsigned (public buckets)", **flag)
        options.add_argument("--ca-bundle", metavar="PATH", help="the CA certificates to verify TLS with", **unset)
        options.add_argument("--no-verify-ssl", help="do not verify TLS certificates", **flag)
        options.add_argument("--debug", help="log every request and retry to stderr (never keys or signatures)",
                             **flag)  # fmt: skip
        options.add_argument("--quiet", "-q", help="print nothing but errors", **flag)
        options.add_argument("--only-show-errors", help="print nothing but errors", **flag)
        options.add_argument("--no-progress", help="no progress bar", **flag)
    batch = argparse.ArgumentParser(add_help=False)  # for the commands that may touch many objects
    for kind in ("exclude", "include"):
        batch.add_argument(
            f"--{kind}",
            dest="filters",
            action="append",
            metavar="GLOB",
            type=_tagged(kind),
            help=f"{kind} paths matching GLOB (relative to the source folder; later filters win)",
        )
    batch.add_argument("--dryrun", action="store_true", help="print what would be done, do nothing")
    batch.add_argument("--follow-symlinks", action=argparse.BooleanOptionalAction, default=True,
                       help="read a local source's links as what they point to (the default)")  # fmt: skip
    batch.add_argument(
        "--max-concurrency",
        type=_cli_count,
        metavar="N",
        help=f"files transferred at once by recursive commands (default: {_ASYNC_LINES})",
    )
    stored = argparse.ArgumentParser(add_help=False)  # what uploads and copies store
    stored.add_argument("--content-type", metavar="TYPE", help="Content-Type (default: guessed from the name)")
    stored.add_argument("--cache-control", metavar="VALUE", help="Cache-Control header")
    stored.add_argument("--expires", metavar="WHEN", help="ISO 8601 time (Expires header), or seconds or 'max'")
    stored.add_argument("--metadata", metavar="K=V,...", help="user metadata: K=V,K2=V2 or a JSON object")
    stored.add_argument("--metadata-directive", choices=("COPY", "REPLACE"),
                        help="S3-to-S3 copies: keep the source's metadata, or store only what is given")  # fmt: skip
    stored.add_argument("--acl", choices=_ACLS, help="canned ACL (default: none sent, the bucket's applies)")
    stored.add_argument("--public", action="store_true", help="the same as --acl public-read")
    stored.add_argument("--sse", choices=("AES256", "aws:kms", "aws:kms:dsse"), help="server-side encryption")
    stored.add_argument("--sse-kms-key-id", metavar="KEY", help="the KMS key for --sse aws:kms")
    stored.add_argument("--storage-class", metavar="CLASS", help="STANDARD, STANDARD_IA, GLACIER_IR, …")
    return common, batch, stored


def _cli_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="tinys3",
        description="Copy, sync, list, delete and share objects on S3 and S3-compatible services.",
        epilog=_USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinys3 {__version__}")
    common, batch, stored = _cli_parents(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("cp", "copy files and objects (- is stdin/stdout)"),
                       ("mv", "move files and objects: each source goes once its copy is done")):  # fmt: skip
        cp = commands.add_parser(name, parents=[common, batch, stored], add_help=False, help=text)
        cp.add_argument("source", metavar="SRC")
        cp.add_argument("target", metavar="DST")
        cp.add_argument("--recursive", "-r", action="store_true", help="a folder or a prefix")
    sync = commands.add_parser("sync", parents=[common, batch, stored], add_help=False,
                               help="copy what is missing or changed from one folder to another")  # fmt: skip
    sync.add_argument("source", metavar="SRC")
    sync.add_argument("target", metavar="DST")
    sync.add_argument("--delete", action="store_true", help="delete what is not in SRC (after every copy succeeded)")
    sync.add_argument("--size-only", action="store_true", help="compare sizes only, not times")
    sync.add_argument("--exact-timestamps", action="store_true", help="accepted for aws; downloads always do so")
    ls = commands.add_parser("ls", parents=[common], add_help=False, help="list objects under s3://bucket/prefix")
    ls.add_argument("url", metavar="s3://BUCKET[/PREFIX]", nargs="?", help="none: list the buckets")
    ls.add_argument("--recursive", "-r", action="store_true", help="list every key, not one level")
    ls.add_argument("--human-readable", "-h", action="store_true", help="sizes in KiB, MiB, GiB")
    ls.add_argument("--summarize", action="store_true", help="end with the number and total size of objects")
    rm = commands.add_parser("rm", parents=[common, batch], add_help=False, help="delete an object (or a folder)")
    rm.add_argument("url", metavar="s3://BUCKET/KEY")
    rm.add_argument("--recursive", "-r", action="store_true", help="delete every key in the folder (s3://BUCKET/: all)")
    presign = commands.add_parser("presign", parents=[common], add_help=False, help="print a presigned GET URL")
    presign.add_argument("url", metavar="s3://BUCKET/KEY")
    presign.add_argument("--expires-in", "--expires", dest="expires", type=int, default=3600, metavar="SECONDS",
                         help="lifetime (default 3600)")  # fmt: skip
    for name, text in (("mb", "make a bucket"), ("rb", "remove an empty bucket (--force: empty it first)")):
        bucket = commands.add_parser(name, parents=[common, batch] if name == "rb" else [common], add_help=False,
                                     help=text)  # fmt: skip
        bucket.add_argument("url", metavar="s3://BUCKET")
        if name == "rb":
            bucket.add_argument("--force", action="store_true", help="delete every object first")
    for name, command in commands.choices.items():  # -h is help, as with aws; ls -h is --human-readable
        if name != "ls":
            command.add_argument("-h", action="help", help=argparse.SUPPRESS)
    return parser


def _s3_url(text: str) -> tuple[str, str] | None:
    """(bucket, key) of ``s3://bucket/key``; None for a local path."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text[5:].partition("/")
    if not bucket:
        raise InvalidInput(f"{text!r} names no bucket: write s3://BUCKET/KEY")
    return bucket, key


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} Bytes" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class _ProgressBar:
    """Bytes, percent and rate on one line of a terminal's stderr; nothing elsewhere."""

    def __init__(self, stream: Any, label: str) -> None:
        self._stream = stream if stream.isatty() else None
        self._label = label
        self._start = time.monotonic()
        self._width = 0  # of the widest line drawn

    def __call__(self, done: int, total: int | None) -> None:
        if self._stream is None:
            return
        rate = done / max(time.monotonic() - self._start, 1e-3)
        share = f" {100 * done // total:3d}%" if total else ""
        total_text = f" / {_human(total)}" if total else ""
        text = f"{self._label}: {_human(done)}{total_text}{share}  {_human(rate)}/s"
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = max(self._width, len(text))

    def close(self) -> None:
        """Blank the bar's line, so that what is printed next starts a clean line."""
        if self._stream is not None:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._stream = None


#: Error codes that every transfer of a batch would meet once one did: it stops at the first.
_FAILS_EVERY_TRANSFER = frozenset({"NoSuchBucket", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"})


class _Batch:
    """The transfers of a recursive command, as tasks of the asyncio driver on an event
    loop of their own (``_LoopThread``): ``--max-concurrency`` at once (by default as many
    as an ``AsyncConnection`` keeps open in one loop), over as many keep-alive connections.

    The listing hands each transfer over as it is found, waiting while the limit is
    under way, so memory stays bounded. A failed transfer is reported and the others
    go on. On a terminal, one line on stderr counts files and bytes done of those found
    so far (``~`` while the listing goes on), with rate and ETA.
    """

    def __init__(self, conn: Connection, workers: int | None, stream: Any, shown: bool) -> None:
        limit = workers or _ASYNC_LINES
        self.conn = _asyncio_twin(conn, limit)  #: what the transfers' steps are made with
        self._loop = _LoopThread()
        self._room = threading.Semaphore(limit)
        self._stream = stream if shown and stream.isatty() else None
        self._start = time.monotonic()
        self._width = 0
        self.lock = threading.Lock()
        self._under_way: set[Future[None]] = set()
        self.listing = True
        self.files = self.files_done = self.bytes = self.bytes_done = 0
        self.stopped: HTTPError | None = None  # an error every transfer would meet (``halt``)

    def add(self, size: int, steps: Steps[object], report: Callable[[Exception], None], count: int = 1) -> None:
        """Run ``steps`` (``count`` files, ``size`` bytes) once fewer than the limit are
        under way; ``report`` hears its failure."""
        self._room.acquire()
        with self.lock:
            if self.stopped is not None:
                self._room.release()
                steps.close()
                raise self.stopped
            self.files, self.bytes = self.files + count, self.bytes + size
            self.show()
            future = self._loop.submit(self._run, steps, size, count, report)
            self._under_way.add(future)
        future.add_done_callback(self._ended)

    async def _run(self, steps: Steps[object], size: int, count: int, report: Callable[[Exception], None]) -> None:
        try:
            await self.conn._drive(steps)
        except Exception as error:  # every failure is reported: the others go on
            if not self.halt(error):
                report(error)
        with self.lock:
            self.files_done, self.bytes_done = self.files_done + count, self.bytes_done + size
            self.show()

    def _ended(self, future: Future[None]) -> None:
        with self.lock:
            self._under_way.discard(future)
        self._room.release()

    def halt(self, error: Exception) -> bool:
        """Whether ``error`` would fail every other transfer too (the bucket is missing, the
        keys are refused); if so the first one ends the command (``add`` and the end of the
        batch raise it: one line, not one a file) and no more transfers start."""
        if not (isinstance(error, HTTPError) and error.code in _FAILS_EVERY_TRANSFER):
            return False
        with self.lock:
            self.stopped = self.stopped or error
        return True

    def __enter__(self) -> _Batch:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        """Wait for the transfers under way (after an error or Ctrl-C too: a file is never
        left half-written); a Ctrl-C while waiting cancels them, and each aborts what it
        started (a download's temporary file goes, an upload is not stored)."""
        from concurrent.futures import wait

        with self.lock:
            self.listing = False
            self.show()
        try:
            wait(list(self._under_way))
        except BaseException:
            self._loop.cancel()
            raise
        finally:
            self._loop.close(self.conn)
            with self.lock:
                self.clear()
        if kind is None and self.stopped is not None:
            raise self.stopped

    def clear(self) -> None:
        """Blank the progress line (the lock held), so that a line can be printed."""
        if self._stream is not None and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def show(self) -> None:
        """Draw the progress line (the lock held)."""
        if self._stream is None:
            return
        elapsed = max(time.monotonic() - self._start, 1e-3)
        rate = self.bytes_done / elapsed
        about = "~" if self.listing else ""
        eta = ""
        if not self.listing and rate:
            left = int((self.bytes - self.bytes_done) / rate)
            eta = f", ETA {left // 60}:{left % 60:02d}"
        text = (f"Completed {self.files_done}/{about}{self.files} files, {_human(self.bytes_done)}/{about}"
                f"{_human(self.bytes)}, {_human(rate)}/s{eta}")  # fmt: skip
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


class _Cli:
    """The commands of ``main``, on one connection."""

    def __init__(self, args: Any, stdout: Any, stderr: Any) -> None:
        self.args = args
        self.out = stdout
        self.err = stderr
        self.failures = 0
        self.batch: _Batch | None = None
        self.stores: dict[str, Any] = {}
        self.folders: set[str] = set()  # made by this command's downloads: one os.makedirs each
        self.current: str | None = None  # the single transfer under way ("upload: A to B")
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def conn(self) -> Connection:
        """The connection, made on first use: arguments are checked before credentials are looked for."""
        with self._lock:
            if self._conn is None:
                args = self.args
                import warnings

                verify = False if args.no_verify_ssl else args.ca_bundle
                url = args.endpoint_url
                if url is not None and "://" not in url:  # the library's bare host is its 2013 form
                    _parse_endpoint(url, True, "auto")  # a broken scheme is named as such
                    raise InvalidInput(f"--endpoint-url needs a scheme: write http://{url} or https://{url}")
                with warnings.catch_warnings():  # said once, as a line of its own, below
                    warnings.simplefilter("ignore")
                    self._conn = Connection(endpoint=args.endpoint_url, region=args.region, profile=args.profile,
                                            anonymous=args.no_sign_request, verify=verify)  # fmt: skip
                if verify is False:
                    self.emit(self.err, f"warning: --no-verify-ssl: {_UNVERIFIED.replace(' (verify=False)', '')}")
            return self._conn

    @property
    def silent(self) -> bool:
        """``--quiet`` or ``--only-show-errors``: nothing but errors."""
        return bool(self.args.quiet or getattr(self.args, "only_show_errors", False))

    @property
    def dryrun(self) -> bool:
        return bool(getattr(self.args, "dryrun", False))

    def emit(self, stream: Any, text: str) -> None:
        """Print a line, from any thread, around the batch's progress line. Control
        characters (a key's ESC or line break) are escaped, as ``ls -b`` shows them."""
        text = _escape_controls(text)
        batch = self.batch
        if batch is None:
            print(text, file=stream)
            return
        with batch.lock:
            batch.clear()
            print(text, file=stream, flush=True)
            batch.show()

    def say(self, text: str) -> None:
        if not self.silent:
            self.emit(self.out, text)

    def fail(self, text: str) -> None:
        """Report one failed transfer (the command goes on, and exits 1)."""
        self.failures += 1
        self.emit(self.err, text)

    def interrupted(self) -> str:
        """What a Ctrl-C left, to end the line ``tinys3: interrupted``: a single transfer
        leaves its target as it was; a batch has done some of its files, none by half."""
        batch = self.batch
        if batch is not None:
            return f": {batch.files_done} of {batch.files} files done, none left half-written"
        if self.current is not None:
            verb, _, places = self.current.partition(": ")
            target = places.rpartition(" to ")[2]
            return f": {verb} of {places} stopped; {target} is as it was"
        return ""

    def dry(self, text: str) -> bool:
        """With ``--dryrun``: say what would be done (and return True to skip doing it)."""
        if self.dryrun:
            self.say(f"(dryrun) {text}")
        return self.dryrun

    def wanted(self, relative: str) -> bool:
        """Whether ``--exclude``/``--include`` keep a path relative to the source folder."""
        return _included(relative, getattr(self.args, "filters", None))

    def many(self) -> _Batch:
        """Run transfers at once until the ``with`` block ends (which waits for them)."""
        args = self.args
        self.batch = _Batch(self.conn, args.max_concurrency, self.err, not (self.silent or args.no_progress))
        return self.batch

    def transfer(
        self, verb: str, source: str, target: str, size: int,
        action: Callable[[Connection, Progress | None], Steps[object]],
        remove: Callable[[Connection], Steps[object] | None],
    ) -> None:  # fmt: skip
        """One upload, download or copy, and for ``mv`` the removal of its source once it
        succeeded: now with a progress bar, or handed to the batch. ``action`` and ``remove``
        make the steps with the connection that runs them."""
        verb = "move" if self.args.command == "mv" else verb
        line = f"{verb}: {source} to {target}"
        if self.dry(line):
            return

        def work(conn: Connection, bar: _ProgressBar | None) -> Steps[None]:
            yield from action(conn, bar)
            if self.args.command == "mv":
                removing = remove(conn)
                if removing is not None:
                    yield from removing
            if bar is not None:
                bar.close()  # the result line goes on a clean line, not after the bar
            self.say(line)

        if self.batch is not None:

            def report(error: Exception) -> None:
                self.fail(f"{verb} failed: {source} to {target}: {_error_text(error)}")

            self.batch.add(size, work(self.batch.conn, None), report)
            return
        hidden = self.silent or self.args.no_progress
        bar = None if hidden else _ProgressBar(self.err, (target if verb == "upload" else source).rpartition("/")[2])
        self.current = line
        try:
            self.conn._drive(work(self.conn, bar))
        finally:
            if bar is not None:
                bar.close()

    def places(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        """Source and target of cp, mv and sync: (bucket, key), or None for a local path;
        and the object options, checked before anything is sent."""
        args = self.args
        source, target = _s3_url(args.source), _s3_url(args.target)
        if source is None and target is None:
            raise InvalidInput(f"{args.command} needs an s3:// URL on at least one side")
        if "-" in (args.source, args.target) and (args.command != "cp" or args.recursive):
            raise InvalidInput(f"{args.command} moves files and objects; for standard input or output use cp")
        for place in (source, target):
            if place is not None:  # once, here, not once a file
                _check_bucket(place[0])
        self.stores = self.object_options(target is not None, source is not None and target is not None)
        return source, target

    def object_options(self, to_s3: bool, copies: bool) -> dict[str, Any]:
        """``upload``/``copy`` keyword arguments from the object options."""
        args = self.args
        given = [f"--{name.replace('_', '-')}" for name in _OBJECT_OPTIONS if getattr(args, name)]
        if given and not to_s3:
            raise InvalidInput(f"{given[0]} sets what S3 stores; it does not apply to downloads")
        if args.metadata_directive and not copies:
            raise InvalidInput("--metadata-directive applies to copies between S3 places")
        if args.public and args.acl not in (None, "public-read"):
            raise InvalidInput(f"--public means --acl public-read; it contradicts --acl {args.acl}")
        acl = "public-read" if args.public else args.acl
        stored: dict[str, object] = {}
        if args.expires:
            stored.update(_cli_expiry(args.expires, acl == "public-read", time.time()))
        if args.cache_control:
            stored["cache-control"] = args.cache_control
        if args.content_type:
            stored["content-type"] = args.content_type
        stored.update({_META + name: value for name, value in _cli_metadata(args.metadata).items()})
        request: dict[str, object] = {"x-amz-acl": acl, "x-amz-storage-class": args.storage_class}
        if args.sse_kms_key_id and args.sse not in (None, "aws:kms", "aws:kms:dsse"):
            raise InvalidInput(f"--sse-kms-key-id needs --sse aws:kms, not --sse {args.sse}")
        request["x-amz-server-side-encryption"] = args.sse or ("aws:kms" if args.sse_kms_key_id else None)
        request["x-amz-server-side-encryption-aws-kms-key-id"] = args.sse_kms_key_id
        request = {name: value for name, value in request.items() if value is not None}
        _check_metadata_size({k: v for k, v in _wire_headers(stored).items() if v is not None})
        if not copies:
            return {"headers": {**stored, **request}}
        if stored and args.metadata_directive == "COPY":
            raise InvalidInput("--metadata-directive COPY keeps the source's metadata; drop it to set new values")
        replace = args.metadata_directive == "REPLACE"
        return {"metadata": stored or None, "replace_metadata": replace, "headers": request}

    def cp(self) -> int:
        args = self.args
        source, target = self.places()
        if args.recursive:
            return self.recursive(self.root(source, args.source), self.root(target, args.target))
        if source is None:
            assert target is not None
            if args.source != "-" and os.path.isdir(args.source):
                raise InvalidInput(f"{args.source!r} is a folder: add --recursive (-r) to {args.command} what is in it")
            self.upload(args.source, target, None)
        elif target is None:
            path = args.target
            if path != "-" and (os.path.isdir(path) or path.endswith(("/", os.sep))):  # into the folder
                path = os.path.join(path, source[1].rpartition("/")[2])
            self.download(source, path, None)
        else:
            key = target[1] if target[1] and not target[1].endswith("/") else target[1] + source[1].rpartition("/")[2]
            self.copy(source, (target[0], key), None)
        return self.failures and 1

    mv = cp

    def root(self, place: tuple[str, str] | None, text: str) -> tuple[str, str] | str:
        """A recursive command's folder: (bucket, prefix ending in /) or a local path."""
        return text if place is None else (place[0], _folder(place[1]))

    def recursive(self, source: tuple[str, str] | str, target: tuple[str, str] | str) -> int:
        """``cp -r`` and ``mv -r``: every file or object of the source folder."""
        self.check_folders(source, target)
        with self.many():
            for relative, stat_ in self.entries(source, self.args.follow_symlinks):
                self.send(source, target, relative, stat_[0])
        return self.failures and 1

    def sync(self) -> int:
        """Copy what is missing or differs, then (``--delete``) delete what the source lacks."""
        source, target = self.places()
        src, dst = self.root(source, self.args.source), self.root(target, self.args.target)
        self.check_folders(src, dst)
        if isinstance(dst, str) and os.path.exists(dst) and not os.path.isdir(dst):
            raise InvalidInput(f"sync copies into a folder; {dst!r} is a file")
        kind = "upload" if target is not None and source is None else "download" if target is None else "copy"
        extra: list[str] = []
        with self.many():
            for relative, have, had in _joined(self.entries(src, self.args.follow_symlinks), self.entries(dst)):
                if have is None:
                    if self.args.delete:
                        extra.append(relative)
                elif had is None or _differs(kind, have, had, self.args.size_only):
                    if (
                        isinstance(dst, str)
                        and had is not None
                        and have[0] == had[0]
                        and self.same_file(dst, relative, have)
                    ):
                        continue
                    self.send(src, dst, relative, have[0])
        if extra and self.failures:
            self.emit(self.err, f"tinys3: not deleting {len(extra)} extra file(s): some transfers failed")
        elif extra:
            self.delete_extra(dst, extra)
        return self.failures and 1

    def same_file(self, folder: str, relative: str, have: tuple[int, float, str]) -> bool:
        """Whether the file at ``relative`` in ``folder`` provably holds what the object (size,
        time, ETag) holds: its MD5 is the ETag's (see ``_etag_of_file``). If so, the file takes
        the object's time, as a download would have stamped it, and the next sync looks no more."""
        size, moment, etag = have
        path = os.path.join(folder, *relative.split("/"))
        digest, _, count = etag.lower().partition("-")
        if len(digest) != 32 or (count and not count.isdigit()) or os.path.islink(path):
            return False
        parts = {_part_size(size, self.conn.multipart_size), 5 * _MiB, 8 * _MiB, 16 * _MiB} if count else {None}
        try:
            for part in parts:
                if (part is None or -(-size // part) == int(count)) and _etag_of_file(path, part) == etag.lower():
                    if not self.dryrun:
                        os.utime(path, (moment, moment))
                    return True
        except OSError:
            return False
        return False

    def delete_extra(self, target: tuple[str, str] | str, names: list[str]) -> None:
        """``sync --delete``: remove what the source does not have."""
        if isinstance(target, tuple):
            self.empty(target[0], target[1], (target[1] + name for name in names))
            return
        for name in names:
            path = os.path.join(target, *name.split("/"))
            problem = _link_on_the_way(target, name, last=False)
            if problem:  # the walk follows no link: only a folder swapped for one since gets here
                self.fail(f"delete failed: {path}: {problem}")
            elif not self.dry(f"delete: {path}"):
                try:
                    os.remove(path)
                    self.say(f"delete: {path}")
                except OSError as error:
                    self.fail(f"delete failed: {path}: {error}")

    def check_folders(self, source: tuple[str, str] | str, target: tuple[str, str] | str) -> None:
        """Refuse a local source that is no folder, and S3 folders inside each other
        (the copies would be listed again, or --delete would remove the source)."""
        if isinstance(source, str) and not os.path.exists(source):
            raise InvalidInput(f"{self.args.command}: {source!r} does not exist")
        if isinstance(source, str) and not os.path.isdir(source):
            raise InvalidInput(f"{self.args.command} copies a folder; {source!r} is not one")
        same = isinstance(source, tuple) and isinstance(target, tuple) and source[0] == target[0]
        if same and (source[1].startswith(target[1]) or target[1].startswith(source[1])):
            raise InvalidInput(f"s3://{source[0]}/{source[1]} and s3://{target[0]}/{target[1]} overlap")

    def entries(
        self, place: tuple[str, str] | str, follow: bool = False
    ) -> Iterator[tuple[str, tuple[int, float, str]]]:
        """A folder's files or objects as (path relative to it, (size, mtime, ETag or "")), sorted
        as S3 lists keys, with the filters applied. A local folder's links are followed only if
        ``follow`` (a source's, by default); a target's never are, so nothing outside it is
        compared or deleted."""
        if isinstance(place, str):
            found: Iterable[tuple[str, tuple[int, float, str]]] = (
                ((relative, (size, mtime, "")) for relative, (size, mtime) in _local_files(place, self.warn, follow))
                if os.path.isdir(place)
                else ()
            )
        else:
            bucket, folder = place
            found = ((entry.key[len(folder) :], (entry.size, _unix(entry.last_modified), entry.etag or ""))
                     for entry in self.listed(bucket, folder))  # fmt: skip
        return ((relative, stat_) for relative, stat_ in found if relative and self.wanted(relative))

    def warn(self, text: str) -> None:
        self.emit(self.err, f"tinys3: warning: {text}")

    def send(self, source: tuple[str, str] | str, target: tuple[str, str] | str, relative: str, size: int) -> None:
        """Transfer one file or object of a recursive command, by its path relative to the folders."""
        if isinstance(source, str):
            assert isinstance(target, tuple)
            self.upload(os.path.join(source, *relative.split("/")), (target[0], target[1] + relative), size)
        elif isinstance(target, str):
            if relative.endswith("/"):
                return  # a folder marker: nothing to write
            problem = _unfit_file_name(relative) or _link_on_the_way(target, relative)
            if problem:
                self.fail(f"download failed: s3://{source[0]}/{source[1]}{relative}: {problem}")
                return
            self.download((source[0], source[1] + relative), os.path.join(target, *relative.split("/")), size)
        else:
            self.copy((source[0], source[1] + relative), (target[0], target[1] + relative), size)

    def copy(self, source: tuple[str, str], target: tuple[str, str], size: int | None) -> None:
        url, to = f"s3://{source[0]}/{source[1]}", f"s3://{target[0]}/{target[1]}"
        self.transfer(
            "copy", url, to, size or 0,
            lambda conn, bar: Connection.copy.steps(conn, source[1], source[0], target[1], target[0], **self.stores),
            lambda conn: Connection.delete.steps(conn, source[1], source[0]),
        )  # fmt: skip

    def upload(self, path: str, target: tuple[str, str], size: int | None) -> None:
        from pathlib import Path

        bucket, key = target
        if not key or key.endswith("/"):
            if path == "-":
                raise InvalidInput("name the key to upload standard input to: s3://BUCKET/KEY")
            key += os.path.basename(path)
        source: Any = sys.stdin.buffer if path == "-" else Path(path)
        self.transfer(
            "upload", path, f"s3://{bucket}/{key}", size or 0,
            lambda conn, bar: Connection.upload.steps(conn, key, source, bucket, progress=bar, **self.stores),
            lambda conn: os.remove(path),
        )  # fmt: skip

    def download(self, source: tuple[str, str], path: str, size: int | None) -> None:
        bucket, key = source
        if path == "-":  # checked against an MD5 ETag as a file is, once written: exit 1 if it differs
            self.conn.download(key, sys.stdout.buffer, bucket)
            sys.stdout.buffer.flush()
            return

        def fetch(conn: Connection, bar: Progress | None) -> Steps[None]:
            folder = os.path.dirname(path) or "."
            if self.batch is not None and folder not in self.folders:
                os.makedirs(folder, exist_ok=True)
                self.folders.add(folder)
            response = None
            if size is not None and size < conn.multipart_threshold:  # small when listed: one plain GET
                try:
                    whole = yield from Connection.get.steps(conn, key, bucket, progress=bar)
                    if _content_length(whole) not in (None, size):
                        whole._drop_body()
                        raise _no_retry(
                            f"{key!r} was listed with {size} bytes; its GET has {whole.headers['Content-Length']}"
                        )
                    response = yield from _save(whole, path)
                except HTTPError:
                    raise
                except S3Error as error:  # a wrong answer, a body cut or changed: the usual way, once
                    _log("a download goes again the usual way, after: %s", error)
            if response is None:
                response = yield from Connection.download.steps(conn, key, path, bucket, progress=bar)
            moment = response.headers.get("Last-Modified")
            if moment:  # as aws does: so that a sync finds the file up to date
                from email.utils import parsedate_to_datetime

                seconds = parsedate_to_datetime(moment).timestamp()
                os.utime(path, (seconds, seconds))

        self.transfer("download", f"s3://{bucket}/{key}", path, size or 0, fetch,
                      lambda conn: Connection.delete.steps(conn, key, bucket))  # fmt: skip

    def ls(self) -> int:
        """Buckets (no URL), or one level of a folder with names relative to it
        (every key, in full, with ``--recursive``), as ``aws s3 ls`` prints them."""
        if self.args.url is None:
            for name, created in self.conn.list_buckets():
                self.emit(self.out, f"{_stamp(created)} {name}")
            return 0
        place = _s3_url(self.args.url)
        if place is None:
            raise InvalidInput(f"ls takes an s3:// URL, not {self.args.url!r}")
        bucket, prefix = place
        folder = "" if self.args.recursive else prefix[: prefix.rfind("/") + 1]
        count = total = folders = 0
        for entry in self.listed(bucket, prefix, delimiter=None if self.args.recursive else "/"):
            if entry.is_prefix:
                folders += 1
                self.emit(self.out, f"{'PRE':>30} {entry.key[len(folder) :]}")
                continue
            count, total = count + 1, total + entry.size
            self.emit(self.out, f"{_stamp(entry.last_modified)} {self.size(entry.size):>10} {entry.key[len(folder) :]}")
        if self.args.summarize:
            for line in ("", f"Total Objects: {count}", f"   Total Size: {self.size(total)}"):
                self.emit(self.out, line)
        nothing = bool(prefix) and not (count or folders)  # as aws: a key or prefix that matches nothing
        return 1 if self.failures or nothing else 0

    def listed(self, bucket: str, prefix: str, delimiter: str | None = None) -> Iterator[ObjectInfo]:
        """The listing under ``prefix``, less any key that does not start with it: a listing
        that holds one is wrong (its end would be cut off blindly), so it is reported."""
        for entry in self.conn.list(prefix, bucket, delimiter=delimiter):
            if entry.key.startswith(prefix):
                yield entry
            else:
                self.fail(f"tinys3: skipped {entry.key!r}: the listing of s3://{bucket}/{prefix} holds it, "
                          "but it lies outside")  # fmt: skip

    def size(self, size: int) -> str:
        return _human(size) if self.args.human_readable else str(size)

    def rm(self) -> int:
        if not self.args.recursive:
            bucket, key = self.object_url()
            if not self.dry(f"delete: s3://{bucket}/{key}"):
                self.conn.delete(key, bucket)
                self.say(f"delete: s3://{bucket}/{key}")
            return 0
        place = _s3_url(self.args.url)
        if place is None:
            raise InvalidInput(f"rm takes an s3:// URL, not {self.args.url!r}")
        folder = _folder(place[1])
        keys = (entry.key for entry in self.listed(place[0], folder) if self.wanted(entry.key[len(folder) :]))
        return self.empty(place[0], folder, keys)

    def empty(self, bucket: str, folder: str, keys: Iterable[str]) -> int:
        """Delete ``keys``, 1,000 a request, several requests at once. ``rm -r s3://b/tmp``
        names the folder ``tmp/``: ``tmp/x`` goes, ``tmp`` and ``tmpfoo/y`` stay."""
        with self.many() as batch:
            chunk: list[str] = []
            for key in keys:
                if not self.dry(f"delete: s3://{bucket}/{key}"):
                    chunk.append(key)
                if len(chunk) == 1000:
                    self.delete_keys(batch, bucket, chunk)
                    chunk = []
            if chunk:
                self.delete_keys(batch, bucket, chunk)
        return self.failures and 1

    def delete_keys(self, batch: _Batch, bucket: str, keys: list[str]) -> None:
        def work() -> Steps[None]:
            failed = yield from Connection.delete_many.steps(batch.conn, keys, bucket)
            for key in keys:
                if key not in failed:
                    self.say(f"delete: s3://{bucket}/{key}")
            for name, code in failed.items():
                self.fail(f"delete failed: s3://{bucket}/{name}: {code}")

        batch.add(0, work(), lambda error: self.fail(f"delete failed: {len(keys)} keys in s3://{bucket}/: "
                                                     f"{_error_text(error)}"), len(keys))  # fmt: skip

    def mb(self) -> int:
        bucket = self.bucket_only()
        self.conn.create_bucket(bucket)
        self.say(f"make_bucket: {bucket}")
        return 0

    def rb(self) -> int:
        bucket = self.bucket_only()
        if self.args.force and self.empty(bucket, "", (entry.key for entry in self.conn.list(bucket=bucket))):
            return 1
        try:
            self.conn.delete_bucket(bucket)
        except HTTPError as error:
            if error.code == "BucketNotEmpty" and not self.args.force:
                error.message += " (rb --force empties it first)"
            raise
        self.say(f"remove_bucket: {bucket}")
        return 0

    def bucket_only(self) -> str:
        place = _s3_url(self.args.url)
        if place is None or place[1]:
            raise InvalidInput(f"{self.args.command} takes s3://BUCKET, not {self.args.url!r}")
        return place[0]

    def object_url(self) -> tuple[str, str]:
        place = _s3_url(self.args.url)
        if place is None or not place[1]:
            raise InvalidInput(f"{self.args.command} takes s3://BUCKET/KEY, not {self.args.url!r}")
        return place

    def presign(self) -> int:
        bucket, key = self.object_url()
        print(self.conn.presign(key, bucket, expires=self.args.expires), file=self.out)
        return 0


def _local_files(
    root: str, warn: Callable[[str], None], follow: bool = True
) -> Iterator[tuple[str, tuple[int, float]]]:
    """Every file under ``root`` as (relative path with ``/``, (size, mtime)), in the order
    S3 lists keys: by code point, a folder's name sorting as if it ended with ``/``.

    Links are followed (a link back to a folder being walked is skipped), or
    without ``follow`` left out, as aws's ``--no-follow-symlinks`` does; what
    is not a regular file is skipped with a warning.
    """

    def walk(folder: str, relative: str, seen: frozenset[tuple[int, int]]) -> Iterator[tuple[str, tuple[int, float]]]:
        with os.scandir(folder) as found:
            names = sorted(entry.name + "/" if entry.is_dir() else entry.name
                           for entry in found if follow or not entry.is_symlink())  # fmt: skip
        for name in names:
            path = os.path.join(folder, name.rstrip("/"))
            try:
                info = os.stat(path)
            except OSError as error:
                warn(f"skipping {path}: {error.strerror}")
                continue
            if name.endswith("/"):
                if (info.st_dev, info.st_ino) in seen:
                    warn(f"skipping {path}: a link to a folder that contains it")
                else:
                    yield from walk(path, relative + name, seen | {(info.st_dev, info.st_ino)})
            elif stat.S_ISREG(info.st_mode):
                yield relative + name, (info.st_size, info.st_mtime)
            else:
                warn(f"skipping {path}: not a regular file")

    top = os.stat(root)
    return walk(root, "", frozenset({(top.st_dev, top.st_ino)}))


def _unfit_file_name(relative: str) -> str | None:
    """Why a key (relative to the folder copied) names no file under the target, or None.
    S3 allows what a file system reads as a way out: ``..``, and on Windows a backslash,
    a drive letter or a UNC prefix (refused on every platform, so a bucket downloads the
    same everywhere); and control characters, which a terminal would obey when listed."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "the key has an empty, '.' or '..' part; it names no file here"
    if "\\" in relative:
        return "the key holds a backslash (a folder separator on Windows); it names no file here"
    if parts[0][1:2] == ":" and parts[0][:1].isascii() and parts[0][:1].isalpha():
        return "the key starts with a drive letter; it names no file here"
    if any(_is_control(char) for char in relative):
        return "the key holds a control character; it names no file here"
    return None


def _link_on_the_way(root: str, relative: str, last: bool = True) -> str | None:
    """The first symbolic link among the folders from ``root`` to ``relative`` (and the file
    itself, if ``last``), said as a reason; None when there is none. Nothing is ever written
    or deleted through a link: it could lead out of the folder a command was given."""
    path, parts = root, relative.split("/")
    for part in parts if last else parts[:-1]:
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return f"{path} is a symbolic link; nothing is written or deleted through one"
        except FileNotFoundError:
            return None
    return None


def _joined(
    sources: Iterable[tuple[str, T]], targets: Iterable[tuple[str, T]]
) -> Iterator[tuple[str, T | None, T | None]]:
    """Walk two listings sorted by name side by side: (name, in source or None, in target or None).

    A listing out of order would pair wrongly (and ``--delete`` remove
    what the source has): it raises instead.
    """
    left, right = _ordered(sources), _ordered(targets)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[0], a[1], None
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            yield b[0], None, b[1]
            b = next(right, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(left, None), next(right, None)


def _ordered(items: Iterable[tuple[str, T]]) -> Iterator[tuple[str, T]]:
    last = None
    for item in items:
        if last is not None and item[0] <= last:
            raise S3Error(f"a listing is out of order ({item[0]!r} after {last!r}): sync cannot compare it")
        last = item[0]
        yield item


def _differs(kind: str, source: tuple[int, float, str], target: tuple[int, float, str], size_only: bool) -> bool:
    """Whether sync copies a file or object that both sides have, given (size, mtime) of each.

    Sizes that differ always count. Times count in whole seconds, the
    resolution S3 keeps LastModified in (a file written at 15.524 s and
    uploaded in that second lists as 15.000 s: not a change). Then, as aws:
    an upload or copy goes when the source is newer than the target. A
    download goes when the times differ at all (aws's
    ``--exact-timestamps``): downloads stamp the file with the object's
    time, so any other time means a change, on either side.
    """
    if source[0] != target[0]:
        return True
    if size_only:
        return False
    source_second, target_second = source[1] // 1, target[1] // 1
    if kind == "download":
        return source_second != target_second
    return source_second > target_second


def _unix(moment: _datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def _error_text(error: BaseException, located: bool = False) -> str:
    """One line for an error, as the command line prints it; ``located``: an S3 error
    begins with the bucket and key it is about (lines of a batch name them already)."""
    if isinstance(error, HTTPError):
        where = f"s3://{error.bucket}/{error.key or ''}: " if located and error.bucket else ""
        return _escape_controls(f"{where}{error.code}: {error.message}")
    return str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"


def _tagged(kind: str) -> Callable[[str], tuple[str, str]]:
    """An argparse type that keeps which option a glob came with, in one ordered list."""
    return lambda pattern: (kind, pattern)


def _included(relative: str, filters: list[tuple[str, str]] | None) -> bool:
    """The AWS CLI's filter rule: every path is in, then each ``--exclude``/``--include``,
    in the order given, decides for the paths its glob matches, so later filters win."""
    from fnmatch import fnmatchcase

    keep = True
    for kind, pattern in filters or ():
        if fnmatchcase(relative, pattern):
            keep = kind == "include"
    return keep


def _stamp(moment: _datetime | None) -> str:
    """A listing's time as ``aws s3 ls`` prints it (in UTC)."""
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else " " * 19


def _folder(prefix: str) -> str:
    """A key prefix that names a folder: empty, or ending with ``/``."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _cli_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ValueError(text)
    return int(text)


def _cli_expiry(text: str, public: bool, now: float) -> dict[str, str]:
    """``--expires``: seconds or ``max`` (tinys3's cache lifetime: Cache-Control and Expires),
    else an ISO 8601 time for the Expires header alone, as aws (no zone means UTC)."""
    if text.isdigit() or text == "max":
        return _expiry_headers(int(text) if text.isdigit() else "max", public, now)
    try:
        moment = _datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise InvalidInput(
            f"--expires takes an ISO 8601 time such as 2027-01-01T00:00:00Z, or seconds, or 'max'; not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_timezone.utc)
    return {"expires": _http_date(moment.timestamp())}


def _cli_metadata(text: str | None) -> dict[str, str]:
    """``--metadata``: ``K=V,K2=V2`` or a JSON object of strings, as aws takes it."""
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        import json

        try:
            pairs = json.loads(text)
        except ValueError as error:
            raise InvalidInput(f"--metadata is not valid JSON: {error}") from None
        if not isinstance(pairs, dict) or not all(isinstance(value, str) for value in pairs.values()):
            raise InvalidInput("--metadata JSON must be an object whose values are strings")
        return pairs
    found = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise InvalidInput(f"--metadata takes KEY=VALUE[,KEY=VALUE…] or a JSON object; {item!r} is neither")
        found[name.strip()] = value
    return found


def main(argv: list[str] | None = None) -> int:
    """The ``tinys3`` command: ``cp``, ``mv``, ``sync``, ``ls``, ``rm``, ``mb``, ``rb``, ``presign``.

    Returns the exit code: 0 done, 1 an S3 or I/O error (one line on
    stderr), 2 a usage error.
    """
    try:
        args = _cli_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.debug:
        import logging

        logging.basicConfig(stream=sys.stderr, format="tinys3: %(message)s")
        logging.getLogger("tinys3").setLevel(logging.DEBUG)
    cli = _Cli(args, sys.stdout, sys.stderr)
    try:
        return int(getattr(cli, args.command)())
    except (InvalidInput, InvalidType) as error:
        print(f"tinys3: error: {error}", file=sys.stderr)
        return 2
    except (S3Error, OSError) as error:
        text = _error_text(error, located=True)
        if isinstance(error, CredentialsError) and text.startswith(_NO_CREDENTIALS):
            text = _CLI_NO_CREDENTIALS + text[len(_NO_CREDENTIALS) :]
        print(f"tinys3: error: {text}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"tinys3: interrupted{cli.interrupted()}", file=sys.stderr)
        return 130
    return 1


_CLI_NO_CREDENTIALS = (
    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
    "temporary credentials), name a profile of ~/.aws with --profile, or read a public bucket with "
    "--no-sign-request. Tried: "
)


if __name__ == "__main__":
    sys.exit(main())
