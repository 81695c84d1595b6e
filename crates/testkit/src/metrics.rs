//! What the code under test records, read back as `/metrics` renders it.
//!
//! The process's recorder is global and the tests of a binary run in parallel, so a counter
//! read there moves with every other test. A [`Recorder`] is this test's own: put on the
//! current thread, it receives everything recorded on that thread, which for a `#[tokio::test]`
//! (one thread) is the test body and every task it spawns (relays, the servers of
//! `http::serve`). Its text is the exporter's, configured as the process configures it.
//!
//! ```text
//! let m = testkit::metrics::Recorder::new();
//! let _on = m.on_this_thread();
//! // … a checkout through the API …
//! assert_eq!(m.value("comptoir_orders_placed_total", &[("channel", "web")]), 1.0);
//! ```
//!
//! [`value_in`] reads the same numbers from any `/metrics` text (a process of the e2e tests).

use metrics::LocalRecorderGuard;
use metrics_exporter_prometheus::PrometheusRecorder;

/// A recorder of one test.
pub struct Recorder(PrometheusRecorder);

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder(platform::telemetry::prometheus_builder().build_recorder())
    }

    /// Makes this the recorder of the current thread until the guard is dropped.
    pub fn on_this_thread(&self) -> LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(&self.0)
    }

    /// The exposition text, as `/metrics` would answer it.
    pub fn render(&self) -> String {
        self.0.handle().render()
    }

    /// The sum of the series of `name` whose labels include `labels` (0 when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        value_in(&self.render(), name, labels)
    }
}

/// One line of an exposition text: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.trim().rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.to_string(), Vec::new()),
        Some((name, rest)) => (name.to_string(), parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `a="x",b="y \"quoted\""` → pairs.
fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, e) = chars.next()?;
                    value.push(match e {
                        'n' => '\n',
                        other => other,
                    });
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push((key.trim_start_matches(',').to_string(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// The sum of the series of `name` in `text` whose labels include `labels` (0 when none).
pub fn value_in(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(text)
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
        .sum()
}

/// The metric names of `text`: histogram series (`_bucket`, `_sum`, `_count`) under the
/// histogram's name as well as their own.
pub fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for s in parse(text) {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = s.name.strip_suffix(suffix) {
                out.insert(base.to_string());
            }
        }
        out.insert(s.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_read_back() {
        let text = "# HELP x_total Things\n# TYPE x_total counter\n\
                    x_total{a=\"1\",b=\"two \\\"quoted\\\"\"} 3\nx_total{a=\"2\"} 4\n\
                    y_seconds_bucket{le=\"+Inf\"} 5\ny_seconds_count 5\nz 1.5\n";
        assert_eq!(value_in(text, "x_total", &[]), 7.0);
        assert_eq!(value_in(text, "x_total", &[("a", "1")]), 3.0);
        assert_eq!(value_in(text, "x_total", &[("b", "two \"quoted\"")]), 3.0);
        assert_eq!(value_in(text, "x_total", &[("a", "3")]), 0.0);
        assert_eq!(value_in(text, "z", &[]), 1.5);
        let names = names_in(text);
        assert!(names.contains("y_seconds") && names.contains("y_seconds_count"));
    }

    #[test]
    fn a_recorder_sees_what_its_thread_records_only() {
        let m = Recorder::new();
        {
            let _on = m.on_this_thread();
            metrics::counter!("testkit_things_total", "kind" => "a").increment(2);
            std::thread::spawn(|| metrics::counter!("testkit_things_total").increment(5))
                .join()
                .expect("thread");
        }
        metrics::counter!("testkit_things_total", "kind" => "a").increment(1);
        assert_eq!(m.value("testkit_things_total", &[("kind", "a")]), 2.0);
        assert_eq!(m.value("testkit_things_total", &[]), 2.0);
    }
}
