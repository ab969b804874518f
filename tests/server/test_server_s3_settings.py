"""The server reads the S3 endpoint the rest of a deployment is configured with (``FLOWML_S3_ENDPOINT_URL``),
so one variable points the clients, the workers and the server at MinIO; its own variable wins."""

from __future__ import annotations

import pytest

from flowml.server.settings import ServerSettings


def test_server_uses_the_shared_s3_endpoint_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWML_SERVER_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", "http://minio:9000")
    settings = ServerSettings()
    assert settings.s3_endpoint_url == "http://minio:9000"
    # `flowml server` hands its settings to uvicorn workers as JSON: the value survives the round trip
    assert (
        ServerSettings.model_validate_json(settings.model_dump_json()).s3_endpoint_url == "http://minio:9000"
    )


def test_server_specific_s3_endpoint_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("FLOWML_SERVER_S3_ENDPOINT_URL", "http://internal-minio:9000")
    assert ServerSettings().s3_endpoint_url == "http://internal-minio:9000"
    assert ServerSettings(s3_endpoint_url="http://explicit:9000").s3_endpoint_url == "http://explicit:9000"


def test_no_endpoint_means_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWML_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("FLOWML_SERVER_S3_ENDPOINT_URL", raising=False)
    assert ServerSettings().s3_endpoint_url is None
