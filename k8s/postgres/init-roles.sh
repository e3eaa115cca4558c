#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d): the
# roles and database scripts/postgres makes for development, with passwords. maas_owner owns
# the database and runs the migrations; maas_app is what the services connect as, with no
# BYPASSRLS, so row-level security applies to it.
set -euo pipefail
psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v owner_password="$MAAS_OWNER_PASSWORD" -v app_password="$MAAS_APP_PASSWORD" <<'SQL'
CREATE ROLE maas_owner LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_password';
CREATE ROLE maas_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'app_password';
CREATE DATABASE maas OWNER maas_owner;
GRANT CONNECT, TEMPORARY ON DATABASE maas TO maas_app;
SQL
