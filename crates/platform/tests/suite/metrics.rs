//! The gauges the platform keeps: `comptoir_dependency_up` per readiness check (set by
//! `/readyz` and by the background refresh; an optional check reported without failing
//! readiness), and `comptoir_outbox_backlog` per source (with the relay's counters at 0 from
//! the start). Read from the test's own recorder (`testkit::metrics`).

use super::*;
use platform::http::health::{self, Check};
use std::sync::atomic::{AtomicBool, Ordering};
use testkit::metrics::Recorder;

/// A check that answers as `up` says.
fn switch(dependency: &'static str, name: &str, up: &Arc<AtomicBool>) -> Check {
    let up = up.clone();
    Check::new(dependency, name, move || {
        let ok = up.load(Ordering::SeqCst);
        Box::pin(async move { if ok { Ok(()) } else { Err("down".into()) } })
    })
}

fn up_of(m: &Recorder, check: &str) -> f64 {
    m.value("comptoir_dependency_up", &[("check", check)])
}

#[tokio::test]
async fn each_readiness_check_is_a_gauge_and_an_optional_one_fails_nothing() {
    let m = Recorder::new();
    let _on = m.on_this_thread();
    let (db_up, redis_up) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let app = testkit::TestApp::unsigned(health::router(vec![
        switch("database", "orders_db", &db_up),
        switch("redis", "rate_limit_redis", &redis_up).optional(),
    ]));
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["checks"]["rate_limit_redis"], "failing");
    assert_eq!(up_of(&m, "orders_db"), 1.0);
    assert_eq!(up_of(&m, "rate_limit_redis"), 0.0);
    assert_eq!(
        m.value(
            "comptoir_dependency_up",
            &[("dependency", "database"), ("check", "orders_db")]
        ),
        1.0,
        "labelled by kind and by name"
    );
    db_up.store(false, Ordering::SeqCst);
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503, "a required check fails readiness");
    assert_eq!(up_of(&m, "orders_db"), 0.0);

    // in the background, without anyone asking /readyz
    let refresh = health::spawn_refresh(
        vec![
            switch("database", "orders_db", &db_up),
            switch("redis", "rate_limit_redis", &redis_up).optional(),
        ],
        Duration::from_millis(20),
    );
    db_up.store(true, Ordering::SeqCst);
    redis_up.store(true, Ordering::SeqCst);
    testkit::eventually("the refresh sees both up", DEADLINE, || async {
        (up_of(&m, "orders_db") == 1.0 && up_of(&m, "rate_limit_redis") == 1.0).then_some(())
    })
    .await;
    redis_up.store(false, Ordering::SeqCst);
    testkit::eventually("the refresh sees Redis down", DEADLINE, || async {
        (up_of(&m, "rate_limit_redis") == 0.0).then_some(())
    })
    .await;
    refresh.abort();
}

#[tokio::test]
async fn the_outbox_backlog_is_what_is_written_and_not_published() {
    for odb in outbox_dbs().await {
        let m = Recorder::new();
        let _on = m.on_this_thread();
        let be = odb.db.backend();
        let bus = Arc::new(bus::InProcessBus::new());
        let relay = Relay::new("orders", odb.db.clone(), bus.clone());
        let series = [("source", "orders")];
        // there from the start, at 0: a rate over them works before the first event
        assert!(
            m.render()
                .contains("comptoir_events_published_total{source=\"orders\"} 0")
        );
        assert!(
            m.render()
                .contains("comptoir_outbox_publish_failures_total{source=\"orders\"} 0")
        );
        write_events(&odb.db, "order.paid", 0, 3).await;
        assert_eq!(relay.refresh_backlog().await.expect("backlog"), 3, "{be}");
        assert_eq!(m.value("comptoir_outbox_backlog", &series), 3.0, "{be}");
        assert_eq!(relay.publish_pending().await.expect("publish"), 3);
        assert_eq!(relay.refresh_backlog().await.expect("backlog"), 0, "{be}");
        assert_eq!(m.value("comptoir_outbox_backlog", &series), 0.0, "{be}");
        assert_eq!(
            m.value("comptoir_events_published_total", &series),
            3.0,
            "{be}"
        );
        // the running relay keeps the gauge: its first pass sets it
        write_events(&odb.db, "order.paid", 3, 2).await;
        let task = relay.spawn();
        testkit::eventually("the relay publishes and counts", DEADLINE, || async {
            (m.value("comptoir_events_published_total", &series) == 5.0).then_some(())
        })
        .await;
        task.abort();
        (odb.cleanup)().await;
    }
}
