//! The binary as a user runs it: the CLI, exit codes, first and second start, graceful
//! shutdown, and the two topologies (one process; services and gateway as two processes on
//! loopback, the services on PostgreSQL when `COMPTOIR_TEST_POSTGRES_URL` is set).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "e2e/security.rs"]
mod security;

#[path = "e2e/idempotency.rs"]
mod idempotency;

#[path = "e2e/crash.rs"]
mod crash;

#[path = "e2e/webdriver.rs"]
mod webdriver;

#[path = "e2e/browser.rs"]
mod browser;

#[path = "e2e/web.rs"]
mod web;

// CORS and compression where the edge is
#[path = "e2e/cors.rs"]
mod cors;

// every service as its own OS process
#[path = "e2e/split.rs"]
mod split;

// several instances of a service behind the gateway
#[path = "e2e/gateway.rs"]
mod gateway;

#[path = "e2e/tls.rs"]
mod tls;

// the real Prometheus with the shipped configuration, dashboards and rules
#[path = "e2e/prometheus.rs"]
mod prometheus;

const BIN: &str = env!("CARGO_BIN_EXE_comptoir");

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("comptoir-e2e-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A `comptoir` command with a clean environment: only what the test gives.
fn comptoir(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("COMPTOIR_LOG__LEVEL", "warn");
    c
}

struct Server {
    child: Child,
    base: String,
    stdout: Vec<String>,
}

impl Server {
    /// Starts `comptoir serve` on a free port and waits for its address line.
    fn start(cmd: Command) -> Server {
        Server::start_at(cmd, "127.0.0.1:0")
    }

    /// Starts `comptoir serve` on `bind` (a restart at the address its peers know).
    fn start_at(mut cmd: Command, bind: &str) -> Server {
        cmd.arg("--bind").arg(bind);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn comptoir");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = Vec::new();
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("comptoir printed its address");
            stdout.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("listening on") {
                break rest.trim().to_string();
            }
        };
        // the lines printed right after the address (data, demo, token) arrive together
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            stdout.push(line);
        }
        Server {
            child,
            base,
            stdout,
        }
    }

    fn printed(&self, needle: &str) -> bool {
        self.stdout.iter().any(|l| l.contains(needle))
    }

    /// The head office's password, printed once at first start.
    fn head_office_password(&self) -> Option<String> {
        head_office_password(&self.stdout)
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "comptoir did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn head_office_password(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find(|l| l.contains("direction@breizhsport.example"))
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
}

/// Signs the head office in and returns an access token.
async fn sign_in(base: &str, password: &str) -> String {
    let r: serde_json::Value = http()
        .post(format!("{base}/api/identity/sessions"))
        .json(&serde_json::json!({"email": "direction@breizhsport.example", "password": password}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("json");
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {r}"))
        .to_string()
}

/// The first SKU of the product `slug`, read through `base` (anonymously).
async fn first_sku(base: &str, slug: &str) -> String {
    let product: serde_json::Value = http()
        .get(format!("{base}/api/catalog/products/{slug}"))
        .send()
        .await
        .expect("product")
        .json()
        .await
        .expect("json");
    product["variants"][0]["sku"]
        .as_str()
        .unwrap_or_else(|| panic!("{slug} has no SKU: {product}"))
        .to_string()
}

fn http() -> reqwest::Client {
    platform::tls::current()
        .reqwest_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[test]
fn help_list_targets_and_config() {
    let dir = temp_dir("cli");
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
    ] {
        let out = comptoir(&dir).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = comptoir(&dir).arg("list-targets").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for t in [
        "all:",
        "commerce:",
        "catalog:",
        "identity:",
        "inventory:",
        "cart:",
        "orders:",
        "payments:",
        "web:",
        "gateway:",
    ] {
        assert!(text.contains(t), "{t} in {text}");
    }
    assert!(
        text.contains(
            "needs: inventory, payments, cart (in this process, or at peers.inventory_url"
        ),
        "{text}"
    );

    let secret = dir.join("token");
    std::fs::write(&secret, "a-secret-token-a-secret-token-a-secret\n").expect("write");
    let out = comptoir(&dir)
        .arg("config")
        .env("COMPTOIR_AUTH__INTERNAL_SECRET_FILE", &secret)
        .env(
            "COMPTOIR_CATALOG__DATABASE_URL",
            "postgres://app:pw-in-url@db/comptoir",
        )
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("internal_secret = \"********\""), "{text}");
    assert!(
        !text.contains("a-secret-token") && !text.contains("pw-in-url"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every service at one address (the gateway's, or a peer's view of the others).
const ALL_PEERS: &[(&str, &str)] = &[
    ("COMPTOIR_PEERS__CATALOG_URL", "http://catalog:8080"),
    ("COMPTOIR_PEERS__IDENTITY_URL", "http://identity:8080"),
    ("COMPTOIR_PEERS__INVENTORY_URL", "http://inventory:8080"),
    ("COMPTOIR_PEERS__CART_URL", "http://cart:8080"),
    ("COMPTOIR_PEERS__ORDERS_URL", "http://orders:8080"),
    ("COMPTOIR_PEERS__PAYMENTS_URL", "http://payments:8080"),
];

#[test]
fn bad_start_up_settings_exit_2_naming_the_setting() {
    let dir = temp_dir("bad");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["serve", "--target", "warehouse"], vec![], "--target"),
        (
            vec!["serve", "--target", "gateway"],
            vec![],
            "peers.catalog_url",
        ),
        (
            vec!["serve", "--target", "gateway"],
            vec![
                ("COMPTOIR_PEERS__CATALOG_URL", "catalog:8080"),
                ("COMPTOIR_PEERS__IDENTITY_URL", "http://identity:8080"),
                (
                    "COMPTOIR_AUTH__INTERNAL_SECRET",
                    "0123456789abcdef0123456789abcdef",
                ),
                ("COMPTOIR_AUTH__ISSUER", "https://shop.example"),
            ],
            "peers.catalog_url",
        ),
        (
            vec!["serve", "--target", "gateway"],
            ALL_PEERS.to_vec(),
            "auth.internal_secret",
        ),
        // each service names the peer it lacks
        (
            vec!["serve", "--target", "orders"],
            vec![],
            "peers.inventory_url",
        ),
        (
            vec!["serve", "--target", "orders,inventory"],
            vec![],
            "peers.catalog_url",
        ),
        (
            vec!["serve", "--target", "cart"],
            vec![],
            "peers.catalog_url",
        ),
        (
            vec!["serve", "--target", "inventory"],
            vec![("COMPTOIR_PEERS__CATALOG_URL", "https://catalog:8443")],
            "peers.catalog_url",
        ),
        (vec!["serve", "--target", "web"], vec![], "--target"),
        (
            vec!["serve", "--target", "catalog"],
            vec![("COMPTOIR_AUTH__INTERNAL_SECRET", "too-short")],
            "auth.internal_secret",
        ),
        (
            vec!["serve"],
            vec![("COMPTOIR_AUTH__ACCESS_TOKEN_SECONDS", "3600")],
            "auth.access_token_seconds",
        ),
        (
            vec!["serve", "--target", "gateway"],
            vec![("COMPTOIR_GATEWAY__CORS_ORIGINS", "*")],
            "gateway.cors_origins",
        ),
        (
            vec!["serve"],
            vec![("COMPTOIR_AUTH__OIDC_ISSUER", "http://kc/realms/shop")],
            "auth.oidc_audience",
        ),
        (
            vec!["serve"],
            vec![
                ("COMPTOIR_AUTH__OIDC_ISSUER", "http://kc/realms/shop"),
                ("COMPTOIR_AUTH__OIDC_AUDIENCE", "comptoir"),
                ("COMPTOIR_AUTH__OIDC_ROLE_MAP", "admin=head_office"),
                ("COMPTOIR_AUTH__OIDC_ALGORITHMS", "HS256"),
            ],
            "auth.oidc_algorithms",
        ),
        (
            vec!["serve"],
            vec![("COMPTOIR_SERVER__REQUEST_TIMEOUT_SECONDS", "soon")],
            "COMPTOIR_SERVER__REQUEST_TIMEOUT_SECONDS",
        ),
        (
            vec!["serve"],
            vec![("COMPTOIR_CATALOG__DATABASE_URL", "mysql://x")],
            "catalog.database_url",
        ),
        (
            vec!["serve"],
            vec![("COMPTOIR_SERVR__BIND", "x")],
            "COMPTOIR_SERVR__BIND",
        ),
        (vec!["--log-format", "xml", "serve"], vec![], "--log-format"),
    ];
    for (args, env, setting) in cases {
        let out = comptoir(&dir)
            .args(&args)
            .envs(env.clone())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(setting), "{args:?} {env:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_seeds_and_prints_second_start_reuses() {
    let dir = temp_dir("first");
    let s = Server::start({
        let mut c = comptoir(&dir);
        c.arg("serve");
        c
    });
    assert!(
        s.printed("data          catalog: sqlite:comptoir-data/catalog.db"),
        "{:?}",
        s.stdout
    );
    assert!(s.printed("Breizhsport seeded"), "{:?}", s.stdout);
    let password = s
        .head_office_password()
        .expect("demo account passwords are printed at first start");
    assert!(s.printed("store_manager  rennes"), "{:?}", s.stdout);
    assert!(s.printed("integrator     rennes"), "{:?}", s.stdout);
    assert!(dir.join("comptoir-data/catalog.db").exists());
    // passwords are stored hashed only
    let db = std::fs::read(dir.join("comptoir-data/identity.db")).unwrap_or_default();
    assert!(!db.is_empty());
    assert!(!String::from_utf8_lossy(&db).contains(&password));
    let token = sign_in(&s.base, &password).await;

    let c = http();
    let ready = c
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let page: serde_json::Value = c
        .get(format!("{}/api/catalog/products?limit=5", s.base))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"].as_array().expect("items").len(), 5);
    let created = c
        .post(format!("{}/api/catalog/brands", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Nouvelle Marque"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    // the docs work offline: the page and its script come from this server
    let docs = c
        .get(format!("{}/api/docs/", s.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("html");
    assert!(html.contains("swagger"), "{html}");
    assert!(!html.contains("https://"), "no CDN: {html}");
    let spec: serde_json::Value = c
        .get(format!("{}/api/openapi.json", s.base))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    assert!(spec["paths"]["/api/catalog/products"]["post"].is_object());
    let metrics = c
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("comptoir_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("comptoir_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("route=\"/api/catalog/products\""));
    assert!(metrics.contains("comptoir_build_info"));
    assert!(s.stop().success(), "SIGTERM exits 0");

    let s = Server::start({
        let mut c = comptoir(&dir);
        c.arg("serve");
        c
    });
    assert!(!s.printed("seeded"), "{:?}", s.stdout);
    assert!(
        s.head_office_password().is_none(),
        "passwords are printed once only"
    );
    let brands: serde_json::Value = c
        .get(format!("{}/api/catalog/brands", s.base))
        .send()
        .await
        .expect("brands")
        .json()
        .await
        .expect("json");
    assert_eq!(
        brands.as_array().expect("brands").len(),
        16,
        "data kept across restarts"
    );
    // the session of the first run still works, and so does the password
    assert!(!sign_in(&s.base, &password).await.is_empty());
    let r = c
        .post(format!("{}/api/catalog/brands", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Encore une"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    assert!(s.stop().success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_in_flight_request_finishes_after_sigterm() {
    use std::io::{Read, Write};
    let dir = temp_dir("drain");
    let s = Server::start({
        let mut c = comptoir(&dir);
        c.arg("serve");
        c
    });
    let password = s.head_office_password().expect("printed");
    let token = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(sign_in(&s.base, &password));
    let addr = s.base.trim_start_matches("http://").to_string();
    let body = r#"{"name": "Arrivée pendant l'arrêt"}"#;
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // the headers and half of the body: the request is now in flight, waiting for the rest
    write!(
        conn,
        "POST /api/catalog/brands HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("headers");
    let (first, rest) = body.as_bytes().split_at(10);
    conn.write_all(first).expect("first half");
    conn.flush().expect("flush");
    // a full round trip on another connection: the server has read the first one by now
    let mut probe = std::net::TcpStream::connect(&addr).expect("probe");
    write!(
        probe,
        "GET /livez HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("probe");
    let mut buf = String::new();
    probe.read_to_string(&mut buf).expect("probe answer");
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");

    let pid = s.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    conn.write_all(rest).expect("second half");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let n = conn
            .read(&mut chunk)
            .expect("the in-flight request is answered");
        assert!(
            n > 0,
            "connection closed before the answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert!(s.stop().success(), "exit 0 after draining");
    let _ = std::fs::remove_dir_all(dir);
}

/// A guest cart created at `create` with one unit of `sku` added at `fill`.
async fn guest_cart(create: &str, fill: &str, sku: &str) -> String {
    let c = http();
    let cart: serde_json::Value = c
        .post(format!("{create}/api/carts"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("cart")
        .json()
        .await
        .expect("json");
    let cart_id = cart["id"].as_str().expect("cart id").to_string();
    let line = c
        .post(format!("{fill}/api/carts/{cart_id}/lines"))
        .json(&serde_json::json!({"sku": sku, "quantity": 1}))
        .send()
        .await
        .expect("line");
    assert!(line.status().is_success(), "{}", line.status());
    cart_id
}

/// `comptoir serve --target gateway` in front of one services process.
fn gateway_to(dir: &Path, upstream: &str, secret: &str, issuer: &str) -> Command {
    let mut c = comptoir(dir);
    c.args(["serve", "--target", "gateway"])
        .envs(ALL_PEERS.iter().map(|(k, _)| (*k, upstream)))
        .env("COMPTOIR_AUTH__INTERNAL_SECRET", secret)
        .env("COMPTOIR_AUTH__ISSUER", issuer);
    c
}

/// I9 across processes: a second services process on the same databases behind its own
/// gateway; 20 checkouts of one cart with 20 keys, half through each gateway, make one order.
/// On PostgreSQL (with carts in Redis) only: two processes on one set of SQLite files is not a
/// supported topology.
async fn one_cart_pays_once_across_two_processes(
    remote_dir: &Path,
    env: &dyn Fn(&mut Command),
    gw: &Server,
    secret: &str,
    issuer: &str,
    sku: &str,
) {
    if testkit::postgres_url().is_none() {
        eprintln!("skipping the two-process checkout race: no PostgreSQL");
        return;
    }
    let second = Server::start({
        let mut c = comptoir(remote_dir);
        c.args(["serve", "--target", "catalog,identity,commerce"]);
        env(&mut c);
        c
    });
    let gw2 = Server::start(gateway_to(remote_dir, &second.base, secret, issuer));
    let c = http();
    // created through one gateway, filled through the other: both processes see it
    let cart_id = guest_cart(&gw.base, &gw2.base, sku).await;
    let body = serde_json::json!({"cart_id": cart_id, "email": "guest@example.org",
        "fulfilment": {"type": "collect", "store": "rennes"},
        "payment": {"type": "test_card", "number": "4242424242424242"}});
    let tries = (0..20).map(|i| {
        let base = if i % 2 == 0 { &gw.base } else { &gw2.base };
        let (c, body) = (c.clone(), body.clone());
        async move {
            let r = c
                .post(format!("{base}/api/checkout"))
                .header("idempotency-key", format!("two-processes-{i}"))
                .json(&body)
                .send()
                .await
                .expect("checkout");
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (status, v)
        }
    });
    let answers = futures_util::future::join_all(tries).await;
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
    assert_eq!(created.len(), 1, "one order: {answers:?}");
    for (s, v) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*s, 409, "{v}");
        assert!(
            ["cart_checkout_in_progress", "cart_checked_out"]
                .contains(&v["code"].as_str().unwrap_or("")),
            "{v}"
        );
    }
    drop(gw2);
    drop(second);
}

/// Same requests, same answers: one process vs catalogue + gateway as two processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_like_the_one_process_mode() {
    // a multi-process topology on the shared PostgreSQL: one at a time, as the others
    let _turn = split::ONE_AT_A_TIME.lock().await;
    let dir = temp_dir("topo");
    let secret = "an-internal-secret-shared-by-the-processes-0123456789";
    let issuer = "http://shop.e2e.test";
    // the services' process (catalogue and identity): on PostgreSQL when available, else
    // their own SQLite files
    let pg = testkit::postgres_url();
    let redis = pg.as_ref().and_then(|_| testkit::redis_url());
    let schema = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    let id_schema = format!("e2e_id_{}", uuid::Uuid::new_v4().simple());
    let catalog_env = |c: &mut Command| {
        c.env("COMPTOIR_AUTH__INTERNAL_SECRET", secret)
            .env("COMPTOIR_AUTH__ISSUER", issuer);
        if let Some(url) = &pg {
            c.env("COMPTOIR_CATALOG__DATABASE_URL", url)
                .env("COMPTOIR_CATALOG__DATABASE_SCHEMA", &schema)
                .env("COMPTOIR_IDENTITY__DATABASE_URL", url)
                .env("COMPTOIR_IDENTITY__DATABASE_SCHEMA", &id_schema);
            // the commerce services on PostgreSQL too (carts in Redis when it is there), so
            // that two service processes share them
            for svc in ["INVENTORY", "ORDERS", "PAYMENTS", "CART"] {
                c.env(format!("COMPTOIR_{svc}__DATABASE_URL"), url).env(
                    format!("COMPTOIR_{svc}__DATABASE_SCHEMA"),
                    format!("{}_{}", schema, svc.to_lowercase()),
                );
            }
            if let Some(r) = &redis {
                c.env("COMPTOIR_CART__BACKEND", "redis")
                    .env("COMPTOIR_CART__REDIS_URL", r);
            }
        }
    };
    let remote_dir = dir.join("remote");
    std::fs::create_dir_all(&remote_dir).expect("dir");
    let mut remote_password = None;
    for sub in ["migrate", "demo-data"] {
        let mut c = comptoir(&remote_dir);
        c.arg(sub);
        catalog_env(&mut c);
        let out = c.output().expect("run");
        assert!(
            out.status.success(),
            "{sub}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        remote_password = remote_password.or(head_office_password(&lines));
    }
    let remote_password = remote_password.expect("demo-data printed the accounts");
    // with a broker, orders runs in a process of its own and reaches inventory, payments and
    // carts over their contracts' HTTP clients; payments' events reach it through RabbitMQ
    let amqp = testkit::rabbitmq_url();
    let bus_prefix = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bus_env = |c: &mut Command| {
        if let Some(url) = &amqp {
            c.env("COMPTOIR_BUS__TRANSPORT", "rabbitmq")
                .env("COMPTOIR_BUS__RABBITMQ_URL", url)
                .env("COMPTOIR_BUS__PREFIX", &bus_prefix);
        }
    };
    let catalog = Server::start({
        let mut c = comptoir(&remote_dir);
        let here = if amqp.is_some() {
            "catalog,identity,inventory,cart,payments"
        } else {
            eprintln!("orders runs with the other services: no RabbitMQ to carry their events");
            "catalog,identity,commerce"
        };
        c.args(["serve", "--target", here]);
        catalog_env(&mut c);
        bus_env(&mut c);
        c
    });
    if pg.is_some() {
        assert!(catalog.printed("(schema e2e_"), "{:?}", catalog.stdout);
    }
    let orders_alone = amqp.as_ref().map(|_| {
        Server::start({
            let mut c = comptoir(&remote_dir);
            c.args(["serve", "--target", "orders"])
                .envs(ALL_PEERS.iter().map(|(k, _)| (*k, catalog.base.as_str())));
            catalog_env(&mut c);
            bus_env(&mut c);
            c
        })
    });
    let gw = Server::start({
        let mut c = gateway_to(&dir, &catalog.base, secret, issuer);
        if let Some(o) = &orders_alone {
            c.env("COMPTOIR_PEERS__ORDERS_URL", &o.base);
        }
        c
    });
    assert!(
        !gw.printed("data "),
        "the gateway holds no data: {:?}",
        gw.stdout
    );
    let local_dir = dir.join("local");
    std::fs::create_dir_all(&local_dir).expect("dir");
    let one = Server::start({
        let mut c = comptoir(&local_dir);
        c.arg("serve");
        c
    });
    // the same person signs in through the gateway (identity behind it) and locally
    let gw_token = sign_in(&gw.base, &remote_password).await;
    let one_token = sign_in(&one.base, &one.head_office_password().expect("printed")).await;
    // a forged identity header is dropped at the edge, and the service refuses one it cannot
    // verify
    let c = http();
    let r = c
        .post(format!("{}/api/catalog/brands", gw.base))
        .header("x-comptoir-identity", "v1.0.e30.AAAA")
        .json(&serde_json::json!({"name": "Forged"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401, "dropped at the edge: anonymous");
    let r = c
        .post(format!("{}/api/catalog/brands", catalog.base))
        .header("x-comptoir-identity", "v1.0.e30.AAAA")
        .json(&serde_json::json!({"name": "Forged"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401, "refused by the service");
    // tokens of the gateway's issuer work through it; the JWKS is served through it too
    let me: serde_json::Value = c
        .get(format!("{}/api/identity/me", gw.base))
        .bearer_auth(&gw_token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "head_office");
    let jwks = c
        .get(format!("{}/.well-known/jwks.json", gw.base))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), 200);
    // the commerce services behind the gateway: a guest buys, head office sees the order
    let product: serde_json::Value = c
        .get(format!(
            "{}/api/catalog/products/veste-impermeable-glaz-sport-odet-4",
            gw.base
        ))
        .send()
        .await
        .expect("product")
        .json()
        .await
        .expect("json");
    let sku = product["variants"][0]["sku"]
        .as_str()
        .expect("sku")
        .to_string();
    let receipt = c
        .post(format!("{}/api/inventory/movements", gw.base))
        .bearer_auth(&gw_token)
        .json(
            &serde_json::json!({"location": "rennes", "sku": sku, "kind": "receipt",
            "quantity": 3, "reason": "e2e"}),
        )
        .send()
        .await
        .expect("receipt");
    assert_eq!(receipt.status(), 201);
    let cart_id = guest_cart(&gw.base, &gw.base, &sku).await;
    let order = c
        .post(format!("{}/api/checkout", gw.base))
        .header("idempotency-key", "e2e-gateway-checkout")
        .json(
            &serde_json::json!({"cart_id": cart_id, "email": "guest@example.org",
            "fulfilment": {"type": "collect", "store": "rennes"},
            "payment": {"type": "test_card", "number": "4242424242424242"}}),
        )
        .send()
        .await
        .expect("checkout");
    assert_eq!(order.status(), 201);
    let order: serde_json::Value = order.json().await.expect("json");
    assert_eq!(order["status"], "paid");
    let seen = c
        .get(format!(
            "{}/api/orders/{}",
            gw.base,
            order["id"].as_str().expect("id")
        ))
        .bearer_auth(&gw_token)
        .send()
        .await
        .expect("order");
    assert_eq!(
        seen.status(),
        200,
        "head office reads it through the gateway"
    );
    one_cart_pays_once_across_two_processes(&remote_dir, &catalog_env, &gw, secret, issuer, &sku)
        .await;

    // ids differ between the two databases; everything else must match
    fn strip_ids(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in [
                    "id",
                    "parent_id",
                    "request_id",
                    "image_url",
                    "url",
                    "created_at",
                    "updated_at",
                    "published_at",
                    "next_cursor",
                ] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip_ids);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_ids),
            _ => {}
        }
    }
    let paths = [
        "/api/catalog/products?limit=20&sort=price&q=trail",
        "/api/catalog/products?category=cyclisme&limit=50&sort=-price",
        "/api/catalog/products/veste-impermeable-glaz-sport-odet-4",
        "/api/catalog/products?limit=0",
        "/api/catalog/products?sort=cheapest",
        "/api/catalog/products/no-such-product",
        "/api/catalog/nowhere",
        "/api/catalog/categories",
        "/api/catalog/brands",
    ];
    for p in paths {
        let a = c
            .get(format!("{}{p}", gw.base))
            .send()
            .await
            .expect("gateway");
        let b = c.get(format!("{}{p}", one.base)).send().await.expect("one");
        assert_eq!(a.status(), b.status(), "{p}");
        assert_eq!(
            a.headers().get("content-type"),
            b.headers().get("content-type"),
            "{p}"
        );
        let mut ja: serde_json::Value = a.json().await.expect("json");
        let mut jb: serde_json::Value = b.json().await.expect("json");
        strip_ids(&mut ja);
        strip_ids(&mut jb);
        assert_eq!(ja, jb, "{p}");
    }
    // writes: same validation answers, same success through both
    let bad = serde_json::json!({"name": "", "slug": "Bad Slug"});
    let body = serde_json::json!({"name": "Via Gateway", "slug": "via-gateway"});
    for (base, token) in [(&gw.base, &gw_token), (&one.base, &one_token)] {
        let r = c
            .post(format!("{base}/api/catalog/brands"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 401);
        let r = c
            .post(format!("{base}/api/catalog/brands"))
            .bearer_auth(token)
            .json(&bad)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 422);
        let j: serde_json::Value = r.json().await.expect("json");
        assert_eq!(j["errors"].as_array().expect("errors").len(), 2);
        // the same keyed request twice: created, then replayed
        for replayed in [None, Some("true")] {
            let r = c
                .post(format!("{base}/api/catalog/brands"))
                .bearer_auth(token)
                .header("idempotency-key", "gw-1")
                .json(&body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status(), 201);
            assert_eq!(
                r.headers()
                    .get("idempotent-replayed")
                    .and_then(|v| v.to_str().ok()),
                replayed
            );
        }
    }
    // the request id crosses the gateway; the gateway is ready only while the catalogue is
    let r = c
        .get(format!("{}/api/catalog/brands", gw.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    assert_eq!(
        c.get(format!("{}/readyz", gw.base))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    let metrics = c
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(metrics.contains("route=\"/api/catalog/*\""), "{metrics}");
    if let Some(o) = orders_alone {
        // the checkouts above went through orders' own process, which held the stock, took
        // the money and closed the carts over the contracts' HTTP clients
        let m = c
            .get(format!("{}/metrics", o.base))
            .send()
            .await
            .expect("orders metrics")
            .text()
            .await
            .expect("t");
        for peer in ["inventory", "payments", "cart"] {
            assert!(
                m.contains(&format!(
                    "comptoir_peer_calls_total{{outcome=\"ok\",peer=\"{peer}\"}}"
                )) || m.contains(&format!(
                    "comptoir_peer_calls_total{{peer=\"{peer}\",outcome=\"ok\"}}"
                )),
                "orders called {peer} over HTTP: {m}"
            );
        }
        assert!(o.stop().success());
        if let Some(url) = &amqp {
            let _ = platform::rabbit::delete_topology(
                url,
                &bus_prefix,
                &[
                    orders::consumers::REFUNDS_GROUP,
                    orders::consumers::NOTIFICATIONS_GROUP,
                ],
            )
            .await;
        }
    }
    assert!(catalog.stop().success());
    let r = c
        .get(format!("{}/api/catalog/brands", gw.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 502);
    let j: serde_json::Value = r.json().await.expect("json");
    assert_eq!(j["code"], "upstream_unavailable");
    assert_eq!(
        c.get(format!("{}/readyz", gw.base))
            .send()
            .await
            .expect("readyz")
            .status(),
        503
    );
    assert!(gw.stop().success());
    assert!(one.stop().success());
    if let Some(url) = pg {
        let out = Command::new("psql")
            .args([
                &url,
                "-qc",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {id_schema} CASCADE"),
            ])
            .output();
        let _ = out;
    }
    let _ = std::fs::remove_dir_all(dir);
}
