"""The S3-compatible backend of core.storage, against a real S3 server process on loopback
(moto's server mode), and a Circle file uploaded and downloaded through it."""
from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import db
from core.storage import S3Storage, StoredFileMissing, make_storage, s3_client
from crm.models import CircleItem
from tests.factories import make_circle
from tests.support import csrf_token, in_tenant

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
BUCKET = "portico-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_config():
    """moto_server on a free loopback port for the session, with one bucket."""
    port = _free_port()
    command = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(command), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = {"S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "S3_REGION": "us-east-1",
              "S3_ACCESS_KEY_ID": "test", "S3_SECRET_ACCESS_KEY": "test", "S3_PREFIX": "uploads"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        s3_client(config).create_bucket(Bucket=BUCKET)
        yield config
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_put_open_delete_against_a_real_s3_server(s3_config):
    store = make_storage(s3_config)
    assert isinstance(store, S3Storage)
    store.put("circle-files/1/2/abc", io.BytesIO(PDF))
    assert store.open("circle-files/1/2/abc").read() == PDF
    keys = [o["Key"] for o in s3_client(s3_config).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert "uploads/circle-files/1/2/abc" in keys
    store.delete("circle-files/1/2/abc")
    with pytest.raises(StoredFileMissing):
        store.open("circle-files/1/2/abc")
    store.delete("circle-files/1/2/abc")  # already gone: no error


@pytest.fixture
def s3_app(app, s3_config):
    """The app storing files in the S3 server for one test."""
    saved = app.extensions.pop("portico_storage", None)
    app.extensions["portico_storage"] = make_storage(s3_config)
    yield app
    app.extensions.pop("portico_storage", None)
    if saved is not None:
        app.extensions["portico_storage"] = saved


def test_a_circle_file_goes_to_s3_and_comes_back_through_the_permission_check(s3_app, s3_config, world,
                                                                             staff_client, client_for):
    circle = in_tenant(s3_app, world.a, lambda: make_circle("Board"))
    client = staff_client("admin")
    response = client.post(f"/staff/circles/{circle.id}/items/new?kind=file", content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client, "/staff/account"), "title": "Minutes",
                                 "file": (io.BytesIO(PDF), "minutes.pdf")})
    assert response.status_code == 302, response.get_data(as_text=True)
    item = in_tenant(s3_app, world.a, lambda: db.session.scalars(sa.select(CircleItem)).one())
    s3 = s3_client(s3_config)
    assert s3.get_object(Bucket=BUCKET, Key=f"uploads/{item.storage_key}")["Body"].read() == PDF

    download = client.get(f"/staff/circles/{circle.id}/items/{item.id}/file")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    # No way in without signing in: the bucket is not public and the URL needs a session.
    anonymous = client_for(world.a.slug).get(f"/staff/circles/{circle.id}/items/{item.id}/file")
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]

    # Lost from the bucket: a clear message, not a server error.
    s3.delete_object(Bucket=BUCKET, Key=f"uploads/{item.storage_key}")
    response = client.get(f"/staff/circles/{circle.id}/items/{item.id}/file")
    assert response.status_code == 302
    assert "missing from the file store" in client.get(response.headers["Location"]).get_data(as_text=True)

    # Deleting the item removes its object once the deletion commits.
    response = client.post(f"/staff/circles/{circle.id}/items/new?kind=file", content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client, "/staff/account"), "title": "Again",
                                 "file": (io.BytesIO(PDF), "again.pdf")})
    again = in_tenant(s3_app, world.a, lambda: db.session.scalars(
        sa.select(CircleItem).where(CircleItem.title == "Again")).one())
    client.post(f"/staff/circles/{circle.id}/items/{again.id}/delete",
                data={"csrf_token": csrf_token(client, "/staff/account")})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert f"uploads/{again.storage_key}" not in keys
