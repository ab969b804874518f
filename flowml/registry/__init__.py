"""The model registry above the client: fluent registration and promotion gates.

``flowml.registry.promote(name, version, to="Production" | "@alias")`` runs the model's promotion
policy (stored in the registry, checked by the store in the promoting transaction) and
``flowml.register_model(model_uri, name)`` registers a run's model. Both go through
:class:`flowml.client.FlowmlClient`, so they work the same embedded and against a server.
"""

from __future__ import annotations

from flowml.registry.fluent import register_model
from flowml.registry.policy import (
    evaluate_promotion,
    get_promotion_policy,
    load_policy,
    promote,
    set_promotion_policy,
)

__all__ = [
    "evaluate_promotion",
    "get_promotion_policy",
    "load_policy",
    "promote",
    "register_model",
    "set_promotion_policy",
]
