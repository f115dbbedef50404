"""The Parquet IO manager's S3 flavour, for prod.

Kept apart from parquet.py so local runs never import boto3 and dagster-aws (about 55 MiB).
"""

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field

from crypto_assets.storage.parquet import KlinesParquetIOManager, StoredDayMissing


class S3KlinesIOManager(KlinesParquetIOManager):
    """Parquet objects in an S3 bucket (or an S3-compatible store via the resource's endpoint)."""

    s3: S3Resource
    bucket: str = Field(description="Bucket for this zone, e.g. the raw or transformed bucket.")
    prefix: str = Field(default="", description="Optional key prefix inside the bucket.")
    server_side_encryption: str | None = Field(
        default=None,
        description="S3 ServerSideEncryption for new objects, e.g. 'AES256' or 'aws:kms'.",
    )

    def _object_key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{key}" if self.prefix.strip("/") else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    def _put(self, key: str, data: bytes) -> str:
        extra = (
            {"ServerSideEncryption": self.server_side_encryption}
            if self.server_side_encryption
            else {}
        )
        try:
            self.s3.get_client().put_object(
                Bucket=self.bucket, Key=self._object_key(key), Body=data, **extra
            )
        except (ClientError, BotoCoreError) as exc:
            raise dg.Failure(f"Could not write {self.uri(key)}: {_describe_s3_error(exc)}") from exc
        return self.uri(key)

    def _get(self, key: str) -> bytes:
        try:
            answer = self.s3.get_client().get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoredDayMissing(key) from exc
            raise dg.Failure(f"Could not read {self.uri(key)}: {_describe_s3_error(exc)}") from exc
        except BotoCoreError as exc:
            raise dg.Failure(f"Could not read {self.uri(key)}: {_describe_s3_error(exc)}") from exc
        return answer["Body"].read()


def _describe_s3_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code == "NoSuchBucket":
            return f"the bucket {error.get('BucketName', '')!r} does not exist (NoSuchBucket)"
        return f"{code}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
