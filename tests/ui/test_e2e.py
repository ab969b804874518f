"""The web UI end to end: a real server, data logged through the REST API, real headless Chromium.

Driven by Playwright for Python against Debian's ``/usr/bin/chromium`` (never a downloaded browser).
Each page is screenshotted; with ``FLOWML_UPDATE_SCREENSHOTS=1`` the shots replace ``docs/ui/`` (the README
shows them), otherwise they go to a temporary directory, so a test run leaves the work tree clean.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, serve_ui

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install chromium"),
]
playwright_sync = pytest.importorskip("playwright.sync_api")

SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "ui"
    if os.environ.get("FLOWML_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "flowml-ui-shots"
)
BIG = 100_000
MLMODEL = b"flavors:\n  python_function:\n    loader_module: flowml.pyfunc\n"


@dataclass
class Seeded:
    url: str
    experiment_id: str
    runs: dict[str, str]  # run name -> id
    big_run: str
    model: str


def _seed(url: str, store: str) -> Seeded:
    from flowml.client import FlowmlClient
    from flowml.entities import Metric, Param, RunTag

    api = FlowmlClient(url)  # everything through the REST API...
    exp = api.create_experiment("sweep")
    api.create_experiment("baseline experiments")
    runs: dict[str, str] = {}
    t0 = int(time.time() * 1000) - 3_600_000
    for i, (lr, depth) in enumerate([(0.1, 3), (0.05, 5), (0.01, 8), (0.2, 2), (0.02, 6)]):
        run = api.create_run(exp, start_time=t0 + i * 60_000, run_name=f"trial-{i}").info.run_id
        acc = 0.6 + 0.07 * i
        metrics = [Metric("loss", 1.0 / (s + 1) + 0.05 * i, t0 + s * 1000, s) for s in range(200)]
        metrics += [Metric("accuracy", acc * s / 199, t0 + s * 1000, s) for s in range(200)]
        api.log_batch(
            run,
            metrics,
            [Param("lr", str(lr)), Param("max_depth", str(depth)), Param("model", "tree")],
            [
                RunTag("team", "vision"),
                RunTag("flowml.prefect.flow_run_url", f"http://prefect.local/runs/{i}"),
            ],
        )
        api.set_terminated(run, "FINISHED", end_time=t0 + i * 60_000 + 95_000 * (i + 1))
        runs[f"trial-{i}"] = run
    parent = runs["trial-4"]
    for j in range(2):
        child = api.create_run(exp, run_name=f"fold-{j}", tags={"mlflow.parentRunId": parent}).info.run_id
        api.log_batch(child, [Metric("accuracy", 0.8 + j / 100, t0, 0)], [Param("fold", str(j))])
        runs[f"fold-{j}"] = child
    api.log_dict(runs["trial-4"], {"lr": 0.02, "layers": [64, 32]}, "config.json")
    api.log_text(runs["trial-4"], MLMODEL.decode(), "model/MLmodel")
    api.log_text(runs["trial-4"], "a,b\n1,2\n3,4\n", "data/sample.csv")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "curve.png").write_bytes(png(96, 48))
        api.log_artifact(runs["trial-4"], str(Path(tmp) / "curve.png"), "plots")
    # One run with a 100k-point metric, written through the local store (100 REST batches would work
    # too, but the point here is drawing it, not logging it).
    big = api.create_run(exp, run_name="long-training").info.run_id
    local = FlowmlClient(store).backend
    pts = [Metric("loss", 2.0 / (1 + s / 500) + (s % 997) / 5000, t0 + s * 10, s) for s in range(BIG)]
    for k in range(0, BIG, 1000):
        local.log_batch(big, pts[k : k + 1000], [], [])
    api.log_batch(big, [Metric("val_loss", 1.0 / (s + 1), t0 + s * 10, s) for s in range(0, BIG, 1000)])
    # registry: a model with two versions and a gate on Production
    model = "churn-classifier"
    api.create_registered_model(model, description="Predicts churn from usage.")
    api.create_model_version(model, f"runs:/{runs['trial-0']}/model", runs["trial-0"])
    api.create_model_version(model, f"runs:/{runs['trial-4']}/model", runs["trial-4"])
    api.set_promotion_policy(
        model, {"to": ["Production"], "rules": [{"metric": "accuracy", "op": ">=", "value": 0.99}]}
    )
    # Deployment records as the deployment flow writes them (the Bentos themselves do not exist here:
    # a rollback from this page fails, which is what the UI must show; tests/deploy rolls back for real).
    history = (("1", "SUPERSEDED", "6f1c2a9e-0000"), ("2", "SERVING", "9a8b7c6d-1111"))
    for version, status, flow_run in history:
        record = {
            "name": model, "version": version, "target": "local", "status": status, "event_id": int(version),
            "flow_run_id": flow_run, "bento_tag": f"churn_classifier_service:v{version}",
            "details": {"flow_run_url": f"http://prefect.local/flow-runs/flow-run/{flow_run}"},
        }  # fmt: skip
        created = httpx.post(f"{url}/api/flowml/deployments", json=record).json()["deployment"]
        fields = {"endpoint_url": "http://127.0.0.1:3000"} if status == "SERVING" else {"status": status}
        httpx.post(f"{url}/api/flowml/deployments/update", json={"id": created["id"], "fields": fields})
    return Seeded(url, exp, runs, big, model)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("ui")
    store = f"sqlite:///{tmp / 'ui.db'}"
    with pytest.MonkeyPatch.context() as env:  # where a rollback from the UI would serve (never the cwd)
        env.setenv("FLOWML_DEPLOYMENTS_DIR", str(tmp / "deployments"))
        env.setenv("BENTOML_HOME", str(tmp / "bentoml"))
        with serve_ui(store, str(tmp / "artifacts")) as url:
            yield _seed(url, store)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def rows(page: Any) -> list[str]:
    return list(page.locator("#runs tbody tr").evaluate_all("rs => rs.map(r => r.innerText)"))


def png(width: int, height: int) -> bytes:
    """A small RGB gradient PNG (an image artifact to preview)."""
    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def unzip(path: str | Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def ink(page: Any, selector: str) -> int:
    """Non-blank pixels on a canvas."""
    return int(
        page.evaluate(
            """sel => { const c = document.querySelector(sel); const d = c.getContext('2d')
                 .getImageData(0, 0, c.width, c.height).data; let n = 0;
                 for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
            selector,
        )
    )


def test_static_files_are_served_with_types_and_caching(seeded: Seeded) -> None:
    index = httpx.get(seeded.url + "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in index.headers and index.headers["cache-control"] == "no-cache"
    js = httpx.get(seeded.url + "/static/js/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(seeded.url + "/static/app.css").headers["content-type"].startswith("text/css")
    again = httpx.get(seeded.url + "/static/js/app.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(seeded.url + "/static/../app.py").status_code == 404
    assert httpx.get(seeded.url + "/static/%2e%2e/__init__.py").status_code == 404


def test_experiments_page_creates_and_renames(seeded: Seeded, page: Any) -> None:
    page.goto(seeded.url + "/")
    page.wait_for_selector("#experiments >> text=sweep")
    page.fill("input[name=new-experiment]", "ui-created")
    page.click("text=Create")
    page.wait_for_selector("#experiments >> text=ui-created")
    page.fill("input[type=search]", "sweep")
    page.wait_for_function("() => !document.querySelector('#experiments').innerText.includes('ui-created')")
    page.fill("input[type=search]", "")
    page.wait_for_selector("#experiments >> text=ui-created")
    shot(page, "experiments")
    # rename, delete (confirmed), find it among the deleted, restore
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#experiments tr:has-text('ui-created') >> text=Rename")
    page.fill("input[aria-label='New name']", "ui-renamed")
    page.click("#experiments >> text=Save")
    page.wait_for_selector("#experiments >> text=ui-renamed")
    page.click("#experiments tr:has-text('ui-renamed') >> text=Delete")
    page.wait_for_function("() => !document.querySelector('#experiments').innerText.includes('ui-renamed')")
    page.select_option("select[aria-label=Lifecycle]", "deleted")
    page.click("#experiments tr:has-text('ui-renamed') >> text=Restore")
    page.wait_for_function("() => !document.querySelector('#experiments').innerText.includes('ui-renamed')")
    page.select_option("select[aria-label=Lifecycle]", "active")
    page.wait_for_selector("#experiments >> text=ui-renamed")


def test_runs_delete_and_restore(seeded: Seeded, page: Any) -> None:
    from flowml.client import FlowmlClient

    api = FlowmlClient(seeded.url)
    exp = api.create_experiment("scratch")
    keep, drop = (api.create_run(exp, run_name=n).info.run_id for n in ("keep-me", "drop-me"))
    page.goto(f"{seeded.url}/#/experiments/{exp}")
    page.wait_for_selector("#runs >> text=drop-me")
    page.check(f"tr[data-run-id='{drop}'] input[type=checkbox]")
    page.click("button.danger:has-text('Delete')")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 1")
    assert api.get_run(drop).info.lifecycle_stage == "deleted"
    page.select_option("select[aria-label=Lifecycle]", "deleted")
    page.wait_for_selector(f"tr[data-run-id='{drop}']")
    page.check(f"tr[data-run-id='{drop}'] input[type=checkbox]")
    page.click("button.danger:has-text('Restore')")
    page.wait_for_selector("#runs >> text=No runs match.")
    assert api.get_run(drop).info.lifecycle_stage == "active"
    assert api.get_run(keep).info.lifecycle_stage == "active"


def test_runs_table_filter_sort_nested_and_compare(seeded: Seeded, page: Any) -> None:
    t0 = time.perf_counter()
    page.goto(f"{seeded.url}/#/experiments/{seeded.experiment_id}")
    page.wait_for_selector("#runs >> text=trial-3")
    print(f"runs table first page: {time.perf_counter() - t0:.2f}s")
    texts = rows(page)
    assert len(texts) == 8  # 5 trials + 2 folds + long-training
    # nested runs follow their parent
    names = [t.split("\t")[1].strip() for t in texts]
    i = next(k for k, n in enumerate(names) if n.startswith("trial-4"))
    assert names[i + 1].startswith("↳") and names[i + 2].startswith("↳")
    shot(page, "runs")
    # filter with the grammar, and an invalid filter shows the server's error inline
    page.fill("#filter", "metrics.accuracy > 0.8 and params.model = 'tree'")
    page.press("#filter", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 2")
    assert sorted(t.split("\t")[1].strip() for t in rows(page)) == ["trial-3", "trial-4"]
    page.fill("#filter", "metrics.accuracy >>> 1")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error .error-inline")
    page.fill("#filter", "params.model = 'tree'")
    page.press("#filter", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 5")
    assert page.locator("#filter-error .error-inline").count() == 0
    # sort by a metric column (server-side order_by), both directions
    page.click("#runs th:has-text('accuracy')")
    page.wait_for_selector("#runs th.sorted:has-text('accuracy'):has-text('▼')")
    assert rows(page)[0].split("\t")[1].strip() == "trial-4"
    page.click("#runs th:has-text('accuracy')")
    page.wait_for_selector("#runs th.sorted:has-text('accuracy'):has-text('▲')")
    assert rows(page)[0].split("\t")[1].strip() == "trial-0"
    assert "order=metrics.accuracy" in page.url
    # column chooser adds a tag column
    page.click("#columns summary")
    page.check("#columns input[value='t:team']")
    page.wait_for_selector("#runs th:has-text('team')")
    page.click("#columns summary")
    # CSV export of the current view
    with page.expect_download() as dl:
        page.click("text=Export CSV")
    csv = Path(dl.value.path()).read_text()
    assert csv.splitlines()[0].startswith("run_id,run_name") and "tags.team" in csv.splitlines()[0]
    assert len(csv.strip().splitlines()) == 6
    # select two runs and compare
    page.check(f"tr[data-run-id='{seeded.runs['trial-0']}'] input[type=checkbox]")
    page.check(f"tr[data-run-id='{seeded.runs['trial-4']}'] input[type=checkbox]")
    page.click("#compare")
    page.wait_for_selector("#diff tr.differs")
    page.wait_for_function("() => Number(document.querySelector('#compare-chart')?.dataset.points) > 0")
    diff_rows = page.locator("#diff tr.differs").all_inner_texts()
    assert any(r.startswith("lr") for r in diff_rows)
    assert not any(r.startswith("model\t") for r in diff_rows)  # same value: not highlighted
    assert ink(page, "#compare-chart") > 500 and ink(page, "#scatter") > 100 and ink(page, "#parallel") > 100
    shot(page, "compare")


def test_run_page_draws_a_100k_point_metric_and_previews_artifacts(seeded: Seeded, page: Any) -> None:
    t0 = time.perf_counter()
    page.goto(f"{seeded.url}/#/runs/{seeded.big_run}")
    page.wait_for_selector("#metric-chart[data-drawn='1']")
    print(
        f"100k-point chart drawn {time.perf_counter() - t0:.2f}s after navigation;",
        page.inner_text("#chart-info"),
    )
    assert 0 < int(page.get_attribute("#metric-chart", "data-points") or 0) <= 1000
    assert ink(page, "#metric-chart") > 1000
    assert "of 100,000 points" in page.inner_text("#chart-info")
    # several keys on one chart, time axis, log scale and smoothing redraw it
    page.check("input[value='val_loss']")
    page.wait_for_function("() => document.querySelector('#chart-info').innerText.includes('100,100')")
    page.select_option("select[aria-label='x axis']", "time")
    page.check("text=log scale")
    page.fill("input[aria-label=smoothing]", "0.8")
    page.wait_for_selector("#metric-chart[data-state='time|log|0.8|loss,val_loss']")
    assert ink(page, "#metric-chart") > 1000
    shot(page, "run-chart")

    page.goto(f"{seeded.url}/#/runs/{seeded.runs['trial-4']}")
    page.wait_for_selector("#metric-chart[data-drawn='1']")
    assert page.locator("#system-tags a[href='http://prefect.local/runs/4']").count() == 1
    # edit a tag
    page.fill("input[name=tag-key]", "reviewed")
    page.fill("input[name=tag-value]", "yes")
    page.click("text=Add tag")
    page.wait_for_selector("#tags >> text=reviewed")
    page.reload()
    page.wait_for_selector("#tags >> text=reviewed")
    # artifacts: JSON, CSV and the MLmodel file preview
    page.click("#artifact-tree >> text=config.json")
    page.wait_for_selector("#artifact-preview pre >> text=layers")
    page.click("#artifact-tree summary:has-text('model/')")
    page.click("#artifact-tree >> text=MLmodel")
    page.wait_for_selector("#artifact-preview pre.mlmodel >> text=python_function")
    page.click("#artifact-tree summary:has-text('data/')")
    page.click("#artifact-tree >> text=sample.csv")
    page.wait_for_selector("#artifact-preview table >> text=3")
    with page.expect_download() as dl:
        page.click("#artifact-preview >> text=Download")
    assert Path(dl.value.path()).read_text() == "a,b\n1,2\n3,4\n"
    # an image previews as an image
    page.click("#artifact-tree summary:has-text('plots/')")
    page.click("#artifact-tree >> text=curve.png")
    page.wait_for_function("() => document.querySelector('#artifact-preview img')?.naturalWidth === 96")
    shot(page, "run")
    # folders download as zips (streamed by the server): one folder, then the whole run
    with page.expect_download() as dl:
        page.click("#artifact-tree button[aria-label='download folder model']")
    assert dl.value.suggested_filename == "model.zip"
    assert unzip(dl.value.path()) == {"model/MLmodel": MLMODEL}
    with page.expect_download() as dl:
        page.click("#download-all")
    assert dl.value.suggested_filename == f"{seeded.runs['trial-4']}-artifacts.zip"
    assert set(unzip(dl.value.path())) == {
        "config.json",
        "data/sample.csv",
        "model/MLmodel",
        "plots/curve.png",
    }


def test_registry_transition_with_reason_history_and_gate_report(seeded: Seeded, page: Any) -> None:
    page.goto(f"{seeded.url}/#/models")
    page.wait_for_selector(f"#models >> text={seeded.model}")
    shot(page, "models")
    page.click(f"text={seeded.model}")
    page.wait_for_selector("#versions")
    page.select_option("#transition select[name=version]", "1")
    page.select_option("#transition select[name=stage]", "Staging")
    page.fill("#transition input[name=reason]", "offline eval looks good")
    page.click("#transition button[type=submit]")
    page.wait_for_selector("#history >> text=offline eval looks good")
    assert "v1: None → Staging" in page.inner_text("#history")
    assert "Staging" in page.inner_text("#versions tr[data-version='1']")
    # a gated promotion is refused with the report
    page.select_option("#transition select[name=version]", "1")
    page.select_option("#transition select[name=stage]", "Production")
    page.fill("#transition input[name=reason]", "ship it")
    page.click("#transition button[type=submit]")
    page.wait_for_selector("#gate-report >> text=failed")
    # alias move with a reason
    page.fill("#alias input[name=alias]", "champion")
    page.select_option("#alias select[name=version]", "2")
    page.fill("#alias input[name=alias-reason]", "best accuracy")
    page.click("#alias button[type=submit]")
    page.wait_for_selector("#history >> text=best accuracy")
    # deployments: status, endpoint, Bento and the lineage chain with links; rollback with a confirmation
    page.wait_for_selector("#deployments-table")
    serving = page.locator("#deployments-table tr[data-version='2']")
    assert "SERVING" in serving.inner_text() and "churn_classifier_service:v2" in serving.inner_text()
    lineage = serving.locator("td").nth(4)
    assert lineage.locator(f"a[href='#/runs/{seeded.runs['trial-4']}']").inner_text() == "v2"
    assert lineage.locator("a[href='http://prefect.local/flow-runs/flow-run/9a8b7c6d-1111']").count() == 1
    assert "event 2" in lineage.inner_text() and "http://127.0.0.1:3000" in lineage.inner_text()
    shot(page, "model")
    page.locator("#deployments").scroll_into_view_if_needed()
    shot(page, "deployments")
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss() if len(dialogs) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.click("#rollback")  # dismissed: nothing is asked of the server
    for _ in range(100):
        if dialogs:
            break
        page.wait_for_timeout(50)
    assert "Roll back churn-classifier to the previous version (v1)?" in dialogs[0]
    assert page.inner_text("#rollback-result") == "" and page.is_enabled("#rollback")
    page.click("#rollback")  # accepted: the server tries, the Bento is missing, the error is shown
    page.wait_for_selector("#rollback-result .error-box", timeout=60_000)
    assert len(dialogs) == 2
    message = page.inner_text("#rollback-result")
    assert "failed; the previous deployment keeps serving" in message and "v1" in message
    assert page.locator("#deployments-table tbody tr").first.inner_text().split("\t")[1] == "FAILED"


def test_auth_login_and_forbidden_message(tmp_path: Path, page: Any) -> None:
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    settings = {"auth": True, "auth_admin_username": "admin", "auth_admin_password": "admin-password"}
    with serve_ui(store, str(tmp_path / "art"), **settings) as url:
        admin = httpx.Client(base_url=url + "/api/2.0/mlflow", auth=("admin", "admin-password"))
        exp = admin.post("/experiments/create", json={"name": "secret"}).json()["experiment_id"]
        run_info = admin.post("/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
        run = run_info["run_id"]
        where = run_info["artifact_uri"].split(":", 1)[1].lstrip("/")
        put = httpx.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{where}/notes/readme.txt",
                        content=b"for admins", auth=("admin", "admin-password"))  # fmt: skip
        assert put.status_code == 200
        assert (
            admin.post("/users/create", json={"username": "bob", "password": "bob-password"}).status_code
            == 200
        )
        page.goto(url + "/")
        page.wait_for_selector("form.login")
        shot(page, "login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong-password")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#login-error >> text=Wrong username")
        page.fill("input[name=password]", "admin-password")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#experiments >> text=secret")
        assert page.evaluate("sessionStorage.getItem('flowml.auth')").startswith("Bearer ")
        # a folder download sends the token (fetch), so it works with auth on
        page.goto(f"{url}/#/runs/{run}")
        with page.expect_download() as dl:
            page.click("#artifact-tree button[aria-label='download folder notes']")
        assert unzip(dl.value.path()) == {"notes/readme.txt": b"for admins"}
        page.goto(url + "/")
        page.click("text=Sign out")
        page.wait_for_selector("form.login")
        page.fill("input[name=username]", "bob")
        page.fill("input[name=password]", "bob-password")
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#experiments")
        assert "secret" not in page.inner_text("#experiments")
        page.goto(f"{url}/#/experiments/{exp}")
        page.wait_for_selector(".error-box.forbidden >> text=Permission denied")
        shot(page, "forbidden")
        # a pasted API token signs in too, and a forbidden folder download is a message, not a blank page
        token = httpx.post(
            f"{url}/api/2.0/mlflow/users/tokens", json={"name": "ci"}, auth=("bob", "bob-password")
        )
        page.click("text=Sign out")
        page.wait_for_selector("form.login")
        page.click("form.login button[type=submit]")  # nothing filled in: said so
        page.wait_for_selector("#login-error >> text=Enter a username and password, or an API token")
        page.fill("input[name=token]", token.json()["token"])
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#experiments")
        assert page.inner_text("#user").startswith("bob")
        page.goto(f"{url}/#/runs/{run}")
        page.wait_for_selector(".error-box.forbidden >> text=Permission denied")
