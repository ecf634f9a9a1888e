"""Fetching a group's lifecycle scripts into a node: every object under the group's
SourceS3Uri, from the S3 endpoint the environment names (AWS_ENDPOINT_URL_S3, or AWS's), or
from a local folder a `--scripts-from S3URI=file:///DIR` mapping puts in its place."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit


class FetchError(Exception):
    """The scripts could not be had; the message says why."""


def parse_mapping(spec: str) -> tuple[str, Path]:
    """`s3://bucket/prefix=file:///dir` (or `=/dir`): the S3 prefix and the local folder."""
    uri, sep, target = spec.partition("=")
    if not sep or not uri.startswith(("s3://", "https://")) or not target:
        raise ValueError(
            f"--scripts-from {spec!r}: expected S3URI=file:///DIR, e.g. "
            "s3://my-bucket/lifecycle=file:///home/me/lifecycle"
        )
    if target.startswith("file://"):
        target = unquote(urlsplit(target).path)
    folder = Path(target)
    if not folder.is_dir():
        raise ValueError(f"--scripts-from {spec!r}: {folder} is not a folder")
    return uri.rstrip("/"), folder.resolve()


def _split(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return parts.netloc, parts.path.lstrip("/")
    # https://bucket.s3.amazonaws.com/prefix or https://s3.../bucket/prefix
    host, path = parts.netloc, parts.path.lstrip("/")
    if ".s3" in host:
        return host.split(".s3", 1)[0], path
    bucket, _, prefix = path.partition("/")
    return bucket, prefix


def fetch(uri: str, into: Path, mappings: dict[str, str]) -> str:
    """Put the scripts under `uri` into `into`; where they came from, for the node's log."""
    into.mkdir(parents=True, exist_ok=True)
    wanted = uri.rstrip("/")
    for prefix in sorted(mappings, key=len, reverse=True):
        if wanted == prefix or wanted.startswith(prefix + "/"):
            folder = Path(mappings[prefix]) / wanted[len(prefix) :].lstrip("/")
            if not folder.is_dir():
                raise FetchError(f"{uri} maps to {folder}, which is not a folder")
            shutil.copytree(folder, into, dirs_exist_ok=True)
            return f"{folder} (mapped from {prefix})"
    return _fetch_s3(uri, into)


def _fetch_s3(uri: str, into: Path) -> str:
    try:
        import boto3
    except ImportError as error:  # an optional dependency: hyperpod-local[process]
        raise FetchError(
            f"cannot fetch {uri}: boto3 is not installed (pip install 'hyperpod-local[process]')"
        ) from error
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        s3 = boto3.session.Session().client("s3")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix) :]
                if not relative or relative.endswith("/"):
                    continue
                target = (into / relative).resolve()
                if into.resolve() not in target.parents:
                    continue  # a key with .. in it stays out of the node
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(target))
                count += 1
    except (BotoCoreError, ClientError) as error:
        raise FetchError(f"cannot fetch {uri}: {error}") from error
    if count == 0:
        raise FetchError(f"no lifecycle scripts under {uri}")
    return f"{uri} ({count} objects from {s3.meta.endpoint_url})"
