//! The operations side: `/healthz` and `/readyz` without the API version header (on the
//! API listener and the operations listener), readiness failing while the HSM is away,
//! and Prometheus metrics that count logins without naming anyone.

use reqwest::blocking::Client;
use sealpost_proto as proto;

use crate::harness::{PW, Server, WRONG, device};

fn plain_get(url: &str) -> (u16, String) {
    let resp = Client::new().get(url).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// The value of a metric line `name{labels} value` (or `name value`), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

#[test]
fn probes_need_no_version_header_and_readiness_follows_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for base in [&server.url, &server.ops_url] {
        assert_eq!(plain_get(&format!("{base}/healthz")), (200, "ok\n".into()));
        let (status, body) = plain_get(&format!("{base}/readyz"));
        assert_eq!(status, 200, "{body}");
        let ready: proto::Readiness = serde_json::from_str(&body).unwrap();
        assert!(ready.store && ready.hsm, "{ready:?}");
    }
    // The versioned API still wants its header.
    assert_eq!(plain_get(&format!("{}/v1/health", server.url)).0, 400);
    // Metrics only on the operations listener.
    assert_eq!(plain_get(&format!("{}/metrics", server.url)).0, 400);

    server.hsm().set_down(true);
    let (status, body) = plain_get(&format!("{}/readyz", server.ops_url));
    assert_eq!(status, 503, "{body}");
    let ready: proto::Readiness = serde_json::from_str(&body).unwrap();
    assert!(ready.store && !ready.hsm, "{ready:?}");
    // Alive all the same: the process answers.
    assert_eq!(plain_get(&format!("{}/healthz", server.url)).0, 200);
    server.hsm().set_down(false);
    assert_eq!(plain_get(&format!("{}/readyz", server.url)).0, 200);
}

#[test]
fn metrics_count_logins_and_name_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let scrape = || {
        let (status, text) = plain_get(&format!("{}/metrics", server.ops_url));
        assert_eq!(status, 200, "{text}");
        text
    };
    let user = "metrics-user-7f3a";
    let account = server.register(user, PW);
    let before = scrape();
    server.login(&account, PW, &device(1));
    let started = server.login_start(user, WRONG, &device(2));
    let id = started.id.clone();
    let ke3 = started
        .client_finish(user, WRONG)
        .map(|f| f.finalization)
        .unwrap_or_else(|_| vec![0; 64]);
    server.login_finish(&id, &ke3).expect(401, "login_failed");
    let after = scrape();

    // Tests in this binary may run in one process (plain `cargo test`), so counts only
    // grow by at least what this test did.
    let grew = |series: &str, by: f64| {
        assert!(
            metric(&after, series) >= metric(&before, series) + by,
            "{series}: {} -> {}\n{after}",
            metric(&before, series),
            metric(&after, series)
        );
    };
    grew("sealpost_logins_started_total", 2.0);
    grew("sealpost_logins_finished_total", 1.0);
    grew(
        "sealpost_logins_failed_total{reason=\"wrong_password\"}",
        1.0,
    );
    assert!(metric(&after, "sealpost_sessions_open") >= 1.0, "{after}");
    assert!(
        after.contains("sealpost_hsm_call_seconds_bucket{op=\"oprf_hmac\""),
        "{after}"
    );
    assert!(
        after.contains("sealpost_store_call_seconds_count{op=\"complete_login\"}"),
        "{after}"
    );
    // No user name, device id or address in any label or value.
    assert!(!after.contains(user), "{after}");
    assert!(!after.contains(&device(1)), "{after}");
}
