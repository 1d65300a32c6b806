"""The model store: each registry version's serving bundle at ``<model_store_uri>/<version>/``.

A bundle (:mod:`components.bundle`: file names, metadata record, hashes) is what a KServe
``storageUri`` points at. Paths are versioned and immutable: a version path is written once and
never overwritten with different bytes. Publishing is two-phase so a failure can never leave a
half bundle where readers look:

1. :meth:`ModelStore.stage` verifies the bundle and copies ``model.onnx`` to a private staging
   area (``<root>/.staging/<token>/``);
2. :meth:`ModelStore.commit` writes the published ``metadata.json`` (the record as registered:
   :meth:`~components.bundle.BundleMetadata.registered`), moves the bundle to
   ``<root>/<version>/`` -- one atomic ``rename`` locally, a server-side copy on S3 with
   ``metadata.json`` last -- then downloads it back and verifies the bundle hash
   (:func:`~components.bundle.bundle_digest`).

The registry only points at a version path (model-version tag ``bundle_uri``) after commit
verified it, so nothing ever references an incomplete bundle.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from components import bundle
from components.bundle import (
    BUNDLE_FILES,
    METADATA_FILE,
    OPTIONAL_FILES,
    BundleMetadata,
    bundle_digest,
    present_files,
    read_metadata,
)
from components.config import Settings
from components.storage import StorageError, is_s3, parse_s3, s3_client, s3_errors

log = logging.getLogger(__name__)

STAGING = ".staging"


@dataclass(frozen=True)
class PublishedBundle:
    uri: str
    sha256: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StagedBundle:
    token: str
    location: str  # staging folder or s3:// prefix
    metadata: BundleMetadata  # as verified when staged (no registry version yet)


class ModelStore:
    """Versioned, immutable bundle paths under ``root`` (a local folder or ``s3://bucket/prefix``)."""

    def __init__(self, root: str, settings: Settings):
        self.root = str(root).rstrip("/")
        self.settings = settings
        self.s3 = is_s3(self.root)

    # ---- addressing -------------------------------------------------------------------------
    def version_uri(self, version: str | int) -> str:
        version = str(version)
        if not version.isdigit():
            raise StorageError(f"model version must be a registry version number, got {version!r}")
        if self.s3:
            return f"{self.root}/{version}/"
        return str(Path(self.root) / version)

    def _key(self, *parts: str) -> tuple[str, str]:
        loc = parse_s3(self.root + "/")
        prefix = loc.key.rstrip("/")
        return loc.bucket, "/".join(p for p in (prefix, *parts) if p)

    # ---- phase 0: is the store usable at all ------------------------------------------------
    def preflight(self) -> None:
        """Fail fast (bounded retries) with the endpoint named if the store is unusable."""
        if not self.s3:
            root = Path(self.root)
            root.mkdir(parents=True, exist_ok=True)
            if not os.access(root, os.W_OK):
                raise StorageError(f"model store {root}: not writable")
            return
        bucket, _ = self._key()
        with s3_errors(self.root, self.settings):
            client = s3_client(self.settings)
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)

    # ---- phase 1: stage ---------------------------------------------------------------------
    def stage(self, bundle_dir: Path, token: str | None = None) -> StagedBundle:
        """Verify the bundle and copy it to a private staging area; nothing is visible at a version path.

        ``token`` names the staging area (default: a fresh one); a caller that records it first
        can always find what it staged (``churn registry gc``).
        """
        metadata = bundle.verify(bundle_dir)
        token = token or uuid.uuid4().hex
        staged = [name for name in metadata.files if name != METADATA_FILE]  # metadata: at commit
        if not self.s3:
            staging = Path(self.root) / STAGING / token
            staging.mkdir(parents=True)
            for name in staged:
                shutil.copy2(Path(bundle_dir) / name, staging / name)
            return StagedBundle(token, str(staging), metadata)
        bucket, _ = self._key(STAGING, token)
        with s3_errors(f"s3://{bucket}/{self._key(STAGING, token)[1]}/", self.settings):
            for name in staged:
                _, key = self._key(STAGING, token, name)
                s3_client(self.settings).fput_object(bucket, key, str(Path(bundle_dir) / name))
        return StagedBundle(token, f"s3://{bucket}/{self._key(STAGING, token)[1]}/", metadata)

    # ---- phase 2: commit --------------------------------------------------------------------
    def commit(self, staged: StagedBundle, metadata: BundleMetadata) -> PublishedBundle:
        """Publish the staged bundle at ``<root>/<metadata.registry_version>/`` with ``metadata``, verified.

        ``metadata`` is the staged record as registered (:meth:`BundleMetadata.registered`).
        """
        if metadata.registry_version is None or metadata.content_sha256 != staged.metadata.content_sha256:
            raise StorageError(
                f"model store {self.root}: commit needs the staged bundle's metadata with a registry "
                f"version (got registry_version={metadata.registry_version!r})"
            )
        if self.s3:
            return self._commit_s3(staged, metadata)
        return self._commit_local(staged, metadata)

    def _commit_local(self, staged: StagedBundle, metadata: BundleMetadata) -> PublishedBundle:
        staging = Path(staged.location)
        version = metadata.registry_version
        bundle.write_metadata(staging, metadata)
        expected, files = bundle_digest(staging)
        final = Path(self.version_uri(version))
        try:
            os.rename(staging, final)  # atomic: the version folder appears complete or not at all
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)
            self._check_existing(str(final), bundle_digest(final)[0], expected)
        actual, _ = bundle_digest(final)
        if actual != expected:
            raise StorageError(f"model store {final}: hash {actual} after publish, expected {expected}")
        return PublishedBundle(str(final), expected, files)

    def _commit_s3(self, staged: StagedBundle, metadata: BundleMetadata) -> PublishedBundle:
        from minio.commonconfig import CopySource

        version = metadata.registry_version
        body = metadata.to_json().encode()
        bucket, stage_prefix = self._key(STAGING, staged.token)
        _, final_prefix = self._key(version)
        final_uri = self.version_uri(version)
        with s3_errors(final_uri, self.settings):
            client = s3_client(self.settings)
            client.put_object(
                bucket,
                f"{stage_prefix}/{METADATA_FILE}",
                io.BytesIO(body),
                len(body),
                content_type="application/json",
            )
            with tempfile.TemporaryDirectory(prefix="churn-stage-") as tmp:
                for name in metadata.files:
                    client.fget_object(bucket, f"{stage_prefix}/{name}", str(Path(tmp) / name))
                expected, files = bundle_digest(Path(tmp))
            existing = list(client.list_objects(bucket, prefix=f"{final_prefix}/", recursive=True))
            if existing:
                self._check_existing(final_uri, self._remote_digest(client, bucket, final_prefix), expected)
            else:
                # metadata.json last: a reader that sees it can rely on the other files being there
                for name in metadata.files:
                    client.copy_object(
                        bucket, f"{final_prefix}/{name}", CopySource(bucket, f"{stage_prefix}/{name}")
                    )
            actual = self._remote_digest(client, bucket, final_prefix)
            if actual != expected:
                raise StorageError(
                    f"model store {final_uri}: hash {actual} after publish, expected {expected}"
                )
        self.discard(staged)
        return PublishedBundle(final_uri, expected, files)

    def _remote_digest(self, client, bucket: str, prefix: str) -> str:
        """Download a published bundle back and hash it: the verification is end to end."""
        with tempfile.TemporaryDirectory(prefix="churn-verify-") as tmp:
            self._fetch(client, bucket, prefix, Path(tmp))
            return bundle_digest(Path(tmp))[0]

    @staticmethod
    def _fetch(client, bucket: str, prefix: str, dest: Path) -> None:
        """Download a bundle's files: :data:`BUNDLE_FILES`, then the reference if its metadata names one."""
        for name in BUNDLE_FILES:
            client.fget_object(bucket, f"{prefix}/{name}", str(dest / name))
        for name in read_metadata(dest).files:
            if not (dest / name).is_file():
                client.fget_object(bucket, f"{prefix}/{name}", str(dest / name))

    @staticmethod
    def _check_existing(uri: str, actual: str, expected: str) -> None:
        # Immutability: the same bytes again is a harmless retry; anything else is refused.
        if actual != expected:
            raise StorageError(
                f"model store {uri}: already holds a different bundle (sha256 {actual}); version "
                "paths are immutable -- was the registry reset while the store was kept?"
            )

    # ---- cleanup ------------------------------------------------------------------------------
    def discard(self, staged: StagedBundle) -> None:
        """Remove a staging area (best effort: staging is private, leftovers are only garbage)."""
        self.discard_token(staged.token)

    def discard_token(self, token: str) -> None:
        """Remove the staging area of ``token`` (:attr:`StagedBundle.token`), best effort."""
        try:
            if not self.s3:
                shutil.rmtree(Path(self.root) / STAGING / token, ignore_errors=True)
                return
            bucket, prefix = self._key(STAGING, token)
            client = s3_client(self.settings)
            for name in (*BUNDLE_FILES, *OPTIONAL_FILES):
                client.remove_object(bucket, f"{prefix}/{name}")
        except Exception as exc:  # cleanup must never mask the error that led here
            log.warning("could not remove staging area %s of %s: %s", token, self.root, exc)

    def remove_version(self, version: str | int) -> None:
        """Delete a version path; only used to undo a publish whose registration failed."""
        uri = self.version_uri(version)
        if not self.s3:
            shutil.rmtree(uri, ignore_errors=True)
            return
        bucket, prefix = self._key(str(version))
        with s3_errors(uri, self.settings):
            client = s3_client(self.settings)
            for name in reversed((*BUNDLE_FILES, *OPTIONAL_FILES)):
                client.remove_object(bucket, f"{prefix}/{name}")

    # ---- reading ------------------------------------------------------------------------------
    def download(self, uri: str, dest_dir: Path, expected_sha256: str | None = None) -> Path:
        """Fetch a published bundle into ``dest_dir`` (local paths are copied) and verify it."""
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        if is_s3(uri):
            loc = parse_s3(uri if uri.endswith("/") else uri + "/")
            with s3_errors(uri, self.settings):
                self._fetch(s3_client(self.settings), loc.bucket, loc.key.rstrip("/"), dest_dir)
        else:
            for name in present_files(uri):
                src = Path(uri) / name
                if not src.is_file():
                    raise StorageError(f"bundle {uri}: missing {name}")
                shutil.copy2(src, dest_dir / name)
        actual, _ = bundle_digest(dest_dir)
        if expected_sha256 and actual != expected_sha256:
            raise StorageError(f"bundle {uri}: sha256 {actual} does not match registered {expected_sha256}")
        return dest_dir
