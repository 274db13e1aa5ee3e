"""The captions table: one item per object key, written once per object version."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from captioning.contract.constants import TABLE_KEY, ItemStatus

BATCH_GET_LIMIT = 100
"""Most keys one BatchGetItem call may name."""

CAPTION_EVENT = "caption_event"
"""With caption events on: `pending` from the write until the item's EventBridge event is published, then
`published`. A redelivery that finds a captioned item still `pending` publishes its event again."""
EVENT_PENDING = "pending"
EVENT_PUBLISHED = "published"

_serializer = TypeSerializer()


class StoredItem(NamedTuple):
    """What the function reads back of an existing item (status and etag first, as backfill reads them)."""

    status: str
    etag: str
    event_pending: bool = False
    caption: str | None = None
    error: str | None = None
    model: str = ""


def caption_item(
    *,
    key: str,
    model: str,
    etag: str,
    size: int | None,
    caption: str | None = None,
    error: str | None = None,
    inference_ms: int = 0,
    event_pending: bool = False,
) -> dict[str, Any]:
    """An item: `caption` makes it a captioned item, `error` a failed one; `event_pending` marks it as
    waiting for its caption event (CAPTION_EVENT)."""
    if (caption is None) == (error is None):
        raise ValueError("an item holds either a caption or an error")
    item: dict[str, Any] = {
        TABLE_KEY: key,
        "status": ItemStatus.CAPTIONED.value if caption is not None else ItemStatus.FAILED.value,
        "model": model,
        "etag": etag,
        "size": size if size is not None else 0,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "inference_ms": inference_ms,
    }
    item["caption" if caption is not None else "error"] = caption if caption is not None else error
    if event_pending:
        item[CAPTION_EVENT] = EVENT_PENDING
    return item


def put_item_once(dynamodb_client: Any, table_name: str, item: dict[str, Any]) -> bool:
    """Write `item` unless the table already holds a captioned item for the same key and etag.

    S3 delivers events at least once: a redelivered event for the same object version finds its item
    and leaves it as it is (returns False). A new version of the key (another etag) replaces it, and so
    may any attempt on a key whose item is `failed` (e.g. deleted, then uploaded again unchanged).
    """
    try:
        dynamodb_client.put_item(
            TableName=table_name,
            Item={name: _serializer.serialize(value) for name, value in item.items()},
            ConditionExpression="attribute_not_exists(#key) OR #etag <> :etag OR #status = :failed",
            ExpressionAttributeNames={"#key": TABLE_KEY, "#etag": "etag", "#status": "status"},
            ExpressionAttributeValues={
                ":etag": {"S": item["etag"]},
                ":failed": {"S": ItemStatus.FAILED.value},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def item_versions(dynamodb_client: Any, table_name: str, keys: Iterable[str]) -> dict[str, StoredItem]:
    """key -> its item's status, ETag, caption event state, caption or error and model, for those of
    `keys` that have an item (consistent reads).

    Keys DynamoDB leaves unprocessed twice are left out: callers treat them as new, and the write stays
    conditional, so the worst case is work done twice, never a wrong item.
    """
    unique = list(dict.fromkeys(keys))
    found: dict[str, StoredItem] = {}
    names = {
        "#key": TABLE_KEY,
        "#etag": "etag",
        "#status": "status",
        "#event": CAPTION_EVENT,
        "#caption": "caption",
        "#error": "error",
        "#model": "model",
    }
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        request = {
            table_name: {
                "Keys": [{TABLE_KEY: {"S": key}} for key in unique[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                # Read capacity is charged by item size whatever the projection: reading these is free.
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
        }
        for _attempt in range(2):
            response = dynamodb_client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name, []):
                found[item[TABLE_KEY]["S"]] = StoredItem(
                    status=item.get("status", {}).get("S", ""),
                    etag=item.get("etag", {}).get("S", ""),
                    event_pending=item.get(CAPTION_EVENT, {}).get("S") == EVENT_PENDING,
                    caption=item.get("caption", {}).get("S"),
                    error=item.get("error", {}).get("S"),
                    model=item.get("model", {}).get("S", ""),
                )
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
    return found


def captioned_items(dynamodb_client: Any, table_name: str, keys: Iterable[str]) -> dict[str, StoredItem]:
    """key -> its item, for those of `keys` whose item is captioned.

    An object whose event names the same ETag is a duplicate the conditional write would refuse anyway:
    the function skips its fetch and caption.
    """
    return {
        key: stored
        for key, stored in item_versions(dynamodb_client, table_name, keys).items()
        if stored.status == ItemStatus.CAPTIONED.value
    }


def mark_event_published(dynamodb_client: Any, table_name: str, key: str, etag: str) -> bool:
    """Record that the caption event of `key`'s item for `etag` is published; False when the item is gone
    or holds another version by now (nothing to mark)."""
    try:
        dynamodb_client.update_item(
            TableName=table_name,
            Key={TABLE_KEY: {"S": key}},
            UpdateExpression="SET #event = :published",
            ConditionExpression="#etag = :etag",
            ExpressionAttributeNames={"#event": CAPTION_EVENT, "#etag": "etag"},
            ExpressionAttributeValues={":published": {"S": EVENT_PUBLISHED}, ":etag": {"S": etag}},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
