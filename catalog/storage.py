"""Locations: one way to address storage, a local path or ``s3://bucket/prefix``.

Everything that reads or writes goes through :class:`Location`, which hands out a
pyarrow filesystem (for Parquet), fsspec options (for ``datasets``) and a boto3
client (for clear pre-flight errors). S3 settings come from the standard AWS
environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, credentials chain); credentials
are read by the SDKs themselves and never pass through roomtone's own objects, so
they cannot end up in logs or metadata.

Every S3 client roomtone makes retries transient failures (throttling, 5xx, dropped
connections) with the SDKs' standard exponential backoff, up to ``AWS_MAX_ATTEMPTS`` attempts
per request (the variable the AWS SDKs already read; default 10), so one slow or flaky
request does not fail a long job, while a permanent failure still ends it in bounded time.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import pyarrow.fs as pafs

from catalog.errors import NotFoundError, StorageError

T, R = TypeVar("T"), TypeVar("R")

# Environment variables that describe *where* S3 is, never *who* you are. These are
# the only ones roomtone forwards to Ray workers.
S3_PUBLIC_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_MAX_ATTEMPTS")
DEFAULT_S3_ATTEMPTS = 10


def s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_max_attempts() -> int:
    """Attempts per S3 request, first one included (``AWS_MAX_ATTEMPTS``, default 10)."""
    value = os.environ.get("AWS_MAX_ATTEMPTS") or str(DEFAULT_S3_ATTEMPTS)
    if not value.isdigit() or int(value) < 1:
        raise StorageError(f"AWS_MAX_ATTEMPTS={value!r} is not a positive whole number",
                           f"set it to the attempts per S3 request, or unset it for {DEFAULT_S3_ATTEMPTS}")
    return int(value)


class S3RetryStrategy(pafs.AwsStandardS3RetryStrategy):
    """The AWS standard strategy (exponential backoff with jitter), :func:`s3_max_attempts` by
    default: pyiceberg's ``s3.retry-strategy-impl`` makes one without arguments."""

    def __init__(self, max_attempts: int | None = None):
        super().__init__(max_attempts=max_attempts or s3_max_attempts())


def has_s3_credentials() -> bool:
    """Whether the standard AWS chain finds any credentials (their values are not looked at)."""
    import botocore.session

    return botocore.session.get_session().get_credentials() is not None


class S3FileSystem(pafs.S3FileSystem):
    """pyarrow's S3 filesystem with our retry strategy, pickled as the arguments that built it:
    pyarrow's own pickling drops the retry strategy, so Ray tasks handed the filesystem (for
    example ``Catalog.to_ray``'s reads) would fall back to pyarrow's 3 attempts."""

    def __init__(self, endpoint: str | None, region: str, attempts: int):
        self._args = (endpoint, region, attempts)
        kwargs: dict = {"region": region, "retry_strategy": S3RetryStrategy(attempts)}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        super().__init__(**kwargs)

    def __reduce__(self):
        return _s3_filesystem, self._args


@lru_cache(maxsize=8)
def _s3_filesystem(endpoint: str | None, region: str, attempts: int) -> S3FileSystem:
    return S3FileSystem(endpoint, region, attempts)


def absolute_path(value: "str | os.PathLike") -> Path:
    """``~`` expanded and made absolute; a ``~user`` this machine does not know is a ValueError
    (pathlib raises RuntimeError), so config validators name the field."""
    try:
        return Path(value).expanduser().resolve()
    except RuntimeError:
        raise ValueError(f"{os.fspath(value)!r} starts with the home of an unknown user; write the path "
                         "out in full") from None


# files whose small reads run at once: each is a round trip to S3 (tens of ms), so a publish of
# thousands of shards that read their footers one by one spent minutes on the driver
FILES_AT_ONCE = 32


def map_files(fn: Callable[[T], R], items: Sequence[T], at_once: int | None = None) -> list[R]:
    """``[fn(item) for item in items]`` with up to ``at_once`` (default FILES_AT_ONCE) calls in
    flight, for reads whose time is the storage's (round trips for Parquet footers, transfer for
    whole files); the first exception is raised."""
    at_once = min(at_once or FILES_AT_ONCE, FILES_AT_ONCE, len(items))
    if at_once <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(at_once) as pool:
        return list(pool.map(fn, items))


def _botocore_retries() -> dict:
    return {"mode": "standard", "max_attempts": s3_max_attempts()}


@dataclass(frozen=True)
class Location:
    """A directory or file, local (absolute path) or on S3 (``s3://bucket/key``)."""

    uri: str

    @classmethod
    def parse(cls, value: "str | os.PathLike | Location") -> "Location":
        if isinstance(value, Location):
            return value
        text = os.fspath(value).strip()
        if not text:
            raise StorageError("empty storage location", "give a local path or s3://bucket/prefix")
        if text.startswith("s3://"):
            bucket, _, key = text[5:].partition("/")
            if len(bucket) < 3:
                raise StorageError(f"{text!r} has no valid bucket name", "use s3://bucket/prefix")
            return cls("s3://" + posixpath.join(bucket, key).rstrip("/"))
        if "://" in text and not text.startswith("file://"):
            scheme = text.split("://", 1)[0]
            raise StorageError(f"storage scheme {scheme!r} is not supported in {text!r}",
                               "use a local path or s3://bucket/prefix")
        try:
            return cls(str(absolute_path(text.removeprefix("file://"))))
        except ValueError as exc:
            raise StorageError(str(exc)) from None  # the message already says the fix

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def path(self) -> str:
        """The path as the pyarrow filesystem wants it (``bucket/key`` on S3)."""
        return self.uri[5:] if self.is_s3 else self.uri

    @property
    def name(self) -> str:
        return posixpath.basename(self.uri)

    @property
    def parent(self) -> "Location":
        return Location(posixpath.dirname(self.uri) if self.is_s3 else str(Path(self.uri).parent))

    def join(self, *parts: str) -> "Location":
        for part in parts:
            if part.startswith("/") or ".." in part.split("/"):
                raise StorageError(f"path part {part!r} escapes {self.uri}", "use a relative path")
        return Location(posixpath.join(self.uri, *parts))

    def relative_to(self, base: "Location") -> str:
        return posixpath.relpath(self.uri, base.uri)

    @property
    def filesystem(self) -> pafs.FileSystem:
        if not self.is_s3:
            return pafs.LocalFileSystem()
        return _s3_filesystem(s3_endpoint(), s3_region(), s3_max_attempts())

    def storage_options(self) -> dict:
        """fsspec options for ``datasets`` / s3fs (endpoint, region and retries only)."""
        if not self.is_s3:
            return {}
        client = {"region_name": s3_region()}
        if s3_endpoint():
            client["endpoint_url"] = s3_endpoint()
        return {"client_kwargs": client, "config_kwargs": {"retries": _botocore_retries()}}

    # -- small I/O helpers, all mapping low-level errors to one clear message ----------

    def exists(self) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def size(self) -> int:
        info = self._info()
        if info.type != pafs.FileType.File:
            raise NotFoundError(f"{self.uri} does not exist", "check the path")
        return info.size

    def _info(self) -> pafs.FileInfo:
        with self._errors("read"):
            return self.filesystem.get_file_info(self.path)

    def list_files(self, suffix: str = "") -> Iterator["Location"]:
        """Every file below this directory (recursively), skipping hidden temp files."""
        return (loc for loc, _ in self.list_sizes(suffix))

    def list_sizes(self, suffix: str = "") -> Iterator[tuple["Location", int]]:
        """`list_files` with each file's size, from the same listing (no request per file)."""
        with self._errors("list"):  # a missing directory lists as empty, without a separate check
            infos = self.filesystem.get_file_info(pafs.FileSelector(self.path, allow_not_found=True, recursive=True))
        prefix = "s3://" if self.is_s3 else ""
        for info in sorted(infos, key=lambda i: i.path):
            if info.type == pafs.FileType.File and info.path.endswith(suffix) \
                    and not info.base_name.startswith((".", "_")):
                yield Location(prefix + info.path), info.size

    def read_bytes(self) -> bytes:
        with self._errors("read"), self.filesystem.open_input_stream(self.path) as f:
            return f.read()

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file at once: a reader never sees a partial file."""
        with self._errors("write"):
            if self.is_s3:
                with self.filesystem.open_output_stream(self.path) as f:
                    f.write(data)
                return
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(self.uri).with_name(f".{self.name}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(data)
            os.replace(tmp, self.uri)

    def upload_from(self, local_file: str) -> None:
        """Move a finished local file here in one step (rename locally, one upload on S3)."""
        with self._errors("write"):
            if self.is_s3:
                # Not pafs.copy_files: in pyarrow 25 it returns normally when the upload fails.
                with open(local_file, "rb") as src, self.filesystem.open_output_stream(self.path) as dst:
                    shutil.copyfileobj(src, dst, 16 << 20)
                os.remove(local_file)
            else:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
                os.replace(local_file, self.uri)

    def makedirs(self) -> None:
        if not self.is_s3:
            with self._errors("create"):
                Path(self.uri).mkdir(parents=True, exist_ok=True)

    def remove_empty(self) -> None:
        """Remove this directory if it holds nothing (S3 has no empty directories to remove)."""
        if not self.is_s3:
            with contextlib.suppress(OSError):
                Path(self.uri).rmdir()

    def check_writable(self) -> None:
        """Fail fast, before any work, when the bucket or directory cannot be written."""
        if self.is_s3:
            self._check_bucket()
        probe = self.join(f".roomtone-probe-{uuid.uuid4().hex[:8]}")
        probe.write_bytes(b"ok")
        with self._errors("delete"):
            probe.filesystem.delete_file(probe.path)

    def s3_client(self):
        """A boto3 S3 client for the same endpoint and region as the pyarrow filesystem."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=s3_endpoint(), region_name=s3_region(),
                            config=Config(retries=_botocore_retries(), connect_timeout=10, read_timeout=60))

    def _check_bucket(self) -> None:
        """boto3's typed errors tell a missing bucket from missing or wrong credentials."""
        import botocore.exceptions

        bucket = self.path.split("/", 1)[0]
        if not has_s3_credentials():
            raise StorageError(f"no AWS credentials found for {self.uri}",
                               "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role")
        try:
            self.s3_client().head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket"):
                raise StorageError(f"S3 bucket {bucket!r} does not exist",
                                   "create it, or point the location at an existing bucket") from None
            raise StorageError(f"S3 refused access to bucket {bucket!r} ({code})",
                               "check the credentials and the bucket policy") from None
        except botocore.exceptions.EndpointConnectionError:
            raise StorageError(f"cannot reach S3 for {self.uri}",
                               f"check AWS_ENDPOINT_URL (now {s3_endpoint() or 'unset'})") from None

    def _errors(self, action: str):
        return _translate_errors(self, action)


# How the SDKs word throttling and server errors, which they retry until the attempts run out.
_TRANSIENT = ("slow_down", "slowdown", "throttl", "internal_failure", "internalerror", "service_unavailable",
              "serviceunavailable", "request rate")


class _translate_errors:
    """Turn pyarrow/OS errors into a StorageError naming the location and the fix."""

    def __init__(self, location: Location, action: str):
        self.location, self.action = location, action

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not isinstance(exc, Exception) or isinstance(exc, StorageError):
            return False  # nothing raised, already clear, or an interrupt (a cancelled Ray task) to let through
        text = str(exc).strip() or type(exc).__name__
        where = self.location.uri
        if isinstance(exc, FileNotFoundError):
            raise NotFoundError(f"{where} does not exist", "check the path") from exc
        if isinstance(exc, PermissionError):
            raise StorageError(f"no permission to {self.action} {where}",
                               "check the file permissions") from exc
        if not self.location.is_s3:
            if isinstance(exc, OSError):
                raise StorageError(f"cannot {self.action} {where}: {exc.strerror or text}",
                                   "point the location at a writable directory") from exc
            return False
        lowered = text.lower()
        bucket = self.location.path.split("/", 1)[0]
        if "nosuchbucket" in lowered or "bucket does not exist" in lowered or \
                "the specified bucket does not exist" in lowered:
            raise StorageError(f"S3 bucket {bucket!r} does not exist",
                               "create it, or point the location at an existing bucket") from exc
        if "credential" in lowered or "access denied" in lowered or "accessdenied" in lowered \
                or "invalidaccesskeyid" in lowered or "signature" in lowered:
            raise StorageError(f"S3 refused to {self.action} {where}: missing or invalid credentials",
                               "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile") from exc
        tries = f"after up to {s3_max_attempts()} attempts with backoff"
        if any(word in lowered for word in _TRANSIENT):
            raise StorageError(f"S3 kept failing to {self.action} {where} {tries}: {text.splitlines()[0]}",
                               "S3 is throttling or unavailable: re-run later (a job keeps its finished shards), "
                               "or allow more attempts with AWS_MAX_ATTEMPTS") from exc
        if "connect" in lowered or "curl" in lowered or "timed out" in lowered:
            raise StorageError(f"cannot reach S3 to {self.action} {where} {tries}",
                               f"check AWS_ENDPOINT_URL (now {s3_endpoint() or 'unset'}) and the network") from exc
        raise StorageError(f"S3 error while trying to {self.action} {where}: {text.splitlines()[0]}",
                           "check the bucket, endpoint and credentials") from exc
