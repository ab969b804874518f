"""Native flavors: ``sklearn`` and ``xgboost`` (MLflow's on-disk layout and loader-module names)."""
