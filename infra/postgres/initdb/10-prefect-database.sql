-- Runs once, when the postgres volume is initialised: the Prefect server gets its own database next to
-- flowml's (POSTGRES_DB). Both belong to POSTGRES_USER, the user this script runs as.
CREATE DATABASE prefect;
