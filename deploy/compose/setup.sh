#!/usr/bin/env bash
# Creates every secret the compose stack reads, as files in deploy/compose/secrets/ (git-ignored,
# never committed), and the shop's TLS certificate. Run it once before `docker compose up`;
# running it again keeps every value it already made (so the databases keep their passwords).
#
#   deploy/compose/setup.sh                          # random secrets, a self-signed certificate
#   deploy/compose/setup.sh --cert FULLCHAIN.pem --key KEY.pem   # your certificate instead
#   deploy/compose/setup.sh --webhook https://alerts.example/hook # where Alertmanager posts
#
# Environment: SHOP_DOMAIN (default localhost; Grafana is grafana.SHOP_DOMAIN),
# SECRETS_DIR (default: secrets/ beside this script). Needs openssl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${SECRETS_DIR:-$here/secrets}
domain=${SHOP_DOMAIN:-localhost}
cert=""
key=""
webhook=""

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cert) cert=${2:?--cert needs a file}; shift 2 ;;
    --key) key=${2:?--key needs a file}; shift 2 ;;
    --webhook) webhook=${2:?--webhook needs a URL}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
if { [ -n "$cert" ] && [ -z "$key" ]; } || { [ -z "$cert" ] && [ -n "$key" ]; }; then
  echo "setup.sh: give both --cert and --key, or neither" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "setup.sh: openssl is needed" >&2; exit 1; }

umask 077
mkdir -p "$dir"
# The directory keeps other users of the host out. The files themselves are readable by any uid:
# Docker bind-mounts a file secret as it is (compose ignores uid/gid/mode without Swarm), and
# each image reads it as its own user (comptoir 10001, postgres 999, redis 999, grafana 472...).
chmod 0700 "$dir"

# write NAME VALUE: replace the file atomically
write() {
  local tmp
  tmp=$(mktemp "$dir/.$1.XXXXXX")
  printf '%s' "$2" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/$1"
}
# random NAME: 32 random bytes as hex (URL-safe), made once and then kept
random() {
  if [ -s "$dir/$1" ]; then
    echo "kept     $1"
  else
    write "$1" "$(openssl rand -hex 32)"
    echo "created  $1"
  fi
}
# derived NAME VALUE: rewritten from the random values on every run
derived() {
  write "$1" "$2"
  echo "derived  $1"
}
value() { cat "$dir/$1"; }

# --- shared by the Comptoir processes ---
random internal_secret
random web_cookie_secret

# --- PostgreSQL: the superuser, then a role and a database per service ---
random postgres_password
for service in catalog identity inventory cart orders payments; do
  random "${service}_db_password"
  derived "${service}_database_url" \
    "postgres://${service}:$(value "${service}_db_password")@postgres:5432/${service}"
done

# --- Redis: the password, its SHA-256 in the ACL file, the URL the gateway uses ---
random redis_password
redis_hash=$(printf '%s' "$(value redis_password)" | openssl dgst -sha256 -r | cut -d' ' -f1)
derived redis_acl "user default on #${redis_hash} ~* &* +@all"$'\n'
derived redis_url "redis://default:$(value redis_password)@redis:6379"

# --- RabbitMQ: our own user (no guest), as a configuration fragment, and the URL ---
random rabbitmq_password
derived rabbitmq_conf "default_user = comptoir
default_pass = $(value rabbitmq_password)
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
"
derived rabbitmq_url "amqp://comptoir:$(value rabbitmq_password)@rabbitmq:5672/%2f"

# --- Grafana's admin ---
random grafana_admin_password

# --- Alertmanager's receiver: a webhook URL may carry a token, so it is a secret too ---
if [ -n "$webhook" ]; then
  derived alertmanager_webhook_url "$webhook"
elif [ ! -s "$dir/alertmanager_webhook_url" ]; then
  # nothing listens there: alerts show in Alertmanager's UI until you give a real receiver
  derived alertmanager_webhook_url "http://127.0.0.1:9/comptoir-alerts"
else
  echo "kept     alertmanager_webhook_url"
fi

# --- the shop's certificate ---
if [ -n "$cert" ]; then
  openssl x509 -in "$cert" -noout >/dev/null || { echo "setup.sh: $cert is not a PEM certificate" >&2; exit 1; }
  openssl pkey -in "$key" -noout >/dev/null || { echo "setup.sh: $key is not a PEM key" >&2; exit 1; }
  derived tls_cert "$(cat "$cert")"$'\n'
  derived tls_key "$(cat "$key")"$'\n'
elif [ -s "$dir/tls_cert" ] && [ -s "$dir/tls_key" ]; then
  echo "kept     tls_cert, tls_key"
else
  tmp=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days 397 -subj "/CN=${domain}" \
    -addext "subjectAltName=DNS:${domain},DNS:grafana.${domain}" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  derived tls_cert "$(cat "$tmp/cert.pem")"$'\n'
  derived tls_key "$(cat "$tmp/key.pem")"$'\n'
  rm -rf "$tmp"
  echo "         (self-signed for ${domain} and grafana.${domain}, 397 days: browsers will warn)"
fi

echo "Secrets are in $dir. Next: docker compose -f deploy/compose/compose.yaml up -d --build"
