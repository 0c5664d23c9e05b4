"""A real S3-compatible server for the tests: moto in server mode (HTTP on 127.0.0.1, its own
port), started by the tests themselves, with one fresh bucket per use, emptied and deleted
afterwards. The Airflow connection `revisit_s3` (an `aws` connection with the server as its
endpoint_url) is how the code under test reaches it, as it would reach a real bucket."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import service_unavailable

CONN_ID = "revisit_s3"
KEY, SECRET, REGION = "revisit-test-key", "revisit-test-secret", "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def connection(self) -> str:
        """AIRFLOW_CONN_REVISIT_S3 for this server."""
        return json.dumps({"conn_type": "aws", "login": KEY, "password": SECRET,
                           "extra": {"endpoint_url": self.endpoint, "region_name": REGION}})

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY,
                            aws_secret_access_key=SECRET, region_name=REGION)

    @contextlib.contextmanager
    def bucket(self) -> Iterator[str]:
        """A fresh bucket's name; every object in it and the bucket go afterwards."""
        name = f"revisit-test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        try:
            yield name
        finally:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=name, Delete={"Objects": keys})
            client.delete_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's server on a free port for the block (a missing moto skips on a laptop and
    fails under CI=true)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        service_unavailable("moto (S3 server)", str(error))
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server
