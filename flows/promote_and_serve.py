"""The whole chain on embedded defaults: train → register → promote (gated) → live endpoint → lineage.

    python flows/promote_and_serve.py            # ~30-60 s; leaves nothing running

1. trains a wine classifier (scikit-learn's bundled data) in a tracked run and logs it as an MLflow-format
   model with a signature and an input example;
2. registers it, sets a promotion policy (accuracy >= 0.9) and moves the version to Production — the
   registry's gate passes and the change lands in the event outbox in the same transaction;
3. the embedded dispatcher hands the event to the deployment pipeline in a background process: gate
   re-check → Bento build → smoke test → ``bentoml serve`` behind a stable local port → deployment record;
4. POSTs to the live endpoint (what ``curl`` would send) and checks the answer equals local predict;
5. prints the lineage (version → event → flow run → bento → endpoint), then stops everything it started.

With ``PREFECT_API_URL`` set the deployment runs as a Prefect flow run (its id appears in the lineage).
Files stay in the working directory: ``flowml.db``, ``flowml-artifacts/``, ``flowml-deployments/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
import flowml.sklearn
from flowml.client import FlowmlClient
from flowml.deploy.embedded import start_embedded
from flowml.deploy.records import DeploymentRecord, records
from flowml.deploy.targets import LocalTarget
from flowml.models import infer_signature


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def train(experiment: str) -> tuple[str, Any]:
    data = load_wine(as_frame=True)
    x = data.data.rename(columns=lambda c: c.replace("/", "_"))
    x_train, x_test, y_train, y_test = train_test_split(x, data.target, test_size=0.25, random_state=7)
    flowml.set_experiment(experiment)
    with flowml.start_run(run_name="wine-logreg") as run:
        flowml.log_params({"C": 1.0, "max_iter": 500})
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)).fit(x_train, y_train)
        flowml.log_metric("accuracy", float(model.score(x_test, y_test)))
        info = flowml.sklearn.log_model(
            model, name="model", signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(3),
        )  # fmt: skip
    say(f"trained run {run.info.run_id}: accuracy={model.score(x_test, y_test):.3f}")
    return info.model_uri, x_test


def wait_for_deployment(name: str, version: str, timeout: float) -> DeploymentRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in records().list(name=name, max_results=10):
            if rec.version == version and rec.status in ("SERVING", "FAILED"):
                return rec
        time.sleep(0.2)
    raise TimeoutError(f"{name} v{version} was not deployed within {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="wine-quality", help="registered model name")
    parser.add_argument("--experiment", default="promote-and-serve")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    client = FlowmlClient()
    model_uri, x_test = train(args.experiment)
    mv = flowml.register_model(model_uri, args.name)
    client.set_promotion_policy(args.name, {"to": ["Production"], "rules": [
        {"metric": "accuracy", "op": ">=", "value": 0.9}]})  # fmt: skip
    dispatcher, deployer = start_embedded(client)
    target = LocalTarget()
    try:
        started = time.perf_counter()
        client.transition_model_version_stage(args.name, mv.version, "Production", True, reason="quickstart")
        say(f"{args.name} v{mv.version} → Production (gate passed); deploying…")
        rec = wait_for_deployment(args.name, str(mv.version), args.timeout)
        if rec.status != "SERVING":
            sys.stderr.write(f"deployment failed: {rec.error}\n")
            return 1
        payload = {"dataframe_split": x_test.head(5).to_dict(orient="split")}
        say(f"curl -X POST {rec.endpoint_url}/invocations -H 'Content-Type: application/json' "
              f"-d '{json.dumps(payload)[:80]}…'")  # fmt: skip
        served = httpx.post(f"{rec.endpoint_url}/invocations", json=payload, timeout=30).json()["predictions"]
        local = flowml.pyfunc.load_model(f"models:/{args.name}/{mv.version}").predict(x_test.head(5))
        say(
            f"served predictions {served} (first prediction {time.perf_counter() - started:.1f}s after the "
            f"transition); local predict {local.tolist()}: {'EQUAL' if served == local.tolist() else 'DIFF'}"
        )
        event = next(e for e in client.list_registry_events(name=args.name) if e.id == rec.event_id)
        say("\nlineage")
        say(f"  model version  {args.name} v{mv.version} (run {mv.run_id})")
        say(f"  event          #{event.id} {event.event_type} {event.payload.get('from_stage')} → "
              f"{event.payload.get('to_stage')} by {event.payload.get('actor')}")  # fmt: skip
        say(f"  flow run       {rec.flow_run_id or 'embedded (no Prefect server configured)'}")
        say(f"  bento          {rec.bento_tag}")
        say(f"  endpoint       {rec.endpoint_url}  (record #{rec.id}, {rec.status}, "
              f"timings {rec.details.get('timings')})")  # fmt: skip
        return 0 if served == local.tolist() else 1
    finally:
        dispatcher.stop()
        deployer.terminate()
        if target.stop(args.name):
            for live in records().list(name=args.name, status="SERVING"):
                records().update(live.id, status="STOPPED")
        say(f"\nstopped the endpoint of {args.name} and the dispatcher: nothing left running")


if __name__ == "__main__":
    raise SystemExit(main())
