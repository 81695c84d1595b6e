#!/usr/bin/env python3
"""Static checks of the deployment files that no off-the-shelf tool makes (run by deploy/check.sh).

  checks.py compose COMPOSE_FILE SETUP_SCRIPT
      every Comptoir service has a health check and limits, the limits are the agreed ones, no
      environment value is a secret, every secret a service reads is mounted, every secret is
      made by the set-up script, and only the edge is on the front network.
  checks.py metrics DEPLOY_DIR PROMQL_OUT
      the dashboards are valid JSON; every metric a dashboard or a rule names is in
      deploy/metrics.txt (what the code exports), deploy/metrics-prometheus.txt (what
      Prometheus itself makes) or is recorded by a rule; every alert has a firing and a quiet
      unit test. Writes every dashboard query as a rule file to PROMQL_OUT, for
      `promtool check rules` to parse.

Needs PyYAML (yamllint's dependency, in the check venv).
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

failures = []


def fail(msg):
    failures.append(msg)


def done(what):
    if failures:
        for f in failures:
            print(f"  FAIL {f}")
        print(f"{what}: {len(failures)} problem(s)")
        sys.exit(1)
    print(f"{what}: ok")


# --------------------------------------------------------------------------------- compose

TARGETS = ["catalog", "identity", "inventory", "cart", "orders", "payments", "web", "gateway"]
FRONT_ALLOWED = {"traefik", "nginx", "gateway", "web", "grafana"}
# service → (memory, cpus) agreed in issue 14
LIMITS = {
    "gateway": ("1G", 1.0),
    "postgres": ("1G", 1.0),
    "rabbitmq": ("1G", 1.0),
    "redis": ("512M", None),
}
COMPTOIR_LIMITS = ("512M", 0.5)
MONITORING = {"prometheus", "alertmanager", "grafana"}
MONITORING_TOTAL = 2 * 1024**3
SECRET_KEY = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL")
URL_WITH_CREDENTIALS = re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@")
# a URL-bearing setting that may carry a password (database, Redis, broker, webhook)
SECRET_URL_KEY = re.compile(r"DATABASE_URL|REDIS_URL|RABBITMQ_URL|AMQP|WEBHOOK")
RANDOM_LOOKING = re.compile(r"^[A-Za-z0-9+/=_\-]{24,}$")


def bytes_of(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?", str(s))
    if not m:
        return None
    return int(float(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()])


def is_comptoir(svc):
    build = svc.get("build") or {}
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


def walk_strings(node, path):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def environment_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def secret_targets(svc):
    """The paths at which a service sees its secrets."""
    out = {}
    for s in svc.get("secrets") or []:
        if isinstance(s, str):
            out[f"/run/secrets/{s}"] = s
        else:
            target = s.get("target") or s["source"]
            path = target if target.startswith("/") else f"/run/secrets/{target}"
            out[path] = s["source"]
    return out


def check_compose(compose_path, setup_path):
    with open(compose_path) as f:
        doc = yaml.safe_load(f)
    services = doc.get("services") or {}
    top_secrets = doc.get("secrets") or {}

    # every target runs somewhere, cart three times
    serving = {}
    for name, svc in services.items():
        if not is_comptoir(svc):
            continue
        cmd = svc.get("command") or []
        if cmd[:1] == ["serve"] and "--target" in cmd:
            target = cmd[cmd.index("--target") + 1]
            serving.setdefault(target, []).append(name)
    for t in TARGETS:
        if t not in serving:
            fail(f"no service runs `serve --target {t}`")
    if len(serving.get("cart", [])) != 3:
        fail(f"cart should run 3 instances, runs {serving.get('cart', [])}")

    monitoring_memory = 0
    for name, svc in services.items():
        one_shot = str(svc.get("restart", "")) == "no"
        hc = svc.get("healthcheck") or {}
        has_hc = bool(hc.get("test")) and not hc.get("disable")
        if not one_shot and not has_hc:
            fail(f"{name}: no health check")
        if one_shot and is_comptoir(svc) and (svc.get("command") or [])[:1] == ["serve"]:
            fail(f"{name}: a serving process cannot be one-shot")
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        mem, cpus = limits.get("memory"), limits.get("cpus")
        if mem is None or (cpus is None and name != "redis"):
            fail(f"{name}: deploy.resources.limits needs memory and cpus")
            continue
        want = LIMITS.get(name) or (COMPTOIR_LIMITS if is_comptoir(svc) else None)
        if want:
            if bytes_of(mem) != bytes_of(want[0]):
                fail(f"{name}: memory limit {mem}, agreed {want[0]}")
            if want[1] is not None and float(cpus) != want[1]:
                fail(f"{name}: cpus limit {cpus}, agreed {want[1]}")
        if name in MONITORING:
            monitoring_memory += bytes_of(mem) or 0
        # depends_on with conditions only, on things that can satisfy them
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            fail(f"{name}: depends_on without conditions")
            deps = {}
        for dep, spec in deps.items():
            if dep not in services:
                fail(f"{name}: depends on unknown service {dep}")
                continue
            cond = (spec or {}).get("condition")
            other = services[dep]
            if cond == "service_healthy":
                ohc = other.get("healthcheck") or {}
                if not ohc.get("test") or ohc.get("disable"):
                    fail(f"{name}: waits for {dep} to be healthy, and {dep} has no health check")
            elif cond == "service_completed_successfully":
                if str(other.get("restart", "")) != "no":
                    fail(f"{name}: waits for {dep} to complete, and {dep} restarts")
            else:
                fail(f"{name}: depends on {dep} with condition {cond!r}")
        # networks: only the edge on front
        nets = svc.get("networks") or []
        nets = list(nets) if isinstance(nets, (list, dict)) else []
        if "front" in nets and name not in FRONT_ALLOWED:
            fail(f"{name}: on the front network (only {sorted(FRONT_ALLOWED)} may be)")
        if name in {"postgres", "redis", "rabbitmq"} and "front" in nets:
            fail(f"{name}: a database on the front network")
        # environment: no secret values
        mounted = secret_targets(svc)
        for key, value in environment_of(svc).items():
            upper = key.upper()
            wants_file = SECRET_KEY.search(upper) or SECRET_URL_KEY.search(upper)
            is_file = upper.endswith("_FILE")
            if wants_file and not is_file:
                fail(f"{name}: {key} holds a secret in the environment: use {key}_FILE")
            if is_file and value.startswith("/run/secrets/") and value not in mounted:
                fail(f"{name}: {key} reads {value}, which is not among its secrets")
            if is_file and wants_file and not value.startswith("/run/secrets/"):
                fail(f"{name}: {key} should point into /run/secrets, points to {value!r}")
            if URL_WITH_CREDENTIALS.search(value):
                fail(f"{name}: {key} holds a URL with a password")
            if RANDOM_LOOKING.match(value) and not value.startswith("/"):
                fail(f"{name}: {key}={value[:6]}… looks like a secret value")
        for src in mounted.values():
            if src not in top_secrets:
                fail(f"{name}: mounts secret {src}, not declared under secrets:")

    if monitoring_memory > MONITORING_TOTAL:
        fail(f"monitoring limits add up to {monitoring_memory / 1024**2:.0f} MiB, agreed 2048")

    for path, value in walk_strings(doc, "compose"):
        if URL_WITH_CREDENTIALS.search(value):
            fail(f"{path}: a URL with a password")

    # every secret is a file that setup.sh makes, under secrets/ (git-ignored)
    names = {}
    for sname, spec in top_secrets.items():
        f = (spec or {}).get("file")
        if not f:
            fail(f"secret {sname}: not a file secret")
            continue
        if not f.startswith("./secrets/"):
            fail(f"secret {sname}: {f} is outside ./secrets/")
        names[sname] = os.path.basename(f)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "secrets")
        env = dict(os.environ, SECRETS_DIR=out)
        env.pop("SHOP_DOMAIN", None)
        for run in (1, 2):
            r = subprocess.run(["bash", setup_path], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"setup.sh failed (run {run}): {r.stderr.strip()}")
                break
            if run == 1:
                first = {n: open(os.path.join(out, n)).read()
                         for n in os.listdir(out) if not n.startswith(".")}
        else:
            for sname, fname in names.items():
                p = os.path.join(out, fname)
                if not os.path.isfile(p) or os.path.getsize(p) == 0:
                    fail(f"secret {sname}: setup.sh does not make secrets/{fname}")
            for n, content in first.items():
                p = os.path.join(out, n)
                if open(p).read() != content:
                    fail(f"setup.sh changed {n} on its second run (it must keep values)")
            if oct(os.stat(out).st_mode & 0o777) != "0o700":
                fail("setup.sh: the secrets directory is not 0700")
    gitignore = os.path.join(os.path.dirname(compose_path), ".gitignore")
    if not os.path.isfile(gitignore) or "secrets/" not in open(gitignore).read().split():
        fail("deploy/compose/.gitignore does not ignore secrets/")
    print(f"  {len(services)} services, {len(top_secrets)} secrets, targets {sorted(serving)}")
    done("compose policy")


# --------------------------------------------------------------------------------- metrics

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2", "start", "end",
}
IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr):
    """The metric names an expression reads (functions, keywords and labels left out)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"`[^`]*`", "``", e)
    e = re.sub(r"\$\{?\w+\}?", "", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in IDENT.finditer(e):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def allowed(name, allow):
    if name in allow:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in allow:
            return True
    return False


def grafana_to_promql(expr):
    """Grafana's variables replaced by values, so that promtool can parse the query."""
    e = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    e = e.replace("$__interval", "1m")
    return re.sub(r"\$\{?\w+\}?", ".*", e)


def check_metrics(deploy_dir, promql_out):
    allow = set()
    for f in ("metrics.txt", "metrics-prometheus.txt"):
        for line in open(os.path.join(deploy_dir, f)):
            line = line.strip()
            if line and not line.startswith("#"):
                allow.add(line)
    code_names = {l.strip() for l in open(os.path.join(deploy_dir, "metrics.txt")) if l.strip()}
    if any(not re.fullmatch(r"comptoir_[a-z0-9_]+", n) for n in code_names):
        fail("metrics.txt: every line is one comptoir_* name")

    rule_files = sorted(glob.glob(os.path.join(deploy_dir, "prometheus/rules/*.yml")))
    recorded, alerts, rule_exprs = set(), [], []
    for rf in rule_files:
        for group in yaml.safe_load(open(rf))["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recorded.add(rule["record"])
                else:
                    alerts.append(rule["alert"])
                    if not rule.get("labels", {}).get("severity") in ("critical", "warning"):
                        fail(f"alert {rule['alert']}: severity must be critical or warning")
                rule_exprs.append((f"{os.path.basename(rf)}: {rule.get('record') or rule.get('alert')}", rule["expr"]))
    allow |= recorded
    used = set()
    for where, expr in rule_exprs:
        for n in metric_names(expr):
            used.add(n)
            if not allowed(n, allow):
                fail(f"{where}: unknown metric {n}")

    # every alert fires in a test and stays quiet in another
    fired, quiet = set(), set()
    for tf in sorted(glob.glob(os.path.join(deploy_dir, "prometheus/tests/*.yml"))):
        for test in yaml.safe_load(open(tf)).get("tests", []):
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    for a in alerts:
        if a not in fired:
            fail(f"alert {a}: no unit test where it fires")
        if a not in quiet:
            fail(f"alert {a}: no unit test where it stays quiet")

    boards = sorted(glob.glob(os.path.join(deploy_dir, "grafana/dashboards/*.json")))
    if len(boards) < 4:
        fail(f"{len(boards)} dashboards, want 4")
    uids, promql_rules, n_queries = set(), [], 0
    for bf in boards:
        name = os.path.basename(bf)
        try:
            board = json.load(open(bf))
        except ValueError as e:
            fail(f"{name}: not JSON: {e}")
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in board:
                fail(f"{name}: no {key}")
        if board.get("uid") in uids:
            fail(f"{name}: uid {board.get('uid')} used twice")
        uids.add(board.get("uid"))
        exprs = []
        for v in board.get("templating", {}).get("list", []):
            q = v.get("definition") or ""
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)
            if m:
                exprs.append((f"variable {v.get('name')}", m.group(1)))
            elif q:
                exprs.append((f"variable {v.get('name')}", q))
        ids = set()
        panels = list(board.get("panels", []))
        for p in list(panels):
            panels.extend(p.get("panels", []))
        for p in panels:
            if p.get("id") in ids:
                fail(f"{name}: panel id {p.get('id')} used twice")
            ids.add(p.get("id"))
            if p.get("type") == "row":
                continue
            ds = p.get("datasource") or {}
            if ds.get("uid") != "prometheus":
                fail(f"{name}: panel {p.get('title')!r} does not use the provisioned data source")
            if not p.get("targets"):
                fail(f"{name}: panel {p.get('title')!r} has no query")
            for t in p.get("targets", []):
                exprs.append((f"panel {p.get('title')!r}", t.get("expr", "")))
        for where, expr in exprs:
            n_queries += 1
            if not expr.strip():
                fail(f"{name}: {where}: empty query")
                continue
            names = metric_names(expr)
            if not names:
                fail(f"{name}: {where}: names no metric")
            for n in names:
                used.add(n)
                if not allowed(n, allow):
                    fail(f"{name}: {where}: unknown metric {n}")
            promql_rules.append({"record": f"dashboard:check:{len(promql_rules)}",
                                 "expr": grafana_to_promql(expr)})
    with open(promql_out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": promql_rules}]}, f)
    unused = sorted(n for n in code_names if not any(allowed(u, {n}) for u in used))
    print(f"  {len(boards)} dashboards, {n_queries} queries, {len(rule_exprs)} rules, "
          f"{len(alerts)} alerts; allow-list {len(code_names)} exported names "
          f"(+{len(allow) - len(code_names) - len(recorded)} Prometheus, {len(recorded)} recorded)")
    if unused:
        print(f"  exported but on no dashboard or rule: {', '.join(unused)}")
    done("metric names")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "compose":
        check_compose(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "metrics":
        check_metrics(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
