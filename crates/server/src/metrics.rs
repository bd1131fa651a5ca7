//! Prometheus metrics, with the `metrics` facade and its Prometheus exporter.
//!
//! One recorder per process ([`handle`] installs it the first time it is asked for); the
//! operator scrapes it at `GET /metrics` on the operations listener (`[ops]` in the
//! configuration; see [`crate::routes::ops_router`]). What is counted:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `sealpost_logins_started_total` | counter | – |
//! | `sealpost_logins_finished_total` | counter | – (successful logins) |
//! | `sealpost_logins_failed_total` | counter | `reason`: `wrong_password`, `expired` |
//! | `sealpost_account_locks_total` | counter | – (an account reached the limit) |
//! | `sealpost_login_attempts_on_locked_total` | counter | – |
//! | `sealpost_hsm_call_seconds` | histogram | `op`: `seal`, `open`, `oprf_hmac`, `log_sign` |
//! | `sealpost_hsm_errors_total` | counter | `op` |
//! | `sealpost_store_call_seconds` | histogram | `op`: the store method |
//! | `sealpost_store_errors_total` | counter | `op` |
//! | `sealpost_sessions_open` | gauge | – (read from the store at each scrape) |
//! | `sealpost_directory_log_entries` | gauge | – (read from the store at each scrape) |
//!
//! **No user names, addresses, device ids or secrets in labels**: every label value is a
//! `&'static str` chosen in this crate (the helpers here take nothing else), so nothing a
//! client sends can become a label, and the number of series is fixed.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for HSM and store calls, seconds: 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// How often histograms are folded when nobody scrapes (bounds their memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` if another recorder was
/// installed first (then `/metrics` says so instead of showing nothing).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "metrics: bad buckets");
                    return None;
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics: cannot install the recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Starts the task that folds histograms now and then, on the current runtime.
pub fn spawn_upkeep() {
    if let Some(handle) = handle() {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("sealpost_logins_started_total", "OPAQUE login starts");
    describe_counter!(
        "sealpost_logins_finished_total",
        "OPAQUE logins that finished with a session"
    );
    describe_counter!(
        "sealpost_logins_failed_total",
        "OPAQUE login finishes that failed"
    );
    describe_counter!(
        "sealpost_account_locks_total",
        "accounts locked by reaching the failed-login limit"
    );
    describe_counter!(
        "sealpost_login_attempts_on_locked_total",
        "login starts refused (with a fake answer) because the account is locked"
    );
    describe_histogram!(
        "sealpost_hsm_call_seconds",
        Unit::Seconds,
        "HSM call latency"
    );
    describe_counter!("sealpost_hsm_errors_total", "HSM calls that failed");
    describe_histogram!(
        "sealpost_store_call_seconds",
        Unit::Seconds,
        "store call latency"
    );
    describe_counter!("sealpost_store_errors_total", "store calls that failed");
    describe_gauge!("sealpost_sessions_open", "sessions alive now");
    describe_gauge!(
        "sealpost_directory_log_entries",
        "entries in the key directory's transparency log"
    );
}

/// A counter without labels, by one.
pub fn count(name: &'static str) {
    metrics::counter!(name).increment(1);
}

/// A counter with one label, by one. The value is a constant of this crate.
pub fn count_with(name: &'static str, label: &'static str, value: &'static str) {
    metrics::counter!(name, label => value).increment(1);
}

/// Sets a gauge.
pub fn gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

/// Records one timed call of `op` in the histogram `seconds` and, if it failed, in the
/// counter `errors`.
pub fn timed(
    seconds: &'static str,
    errors: &'static str,
    op: &'static str,
    started: Instant,
    ok: bool,
) {
    metrics::histogram!(seconds, "op" => op).record(started.elapsed().as_secs_f64());
    if !ok {
        metrics::counter!(errors, "op" => op).increment(1);
    }
}

/// The text exposition of every metric.
pub fn render() -> Option<String> {
    handle().map(PrometheusHandle::render)
}
