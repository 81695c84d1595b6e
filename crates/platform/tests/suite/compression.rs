//! Compression in the common layers, as every Comptoir process answers: each encoding the
//! client prefers decodes back to exactly the plain answer; what is small, already compressed
//! or not text is sent as it is; `identity`, no `Accept-Encoding` and `q=0` get the plain body.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::http::{COMPRESS_MIN_BYTES, EdgeOptions, with_common_layers};
use std::io::{Read, Write};
use std::time::Duration;
use testkit::Res;

/// A JSON page of products, some 20 KB, the shape the catalogue answers.
fn json_body() -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..120)
        .map(|i| {
            serde_json::json!({
                "id": format!("0190a3c2-7d4e-7f00-8000-{i:012}"),
                "name": format!("Veste imperméable Glaz n°{i}"),
                "price_minor": 4990 + i * 37,
                "currency": "EUR",
                "tags": ["pluie", "randonnée", format!("taille-{}", i % 7)],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "items": items, "next": null })).expect("json")
}

/// An HTML page, some 15 KB.
fn html_body() -> Vec<u8> {
    let mut page = String::from(
        "<!doctype html><html lang=\"fr\"><head><title>Rayon</title></head><body><ul>",
    );
    for i in 0..150 {
        page.push_str(&format!(
            "<li class=\"product\"><a href=\"/fr/p/veste-{i}\">Veste n°{i}</a> <span>{},{:02} €</span></li>",
            49 + i,
            i % 100
        ));
    }
    page.push_str("</ul></body></html>");
    page.into_bytes()
}

/// Bytes that look like an image or a font: no structure a compressor would find.
fn opaque_body() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("a gzip stream");
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .expect("a brotli stream");
        }
        "zstd" => out = zstd::stream::decode_all(bytes).expect("a zstd stream"),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

fn typed(ctype: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// A service behind the common layers, with answers of each kind.
fn app() -> Router {
    let router = Router::new()
        .route(
            "/json",
            get(|| async { typed("application/json", json_body()) }),
        )
        .route(
            "/html",
            get(|| async { typed("text/html; charset=utf-8", html_body()) }),
        )
        .route(
            "/problem",
            get(|| async { typed("application/problem+json", json_body()) }),
        )
        .route(
            "/small",
            get(|| async {
                typed(
                    "application/json",
                    br#"{"status":"ok","checks":{"catalog_db":"ok"}}"#.to_vec(),
                )
            }),
        )
        .route("/png", get(|| async { typed("image/png", opaque_body()) }))
        .route(
            "/font",
            get(|| async { typed("font/woff2", opaque_body()) }),
        )
        // what an upstream behind the gateway already compressed
        .route(
            "/encoded",
            get(|| async {
                let mut r = typed("application/json", gzip(&json_body()));
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }),
        );
    with_common_layers(
        router,
        &EdgeOptions {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            cors: None,
        },
    )
}

async fn get_with(app: &Router, path: &str, accept_encoding: Option<&str>) -> Res {
    let mut req = Request::get(path);
    if let Some(ae) = accept_encoding {
        req = req.header(header::ACCEPT_ENCODING, ae);
    }
    let res = testkit::http::send(app, req.body(Body::empty()).expect("request")).await;
    assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
    res
}

fn varies_on_accept_encoding(r: &Res) -> bool {
    r.headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("accept-encoding"))
        })
}

#[tokio::test]
async fn each_encoding_decodes_back_to_exactly_the_plain_answer() {
    let app = app();
    for (path, original) in [
        ("/json", json_body()),
        ("/html", html_body()),
        ("/problem", json_body()),
    ] {
        let plain = get_with(&app, path, None).await;
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert_eq!(plain.bytes.as_ref(), original.as_slice(), "{path}");
        // a cache must keep the encodings apart
        assert!(
            varies_on_accept_encoding(&plain),
            "{path}: {:?}",
            plain.headers
        );
        for encoding in ["gzip", "br", "zstd"] {
            let r = get_with(&app, path, Some(encoding)).await;
            assert_eq!(
                r.header("content-encoding"),
                Some(encoding),
                "{path} {encoding}: {:?}",
                r.headers
            );
            assert!(varies_on_accept_encoding(&r), "{path} {encoding}");
            // the length of the plain body would be a lie
            assert_ne!(
                r.header("content-length"),
                Some(original.len().to_string().as_str()),
                "{path} {encoding}"
            );
            assert!(
                r.bytes.len() < original.len() / 2,
                "{path} {encoding}: {} of {} bytes",
                r.bytes.len(),
                original.len()
            );
            assert_eq!(
                decode(encoding, &r.bytes),
                original,
                "{path} {encoding}: the decoded answer differs"
            );
        }
        // what a browser sends: one of the three, and it decodes
        let r = get_with(&app, path, Some("gzip, deflate, br, zstd")).await;
        let encoding = r
            .header("content-encoding")
            .expect("compressed")
            .to_string();
        assert!(
            ["gzip", "br", "zstd"].contains(&encoding.as_str()),
            "{encoding}"
        );
        assert_eq!(decode(&encoding, &r.bytes), original, "{path} {encoding}");
    }
}

#[tokio::test]
async fn q_values_choose_the_encoding_and_q0_refuses_one() {
    let app = app();
    let original = json_body();
    for (accept, expected) in [
        ("gzip;q=0.5, br;q=0.9, zstd;q=0.1", Some("br")),
        ("br;q=0.2, zstd;q=0.3, gzip;q=0.25", Some("zstd")),
        ("zstd;q=0.4, gzip", Some("gzip")),
        ("GZIP;Q=0.7, br;q=0.001", Some("gzip")),
        // refused: q=0
        ("br;q=0, gzip;q=0.1", Some("gzip")),
        ("gzip;q=0, br;q=0, zstd;q=0", None),
        ("zstd;q=0", None),
        // none that we speak, or no compression wanted
        ("identity", None),
        ("gzip;q=0.5, identity", None),
        ("deflate, compress", None),
        ("", None),
    ] {
        let r = get_with(&app, "/json", Some(accept)).await;
        assert_eq!(
            r.header("content-encoding"),
            expected,
            "Accept-Encoding: {accept}"
        );
        match expected {
            Some(e) => assert_eq!(decode(e, &r.bytes), original, "{accept}"),
            None => assert_eq!(r.bytes.as_ref(), original.as_slice(), "{accept}"),
        }
    }
}

#[tokio::test]
async fn small_opaque_and_already_compressed_answers_are_left_alone() {
    let app = app();
    let every = Some("gzip, br, zstd");
    // below the minimum size
    let r = get_with(&app, "/small", every).await;
    assert!(r.bytes.len() < usize::from(COMPRESS_MIN_BYTES));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        r.bytes.as_ref(),
        br#"{"status":"ok","checks":{"catalog_db":"ok"}}"#
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.bytes.len().to_string().as_str())
    );
    // images and fonts are compressed already
    for path in ["/png", "/font"] {
        let r = get_with(&app, path, every).await;
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.bytes.as_ref(), opaque_body().as_slice(), "{path}");
    }
    // an answer with a Content-Encoding is not compressed a second time
    let r = get_with(&app, "/encoded", Some("br, zstd, gzip")).await;
    let encodings: Vec<_> = r
        .headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(encodings, ["gzip"]);
    assert_eq!(decode("gzip", &r.bytes), json_body());
    // and the errors of the common layers stay readable too (small problems, plain)
    let res = testkit::http::send(
        &app,
        Request::get("/nowhere")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.code(), "route_not_found");
}
