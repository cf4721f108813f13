#!/usr/bin/env bash
# First start of the compose Postgres: one database, owned by its own login role, per stateful
# service (config-api, transcriber, analyzer, jira-writer, notifier). Passwords come from the container's environment
# (docker-compose.yml; DEV-ONLY defaults). Runs once, on an empty data volume.
set -euo pipefail

create_database() { # name password
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
       -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create_database config_api "${CONFIG_API_DB_PASSWORD:?}"
create_database transcriber "${TRANSCRIBER_DB_PASSWORD:?}"
create_database analyzer "${ANALYZER_DB_PASSWORD:?}"
create_database jira_writer "${JIRA_WRITER_DB_PASSWORD:?}"
create_database notifier "${NOTIFIER_DB_PASSWORD:?}"
