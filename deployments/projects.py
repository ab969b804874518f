"""The example MLflow project compiled into importable Prefect flows (entrypoints of ``prefect.yaml``).

``deployments/projects.py:wine_quality`` is ``flows/wine_project``'s ``main`` entry point and
``deployments/projects.py:wine_pipeline`` its ``flowml.steps`` DAG. Compiling needs no Prefect server.
"""

from __future__ import annotations

from pathlib import Path

from flowml.projects.deploy import flow_from_descriptor, project_descriptor

PROJECT = Path(__file__).resolve().parent.parent / "flows" / "wine_project"

wine_quality = flow_from_descriptor(project_descriptor(str(PROJECT)), "wine_quality", __name__)
wine_pipeline = flow_from_descriptor(
    project_descriptor(str(PROJECT), entry_point="pipeline"), "wine_pipeline", __name__
)
