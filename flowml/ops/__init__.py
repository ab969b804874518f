"""Operations on a whole store: ``flowml gc`` (:mod:`flowml.ops.gc`) and backup / restore
(:mod:`flowml.ops.backup`). Like ``flowml db upgrade`` they work on the database URI directly (an
operator's tool, not a client feature), through :mod:`flowml.store` and :mod:`flowml.artifacts`."""
