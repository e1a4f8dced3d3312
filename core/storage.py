"""Stored files (what staff upload for the portal): one small interface, two backends.

    storage().put(key, fileobj)   store the whole stream under key, or nothing at all
    storage().open(key)           a readable binary file; StoredFileMissing when it is not there
    storage().delete(key)         gone (no error when it already was)

The default keeps files on local disk under FILE_STORAGE_PATH (instance/files), outside the
static folder: no file has a public URL, every download goes through a view that checks who
asks. With S3_BUCKET set, files go to that bucket of an S3-compatible store through boto3
(S3_ENDPOINT_URL for one that is not AWS; credentials from S3_ACCESS_KEY_ID and
S3_SECRET_ACCESS_KEY, else boto3's usual chain). Keys are random: knowing one file's key
tells nothing about another's.

A file and the row that names it are written in two systems, so the row's transaction
decides: `delete_if_rolled_back(key)` after a put removes the file when the transaction that
would have named it does not commit, and `delete_after_commit(key)` removes a file only once
the row that named it is gone for good.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from core.db import db

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class StoredFileMissing(Exception):
    """The row names a file the store does not have (deleted by hand, a lost disk, another bucket)."""


def new_key(prefix: str) -> str:
    """A fresh, unguessable key under `prefix` (e.g. "circle-files/12")."""
    return f"{prefix.strip('/')}/{secrets.token_urlsafe(24)}"


class LocalStorage:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} leaves the storage folder")
        return path

    def put(self, key: str, fileobj: BinaryIO) -> None:
        """Written to a temporary file beside the target, then renamed over it: a reader, or a
        crash, never meets half a file under the key."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(fileobj, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise StoredFileMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    def __init__(self, bucket: str, client, prefix: str = ""):
        self.bucket, self.client, self.prefix = bucket, client, prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, fileobj: BinaryIO) -> None:
        # One PUT: the object exists whole once it returns, or not at all (a multipart upload
        # cut short leaves parts, never an object).
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=fileobj)

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise StoredFileMissing(key) from None
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def s3_client(config):
    import boto3

    return boto3.client(
        "s3", endpoint_url=config.get("S3_ENDPOINT_URL") or None, region_name=config.get("S3_REGION") or None,
        aws_access_key_id=config.get("S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=config.get("S3_SECRET_ACCESS_KEY") or None)


def make_storage(config):
    """The backend the configuration names (see the module's docstring)."""
    if config.get("S3_BUCKET"):
        return S3Storage(config["S3_BUCKET"], s3_client(config), config.get("S3_PREFIX") or "")
    return LocalStorage(config["FILE_STORAGE_PATH"])


_EXTENSION = "portico_storage"


def storage():
    """The app's store, made once per app (a test may replace it: app.extensions[...])."""
    app = current_app._get_current_object()
    if _EXTENSION not in app.extensions:
        app.extensions[_EXTENSION] = make_storage(app.config)
    return app.extensions[_EXTENSION]


# --- keeping files and rows in step -----------------------------------------------------------------

_ON_ROLLBACK, _ON_COMMIT = "portico_storage_on_rollback", "portico_storage_on_commit"


def delete_if_rolled_back(key: str) -> None:
    """The file just put under `key` is for a row of this transaction: remove it unless the
    transaction commits."""
    db.session().info.setdefault(_ON_ROLLBACK, []).append((storage(), key))


def delete_after_commit(key: str) -> None:
    """The row naming `key` is deleted in this transaction: remove the file once that commits
    (before, a rollback would leave a row whose file is gone)."""
    db.session().info.setdefault(_ON_COMMIT, []).append((storage(), key))


def _delete_quietly(entries) -> None:
    for store, key in entries:
        try:
            store.delete(key)
        except Exception:  # the row's outcome stands; an orphaned file is only wasted space
            log.exception("could not delete stored file %s", key)


@sa.event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    _delete_quietly(session.info.pop(_ON_COMMIT, []))


@sa.event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction) -> None:
    if transaction.parent is not None:  # a savepoint: the outer transaction decides
        return
    session.info.pop(_ON_COMMIT, None)  # not committed (after_commit took them otherwise)
    _delete_quietly(session.info.pop(_ON_ROLLBACK, []))
