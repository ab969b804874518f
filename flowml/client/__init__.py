"""One client interface for the SQL store and the REST server: :class:`FlowmlClient`."""

from flowml.client._client import FlowmlClient, clear_backend_cache
from flowml.client.base import TrackingBackend

__all__ = ["FlowmlClient", "TrackingBackend", "clear_backend_cache"]
