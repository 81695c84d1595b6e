//! Logs (text or JSON, via `tracing`) and the Prometheus recorder.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global log subscriber. Safe to call more than once (later calls do nothing).
pub fn init_logs(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// The buckets of every `_seconds` histogram.
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exporter as this process configures it (the tests build their own recorders with it).
pub fn prometheus_builder() -> PrometheusBuilder {
    match PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
    {
        Ok(b) => b,
        // only an empty bucket list is refused
        Err(_) => PrometheusBuilder::new(),
    }
}

/// Installs the Prometheus recorder once per process and records the build info.
pub fn init_metrics() {
    PROMETHEUS.get_or_init(|| {
        let handle = prometheus_builder().install_recorder();
        match handle {
            Ok(h) => {
                metrics::describe_counter!(
                    "comptoir_http_requests_total",
                    "HTTP requests answered, by method, route and status"
                );
                metrics::describe_histogram!(
                    "comptoir_http_request_duration_seconds",
                    metrics::Unit::Seconds,
                    "Time to answer an HTTP request, by method, route and status"
                );
                metrics::gauge!(
                    "comptoir_build_info",
                    "version" => env!("CARGO_PKG_VERSION"),
                    "rustc" => "1.95",
                )
                .set(1.0);
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
    });
}

/// Whether this process's metrics are recorded (a handle taken before is a no-op for good: only
/// a handle taken after may be kept).
pub fn recording() -> bool {
    matches!(PROMETHEUS.get(), Some(Some(_)))
}

/// The Prometheus text exposition of every metric of this process.
pub fn render_metrics() -> String {
    init_metrics();
    match PROMETHEUS.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}
