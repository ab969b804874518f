"""The fluent tracking API; the public names are re-exported by :mod:`flowml`."""
