//! A minimal W3C WebDriver client (JSON over HTTP) for headless Chromium through chromedriver.
//! Only what the browser tests need: navigation, elements, typing, clicks, reading the page,
//! screenshots, the browser's console log, and polling waits with deadlines.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key W3C WebDriver uses for an element reference.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How often the waits look again.
const POLL: Duration = Duration::from_millis(50);
/// The default deadline of a wait (a debug build on a busy machine is slow).
pub const WAIT: Duration = Duration::from_secs(30);

/// A WebDriver error: the W3C error code (`no such element`, `stale element reference`…) and
/// its message, or a transport failure.
#[derive(Debug)]
pub struct WdError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

pub type WdResult<T> = Result<T, WdError>;

fn transport(e: impl std::fmt::Display) -> WdError {
    WdError {
        code: "transport".into(),
        message: e.to_string(),
    }
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(pub String);

/// Chromedriver and one headless Chromium session. Dropping it ends the session and kills
/// chromedriver.
pub struct Browser {
    child: Child,
    port: u16,
    session: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("addr").port()
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port, waits for it to be ready, and opens a
    /// headless Chromium session (`binary` is the Chromium executable).
    pub async fn start(chromedriver: &Path, binary: Option<&Path>) -> WdResult<Browser> {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| transport(format!("spawn {}: {e}", chromedriver.display())))?;
        let http = platform::tls::current()
            .reqwest_builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(transport)?;
        let mut b = Browser {
            child,
            port,
            session: String::new(),
            http,
        };
        // chromedriver is ready when /status says so
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = b
                .http
                .get(format!("{}/status", b.root()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"].as_bool() == Some(true)
            {
                break;
            }
            if let Ok(Some(status)) = b.child.try_wait() {
                return Err(transport(format!("chromedriver exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(transport("chromedriver did not become ready in 30 s"));
            }
            tokio::time::sleep(POLL).await;
        }
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-search-engine-choice-screen",
            ]
        });
        if let Some(bin) = binary {
            options["binary"] = json!(bin.to_string_lossy());
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {"implicit": 0, "pageLoad": 60_000, "script": 30_000},
                    "goog:chromeOptions": options,
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let v = b.raw(reqwest::Method::POST, "/session", Some(caps)).await?;
        b.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| transport(format!("no session id in {v}")))?
            .to_string();
        Ok(b)
    }

    fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One WebDriver command; the response's `value`, or its error.
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> WdResult<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.root()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(transport)?;
        let ok = res.status().is_success();
        let v: Value = res.json().await.map_err(transport)?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(WdError {
                code: value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            })
        }
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> WdResult<Value> {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> WdResult<Value> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> WdResult<Value> {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    /// Loads `url` (waits for the page's load event).
    pub async fn goto(&self, url: &str) -> WdResult<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    pub async fn url(&self) -> WdResult<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn title(&self) -> WdResult<String> {
        Ok(self
            .get("/title")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> WdResult<Element> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        element(&v)
    }

    /// Every element matching a CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> WdResult<Vec<Element>> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        v.as_array()
            .map(|a| a.iter().map(element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    pub async fn click(&self, e: &Element) -> WdResult<()> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into the element (WebDriver key codes such as `\u{E007}` for Enter work).
    pub async fn send_keys(&self, e: &Element, text: &str) -> WdResult<()> {
        self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
            .await
            .map(drop)
    }

    pub async fn clear(&self, e: &Element) -> WdResult<()> {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await
            .map(drop)
    }

    /// The element's rendered text.
    pub async fn text(&self, e: &Element) -> WdResult<String> {
        Ok(self
            .get(&format!("/element/{}/text", e.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// A DOM property (`value`, `checked`, `href`…).
    pub async fn property(&self, e: &Element, name: &str) -> WdResult<Value> {
        self.get(&format!("/element/{}/property/{name}", e.0)).await
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> WdResult<Option<String>> {
        Ok(self
            .get(&format!("/element/{}/attribute/{name}", e.0))
            .await?
            .as_str()
            .map(str::to_string))
    }

    pub async fn is_selected(&self, e: &Element) -> WdResult<bool> {
        Ok(self
            .get(&format!("/element/{}/selected", e.0))
            .await?
            .as_bool()
            .unwrap_or(false))
    }

    /// Runs a script in the page and returns its value. For reading state only.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// A PNG screenshot of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> WdResult<()> {
        let v = self.get("/screenshot").await?;
        let png = base64_decode(v.as_str().unwrap_or_default())
            .ok_or_else(|| transport("the screenshot is not base64"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(transport)?;
        }
        std::fs::write(path, png).map_err(transport)
    }

    /// The cookies of the current page's site (`name`, `value`), HttpOnly ones included.
    pub async fn cookies(&self) -> WdResult<Vec<(String, String)>> {
        let v = self.get("/cookie").await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["name"].as_str().unwrap_or_default().to_string(),
                            c["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Resizes the window (outer size).
    pub async fn set_window_size(&self, width: u32, height: u32) -> WdResult<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(drop)
    }

    /// The browser's console messages since the last call (`level`, `message`).
    pub async fn browser_log(&self) -> WdResult<Vec<(String, String)>> {
        let v = match self.post("/se/log", json!({"type": "browser"})).await {
            Ok(v) => v,
            Err(_) => self.post("/log", json!({"type": "browser"})).await?,
        };
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until an element matching `css` is on the page, and returns it.
    pub async fn wait_for(&self, css: &str) -> WdResult<Element> {
        self.wait_for_within(css, WAIT).await
    }

    pub async fn wait_for_within(&self, css: &str, within: Duration) -> WdResult<Element> {
        let deadline = Instant::now() + within;
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if e.code == "no such element" => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(WdError {
                    code: "timeout".into(),
                    message: format!(
                        "no `{css}` on {} after {within:?}",
                        self.url().await.unwrap_or_default()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the current URL satisfies `ok`, and returns it.
    pub async fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) -> WdResult<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let u = self.url().await?;
            if ok(&u) {
                return Ok(u);
            }
            if Instant::now() > deadline {
                return Err(WdError {
                    code: "timeout".into(),
                    message: format!("the URL is still {u}, waiting for {what}"),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the text of the first element matching `css` satisfies `ok`, and returns
    /// it. A page changing under the wait (stale element, element gone) just means "look again".
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> WdResult<String> {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.find(css).await
                && let Ok(t) = self.text(&e).await
            {
                if ok(&t) {
                    return Ok(t);
                }
                last = t;
            }
            if Instant::now() > deadline {
                return Err(WdError {
                    code: "timeout".into(),
                    message: format!(
                        "`{css}` on {} reads {last:?}, waiting for {what}",
                        self.url().await.unwrap_or_default()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `count(css)` satisfies `ok`, and returns the elements.
    pub async fn wait_count(
        &self,
        css: &str,
        what: &str,
        ok: impl Fn(usize) -> bool,
    ) -> WdResult<Vec<Element>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.find_all(css).await?;
            if ok(found.len()) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(WdError {
                    code: "timeout".into(),
                    message: format!(
                        "{} × `{css}` on {}, waiting for {what}",
                        found.len(),
                        self.url().await.unwrap_or_default()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the page has finished loading (`document.readyState == "complete"`).
    pub async fn wait_loaded(&self) -> WdResult<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(v) = self.execute("return document.readyState", vec![]).await
                && v == "complete"
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(WdError {
                    code: "timeout".into(),
                    message: "the page did not finish loading".into(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // a failed test drops the browser without `quit`: end the session over a plain socket
        // (no runtime needed here), so Chromium does not outlive the test
        if !self.session.is_empty()
            && let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn element(v: &Value) -> WdResult<Element> {
    v[ELEMENT_KEY]
        .as_str()
        .map(|s| Element(s.to_string()))
        .ok_or_else(|| transport(format!("not an element: {v}")))
}

/// Standard base64 (with or without padding), as WebDriver sends screenshots.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[test]
fn base64_decodes_what_webdriver_sends() {
    assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64_decode("aGVsbG8h").as_deref(), Some(&b"hello!"[..]));
    assert_eq!(base64_decode("aA==").as_deref(), Some(&b"h"[..]));
    assert_eq!(base64_decode("a"), None);
    assert_eq!(base64_decode("a*==").as_deref(), None);
}
