#!/bin/sh
# Runs once, when the PostgreSQL container starts on an empty data directory
# (/docker-entrypoint-initdb.d): one login role and one database per Comptoir service, each
# database owned by its role and closed to the others. Passwords come from the Docker secrets
# /run/secrets/<service>_db_password; nothing is passed on a command line.
set -eu
for service in catalog identity inventory cart orders payments; do
  password_file="/run/secrets/${service}_db_password"
  if [ ! -s "$password_file" ]; then
    echo "init-databases: $password_file is missing or empty (run deploy/compose/setup.sh)" >&2
    exit 1
  fi
  password=$(cat "$password_file")
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set=service="$service" --set=pw="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'pw';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"service" TO :"service";
SQL
  echo "init-databases: role and database $service"
done
