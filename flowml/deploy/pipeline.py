"""The deployment pipeline, without Prefect: gate → build → smoke test → serve → record.

:func:`deploy_version` is the body of the Prefect flow :func:`flowml.deploy.flows.deploy_model_version`
and what embedded mode runs in a background process (``python -m flowml.deploy.pipeline``) when no
Prefect server is configured (so it needs no Prefect import, nor a throwaway Prefect API).

On any failure the target is left as it was (the previous deployment keeps serving) and the record
becomes FAILED with the step and the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

from flowml.deploy.records import DeploymentRecord, DeploymentRecords, records
from flowml.deploy.records import actor as process_user
from flowml.deploy.targets import deployments_dir, get_target

__all__ = ["bentoml_home", "deploy_version", "gate_failures", "main", "serving_check"]


def bentoml_home() -> str:
    """``BENTOML_HOME`` if set, else ``<deployments dir>/bentoml``."""
    return os.environ.get("BENTOML_HOME") or str(deployments_dir() / "bentoml")


def gate_failures(report: Any, version: str) -> list[str]:
    """The gate's failed rules, ignoring comparisons of a version with itself (after the transition
    the candidate *is* the champion, so ``compare_to: champion`` rules are moot)."""
    self_compare = str(report.champion_version) == str(version)
    return [
        r.message
        for r in report.failures
        if not (self_compare and dict(r.rule).get("compare_to") == "champion")
    ]


def _default_trigger(mv: Any) -> str:
    if mv.current_stage == "Production" or "champion" not in mv.aliases:
        return "Production"
    return "@champion"


def _model_dir(bento_tag: str, home: str) -> tuple[str, dict[str, str]]:
    """The MLmodel directory inside the model store, and the Bento's labels."""
    import bentoml

    from flowml.deploy.bento import MODEL_SUBDIR, use_bentoml_home

    with use_bentoml_home(home):
        bento = bentoml.bentos.get(bento_tag)
        labels = dict(bento.info.labels)
        model = bentoml.models.get(labels["flowml.bento_model"])
        return os.path.join(str(model.path), MODEL_SUBDIR), labels


def serving_check(model_dir: str, local: dict[str, Any]) -> Callable[[str], None]:
    """A readiness check for a started backend: its ``/invocations`` answers the saved serving example
    (200, and the same predictions as the local smoke test, ``local["expected"]``, when known)."""
    import httpx

    from flowml.models.example import load_serving_input_example
    from flowml.models.mlmodel import Model

    meta = Model.load(model_dir)
    payload = load_serving_input_example(model_dir, meta.saved_input_example_info)

    def check(url: str) -> None:
        if payload is None:
            return
        resp = httpx.post(f"{url}/invocations", content=payload, headers={"Content-Type": "application/json"},
                          timeout=60)  # fmt: skip
        if resp.status_code != 200:
            raise RuntimeError(f"/invocations answered {resp.status_code}: {resp.text[:500]}")
        expected = local.get("expected")
        if expected is not None:
            got = resp.json().get("predictions")
            if json.dumps(got, sort_keys=True) != json.dumps(expected, sort_keys=True):
                raise RuntimeError(f"served predictions {got!r} differ from local predictions {expected!r}")

    return check


def _already_serving(
    store: DeploymentRecords, name: str, version: str, target: str
) -> DeploymentRecord | None:
    for rec in store.list(name=name, status="SERVING", max_results=5):
        if rec.target == target and rec.version == version:
            state = get_target(target).state(name)
            if state and state.get("backend_alive") and state.get("info", {}).get("version") == version:
                return rec
    return None


def deploy_version(
    name: str,
    version: str | int,
    *,
    target: str = "local",
    port: int | None = None,
    event_id: int | str | None = None,
    trigger: str | None = None,
    flow_run_id: str | None = None,
    flow_run_url: str | None = None,
    bento_tag: str | None = None,
    force: bool = False,
    client: Any = None,
    actor: str | None = None,
) -> DeploymentRecord:
    """Deploy ``name`` version ``version``; returns the record (SERVING, SKIPPED or FAILED). ``bento_tag``
    redeploys an existing Bento without rebuilding (rollback); ``flow_run_url`` (the Prefect UI page) goes
    into the record's details for the lineage view. ``actor``: who asked (default: this process's user)."""
    from flowml.client import FlowmlClient
    from flowml.serving import to_jsonable

    client = client or FlowmlClient()
    store = records(client)
    version = str(version)
    event = int(event_id) if event_id not in (None, "", "None") else None
    common = {"actor": actor or process_user(), "event_id": event, "flow_run_id": flow_run_id}
    if not force and bento_tag is None and (live := _already_serving(store, name, version, target)):
        return store.create(name, version, target, status="SKIPPED", bento_tag=live.bento_tag,
                            details={"reason": f"version {version} already serving (record {live.id})"},
                            **common)  # fmt: skip
    first: dict[str, Any] = {"trigger": trigger, "rollback": bento_tag is not None}
    if flow_run_url:
        first["flow_run_url"] = flow_run_url
    record = store.create(name, version, target, details=first, **common)
    timings: dict[str, float] = {}
    details: dict[str, Any] = {}
    step = "gate"
    started = time.perf_counter()

    def mark(done: str) -> None:
        timings[done] = round(time.perf_counter() - started - sum(timings.values()), 3)

    try:
        mv = client.get_model_version(name, version)
        to = trigger or _default_trigger(mv)
        if bento_tag is None:
            report = client.check_promotion(name, version, to)
            details["gate"] = dataclasses.asdict(report)
            failures = gate_failures(report, version)
            if failures:
                raise RuntimeError("promotion gate refused: " + "; ".join(failures))
        mark("gate")
        home = bentoml_home()
        if bento_tag is None:
            step = "build"
            from flowml.deploy.bento import build_bento

            built = build_bento(f"models:/{name}/{version}", name=name, bentoml_home=home)
            bento_tag = built.tag
            record = store.update(record.id, bento_tag=bento_tag, details={"dockerfile": built.dockerfile})
            mark("build")
        step = "smoke_test"
        model_dir, labels = _model_dir(bento_tag, home)
        local: dict[str, Any] = {}

        def smoke_test() -> None:  # runs while the new server boots (it smoke-tests again on load)
            nonlocal step
            from flowml.pyfunc import load_model

            result = load_model(model_dir).smoke_test()
            local["expected"] = None if result is None else to_jsonable(result)
            details.update(labels=labels, smoke_test="passed" if result is not None else "no input example")
            mark("smoke_test")
            step = "serve"

        state = get_target(target).deploy(
            name, bento_tag, bentoml_home=home, port=port,
            info={"version": version, "record_id": record.id, "event_id": event, "flow_run_id": flow_run_id},
            preflight=smoke_test, check=serving_check(model_dir, local),
        )  # fmt: skip
        mark("serve")
        details.update(timings=timings, backend=state["backend"]["url"])
        return store.update(record.id, status="SERVING", endpoint_url=state["url"], bento_tag=bento_tag,
                            details=details)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - every failure is recorded; the old deployment keeps serving
        details.update(timings=timings, failed_step=step)
        return store.update(record.id, status="FAILED", error=f"{step}: {type(exc).__name__}: {exc}"[:4000],
                            bento_tag=bento_tag, details=details)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """``python -m flowml.deploy.pipeline --name N --version V [...]`` (embedded mode's worker)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--target", default="local")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--event-id", default=None)
    parser.add_argument("--trigger", default=None)
    args = parser.parse_args(argv)
    rec = deploy_version(args.name, args.version, target=args.target, port=args.port,
                         event_id=args.event_id, trigger=args.trigger)  # fmt: skip
    print(json.dumps(rec.to_dict(), default=str))  # noqa: T201 - the CLI-style result line
    raise SystemExit(0 if rec.status in ("SERVING", "SKIPPED") else 1)


if __name__ == "__main__":
    main()
