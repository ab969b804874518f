"""The importable home of deployed project flows (Prefect ``MODULE_PATH`` entrypoints).

``flowml.projects.deployed.<key>`` is the compiled flow of the project described by the environment variable
``FLOWML_PROJECT__<key>`` (JSON: uri, entry_point, version, env_manager, experiment_name, extra_parameters).
``flowml project deploy`` sets that variable for ``serve`` (in its own process) and in the work pool's
``job_variables.env``, so a worker's flow-run process imports the same flow (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__: list[str] = []

ENV_PREFIX = "FLOWML_PROJECT__"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None:
        raise AttributeError(
            f"module {__name__!r} has no flow {name!r}: set {ENV_PREFIX}{name} (flowml project deploy does)"
        )
    from flowml.projects.deploy import flow_from_descriptor

    return flow_from_descriptor(json.loads(raw), attr_name=name)
