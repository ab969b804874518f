"""Deployment: pyfunc model → Bento (:mod:`flowml.deploy.bento`). Heavy imports stay inside functions."""

from __future__ import annotations

from flowml.deploy.bento import BuiltBento, ModelSource, build_bento, model_dir_sha256, resolve_model_source

__all__ = ["BuiltBento", "ModelSource", "build_bento", "model_dir_sha256", "resolve_model_source"]
