"""Reading uploaded objects from S3, refusing those too large before their body is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from captioning.function.images import check_object_size


class ObjectUnavailable(Exception):
    """The object is gone (deleted, or overwritten by a delete marker) before it could be read."""


@dataclass(frozen=True)
class FetchedObject:
    etag: str
    size: int
    data: bytes


def fetch_object(s3_client: Any, bucket: str, key: str, max_bytes: int) -> FetchedObject:
    """GetObject, then the size cap on its Content-Length, then the body.

    Raises ImageRejected (too large), ObjectUnavailable (NoSuchKey, AccessDenied); throttling, 5xx and
    connection errors propagate as botocore errors once the client's own retries are spent.
    """
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "NoSuchKey":
            raise ObjectUnavailable(
                "object not found: it was deleted before it could be read (NoSuchKey)"
            ) from error
        # The role has s3:GetObject only, no s3:ListBucket (least privilege), so real S3 answers a read
        # of a deleted object with 403 AccessDenied, not 404. No retry can change either answer.
        if code == "AccessDenied":
            raise ObjectUnavailable(
                "object not found or not readable by the function: deleted before it could be read,"
                " or access denied (AccessDenied)"
            ) from error
        raise
    body = response["Body"]
    try:
        size = int(response["ContentLength"])
        check_object_size(size, max_bytes)
        data = body.read()
    finally:
        body.close()
    return FetchedObject(etag=response.get("ETag", "").strip('"'), size=size, data=data)
