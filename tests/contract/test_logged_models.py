"""MLflow 3 logged models through every client (SQL store and REST to a live ``flowml server``, on
SQLite and PostgreSQL): the client calls, and ``log_model`` → load → register end to end."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flowml.entities import LoggedModelOutput, LoggedModelStatus
from flowml.exceptions import FlowmlError


def _err(fn: Callable[..., Any], *args: Any) -> FlowmlError:
    with pytest.raises(FlowmlError) as err:
        fn(*args)
    return err.value


def test_logged_model_calls(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exp = client.create_experiment("lm-calls")
    run = client.create_run(exp)
    rid = run.info.run_id
    model = client.create_logged_model(exp, "clf", rid, tags={"t": 1}, params={"p": 2}, model_type="sk")
    assert re.fullmatch(r"m-[0-9a-f]{32}", model.model_id)
    assert (model.status, model.name, model.source_run_id, model.model_type) == ("PENDING", "clf", rid, "sk")
    assert (model.tags, model.params) == ({"t": "1"}, {"p": "2"})
    assert model.artifact_location.endswith(f"/models/{model.model_id}/artifacts")
    client.set_logged_model_tags(model.model_id, {"a": "x", "b": "y"})
    client.delete_logged_model_tag(model.model_id, "a")
    client.log_model_params(model.model_id, {"q": 3})
    client.log_outputs(rid, [LoggedModelOutput(model.model_id, 4)])
    (tmp_path / "files" / "sub").mkdir(parents=True)
    (tmp_path / "files" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "files" / "sub" / "w.bin").write_bytes(b"\x00\x01")
    client.log_model_artifacts(model.model_id, str(tmp_path / "files"))
    done = client.finalize_logged_model(model.model_id, "READY")
    assert done.status == LoggedModelStatus.READY
    got = client.get_logged_model(model.model_id)
    assert (got.tags, got.params) == ({"t": "1", "b": "y"}, {"p": "2", "q": "3"})
    assert {f.path for f in client.list_logged_model_artifacts(model.model_id)} == {"MLmodel", "sub"}
    local = Path(client.download_logged_model_artifacts(model.model_id, dst_path=str(tmp_path / "dl")))
    assert (local / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    assert [(o.model_id, o.step) for o in client.get_run(rid).outputs.model_outputs] == [(model.model_id, 4)]
    other = client.create_logged_model(exp, "other")
    assert client.finalize_logged_model(other.model_id, LoggedModelStatus.FAILED).status == "FAILED"
    names = [m.name for m in client.search_logged_models([exp], order_by=[{"field_name": "name"}])]
    assert names == ["clf", "other"]
    page = client.search_logged_models([exp], "name = 'clf' AND params.q = '3'", max_results=1)
    assert [m.model_id for m in page] == [model.model_id]
    first = client.search_logged_models(
        [exp], max_results=1, order_by=[{"field_name": "name", "ascending": False}]
    )
    assert [m.name for m in first] == ["other"] and first.token
    assert [
        m.name
        for m in client.search_logged_models(
            [exp],
            page_token=first.token,
            max_results=1,
            order_by=[{"field_name": "name", "ascending": False}],
        )
    ] == ["clf"]
    # errors, as MLflow's
    assert _err(client.finalize_logged_model, model.model_id, "DONE").error_code == "INVALID_PARAMETER_VALUE"
    assert _err(client.get_logged_model, "m-" + "0" * 32).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _err(client.log_model_params, "m-" + "0" * 32, {"x": 1}).error_code == "INVALID_PARAMETER_VALUE"
    assert _err(client.search_logged_models, exp).error_code == "INVALID_PARAMETER_VALUE"  # not a list
    client.delete_logged_model(other.model_id)
    assert _err(client.get_logged_model, other.model_id).error_code == "RESOURCE_DOES_NOT_EXIST"


def test_log_model_load_and_register(client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The fluent ``log_model`` against this client's store: files at the logged model's location,
    the run's output and metrics, loads by ``models:/``, ``runs:/`` and the registry."""
    from sklearn.linear_model import LogisticRegression

    import flowml
    import flowml.pyfunc
    import flowml.sklearn
    from flowml.settings import get_settings

    monkeypatch.setenv("FLOWML_TRACKING_URI", client.tracking_uri)
    get_settings.cache_clear()
    x_data = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    lr = LogisticRegression().fit(x_data, [0, 0, 1, 1])
    flowml.set_experiment("lm-e2e")
    with flowml.start_run() as run:
        flowml.log_metric("acc", 0.5)
        info = flowml.sklearn.log_model(lr, name="clf", registered_model_name="clf-reg")
    model = client.get_logged_model(info.model_id)
    assert (model.status, model.source_run_id, model.name) == ("READY", run.info.run_id, "clf")
    assert [(m.key, m.value, m.run_id) for m in model.metrics] == [("acc", 0.5, run.info.run_id)]
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [info.model_id]
    version = client.get_model_version("clf-reg", "1")
    assert (version.source, version.run_id) == (info.model_uri, run.info.run_id)
    expected = lr.predict(x_data)
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/clf", "models:/clf-reg/1"):
        loaded = flowml.pyfunc.load_model(uri)
        assert loaded.integrity == "manifest", uri
        assert (loaded.predict(x_data) == expected).all()
    assert (flowml.sklearn.load_model(info.model_uri).predict(x_data) == expected).all()
    # the logged model's own location is an accepted source for its run, another run's is not
    other = client.create_run(run.info.experiment_id)
    ok = client.create_model_version("clf-reg", info.artifact_path, run_id=run.info.run_id)
    assert ok.version == "2"
    err = _err(client.create_model_version, "clf-reg", info.artifact_path, other.info.run_id)
    assert err.error_code == "INVALID_PARAMETER_VALUE"
    pd.testing.assert_series_equal(
        pd.Series(flowml.pyfunc.load_model("models:/clf-reg/2").predict(x_data)), pd.Series(expected)
    )


def test_run_paths_naming_a_logged_model_reach_its_files(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """MLflow 3: ``runs:/<run>/<name>[/sub]`` (list and download, client and ``flowml.artifacts``)
    reaches the run's logged model ``<name>``; the run's root listing does not show it."""
    import flowml.artifacts

    exp = client.create_experiment("lm-run-paths")
    rid = client.create_run(exp).info.run_id
    client.log_text(rid, "hi", "notes/a.txt")
    (tmp_path / "files" / "sub").mkdir(parents=True)
    (tmp_path / "files" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "files" / "sub" / "w.bin").write_bytes(b"\x00\x01")
    model = client.create_logged_model(exp, "model", rid)
    client.log_model_artifacts(model.model_id, str(tmp_path / "files"))
    stranger = client.create_logged_model(exp, "theirs", client.create_run(exp).info.run_id)
    client.log_model_artifacts(stranger.model_id, str(tmp_path / "files"))

    assert [f.path for f in client.list_artifacts(rid)] == ["notes"]
    assert {(f.path, f.is_dir) for f in client.list_artifacts(rid, "model")} == {
        ("model/MLmodel", False),
        ("model/sub", True),
    }
    assert [f.path for f in client.list_artifacts(rid, "model/sub")] == ["model/sub/w.bin"]
    assert client.list_artifacts(rid, "theirs") == []  # another run's model is not this run's path

    local = Path(client.download_artifacts(rid, "model", str(tmp_path / "dl")))
    assert local == tmp_path / "dl" / "model"
    assert (local / "sub" / "w.bin").read_bytes() == b"\x00\x01" and (local / "MLmodel").is_file()
    one = Path(client.download_artifacts(rid, "model/sub/w.bin", str(tmp_path / "dl2")))
    assert one.read_bytes() == b"\x00\x01"
    assert Path(client.download_artifacts(rid, "notes/a.txt")).read_text() == "hi"  # the run's own
    for missing in ("nope", "theirs", "model/nope"):
        err = _err(client.download_artifacts, rid, missing)
        assert err.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert f"Failed to download artifacts from path {missing!r}" in str(err)

    uri = client.tracking_uri
    fetched = Path(flowml.artifacts.download_artifacts(f"runs:/{rid}/model", tracking_uri=uri))
    assert (fetched / "sub" / "w.bin").read_bytes() == b"\x00\x01"
    listed = flowml.artifacts.list_artifacts(f"runs:/{rid}/model", tracking_uri=uri)
    assert {f.path for f in listed} == {"model/MLmodel", "model/sub"}
    listed = flowml.artifacts.list_artifacts(run_id=rid, artifact_path="model/sub", tracking_uri=uri)
    assert [f.path for f in listed] == ["model/sub/w.bin"]

    # registering runs:/<run>/<name> stores where the files are: the run's logged model <name>
    client.create_registered_model("from-run-path")
    version = client.create_model_version("from-run-path", f"runs:/{rid}/model", run_id=rid).version
    assert client.get_model_version_download_uri("from-run-path", version) == model.artifact_location
    version = client.create_model_version("from-run-path", f"runs:/{rid}/model/sub", run_id=rid).version
    assert client.get_model_version_download_uri("from-run-path", version) == f"{model.artifact_location}/sub"
    version = client.create_model_version("from-run-path", f"runs:/{rid}/notes", run_id=rid).version
    run_root = client.get_run(rid).info.artifact_uri
    assert client.get_model_version_download_uri("from-run-path", version) == f"{run_root}/notes"
