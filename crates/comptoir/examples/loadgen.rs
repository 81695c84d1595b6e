//! Closed-loop load generator for the checkout and flash-sale benchmark (`bench/checkout.sh`,
//! PERFORMANCE.md G1, G2, G13). Built only when asked:
//! `cargo build --release -p comptoir --example loadgen`.
//!
//! ```text
//! loadgen --base http://127.0.0.1:18500 --scenario checkout|flash --concurrency 32 --duration 8
//!         [--warmup 1] [--skus 500] [--fulfilment delivery|collect:rennes] [--location logistique]
//!         [--email E --password P] [--setup] [--topup 100000] [--stock 500] [--hot-sku SKU]
//!         [--server-pid PID] [--seed N]
//! ```
//!
//! Each virtual user loops until the time is up: create a cart, add 1–2 random SKUs (flash: one
//! unit of the one hot SKU), check out with a fresh `Idempotency-Key` and the test card. Latencies
//! are kept in memory (one entry per call) and sorted at the end. With `--setup` it signs in as
//! head office and tops up the stock of the SKUs it uses (flash: sets the hot SKU's available
//! stock to exactly `--stock`). With credentials, it checks the invariants through the API after
//! the run: the stock consumed equals the units sold by 201 answers, the hot SKU is never
//! negative nor oversold, and `GET /api/inventory/check` is consistent. Prints one JSON object.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Checkout,
    Flash,
}

#[derive(Clone, Debug)]
struct Args {
    base: String,
    scenario: Scenario,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    skus: usize,
    fulfilment: Value,
    location: String,
    email: Option<String>,
    password: Option<String>,
    setup: bool,
    topup: i64,
    stock: i64,
    hot_sku: Option<String>,
    server_pid: Option<u32>,
    seed: u64,
}

fn usage(msg: &str) -> BoxError {
    format!("{msg}\nusage: loadgen --base URL --scenario checkout|flash [--concurrency N] [--duration S] [--warmup S] [--skus N] [--fulfilment delivery|collect:STORE] [--location CODE] [--email E --password P] [--setup] [--topup N] [--stock N] [--hot-sku SKU] [--server-pid PID] [--seed N]").into()
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        base: "http://127.0.0.1:8080".into(),
        scenario: Scenario::Checkout,
        concurrency: 8,
        duration: 8.0,
        warmup: 1.0,
        skus: 500,
        fulfilment: Value::Null,
        location: String::new(),
        email: None,
        password: None,
        setup: false,
        topup: 100_000,
        stock: 500,
        hot_sku: None,
        server_pid: None,
        seed: 42,
    };
    let mut fulfilment = "delivery".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--setup" {
            a.setup = true;
            continue;
        }
        let v = it
            .next()
            .ok_or_else(|| usage(&format!("{flag} needs a value")))?;
        let num = |v: &str| -> Result<f64, BoxError> {
            v.parse::<f64>()
                .map_err(|_| usage(&format!("{flag}: `{v}` is not a number")))
        };
        match flag.as_str() {
            "--base" => a.base = v.trim_end_matches('/').to_string(),
            "--scenario" => {
                a.scenario = match v.as_str() {
                    "checkout" => Scenario::Checkout,
                    "flash" => Scenario::Flash,
                    _ => return Err(usage("--scenario is checkout or flash")),
                }
            }
            "--concurrency" => a.concurrency = num(&v)?.max(1.0) as usize,
            "--duration" => a.duration = num(&v)?.max(0.5),
            "--warmup" => a.warmup = num(&v)?.max(0.0),
            "--skus" => a.skus = num(&v)?.max(1.0) as usize,
            "--fulfilment" => fulfilment = v,
            "--location" => a.location = v,
            "--email" => a.email = Some(v),
            "--password" => a.password = Some(v),
            "--topup" => a.topup = num(&v)? as i64,
            "--stock" => a.stock = num(&v)? as i64,
            "--hot-sku" => a.hot_sku = Some(v),
            "--server-pid" => a.server_pid = Some(num(&v)? as u32),
            "--seed" => a.seed = num(&v)? as u64,
            _ => return Err(usage(&format!("unknown flag {flag}"))),
        }
    }
    if fulfilment == "delivery" {
        a.fulfilment = json!({"type": "delivery", "address": {"name": "Anna Le Goff",
            "line1": "12 rue de la Soif", "postcode": "35000", "city": "Rennes", "country": "FR"}});
        if a.location.is_empty() {
            a.location = "logistique".into();
        }
    } else if let Some(store) = fulfilment.strip_prefix("collect:") {
        a.fulfilment = json!({"type": "collect", "store": store});
        if a.location.is_empty() {
            a.location = store.to_string();
        }
    } else {
        return Err(usage("--fulfilment is delivery or collect:STORE"));
    }
    if a.setup && (a.email.is_none() || a.password.is_none()) {
        return Err(usage("--setup needs --email and --password (head office)"));
    }
    Ok(a)
}

/// xorshift64*: enough randomness for picking SKUs, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// One HTTP answer: status and body (bodies are small).
struct Answer {
    status: u16,
    body: Value,
    text: String,
    replayed: bool,
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    idem: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, BoxError> {
    let mut rq = http.request(method, url);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(k) = idem {
        rq = rq.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        rq = rq
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(b)?);
    }
    let r = rq.send().await?;
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    let bytes = r.bytes().await?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        body,
        text,
        replayed,
    })
}

fn get_ok(a: Answer, what: &str) -> Result<Value, BoxError> {
    if (200..300).contains(&a.status) {
        Ok(a.body)
    } else {
        Err(format!("{what}: HTTP {} {}", a.status, a.text).into())
    }
}

/// Active SKUs of the published catalogue, in catalogue order, at least `n` if there are.
async fn discover_skus(
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<String>, BoxError> {
    let mut slugs = Vec::new();
    let mut cursor: Option<String> = None;
    let mut skus = Vec::new();
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/catalog/products?limit=100&cursor={c}"),
            None => format!("{base}/api/catalog/products?limit=100"),
        };
        let page = get_ok(
            call(http, reqwest::Method::GET, &url, None, None, None).await?,
            "product list",
        )?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let batch: Vec<String> = items
            .iter()
            .filter_map(|p| p["slug"].as_str().map(String::from))
            .collect();
        slugs.extend(batch.iter().cloned());
        // details, 8 at a time, until enough SKUs
        for chunk in batch.chunks(8) {
            let mut set = tokio::task::JoinSet::new();
            for (i, slug) in chunk.iter().enumerate() {
                let http = http.clone();
                let url = format!("{base}/api/catalog/products/{slug}");
                set.spawn(async move {
                    (
                        i,
                        call(&http, reqwest::Method::GET, &url, None, None, None).await,
                    )
                });
            }
            let mut got: Vec<(usize, Value)> = Vec::new();
            while let Some(r) = set.join_next().await {
                let (i, a) = r?;
                got.push((i, get_ok(a?, "product")?));
            }
            got.sort_by_key(|(i, _)| *i);
            for (_, p) in got {
                for v in p["variants"].as_array().cloned().unwrap_or_default() {
                    if v["active"].as_bool().unwrap_or(true)
                        && let Some(s) = v["sku"].as_str()
                    {
                        skus.push(s.to_string());
                    }
                }
            }
            if skus.len() >= n {
                return Ok(skus);
            }
        }
        cursor = page["next_cursor"].as_str().map(String::from);
        if cursor.is_none() || items.is_empty() {
            return Ok(skus);
        }
    }
}

async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> Result<String, BoxError> {
    let a = call(
        http,
        reqwest::Method::POST,
        &format!("{base}/api/identity/sessions"),
        None,
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .await?;
    let v = get_ok(a, "sign-in")?;
    v["access_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| "sign-in: no access_token".into())
}

/// Raw stock row (on_hand, held, available) of a SKU at a location; zeros when there is none.
async fn stock_row(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    location: &str,
    sku: &str,
) -> Result<(i64, i64, i64), BoxError> {
    let url = format!("{base}/api/inventory/stock?location={location}&sku={sku}");
    let v = get_ok(
        call(http, reqwest::Method::GET, &url, Some(token), None, None).await?,
        "stock",
    )?;
    Ok(v.as_array()
        .and_then(|rows| rows.first())
        .map(|r| {
            (
                r["on_hand"].as_i64().unwrap_or(0),
                r["held"].as_i64().unwrap_or(0),
                r["available"].as_i64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0, 0)))
}

/// Available units at `location` per SKU (public availability endpoint, 100 SKUs a call).
async fn availability(
    http: &reqwest::Client,
    base: &str,
    location: &str,
    skus: &[String],
) -> Result<HashMap<String, i64>, BoxError> {
    let mut out: HashMap<String, i64> = skus.iter().map(|s| (s.clone(), 0)).collect();
    for chunk in skus.chunks(100) {
        let url = format!("{base}/api/inventory/availability?skus={}", chunk.join(","));
        let v = get_ok(
            call(http, reqwest::Method::GET, &url, None, None, None).await?,
            "availability",
        )?;
        for row in v.as_array().cloned().unwrap_or_default() {
            if row["location"].as_str() == Some(location)
                && let Some(s) = row["sku"].as_str()
            {
                out.insert(s.to_string(), row["available"].as_i64().unwrap_or(0));
            }
        }
    }
    Ok(out)
}

async fn movement(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    location: &str,
    sku: &str,
    kind: &str,
    quantity: i64,
) -> Result<(), BoxError> {
    let a = call(
        http,
        reqwest::Method::POST,
        &format!("{base}/api/inventory/movements"),
        Some(token),
        Some(&uuid::Uuid::new_v4().to_string()),
        Some(
            &json!({"location": location, "sku": sku, "kind": kind, "quantity": quantity,
            "reason": "benchmark top-up"}),
        ),
    )
    .await?;
    get_ok(a, &format!("{kind} {sku}")).map(|_| ())
}

/// The stock location exists (on a fresh PostgreSQL database no demo location is seeded):
/// created as the logistics centre (ships) or as a click & collect store.
async fn ensure_location(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    code: &str,
) -> Result<bool, BoxError> {
    let url = format!("{base}/api/inventory/locations");
    let v = get_ok(
        call(http, reqwest::Method::GET, &url, None, None, None).await?,
        "locations",
    )?;
    let known = v
        .as_array()
        .is_some_and(|ls| ls.iter().any(|l| l["code"].as_str() == Some(code)));
    if known {
        return Ok(false);
    }
    let body = if code == "logistique" {
        json!({"name": "Centre logistique", "kind": "warehouse", "ships": true, "click_and_collect": false})
    } else {
        json!({"name": format!("Breizhsport {code}"), "kind": "store", "ships": false, "click_and_collect": true})
    };
    let a = call(
        http,
        reqwest::Method::PUT,
        &format!("{url}/{code}"),
        Some(token),
        None,
        Some(&body),
    )
    .await?;
    get_ok(a, &format!("create location {code}")).map(|_| true)
}

/// Checkout scenario: every SKU gets at least `topup` / 2 available (receipts, 8 at a time).
async fn top_up(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    location: &str,
    skus: &[String],
    topup: i64,
) -> Result<usize, BoxError> {
    let avail = availability(http, base, location, skus).await?;
    let todo: Vec<(String, i64)> = skus
        .iter()
        .filter_map(|s| {
            let have = avail.get(s).copied().unwrap_or(0);
            (have < topup / 2).then(|| (s.clone(), topup - have))
        })
        .collect();
    for chunk in todo.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for (sku, q) in chunk.iter().cloned() {
            let (http, base, token, location) = (
                http.clone(),
                base.to_string(),
                token.to_string(),
                location.to_string(),
            );
            set.spawn(async move {
                movement(&http, &base, &token, &location, &sku, "receipt", q).await
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    Ok(todo.len())
}

/// Flash scenario: the hot SKU's available stock becomes exactly `stock` (no holds left over).
async fn set_hot_stock(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    location: &str,
    sku: &str,
    stock: i64,
) -> Result<(i64, i64, i64), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut row = stock_row(http, base, token, location, sku).await?;
    while row.1 != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        row = stock_row(http, base, token, location, sku).await?;
    }
    if row.1 != 0 {
        return Err(format!("hot SKU {sku} still has {} units held", row.1).into());
    }
    let diff = stock - row.2;
    if diff > 0 {
        movement(http, base, token, location, sku, "receipt", diff).await?;
    } else if diff < 0 {
        movement(http, base, token, location, sku, "adjustment", diff).await?;
    }
    let row = stock_row(http, base, token, location, sku).await?;
    if row.2 != stock {
        return Err(format!(
            "hot SKU {sku}: available {} after setting it to {stock}",
            row.2
        )
        .into());
    }
    Ok(row)
}

/// What one virtual user saw.
#[derive(Default)]
struct Tally {
    checkout_ms: Vec<f64>,
    checkout_201_ms: Vec<f64>,
    flow_ms: Vec<f64>,
    /// status (and problem code) -> count, measured window only
    by_status: BTreeMap<String, u64>,
    /// the same over the whole run (warm-up and tail included)
    by_status_all: BTreeMap<String, u64>,
    orders_in_window: u64,
    orders_all: u64,
    /// units sold per SKU by 201 answers (whole run)
    sold: HashMap<String, i64>,
    /// 5xx, 503 or transport errors on checkout: outcome unknown until recovery
    unknown_outcomes: u64,
    samples: BTreeMap<String, Vec<String>>,
    last_201_s: f64,
    first_out_of_stock_s: Option<f64>,
    iterations: u64,
}

impl Tally {
    fn count(&mut self, key: String, in_window: bool, sample: Option<&str>) {
        if in_window {
            *self.by_status.entry(key.clone()).or_default() += 1;
        }
        *self.by_status_all.entry(key.clone()).or_default() += 1;
        if let Some(s) = sample {
            let v = self.samples.entry(key).or_default();
            if v.len() < 3 {
                v.push(s.chars().take(600).collect());
            }
        }
    }

    fn merge(&mut self, o: Tally) {
        self.checkout_ms.extend(o.checkout_ms);
        self.checkout_201_ms.extend(o.checkout_201_ms);
        self.flow_ms.extend(o.flow_ms);
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        for (k, v) in o.by_status_all {
            *self.by_status_all.entry(k).or_default() += v;
        }
        self.orders_in_window += o.orders_in_window;
        self.orders_all += o.orders_all;
        for (k, v) in o.sold {
            *self.sold.entry(k).or_default() += v;
        }
        self.unknown_outcomes += o.unknown_outcomes;
        for (k, v) in o.samples {
            let mine = self.samples.entry(k).or_default();
            for s in v {
                if mine.len() < 3 {
                    mine.push(s);
                }
            }
        }
        self.last_201_s = self.last_201_s.max(o.last_201_s);
        self.first_out_of_stock_s = match (self.first_out_of_stock_s, o.first_out_of_stock_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.iterations += o.iterations;
    }
}

fn key_of(a: &Answer, step: &str) -> String {
    let code = a.body["code"].as_str().unwrap_or("");
    if step == "checkout" {
        if code.is_empty() {
            format!("{}", a.status)
        } else {
            format!("{} {code}", a.status)
        }
    } else if code.is_empty() {
        format!("{step} {}", a.status)
    } else {
        format!("{step} {} {code}", a.status)
    }
}

struct Plan {
    args: Args,
    http: reqwest::Client,
    skus: Vec<String>,
    start: Instant,
    window_start: Instant,
    end: Instant,
}

async fn virtual_user(plan: Arc<Plan>, id: usize) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng::new(plan.args.seed ^ ((id as u64 + 1) << 20));
    let base = &plan.args.base;
    let http = &plan.http;
    let mut n = 0u64;
    while Instant::now() < plan.end {
        n += 1;
        t.iterations += 1;
        let flow_start = Instant::now();
        // 1. cart
        let cart = match call(
            http,
            reqwest::Method::POST,
            &format!("{base}/api/carts"),
            None,
            None,
            Some(&json!({})),
        )
        .await
        {
            Ok(a) if a.status == 201 || a.status == 200 => a.body["id"].as_str().map(String::from),
            Ok(a) => {
                let done = Instant::now();
                t.count(
                    key_of(&a, "cart"),
                    done >= plan.window_start && done <= plan.end,
                    Some(&a.text),
                );
                None
            }
            Err(e) => {
                t.count("cart transport error".into(), true, Some(&e.to_string()));
                None
            }
        };
        let Some(cart) = cart else { continue };
        // 2. lines
        let lines: Vec<String> = match plan.args.scenario {
            Scenario::Flash => vec![plan.skus[0].clone()],
            Scenario::Checkout => {
                let first = plan.skus[rng.below(plan.skus.len())].clone();
                if rng.below(2) == 1 {
                    let mut second = plan.skus[rng.below(plan.skus.len())].clone();
                    while second == first && plan.skus.len() > 1 {
                        second = plan.skus[rng.below(plan.skus.len())].clone();
                    }
                    vec![first, second]
                } else {
                    vec![first]
                }
            }
        };
        let mut ok = true;
        for sku in &lines {
            match call(
                http,
                reqwest::Method::POST,
                &format!("{base}/api/carts/{cart}/lines"),
                None,
                None,
                Some(&json!({"sku": sku, "quantity": 1})),
            )
            .await
            {
                Ok(a) if (200..300).contains(&a.status) => {}
                Ok(a) => {
                    let done = Instant::now();
                    t.count(
                        key_of(&a, "add line"),
                        done >= plan.window_start && done <= plan.end,
                        Some(&a.text),
                    );
                    ok = false;
                    break;
                }
                Err(e) => {
                    t.count(
                        "add line transport error".into(),
                        true,
                        Some(&e.to_string()),
                    );
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        // 3. checkout
        let body = json!({"cart_id": cart, "email": format!("vu{id}.{n}@bench.example"),
            "fulfilment": plan.args.fulfilment,
            "payment": {"type": "test_card", "number": "4242424242424242"}});
        let key = uuid::Uuid::new_v4().to_string();
        let c0 = Instant::now();
        let res = call(
            http,
            reqwest::Method::POST,
            &format!("{base}/api/checkout"),
            None,
            Some(&key),
            Some(&body),
        )
        .await;
        let done = Instant::now();
        let in_window = done >= plan.window_start && done <= plan.end;
        let ms = (done - c0).as_secs_f64() * 1000.0;
        let flow = (done - flow_start).as_secs_f64() * 1000.0;
        match res {
            Ok(a) => {
                let key = key_of(&a, "checkout");
                if a.status == 201 {
                    t.orders_all += 1;
                    for sku in &lines {
                        *t.sold.entry(sku.clone()).or_default() += 1;
                    }
                    t.last_201_s = t.last_201_s.max((done - plan.start).as_secs_f64());
                    if in_window {
                        t.orders_in_window += 1;
                        t.checkout_201_ms.push(ms);
                    }
                    t.count(key, in_window, None);
                } else {
                    if a.status >= 500 || a.status == 0 {
                        t.unknown_outcomes += 1;
                    }
                    if a.body["code"].as_str() == Some("out_of_stock") {
                        let s = (done - plan.start).as_secs_f64();
                        t.first_out_of_stock_s =
                            Some(t.first_out_of_stock_s.map_or(s, |x: f64| x.min(s)));
                    }
                    let sample =
                        if a.status == 409 && a.body["code"].as_str() == Some("out_of_stock") {
                            None
                        } else {
                            Some(a.text.as_str())
                        };
                    t.count(key, in_window, sample);
                }
                if in_window {
                    t.checkout_ms.push(ms);
                    t.flow_ms.push(flow);
                }
            }
            Err(e) => {
                t.unknown_outcomes += 1;
                t.count(
                    "checkout transport error".into(),
                    in_window,
                    Some(&e.to_string()),
                );
            }
        }
    }
    t
}

fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some((sorted[i] * 100.0).round() / 100.0)
}

fn summary(v: &mut [f64]) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    json!({"n": v.len(), "p50": pct(v, 50.0), "p90": pct(v, 90.0), "p99": pct(v, 99.0),
        "max": v.last().map(|x| (x * 100.0).round() / 100.0)})
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let u: f64 = f.get(11)?.parse().ok()?;
    let k: f64 = f.get(12)?.parse().ok()?;
    Some((u + k) / 100.0)
}

struct Retry {
    sold: bool,
    violation: Option<String>,
}

/// One checkout sent twice with the same `Idempotency-Key`: the second answer must replay the
/// first (same order, `Idempotent-Replayed: true`).
async fn retry_check(
    http: &reqwest::Client,
    base: &str,
    fulfilment: &Value,
    sku: &str,
) -> Result<Retry, BoxError> {
    let cart = get_ok(
        call(
            http,
            reqwest::Method::POST,
            &format!("{base}/api/carts"),
            None,
            None,
            Some(&json!({})),
        )
        .await?,
        "cart",
    )?;
    let id = cart["id"].as_str().unwrap_or_default().to_string();
    get_ok(
        call(
            http,
            reqwest::Method::POST,
            &format!("{base}/api/carts/{id}/lines"),
            None,
            None,
            Some(&json!({"sku": sku, "quantity": 1})),
        )
        .await?,
        "add line",
    )?;
    let body = json!({"cart_id": id, "email": "retry@bench.example", "fulfilment": fulfilment,
        "payment": {"type": "test_card", "number": "4242424242424242"}});
    let key = uuid::Uuid::new_v4().to_string();
    let url = format!("{base}/api/checkout");
    let first = call(
        http,
        reqwest::Method::POST,
        &url,
        None,
        Some(&key),
        Some(&body),
    )
    .await?;
    let second = call(
        http,
        reqwest::Method::POST,
        &url,
        None,
        Some(&key),
        Some(&body),
    )
    .await?;
    let sold = first.status == 201;
    let violation = if first.status != 201 {
        Some(format!(
            "retry check: first checkout answered {} {}",
            first.status, first.text
        ))
    } else if second.status != 201 || second.body["id"] != first.body["id"] || !second.replayed {
        Some(format!(
            "retry check: the retry answered {} (replayed: {}) {} instead of order {}",
            second.status, second.replayed, second.text, first.body["id"]
        ))
    } else {
        None
    };
    Ok(Retry { sold, violation })
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

async fn run(args: Args) -> Result<Value, BoxError> {
    let http = platform::tls::current()
        .reqwest_builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency * 2 + 16)
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = args.base.clone();
    let want = if args.scenario == Scenario::Flash {
        1
    } else {
        args.skus + 1
    };
    let mut all = discover_skus(&http, &base, want).await?;
    if all.is_empty() {
        return Err("no SKU in the catalogue".into());
    }
    // the hot SKU is the first one (or the one given); the checkout scenario uses the next ones
    let hot = args.hot_sku.clone().unwrap_or_else(|| all[0].clone());
    all.retain(|s| *s != hot);
    let skus: Vec<String> = match args.scenario {
        Scenario::Flash => vec![hot.clone()],
        Scenario::Checkout => all.into_iter().take(args.skus).collect(),
    };
    let token = match (&args.email, &args.password) {
        (Some(e), Some(p)) => Some(sign_in(&http, &base, e, p).await?),
        _ => None,
    };
    let mut setup = json!({});
    if args.setup
        && let Some(tok) = &token
    {
        let created = ensure_location(&http, &base, tok, &args.location).await?;
        setup["location_created"] = json!(created);
        match args.scenario {
            Scenario::Checkout => {
                let n = top_up(&http, &base, tok, &args.location, &skus, args.topup).await?;
                setup["skus_topped_up"] = json!(n);
                setup["topup"] = json!(args.topup);
            }
            Scenario::Flash => {
                let row =
                    set_hot_stock(&http, &base, tok, &args.location, &hot, args.stock).await?;
                setup["hot_sku"] = json!(hot);
                setup["stock"] = json!(args.stock);
                setup["row"] = json!([row.0, row.1, row.2]);
            }
        }
    }
    let before = availability(&http, &base, &args.location, &skus).await?;
    let hot_before = match &token {
        Some(tok) if args.scenario == Scenario::Flash => {
            Some(stock_row(&http, &base, tok, &args.location, &hot).await?)
        }
        _ => None,
    };

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(args.warmup);
    let end = window_start + Duration::from_secs_f64(args.duration);
    let plan = Arc::new(Plan {
        args: args.clone(),
        http: http.clone(),
        skus: skus.clone(),
        start,
        window_start,
        end,
    });
    let pid = args.server_pid.map(|p| p.to_string());
    let cpu_probe = {
        let pid = pid.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start.into()).await;
            let s0 = pid.as_deref().and_then(cpu_seconds);
            let c0 = cpu_seconds("self");
            let m0 = machine_jiffies();
            tokio::time::sleep_until(end.into()).await;
            let s1 = pid.as_deref().and_then(cpu_seconds);
            let c1 = cpu_seconds("self");
            let m1 = machine_jiffies();
            let busy = m0
                .zip(m1)
                .filter(|(a, b)| b.1 > a.1)
                .map(|(a, b)| ((b.0 - a.0) / (b.1 - a.1) * 1000.0).round() / 10.0);
            (
                s0.zip(s1).map(|(a, b)| b - a),
                c0.zip(c1).map(|(a, b)| b - a),
                busy,
            )
        })
    };
    let mut set = tokio::task::JoinSet::new();
    for id in 0..args.concurrency {
        set.spawn(virtual_user(plan.clone(), id));
    }
    let mut t = Tally::default();
    while let Some(r) = set.join_next().await {
        t.merge(r?);
    }
    let finished = Instant::now();
    let (server_cpu, client_cpu, machine_busy) = cpu_probe.await?;

    // an idempotent retry of a checkout answers the first order again and sells nothing more
    let retry = if args.scenario == Scenario::Checkout {
        let r = retry_check(&http, &base, &args.fulfilment, &skus[0]).await?;
        if r.sold {
            *t.sold.entry(skus[0].clone()).or_default() += 1;
        }
        Some(r)
    } else {
        None
    };
    // invariants, once the system has settled (sagas that answered 5xx may still finish)
    let mut inv = json!({"checked": false});
    let sold_201: i64 = t.sold.values().sum();
    {
        let mut after = availability(&http, &base, &args.location, &skus).await?;
        let deadline =
            Instant::now() + Duration::from_secs(if t.unknown_outcomes > 0 { 15 } else { 3 });
        let consumed = |after: &HashMap<String, i64>| -> i64 {
            skus.iter()
                .map(|s| before.get(s).copied().unwrap_or(0) - after.get(s).copied().unwrap_or(0))
                .sum()
        };
        // wait until the consumed stock stops moving (holds of failed checkouts released)
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again = availability(&http, &base, &args.location, &skus).await?;
            let stable = consumed(&again) == consumed(&after);
            after = again;
            if (stable && (consumed(&after) == sold_201 || t.unknown_outcomes == 0))
                || Instant::now() >= deadline
            {
                break;
            }
        }
        let consumed_total = consumed(&after);
        let mut violations: Vec<String> = Vec::new();
        let mut per_sku_mismatch = 0usize;
        for s in &skus {
            let d = before.get(s).copied().unwrap_or(0) - after.get(s).copied().unwrap_or(0);
            let sold = t.sold.get(s).copied().unwrap_or(0);
            if d != sold {
                per_sku_mismatch += 1;
                if per_sku_mismatch <= 5 {
                    violations.push(format!(
                        "{s}: stock went down by {d} but 201 answers sold {sold}"
                    ));
                }
            }
        }
        if consumed_total < sold_201 || consumed_total > sold_201 + t.unknown_outcomes as i64 {
            violations.push(format!(
                "stock consumed {consumed_total} vs sold by 201 answers {sold_201} (+ {} unknown outcomes)",
                t.unknown_outcomes
            ));
        }
        inv = json!({"checked": true, "stock_consumed": consumed_total, "sold_by_201": sold_201,
            "unknown_outcomes": t.unknown_outcomes, "skus_with_mismatch": per_sku_mismatch});
        if let Some(tok) = &token {
            if args.scenario == Scenario::Flash {
                let row = stock_row(&http, &base, tok, &args.location, &hot).await?;
                let start_avail = hot_before.map(|r| r.2).unwrap_or(0);
                if row.0 < 0 || row.1 < 0 || row.2 < 0 {
                    violations.push(format!(
                        "hot SKU negative: on_hand {} held {} available {}",
                        row.0, row.1, row.2
                    ));
                }
                if sold_201 > start_avail {
                    violations.push(format!("oversold: {sold_201} sold, {start_avail} in stock"));
                }
                let sold_out = t.by_status_all.keys().any(|k| k.contains("out_of_stock"));
                if sold_out && sold_201 != start_avail {
                    violations.push(format!(
                        "answered out_of_stock but sold {sold_201} of {start_avail} (undersold)"
                    ));
                }
                inv["hot"] = json!({"sku": hot, "stock_before": start_avail,
                    "after": {"on_hand": row.0, "held": row.1, "available": row.2}, "sold_out": sold_out});
            }
            let c = get_ok(
                call(
                    &http,
                    reqwest::Method::GET,
                    &format!("{base}/api/inventory/check"),
                    Some(tok),
                    None,
                    None,
                )
                .await?,
                "inventory check",
            )?;
            if c["consistent"].as_bool() != Some(true) {
                violations.push(format!("inventory check: {}", c));
            }
            inv["inventory_check_consistent"] = c["consistent"].clone();
        }
        if let Some(r) = &retry {
            if let Some(v) = &r.violation {
                violations.push(v.clone());
            }
            inv["idempotent_retry_ok"] = json!(r.violation.is_none());
        }
        inv["ok"] = json!(violations.is_empty());
        inv["violations"] = json!(violations);
    }

    let orders_per_s = t.orders_in_window as f64 / args.duration;
    // flash: the rate while the stock lasted (from the start to the last sale when it sold out)
    let sold_out = t.by_status_all.keys().any(|k| k.contains("out_of_stock"));
    let sale_rate = if args.scenario == Scenario::Flash && sold_out && t.last_201_s > 0.0 {
        t.orders_all as f64 / t.last_201_s
    } else {
        orders_per_s
    };
    let errors: u64 = t
        .by_status
        .iter()
        .filter(|(k, _)| !(k.starts_with("201") || k.contains("out_of_stock")))
        .map(|(_, v)| *v)
        .sum();
    let checkouts = t.checkout_ms.len() as f64;
    Ok(json!({
        "scenario": match args.scenario { Scenario::Checkout => "checkout", Scenario::Flash => "flash" },
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "location": args.location,
        "skus": skus.len(),
        "setup": setup,
        "orders_per_s": (orders_per_s * 10.0).round() / 10.0,
        "sale_rate_per_s": (sale_rate * 10.0).round() / 10.0,
        "orders_in_window": t.orders_in_window,
        "orders_total": t.orders_all,
        "iterations": t.iterations,
        "checkout_ms": summary(&mut t.checkout_ms),
        "checkout_201_ms": summary(&mut t.checkout_201_ms),
        "flow_ms": summary(&mut t.flow_ms),
        "by_status": t.by_status,
        "by_status_all": t.by_status_all,
        "errors": errors,
        "error_samples": t.samples,
        "last_201_s": (t.last_201_s * 1000.0).round() / 1000.0,
        "first_out_of_stock_s": t.first_out_of_stock_s.map(|x| (x * 1000.0).round() / 1000.0),
        "tail_s": ((finished - end).as_secs_f64() * 1000.0).round() / 1000.0,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_checkout": server_cpu.filter(|_| checkouts > 0.0).map(|c| (c * 1e6 / checkouts).round()),
        "client_cpu_s": client_cpu,
        "machine_busy_pct": machine_busy,
        "invariants": inv,
    }))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // one worker thread: the client shares the 2 cores with the server
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
