"""The artifacts zone: files people look at (chart PNGs), beside the data zones.

Locally a folder (``data/artifacts``), in prod an S3 prefix; each write replaces the file of the
same name, so the zone always holds the newest chart and Dagster's metadata keeps the history.
"""

from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field


class ArtifactsWriter(dg.ConfigurableResource, ABC):
    @abstractmethod
    def write(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        """Stores ``data`` as ``name`` (e.g. 'charts/btcusdt_1d.png'); returns where it went."""


class LocalArtifacts(ArtifactsWriter):
    base_dir: str = Field(description="Folder of the artifacts zone.")

    def write(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        path = Path(self.base_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(data)
        partial.replace(path)  # readers never see half a file
        return str(path)


class S3Artifacts(ArtifactsWriter):
    bucket: str = Field(description="Bucket of the artifacts zone.")
    prefix: str = Field(default="artifacts", description="Key prefix inside the bucket.")
    region_name: str | None = None
    endpoint_url: str | None = None
    server_side_encryption: str | None = Field(
        default=None,
        description="S3 ServerSideEncryption for new objects, as the Parquet zones use it.",
    )

    def write(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        import boto3

        key = f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name
        client = boto3.client("s3", region_name=self.region_name, endpoint_url=self.endpoint_url)
        extra = (
            {"ServerSideEncryption": self.server_side_encryption}
            if self.server_side_encryption
            else {}
        )
        client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra)
        return f"s3://{self.bucket}/{key}"
