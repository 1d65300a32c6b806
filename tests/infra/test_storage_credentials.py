"""S3 credentials in a pod: the project's S3 clients take their keys from the environment, from the
pod's IRSA web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, exchanged at STS) or from the
instance profile, and sign every request with them; with none of those the error says so.

AWS cannot run here, so moto's server stands in for STS, IAM and S3, with request authentication
ON: moto checks each S3 request's SigV4 signature against the keys it issued and the role's
policy, so an unsigned or wrongly signed request gets 403 as on AWS. A small recording front on
127.0.0.1 sits before moto and notes the access key each request was signed with; it also bridges
two differences between moto and AWS for the one unsigned call, STS AssumeRoleWithWebIdentity:
moto finds the service of an unsigned request only from a form body (minio sends the parameters
in the query string, which AWS accepts), and moto would demand a signature AWS does not.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pyarrow as pa
import pytest

from components.config import load_settings
from components.model_store import ModelStore
from components.storage import StorageError, fetch
from serving.payload_log import PayloadLog
from tests.infra.moto_server import CREDENTIALS, MotoServer, moto_server
from tests.support.server_process import free_port

BUCKET = "churn-credtest-data"
DATA_KEY = "churn/raw/telco.csv"
DATA = b"customerID,Churn\n1,No\n"
ROLE = "churn-credtest-pipeline-runner"
TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZWZsb3c6cGlwZWxpbmUtcnVubmVyIn0.c2ln"
)
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass
class Seen:
    """One request as the front received it."""

    method: str
    path: str
    access_key: str | None  # from the SigV4 Authorization header; None when unsigned


@dataclass
class AwsFront:
    """The recording front before moto: its URL is both the S3 and the STS endpoint."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # access keys STS handed out

    def s3_requests(self) -> list[Seen]:
        return [s for s in self.seen if "Action=AssumeRoleWithWebIdentity" not in s.path]

    def web_identity_calls(self) -> list[dict[str, str]]:
        return [
            dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(s.path).query))
            for s in self.seen
            if "Action=AssumeRoleWithWebIdentity" in s.path
        ]


def _moto_call(moto: MotoServer, method: str, path: str, body: bytes, headers: dict[str, str]):
    target = urllib.parse.urlsplit(moto.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def _enforce_auth(moto: MotoServer, unauthenticated_requests: int) -> None:
    """moto authenticates every request after the next ``unauthenticated_requests`` ones."""
    status, _, body = _moto_call(
        moto,
        "POST",
        "/moto-api/reset-auth",
        str(unauthenticated_requests).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body


@contextlib.contextmanager
def aws_front(moto: MotoServer) -> Iterator[AwsFront]:
    """Serve the front on a free loopback port for the duration of the block."""
    front = AwsFront("")

    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            signed = CREDENTIAL.search(headers.get("Authorization", ""))
            front.seen.append(Seen(self.command, self.path, signed.group(1) if signed else None))
            path = self.path
            if "Action=AssumeRoleWithWebIdentity" in path:
                # AWS takes this call unsigned, with its parameters in the query string.
                _enforce_auth(moto, 1)
                path, _, query = path.partition("?")
                body = query.encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            status, answer_headers, answer = _moto_call(moto, self.command, path, body, headers)
            if "Action=AssumeRoleWithWebIdentity" in self.path and status == 200:
                front.issued.extend(re.findall(r"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>", answer.decode()))
            self.send_response(status)
            for name, value in answer_headers:
                if name.lower() not in {
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "server",
                    "date",
                }:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        def log_message(self, *args) -> None:  # the list in `front.seen` is the log
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    front.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto-credentials")) as server:
        yield server


@pytest.fixture(scope="module")
def role_arn(moto) -> str:
    """The pipeline runner's role (trusting the cluster's OIDC provider) and the data it may read."""
    keys = {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": "testing"}
    iam = boto3.client("iam", endpoint_url=moto.url, region_name="eu-west-1", **keys)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    s3_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=ROLE, PolicyName="s3", PolicyDocument=json.dumps(s3_all))
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="eu-west-1", **keys)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=BUCKET, Key=DATA_KEY, Body=DATA)
    return arn


@pytest.fixture
def front(moto, role_arn) -> Iterator[AwsFront]:
    _enforce_auth(moto, 0)
    try:
        with aws_front(moto) as served:
            yield served
    finally:
        _enforce_auth(moto, 10**9)  # the next test's setup talks to moto unsigned-by-test-keys again


def irsa_env(front: AwsFront, role_arn: str, tmp_path) -> dict[str, str]:
    """What EKS puts into a pod of an IRSA service account, and nothing else about AWS."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    return {
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": front.url,
        "CHURN_IO_RETRIES": "0",
        "CHURN_HOME": str(tmp_path / "home"),
    }


def test_irsa_pod_signs_s3_requests_with_the_assumed_role_keys(front, role_arn, tmp_path):
    settings = load_settings(irsa_env(front, role_arn, tmp_path))

    path = fetch(f"s3://{BUCKET}/{DATA_KEY}", settings, tmp_path)

    assert path.read_bytes() == DATA
    (call,) = front.web_identity_calls()
    assert call["RoleArn"] == role_arn and call["WebIdentityToken"] == TOKEN
    (issued,) = front.issued
    assert issued.startswith("ASIA"), "STS hands out temporary (ASIA...) keys"
    assert front.s3_requests() and {s.access_key for s in front.s3_requests()} == {issued}


def _publish_check(uri: str, settings, tmp_path) -> None:
    ModelStore(uri, settings).preflight()


def _payload_log_write(uri: str, settings, tmp_path) -> None:
    log = PayloadLog(uri, settings)
    try:
        log.sink.write("credtest.parquet", pa.table({"score": [0.5]}))
    finally:
        log.close()


@pytest.mark.parametrize("use", [_publish_check, _payload_log_write], ids=["model-store", "payload-log"])
def test_every_s3_user_signs_with_the_pod_identity(use, front, role_arn, tmp_path):
    """The model store (register step) and the payload log (serving) go through the same chain."""
    settings = load_settings(irsa_env(front, role_arn, tmp_path))

    use(f"s3://{BUCKET}/churn/credtest", settings, tmp_path)

    (issued,) = front.issued
    assert front.s3_requests() and {s.access_key for s in front.s3_requests()} == {issued}


def test_temporary_keys_from_the_environment_carry_their_session_token(front, moto, role_arn, tmp_path):
    """AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN (e.g. exported by `aws sts assume-role`) sign as given."""
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="eu-west-1")
    _enforce_auth(moto, 1)  # the exchange itself is unsigned on AWS
    keys = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="ci", WebIdentityToken=TOKEN)
    _enforce_auth(moto, 0)
    creds = keys["Credentials"]
    env = {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": front.url,
        "CHURN_IO_RETRIES": "0",
    }

    path = fetch(f"s3://{BUCKET}/{DATA_KEY}", load_settings(env), tmp_path)

    assert path.read_bytes() == DATA
    assert not front.web_identity_calls()
    assert {s.access_key for s in front.s3_requests()} == {creds["AccessKeyId"]}


def test_no_credentials_at_all_is_a_clear_error(front, tmp_path):
    """No keys, no web identity, no instance metadata (a refused port stands in for a laptop's
    missing 169.254.169.254): the error names what was tried and how to provide credentials."""
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": front.url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "CHURN_IO_RETRIES": "0",
        "CHURN_IO_TIMEOUT_S": "5",
    }

    with pytest.raises(StorageError) as failure:
        fetch(f"s3://{BUCKET}/{DATA_KEY}", load_settings(env), tmp_path)

    message = str(failure.value)
    assert "no S3 credentials" in message
    for name in ("AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "instance"):
        assert name in message
    assert not front.s3_requests(), "nothing is sent unsigned"


def test_half_a_key_pair_is_a_clear_error(tmp_path):
    settings = load_settings({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})

    with pytest.raises(StorageError, match="AWS_SECRET_ACCESS_KEY is not set"):
        fetch(f"s3://{BUCKET}/{DATA_KEY}", settings, tmp_path)
