//! The real Prometheus (Debian's `prometheus`) with the shipped scrape configuration
//! (`deploy/prometheus/prometheus.yml`, its `rules/` beside it) pointed at the services running
//! as processes, in the compose stack's topology (every target its own process, three cart
//! instances): every target is up, a checkout through the gateway reads back through
//! Prometheus' HTTP API as orders placed and paid and as revenue per currency, every query of
//! every dashboard (`deploy/grafana/dashboards/`) and every rule runs without error, and every
//! metric named in `deploy/metrics.txt` or in a dashboard or a rule is exported by a process.
//!
//! Without `prometheus` on the PATH, or without the deployment files, the test is skipped with
//! the reason printed, and fails under `COMPTOIR_TEST_STRICT=1`. `COMPTOIR_TEST_DEPLOY_DIR`
//! points it at another `deploy/` directory.

use super::split::{DECLINED, OK_CARD, Topology, call, delivery, guest_cart};
use super::{http, sign_in, temp_dir};
use comptoir::Target;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);
/// Between two looks at Prometheus (it scrapes every second here).
const POLL: Duration = Duration::from_millis(200);

/// The `deploy/` directory of this checkout (or `COMPTOIR_TEST_DEPLOY_DIR`).
fn deploy_dir() -> PathBuf {
    match std::env::var("COMPTOIR_TEST_DEPLOY_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy"),
    }
}

/// Skips (printing why), or fails in strict mode.
fn skip(why: &str) {
    assert!(!testkit::strict(), "COMPTOIR_TEST_STRICT=1 but {why}");
    eprintln!("skipping the Prometheus test: {why}");
}

// ---- the shipped files, read and rewritten -------------------------------------------------------

/// The scrape configuration with every `comptoir-<target>` job pointed at `targets` (host:port
/// by target name), and every interval and timeout at 1 s. A line-based rewrite of the flow
/// lists (`targets: ["a:8080"]`) the file uses; anything else is an error naming the job, as
/// is a job for no target of ours or a target with no job.
fn rewrite_config(text: &str, targets: &BTreeMap<String, Vec<String>>) -> Result<String, String> {
    let mut out = Vec::new();
    let mut in_scrape = false;
    let mut job: Option<String> = None;
    let mut placed: BTreeSet<String> = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if !line.starts_with([' ', '#', '-']) && !trimmed.is_empty() {
            in_scrape = trimmed.starts_with("scrape_configs:");
            job = None;
        }
        let key = trimmed.trim_start_matches("- ");
        let dash = if trimmed.starts_with("- ") { "- " } else { "" };
        if let Some(k) = [
            "scrape_interval:",
            "scrape_timeout:",
            "evaluation_interval:",
        ]
        .iter()
        .find(|k| key.starts_with(**k))
        {
            out.push(format!("{indent}{dash}{k} 1s"));
            continue;
        }
        if in_scrape && let Some(name) = key.strip_prefix("job_name:") {
            job = Some(name.trim().trim_matches(['"', '\'']).to_string());
        }
        if in_scrape && let Some(value) = key.strip_prefix("targets:") {
            let j = job.clone().ok_or("a targets list outside of any job")?;
            if !value.trim_start().starts_with('[') {
                return Err(format!(
                    "job {j}: write its targets as a flow list ([\"host:port\", …])"
                ));
            }
            let target = j
                .strip_prefix("comptoir-")
                .filter(|t| targets.contains_key(*t))
                .ok_or_else(|| format!("job {j} scrapes no Comptoir target"))?;
            // a second list of the same job: its addresses are already in the first
            let addrs: Vec<String> = if placed.insert(target.to_string()) {
                targets[target].iter().map(|a| format!("\"{a}\"")).collect()
            } else {
                Vec::new()
            };
            out.push(format!("{indent}{dash}targets: [{}]", addrs.join(", ")));
            continue;
        }
        out.push(line.to_string());
    }
    let missing: Vec<&String> = targets.keys().filter(|t| !placed.contains(*t)).collect();
    if !missing.is_empty() {
        return Err(format!("no job comptoir-<target> for {missing:?}"));
    }
    Ok(out.join("\n") + "\n")
}

/// Every `expr` of a rule file: on its line, or the indented block after `expr: >` / `|`.
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        i += 1;
        let Some(rest) = trimmed
            .trim_start_matches("- ")
            .strip_prefix("expr:")
            .map(str::trim)
        else {
            continue;
        };
        if rest.starts_with('>') || rest.starts_with('|') {
            let mut block = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                let t = l.trim_start();
                if !t.is_empty() && l.len() - t.len() <= indent {
                    break;
                }
                block.push(t);
                i += 1;
            }
            out.push(block.join(" ").trim().to_string());
        } else if let Some(q) = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            out.push(q.replace("\\\"", "\""));
        } else if let Some(q) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            out.push(q.replace("''", "'"));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// Every `expr` of a dashboard, with Grafana's variables as a query would run them: the
/// intervals at 1 m / 15 s / 1 h, the dashboard's own variables matching anything.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let vars: Vec<String> = dashboard["templating"]["list"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    exprs
        .into_iter()
        .map(|e| {
            let mut e = e
                .replace("$__rate_interval", "1m")
                .replace("${__rate_interval}", "1m")
                .replace("$__interval", "15s")
                .replace("${__interval}", "15s")
                .replace("$__range", "1h")
                .replace("${__range}", "1h");
            // longest names first, so that `$job` does not eat the start of `$jobs`
            let mut vars = vars.clone();
            vars.sort_by_key(|v| std::cmp::Reverse(v.len()));
            for v in &vars {
                for form in [format!("${{{v}}}"), format!("[[{v}]]"), format!("${v}")] {
                    e = e.replace(&form, ".*");
                }
            }
            e
        })
        .collect()
}

/// The Comptoir metric names an expression reads (recorded series, `level:metric:op`, aside).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("comptoir_") && !word.contains(':') {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| word.strip_suffix(s))
                    .unwrap_or(&word);
                out.insert(base.to_string());
            }
            word.clear();
        }
    }
    out
}

#[test]
fn the_shipped_files_are_read_as_prometheus_reads_them() {
    let conf = "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n\
                alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"am:9093\"]\n\
                scrape_configs:\n  - job_name: comptoir-cart\n    static_configs:\n      \
                - targets: [\"cart-1:8080\", \"cart-2:8080\"]\n        labels:\n          target: cart\n";
    let mut t = BTreeMap::new();
    t.insert("cart".to_string(), vec!["127.0.0.1:1".to_string()]);
    let out = rewrite_config(conf, &t).expect("rewritten");
    assert!(
        out.contains("  scrape_interval: 1s\n  scrape_timeout: 1s\n"),
        "{out}"
    );
    assert!(
        out.contains("- targets: [\"am:9093\"]"),
        "alerting untouched: {out}"
    );
    assert!(
        out.contains("      - targets: [\"127.0.0.1:1\"]\n"),
        "{out}"
    );
    t.insert("orders".to_string(), vec!["127.0.0.1:2".to_string()]);
    assert!(rewrite_config(conf, &t).is_err(), "a target without a job");

    let rules = "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        expr: sum(x_total)\n\
                 \x20     - alert: A\n        expr: >\n          rate(y_total[5m])\n          > 0\n        for: 1m\n\
                 \x20     - alert: B\n        expr: \"up == 0\"\n";
    assert_eq!(
        rule_exprs(rules),
        ["sum(x_total)", "rate(y_total[5m]) > 0", "up == 0"]
    );
    let d = json!({"templating": {"list": [{"name": "job"}]}, "panels": [{"targets": [
        {"expr": "sum by (class) (label_replace(rate(comptoir_http_requests_total{job=~\"$job\"}[$__rate_interval]), \"class\", \"${1}xx\", \"status\", \"(.).*\"))"}]}]});
    assert_eq!(
        dashboard_exprs(&d),
        [
            "sum by (class) (label_replace(rate(comptoir_http_requests_total{job=~\".*\"}[1m]), \"class\", \"${1}xx\", \"status\", \"(.).*\"))"
        ]
    );
    assert_eq!(
        metric_names(
            "job:comptoir_http_errors:rate5m / sum(rate(comptoir_x_seconds_bucket[1m])) + comptoir_y_total"
        ),
        ["comptoir_x_seconds", "comptoir_y_total"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

// ---- the server --------------------------------------------------------------------------------

/// A running Prometheus, stopped when dropped.
struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

impl Prometheus {
    /// Prometheus on a free loopback port, with `config` beside a copy of the shipped rules.
    fn start(dir: &Path, config: &str, rules: &Path) -> Prometheus {
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the configuration");
        if rules.is_dir() {
            copy_dir(rules, &dir.join("rules"));
        }
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let q = serde_urlencoded::to_string(query).ok()?;
        let r = http()
            .get(format!("{}{path}?{q}", self.base))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// An instant query: its answer (`status` "success" or "error").
    async fn query(&self, expr: &str) -> Value {
        testkit::eventually("Prometheus answers a query", DEADLINE, || async {
            self.api("/api/v1/query", &[("query", expr)]).await
        })
        .await
    }

    /// Polls until the single value of `expr` is `want` (scrapes come every second).
    async fn until_value(&self, expr: &str, want: f64) {
        let start = Instant::now();
        loop {
            let v = self.query(expr).await;
            let got = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok());
            if got == Some(want) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{expr} never became {want}: {v}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

// ---- the test ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_shipped_configuration_and_every_query_runs() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return skip("prometheus is not installed (Debian package `prometheus`)");
    }
    let deploy = deploy_dir();
    let Ok(shipped) = std::fs::read_to_string(deploy.join("prometheus/prometheus.yml")) else {
        return skip(&format!(
            "{} has no prometheus/prometheus.yml",
            deploy.display()
        ));
    };
    // ten processes beside the other e2e tests: small pools, so that the shared PostgreSQL
    // server keeps connections for everyone
    let Some(topo) = Topology::start_with("prometheus", 3, Some(3)).await else {
        return;
    };
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, s) in &topo.servers {
        targets
            .entry(t.name().to_string())
            .or_default()
            .push(s.base.trim_start_matches("http://").to_string());
    }
    let config = rewrite_config(&shipped, &targets)
        .unwrap_or_else(|e| panic!("deploy/prometheus/prometheus.yml: {e}"));
    let dir = temp_dir("prometheus-server");
    let prom = Prometheus::start(&dir, &config, &deploy.join("prometheus/rules"));

    // every process is scraped, and up
    let expected: usize = targets.values().map(Vec::len).sum();
    let start = Instant::now();
    loop {
        let v = prom.api("/api/v1/targets", &[]).await.unwrap_or_default();
        let active = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        if active.len() == expected && up == expected {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "every one of the {expected} targets up: {v}"
        );
        tokio::time::sleep(POLL).await;
    }

    // a paid checkout and a declined one through the gateway; a customer signs up
    let gw = topo.base(Target::Gateway);
    let staff = sign_in(&gw, &topo.head_office).await;
    let sku = super::first_sku(&gw, "veste-impermeable-glaz-sport-odet-4").await;
    let (s, v, _) = call(
        Method::POST,
        format!("{gw}/api/inventory/movements"),
        Some(&staff),
        None,
        Some(
            json!({"location": "logistique", "sku": sku, "kind": "receipt", "quantity": 5,
            "reason": "prometheus"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "receipt: {v}");
    let cart = guest_cart(&gw, &sku).await;
    let (s, order, _) = call(
        Method::POST,
        format!("{gw}/api/checkout"),
        None,
        Some("prometheus-paid"),
        Some(delivery(&cart, "prometheus@example.org", OK_CARD)),
    )
    .await;
    assert_eq!(s, 201, "checkout: {order}");
    let total = order["total"].as_i64().expect("total");
    assert_eq!(order["currency"], "EUR");
    let cart = guest_cart(&gw, &sku).await;
    let (s, v, _) = call(
        Method::POST,
        format!("{gw}/api/checkout"),
        None,
        Some("prometheus-declined"),
        Some(delivery(&cart, "prometheus@example.org", DECLINED)),
    )
    .await;
    assert_eq!(s, 402, "declined: {v}");
    let (s, v, _) = call(
        Method::POST,
        format!("{gw}/api/identity/customers"),
        None,
        None,
        Some(
            json!({"email": "prometheus@example.org", "password": "un mot de passe solide",
            "name": "Prom"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "sign-up: {v}");

    // read back through Prometheus
    prom.until_value("sum(comptoir_orders_placed_total)", 1.0)
        .await;
    prom.until_value("sum(comptoir_orders_placed_total{channel=\"web\"})", 1.0)
        .await;
    prom.until_value("sum(comptoir_orders_paid_total{currency=\"EUR\"})", 1.0)
        .await;
    prom.until_value(
        "sum by (currency) (comptoir_orders_revenue_minor_units_total{currency=\"EUR\"})",
        total as f64,
    )
    .await;
    prom.until_value(
        "sum(comptoir_checkouts_total{outcome=\"payment_declined\"})",
        1.0,
    )
    .await;
    prom.until_value("sum(comptoir_checkout_duration_seconds_count)", 2.0)
        .await;
    prom.until_value("sum(comptoir_customers_registered_total)", 1.0)
        .await;
    prom.until_value("min(comptoir_dependency_up{dependency=\"database\"})", 1.0)
        .await;

    // every query of every dashboard and every rule runs
    let mut exprs: Vec<(String, String)> = Vec::new();
    let dashboards = deploy.join("grafana/dashboards");
    for e in std::fs::read_dir(&dashboards)
        .unwrap_or_else(|e| panic!("{}: {e}", dashboards.display()))
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
    {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).expect("read"))
            .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        for x in dashboard_exprs(&d) {
            exprs.push((e.file_name().to_string_lossy().into_owned(), x));
        }
    }
    let rules = deploy.join("prometheus/rules");
    for e in std::fs::read_dir(&rules)
        .unwrap_or_else(|e| panic!("{}: {e}", rules.display()))
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).expect("read");
        for x in rule_exprs(&text) {
            exprs.push((e.file_name().to_string_lossy().into_owned(), x));
        }
    }
    assert!(
        exprs.len() > 10,
        "dashboards and rules have queries: {exprs:?}"
    );
    let mut failed = Vec::new();
    for (file, e) in &exprs {
        let v = prom.query(e).await;
        if v["status"] != "success" {
            failed.push(format!("{file}: {e}: {}", v["error"]));
        }
    }
    assert!(
        failed.is_empty(),
        "queries that fail:\n{}",
        failed.join("\n")
    );
    // Prometheus evaluates the rules it loaded without error
    let v = prom.api("/api/v1/rules", &[]).await.expect("rules");
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert!(!groups.is_empty(), "the rule files were loaded: {v}");
    for g in &groups {
        for r in g["rules"].as_array().into_iter().flatten() {
            assert_ne!(r["health"], "err", "rule {}: {}", r["name"], r["lastError"]);
        }
    }

    // every metric named in deploy/metrics.txt, a dashboard or a rule is exported somewhere
    let mut exported = BTreeSet::new();
    for (_, s) in &topo.servers {
        let text = http()
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        exported.extend(testkit::metrics::names_in(&text));
    }
    let mut named: BTreeSet<String> = exprs.iter().flat_map(|(_, e)| metric_names(e)).collect();
    match std::fs::read_to_string(deploy.join("metrics.txt")) {
        Ok(list) => named.extend(
            list.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        ),
        Err(e) => panic!("{}/metrics.txt: {e}", deploy.display()),
    }
    eprintln!(
        "prometheus: {} queries of the dashboards and rules ran; {} metric names checked",
        exprs.len(),
        named.len()
    );
    let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "named by the deployment but exported by no process: {missing:?}"
    );

    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
    topo.stop_and_check(1).await;
}
