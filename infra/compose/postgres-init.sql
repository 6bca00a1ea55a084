-- Runs once, when the Postgres volume is first created. The roomtone database (the Iceberg
-- catalog) comes from POSTGRES_DB; MLflow keeps its runs in a database of its own.
CREATE DATABASE mlflow OWNER roomtone;
