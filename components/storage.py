"""Reading and writing by URI: a local path or ``s3://bucket/key`` on any S3-compatible store.

S3 goes through the ``minio`` client, configured from :class:`components.config.Settings`
(endpoint, credentials), with bounded timeouts and retries so a dead or hung store fails in
seconds with the endpoint named, not after boto-style minutes.

Credentials, in the order the AWS SDKs use: keys from the environment (with their session token),
else the pod's IRSA web identity (``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``, exchanged at
STS), else the instance profile (instance metadata). With none of them a request fails before it
is sent, with a message saying so: never an unsigned request.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from components.config import Settings
from components.errors import ChurnError


class StorageError(ChurnError, RuntimeError):
    """An object store or file could not be read or written; the message names the URI."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def parse_s3(uri: str) -> S3Location:
    """Split ``s3://bucket/key`` (the key may be empty for a bucket or prefix root)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3:// URI: {uri!r}")
    return S3Location(parsed.netloc, parsed.path.lstrip("/"))


class _ExplainedCredentials:
    """A minio credentials provider whose failure says what was tried and how to give credentials."""

    def __init__(self, provider, tried: str):
        self._provider = provider
        self._tried = tried

    def retrieve(self):
        """The provider's credentials (minio caches and refreshes them through this call)."""
        try:
            return self._provider.retrieve()
        except Exception as exc:  # minio raises ValueError, urllib3 MaxRetryError, OSError...
            raise StorageError(
                f"no S3 credentials: {self._tried} failed ({exc}). Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or AWS_ROLE_ARN "
                "and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA: the pod's service account), or run on an "
                "instance with an instance profile"
            ) from exc


def _credentials(settings: Settings, http):
    """A minio credentials provider: the environment's keys, else web identity / instance profile."""
    from minio.credentials import IamAwsProvider, StaticProvider

    if settings.s3_access_key or settings.s3_secret_key:
        if not (settings.s3_access_key and settings.s3_secret_key):
            missing = "AWS_SECRET_ACCESS_KEY" if settings.s3_access_key else "AWS_ACCESS_KEY_ID"
            raise StorageError(f"{missing} is not set but its pair is: set both or neither")
        return StaticProvider(settings.s3_access_key, settings.s3_secret_key, settings.s3_session_token)
    web_identity = bool(settings.aws_web_identity_token_file)
    provider = IamAwsProvider(
        # minio uses one URL for both: STS for a web identity, else the instance metadata service.
        custom_endpoint=settings.sts_endpoint_url if web_identity else settings.ec2_metadata_endpoint_url,
        http_client=http,
        token_file=settings.aws_web_identity_token_file,
        role_arn=settings.aws_role_arn,
        role_session_name=settings.aws_role_session_name,
        region=settings.s3_region,
    )
    tried = (
        f"web identity (role {settings.aws_role_arn}, token file {settings.aws_web_identity_token_file})"
        if web_identity
        else f"instance metadata ({settings.ec2_metadata_endpoint_url or 'http://169.254.169.254'})"
    )
    return _ExplainedCredentials(provider, tried)


def s3_client(settings: Settings):
    """A ``minio.Minio`` client for the configured endpoint with bounded timeouts and retries,
    signing with the first credentials the chain (environment, web identity, instance) finds."""
    import urllib3
    from minio import Minio

    endpoint = urlparse(settings.s3_endpoint_url)
    if not endpoint.hostname:
        raise StorageError(f"CHURN_S3_ENDPOINT_URL is not a URL: {settings.s3_endpoint_url!r}")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(5.0, settings.io_timeout_s), read=settings.io_timeout_s),
        retries=urllib3.Retry(
            total=settings.io_retries, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)
        ),
    )
    return Minio(
        endpoint.netloc,
        credentials=_credentials(settings, http),
        region=settings.s3_region,
        secure=endpoint.scheme == "https",
        http_client=http,
    )


@contextmanager
def s3_errors(uri: str, settings: Settings):
    """Any failure of an S3 call inside the block becomes a :class:`StorageError` naming URI and endpoint."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # minio raises S3Error, urllib3 MaxRetryError, socket errors...
        raise StorageError(f"{uri} (endpoint {settings.s3_endpoint_url}): {exc}") from exc


def fetch(uri: str, settings: Settings, dest_dir: Path) -> Path:
    """Make ``uri`` available as a local file and return its path (local paths pass through)."""
    if not is_s3(uri):
        path = Path(uri).expanduser()
        if not path.is_file():
            raise StorageError(f"{uri}: no such file")
        return path
    loc = parse_s3(uri)
    dest = Path(dest_dir) / Path(loc.key).name
    with s3_errors(uri, settings):
        s3_client(settings).fget_object(loc.bucket, loc.key, str(dest))
    return dest


@contextmanager
def atomic_path(final: Path):
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds.

    Readers never see a half-written file, and a failure leaves no partial file behind. A
    ``final`` that is a device or a pipe (``--json-out /dev/null``, ``/dev/stdout``) is written
    through once the block succeeds: renaming over it would replace the device node itself.
    """
    final = Path(final)
    if final.exists() and not final.is_file() and not final.is_dir():
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch) / final.name
            yield tmp
            with open(tmp, "rb") as source, open(final, "wb") as sink:
                shutil.copyfileobj(source, sink)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide artifacts from other users (e.g. a non-root server)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
