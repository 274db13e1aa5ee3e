"""Which files to upload under which keys, and the upload itself."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.client import BaseClient


UPLOAD_CONCURRENCY = 8


class UploadError(ValueError):
    """The paths given cannot be turned into a set of uploads."""


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str


def collect_uploads(paths: Sequence[Path]) -> list[Upload]:
    """Files to upload: a file under its own name, a folder walked recursively with keys relative to it.

    Hidden entries (names starting with '.') inside folders are skipped; a file named explicitly is
    always uploaded.
    """
    uploads: list[Upload] = []
    for path in paths:
        if not path.exists():
            raise UploadError(f"no such file or directory: {path}")
        if path.is_dir():
            uploads.extend(_walk(path))
        elif path.is_file():
            uploads.append(Upload(path, path.name))
        else:
            raise UploadError(f"not a regular file or directory: {path}")
    if not uploads:
        raise UploadError("no files found in " + ", ".join(str(path) for path in paths))
    _check_unique_keys(uploads)
    return uploads


def _walk(folder: Path) -> list[Upload]:
    uploads = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in sorted(files):
            file_path = Path(directory, name)
            if name.startswith(".") or not file_path.is_file():
                continue
            uploads.append(Upload(file_path, file_path.relative_to(folder).as_posix()))
    return uploads


def _check_unique_keys(uploads: Sequence[Upload]) -> None:
    seen: dict[str, Path] = {}
    for upload in uploads:
        if upload.key in seen:
            raise UploadError(
                f"two files would get the same key {upload.key!r}: {seen[upload.key]} and {upload.path}"
            )
        seen[upload.key] = upload.path


def upload_all(
    s3: BaseClient,
    bucket: str,
    uploads: Sequence[Upload],
    on_uploaded: Callable[[Upload], None] | None = None,
    concurrency: int = UPLOAD_CONCURRENCY,
) -> dict[str, str]:
    """Put the files, several at a time like `aws s3 cp --recursive`; each put becomes a queue message.

    Returns the uploads that failed (key -> reason); one unreadable file does not stop the others.
    """

    def put(upload: Upload) -> None:
        content_type = mimetypes.guess_type(upload.path.name)[0] or "application/octet-stream"
        with upload.path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=upload.key, Body=body, ContentType=content_type)
        if on_uploaded is not None:
            on_uploaded(upload)

    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload") as pool:
        futures = {pool.submit(put, upload): upload for upload in uploads}
        for future in as_completed(futures):
            error = future.exception()
            if error is not None:
                failures[futures[future].key] = f"upload failed: {error}"
    return failures
