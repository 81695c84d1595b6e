//! The instances of one upstream and the choice among them: which are in (active health, the
//! circuit breaker), and which of those takes the next request (least connections, round robin,
//! weights). No IO here: the clock is passed in, so the rules are unit-tested.
//!
//! An instance takes requests when it is **healthy** (the active checks: out after
//! `unhealthy_after` failed checks in a row, back after `healthy_after` good ones) **and** its
//! **breaker** lets it (closed; or half-open with its one probe free). The breaker opens after
//! `breaker_failures` failed requests in a row (connect errors, timeouts, 5xx), stays open
//! `breaker_open`, then lets one request through: its success closes the breaker, its failure
//! opens it again. So a dead instance costs clients at most that many failed attempts (each
//! retried elsewhere when it may be), then none until the probe.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How the next instance is chosen among those that take requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Fewest requests in flight, relative to the weight; ties go round robin.
    LeastConnections,
    /// Each in turn, as often as its weight (smooth weighted round robin, as nginx does).
    RoundRobin,
}

impl Balance {
    pub fn parse(s: &str) -> Option<Balance> {
        match s {
            "least_connections" => Some(Balance::LeastConnections),
            "round_robin" => Some(Balance::RoundRobin),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Balance::LeastConnections => "least_connections",
            Balance::RoundRobin => "round_robin",
        }
    }
}

/// The thresholds of health and of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// Failed active checks in a row that take an instance out.
    pub unhealthy_after: u32,
    /// Good active checks in a row that bring it back.
    pub healthy_after: u32,
    /// Failed requests in a row that open its breaker.
    pub breaker_failures: u32,
    /// How long an open breaker stays open before its probe.
    pub breaker_open: Duration,
}

impl Default for HealthRules {
    fn default() -> Self {
        HealthRules {
            unhealthy_after: 3,
            healthy_after: 2,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(10),
        }
    }
}

/// Where an instance's breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Closed,
    /// Until this moment; then half-open.
    Open(Instant),
    /// One probe request allowed; `true` while it is out.
    HalfOpen(bool),
}

impl Breaker {
    /// The breaker state as a metric value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self, now: Instant) -> f64 {
        match self {
            Breaker::Closed => 0.0,
            Breaker::Open(until) if now < *until => 2.0,
            Breaker::Open(_) | Breaker::HalfOpen(_) => 1.0,
        }
    }
}

#[derive(Debug)]
struct State {
    healthy: bool,
    check_failures: u32,
    check_successes: u32,
    request_failures: u32,
    breaker: Breaker,
    /// Smooth weighted round robin's running weight.
    current: i64,
}

/// One address of an upstream, e.g. `http://10.0.0.7:8080`.
#[derive(Debug)]
pub struct Instance {
    /// `host:port`, as in the metrics and the access log.
    pub authority: String,
    /// Its base URL, without a trailing slash.
    pub base: String,
    pub weight: u32,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    state: Mutex<State>,
    /// Its request metrics, registered at its first request.
    pub(crate) metrics: std::sync::OnceLock<crate::forward::InstanceMetrics>,
}

impl Instance {
    pub fn new(base: &str, authority: &str, weight: u32) -> Instance {
        Instance {
            authority: authority.to_string(),
            base: base.trim_end_matches('/').to_string(),
            weight: weight.max(1),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            state: Mutex::new(State {
                healthy: true,
                check_failures: 0,
                check_successes: 0,
                request_failures: 0,
                breaker: Breaker::Closed,
                current: 0,
            }),
            metrics: std::sync::OnceLock::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // a panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters more than losing the gateway: take the value as it is
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests sent to this instance since start.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn healthy(&self) -> bool {
        self.state().healthy
    }

    pub fn breaker(&self) -> Breaker {
        self.state().breaker
    }

    /// Whether it may take a request now (and, half-open, whether this one is the probe).
    fn admits(&self, now: Instant) -> bool {
        let s = self.state();
        s.healthy
            && match s.breaker {
                Breaker::Closed => true,
                Breaker::Open(until) => now >= until,
                Breaker::HalfOpen(out) => !out,
            }
    }

    /// An active check's result; returns whether the instance changed side.
    pub fn checked(&self, ok: bool, rules: &HealthRules) -> bool {
        let mut s = self.state();
        let before = s.healthy;
        if ok {
            s.check_failures = 0;
            s.check_successes = s.check_successes.saturating_add(1);
            if !s.healthy && s.check_successes >= rules.healthy_after {
                s.healthy = true;
                // back in: whatever the requests said before is old news
                s.breaker = Breaker::Closed;
                s.request_failures = 0;
            }
        } else {
            s.check_successes = 0;
            s.check_failures = s.check_failures.saturating_add(1);
            if s.healthy && s.check_failures >= rules.unhealthy_after {
                s.healthy = false;
            }
        }
        before != s.healthy
    }

    /// A request's outcome (`ok`: an answer below 500); returns the breaker after it.
    pub fn answered(&self, ok: bool, rules: &HealthRules, now: Instant) -> Breaker {
        let mut s = self.state();
        if ok {
            s.request_failures = 0;
            s.breaker = Breaker::Closed;
        } else {
            s.request_failures = s.request_failures.saturating_add(1);
            let probe_failed = matches!(s.breaker, Breaker::HalfOpen(_));
            if probe_failed || s.request_failures >= rules.breaker_failures {
                s.breaker = Breaker::Open(now + rules.breaker_open);
            }
        }
        s.breaker
    }
}

/// A request on its way to an instance: counts it in flight until dropped.
pub struct Lease<'a> {
    pub instance: &'a Instance,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.instance.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The instances of one upstream.
#[derive(Debug)]
pub struct Pool {
    pub balance: Balance,
    pub rules: HealthRules,
    instances: std::sync::RwLock<Vec<std::sync::Arc<Instance>>>,
    turn: AtomicUsize,
}

impl Pool {
    pub fn new(balance: Balance, rules: HealthRules, instances: Vec<Instance>) -> Pool {
        Pool {
            balance,
            rules,
            instances: std::sync::RwLock::new(
                instances.into_iter().map(std::sync::Arc::new).collect(),
            ),
            turn: AtomicUsize::new(0),
        }
    }

    pub fn instances(&self) -> Vec<std::sync::Arc<Instance>> {
        self.instances
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the instances by `bases` (a DNS answer): those still named keep their state,
    /// the new ones start healthy. Returns whether anything changed.
    pub fn set_instances(&self, wanted: Vec<Instance>) -> bool {
        let mut cur = self.instances.write().unwrap_or_else(|e| e.into_inner());
        let same = cur.len() == wanted.len()
            && wanted.iter().all(|w| cur.iter().any(|c| c.base == w.base));
        if same {
            return false;
        }
        let next = wanted
            .into_iter()
            .map(|w| {
                cur.iter()
                    .find(|c| c.base == w.base)
                    .cloned()
                    .unwrap_or_else(|| std::sync::Arc::new(w))
            })
            .collect();
        *cur = next;
        true
    }

    /// The instance for the next request, never one of `tried`; `None` when no instance takes
    /// requests now.
    pub fn pick(&self, now: Instant, tried: &[String]) -> Option<std::sync::Arc<Instance>> {
        let all = self.instances();
        let open: Vec<&std::sync::Arc<Instance>> = all
            .iter()
            .filter(|i| !tried.contains(&i.base) && i.admits(now))
            .collect();
        if open.is_empty() {
            return None;
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let chosen = match self.balance {
            Balance::LeastConnections => {
                let n = open.len();
                (0..n)
                    .map(|k| open[(start + k) % n])
                    .min_by(|a, b| {
                        // in_flight / weight, compared without division
                        let l = a.in_flight() as u64 * u64::from(b.weight);
                        let r = b.in_flight() as u64 * u64::from(a.weight);
                        l.cmp(&r)
                    })
                    .cloned()
            }
            Balance::RoundRobin => smooth_weighted(&open),
        }?;
        // a half-open breaker lets one probe out at a time
        {
            let mut s = chosen.state();
            match s.breaker {
                Breaker::Open(until) if now >= until => s.breaker = Breaker::HalfOpen(true),
                Breaker::HalfOpen(false) => s.breaker = Breaker::HalfOpen(true),
                _ => {}
            }
        }
        Some(chosen)
    }

    /// Counts a request in flight on `instance` until the lease is dropped.
    pub fn lease(instance: &Instance) -> Lease<'_> {
        instance.in_flight.fetch_add(1, Ordering::Relaxed);
        instance.requests.fetch_add(1, Ordering::Relaxed);
        Lease { instance }
    }

    /// Until when no instance takes requests (for `Retry-After`): the soonest breaker probe, or
    /// `None` when they are out by health (the next checks decide).
    pub fn next_chance(&self, now: Instant) -> Option<Duration> {
        self.instances()
            .iter()
            .filter(|i| i.healthy())
            .filter_map(|i| match i.breaker() {
                Breaker::Open(until) => Some(until.saturating_duration_since(now)),
                _ => None,
            })
            .min()
    }
}

/// nginx's smooth weighted round robin: each pick adds every weight to its instance's running
/// total, takes the largest, and takes the sum of the weights off it.
fn smooth_weighted(open: &[&std::sync::Arc<Instance>]) -> Option<std::sync::Arc<Instance>> {
    let total: i64 = open.iter().map(|i| i64::from(i.weight)).sum();
    let mut best: Option<(&std::sync::Arc<Instance>, i64)> = None;
    for i in open {
        let mut s = i.state();
        s.current += i64::from(i.weight);
        if best.is_none_or(|(_, c)| s.current > c) {
            best = Some((i, s.current));
        }
    }
    let (chosen, _) = best?;
    chosen.state().current -= total;
    Some((*chosen).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(balance: Balance, weights: &[u32]) -> Pool {
        let instances = weights
            .iter()
            .enumerate()
            .map(|(k, w)| {
                Instance::new(
                    &format!("http://10.0.0.{k}:80"),
                    &format!("10.0.0.{k}:80"),
                    *w,
                )
            })
            .collect();
        Pool::new(balance, HealthRules::default(), instances)
    }

    fn picks(p: &Pool, n: usize) -> Vec<String> {
        let now = Instant::now();
        (0..n)
            .map(|_| p.pick(now, &[]).expect("an instance").authority.clone())
            .collect()
    }

    #[test]
    fn round_robin_follows_the_weights_smoothly() {
        let p = pool(Balance::RoundRobin, &[1, 1, 1]);
        let got = picks(&p, 6);
        for k in 0..3 {
            assert_eq!(
                got.iter()
                    .filter(|a| a.ends_with(&format!("{k}:80")))
                    .count(),
                2
            );
        }
        let p = pool(Balance::RoundRobin, &[5, 1, 1]);
        let got = picks(&p, 7);
        assert_eq!(
            got.iter().filter(|a| a.as_str() == "10.0.0.0:80").count(),
            5
        );
        // smooth: the heavy one is never taken five times in a row
        assert_ne!(&got[..5], &vec!["10.0.0.0:80".to_string(); 5][..]);
    }

    #[test]
    fn least_connections_avoids_the_busy_instance() {
        let p = pool(Balance::LeastConnections, &[1, 1, 1]);
        let all = p.instances();
        let _busy: Vec<Lease<'_>> = (0..3).map(|_| Pool::lease(&all[0])).collect();
        let _one = Pool::lease(&all[1]);
        for _ in 0..5 {
            let i = p.pick(Instant::now(), &[]).expect("one");
            assert_eq!(i.authority, "10.0.0.2:80", "the idle one");
        }
        drop(_busy);
        assert_eq!(all[0].in_flight(), 0, "a lease ends with its request");
        // weights: two in flight on a weight-2 instance count as one
        let p = pool(Balance::LeastConnections, &[2, 1]);
        let all = p.instances();
        let _a = (Pool::lease(&all[0]), Pool::lease(&all[0]));
        let _b = Pool::lease(&all[1]);
        let got = picks(&p, 4);
        assert!(
            got.contains(&"10.0.0.0:80".to_string()) && got.contains(&"10.0.0.1:80".to_string())
        );
    }

    #[test]
    fn health_takes_out_after_three_and_back_after_two() {
        let p = pool(Balance::RoundRobin, &[1, 1]);
        let all = p.instances();
        let r = p.rules;
        assert!(!all[0].checked(false, &r));
        assert!(!all[0].checked(false, &r));
        assert!(all[0].checked(false, &r), "out at the third failure");
        assert!(picks(&p, 4).iter().all(|a| a == "10.0.0.1:80"));
        assert!(!all[0].checked(true, &r));
        assert!(
            !all[0].checked(false, &r),
            "a failure resets the count of successes"
        );
        assert!(!all[0].checked(true, &r));
        assert!(
            all[0].checked(true, &r),
            "back at the second success in a row"
        );
        assert!(picks(&p, 4).contains(&"10.0.0.0:80".to_string()));
        // none healthy: no instance, and no breaker to wait for
        for i in &all {
            for _ in 0..3 {
                i.checked(false, &r);
            }
        }
        assert!(p.pick(Instant::now(), &[]).is_none());
        assert_eq!(p.next_chance(Instant::now()), None);
    }

    #[test]
    fn the_breaker_opens_half_opens_and_closes() {
        let p = pool(Balance::RoundRobin, &[1, 1]);
        let all = p.instances();
        let (r, t0) = (p.rules, Instant::now());
        for _ in 0..4 {
            assert_eq!(all[0].answered(false, &r, t0), Breaker::Closed);
        }
        assert_eq!(
            all[0].answered(false, &r, t0),
            Breaker::Open(t0 + r.breaker_open)
        );
        // open: nobody is sent there, and the wait is known
        assert!((0..4).all(|_| p.pick(t0, &[]).expect("one").authority == "10.0.0.1:80"));
        assert_eq!(p.next_chance(t0), Some(r.breaker_open));
        // after the cool-down, one probe and only one
        let later = t0 + r.breaker_open;
        let probe = p
            .pick(later, &["http://10.0.0.1:80".to_string()])
            .expect("the probe");
        assert_eq!(probe.authority, "10.0.0.0:80");
        assert_eq!(all[0].breaker(), Breaker::HalfOpen(true));
        assert!(
            p.pick(later, &["http://10.0.0.1:80".to_string()]).is_none(),
            "one probe at a time"
        );
        // the probe fails: open again; then a probe succeeds: closed
        assert!(matches!(
            all[0].answered(false, &r, later),
            Breaker::Open(_)
        ));
        let again = later + r.breaker_open;
        p.pick(again, &["http://10.0.0.1:80".to_string()])
            .expect("probe");
        assert_eq!(all[0].answered(true, &r, again), Breaker::Closed);
        assert!(picks(&p, 4).contains(&"10.0.0.0:80".to_string()));
    }

    #[test]
    fn a_new_dns_answer_keeps_what_is_known_of_the_others() {
        let p = pool(Balance::LeastConnections, &[1, 1]);
        let r = p.rules;
        let old = p.instances();
        for _ in 0..3 {
            old[1].checked(false, &r);
        }
        let next = vec![
            Instance::new("http://10.0.0.1:80", "10.0.0.1:80", 1),
            Instance::new("http://10.0.0.9:80", "10.0.0.9:80", 1),
        ];
        assert!(p.set_instances(next));
        let now = p.instances();
        assert_eq!(now.len(), 2);
        assert!(!now[0].healthy(), "10.0.0.1 is still out");
        assert!(now[1].healthy(), "the new one starts in");
        assert!(!p.set_instances(vec![
            Instance::new("http://10.0.0.9:80", "10.0.0.9:80", 1),
            Instance::new("http://10.0.0.1:80", "10.0.0.1:80", 1),
        ]));
    }
}
