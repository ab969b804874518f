"""``flowml gc`` against a real S3 endpoint (moto's server mode): pagination, 1000-key batches,
protection of a registered model's subtree, dry run, idempotent re-run.

The delete_objects / list_objects_v2 calls are counted with botocore event hooks on the real client gc
uses, so the numbers are the requests that reached the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from flowml.ops.gc import GarbageCollector
from tests.ops.conftest import age, row_count

pytestmark = [pytest.mark.s3]


class Calls:
    """Parameters of every DeleteObjects / ListObjectsV2 request a client sends."""

    def __init__(self, client: Any) -> None:
        self.deletes: list[int] = []
        self.lists: list[dict[str, Any]] = []
        client.meta.events.register("before-parameter-build.s3.DeleteObjects", self._delete)
        client.meta.events.register("before-parameter-build.s3.ListObjectsV2", self._list)

    def _delete(self, params: dict[str, Any], **_: Any) -> None:
        self.deletes.append(len(params["Delete"]["Objects"]))

    def _list(self, params: dict[str, Any], **_: Any) -> None:
        self.lists.append(dict(params))

    def reset(self) -> None:
        self.deletes.clear()
        self.lists.clear()


def _keys(s3_client: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _put_many(s3_client: Any, bucket: str, keys: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda k: s3_client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))


@pytest.fixture
def s3_store(
    flowml_env: str, s3_artifact_root: str, s3_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    from flowml.client import clear_backend_cache
    from flowml.settings import get_settings

    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", s3_artifact_root)
    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", s3_endpoint_url)
    get_settings.cache_clear()
    clear_backend_cache()
    yield flowml_env
    clear_backend_cache()


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_gc_on_s3_paginates_batches_and_protects(
    s3_store: str, s3_client: Any, s3_artifact_root: str
) -> None:
    from flowml.client import FlowmlClient

    client = FlowmlClient()
    exp = client.create_experiment("gc-s3")
    registered = client.create_run(exp).info.run_id
    unused = client.create_run(exp).info.run_id
    active = client.create_run(exp).info.run_id
    client.log_text(registered, "flavors: {}\n", "model/MLmodel")
    client.log_text(registered, "weights", "model/w.bin")
    client.log_text(active, "a", "a.txt")
    client.create_registered_model("s3m")
    client.create_model_version("s3m", f"runs:/{registered}/model", run_id=registered)

    bucket = s3_artifact_root.removeprefix("s3://").split("/", 1)[0]
    root = {
        r: client.get_run(r).info.artifact_uri.removeprefix(f"s3://{bucket}/")
        for r in (registered, unused, active)
    }
    _put_many(s3_client, bucket, [f"{root[registered]}/junk/{i:05d}.bin" for i in range(1200)])
    _put_many(s3_client, bucket, [f"{root[unused]}/part-{i:05d}" for i in range(300)])
    for run_id in (registered, unused):
        client.delete_run(run_id)
    age(s3_store, days=40, runs=[registered, unused])
    everything = _keys(s3_client, bucket, "")
    assert len(everything) == 1200 + 2 + 300 + 1

    calls = Calls(s3_client)
    gc = GarbageCollector(s3_store, s3_client=s3_client)
    dry = gc.run(gc.plan("30d"), dry_run=True)
    assert calls.deletes == [] and _keys(s3_client, bucket, "") == everything
    assert {o.item.id: o.result.files for o in dry.outcomes} == {registered: 1200, unused: 300}
    # 1202 keys: two pages, the second asked for with the first page's continuation token; 300: one page
    gc_lists = [p for p in calls.lists if p["Prefix"].endswith("/artifacts/")]  # not _keys' own listings
    assert len(gc_lists) == 3 and sum("ContinuationToken" in p for p in gc_lists) == 1
    assert all(p["MaxKeys"] == 1000 for p in gc_lists)

    calls.reset()
    report = gc.run(gc.plan("30d"), dry_run=False, delete_rows=True)
    assert not report.errors
    assert sorted(calls.deletes) == [200, 300, 1000]  # never more than 1000 keys a request
    left = _keys(s3_client, bucket, "")
    assert left == {
        f"{root[registered]}/model/MLmodel",
        f"{root[registered]}/model/w.bin",
        f"{root[active]}/a.txt",
    }
    assert row_count(s3_store, "runs", "run_id = :r", r=unused) == 0
    assert row_count(s3_store, "runs", "run_id = :r", r=registered) == 1  # a version names it

    calls.reset()
    again = gc.run(gc.plan("30d"), dry_run=False, delete_rows=True)
    gc.close()
    assert not again.errors and calls.deletes == []
    assert _keys(s3_client, bucket, "") == left
    mv_root = client.get_model_version_download_uri("s3m", "1")
    assert mv_root.endswith(f"{registered}/artifacts/model")
