"""Migration 0002 adds the registry tables to a 0001 database and removes them on downgrade."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from flowml.store.migrate import downgrade, upgrade

_REGISTRY_TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
    "registry_history",
    "registry_events",
    "registry_event_attempts",
}


def _tables(uri: str) -> set[str]:
    engine = create_engine(uri)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_0001_and_back(store_uri: str, artifact_root: str) -> None:
    assert upgrade(store_uri, artifact_root, "0001_initial") == "0001_initial"
    assert not _REGISTRY_TABLES & _tables(store_uri)
    assert upgrade(store_uri, artifact_root, "0002_registry") == "0002_registry"
    assert _tables(store_uri) >= _REGISTRY_TABLES
    assert downgrade(store_uri, "0001_initial") == "0001_initial"
    assert not _REGISTRY_TABLES & _tables(store_uri)
    assert "runs" in _tables(store_uri)
