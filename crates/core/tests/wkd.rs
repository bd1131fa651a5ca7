//! WKD against a real HTTPS server on loopback: the test CA's certificate for
//! `openpgpkey.sealpost.test` and `sealpost.test`, and the client told to reach those names
//! at 127.0.0.1 (DNS is the only thing replaced). The URLs the client asks are the real
//! ones, derived from the address.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use sealpost_core::keys::{self, KeySource, Observation};
use sealpost_core::wkd::{self, WkdClient};
use sealpost_core::{CoreError, SystemClock, vault};
use sealpost_crypto::Password;
use sealpost_pgp::KeyPair;
use sealpost_proto::EmailAddress;
use sealpost_testkit::mailtls::TestCa;

const PW: &str = "tundra mosaic gravel whimsy plank";

/// Pages by `host/path?query` prefix, and every `host/path?query` asked.
type Pages = Arc<(HashMap<String, Vec<u8>>, Mutex<Vec<String>>)>;

/// Serves the pages over HTTPS with the test CA's certificate.
struct Site {
    addr: SocketAddr,
    pages: Pages,
    _rt: tokio::runtime::Runtime,
}

async fn page(State(pages): State<Pages>, req: Request) -> impl IntoResponse {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let key = format!("{host}{}", req.uri());
    pages.1.lock().unwrap().push(key.clone());
    match pages.0.iter().find(|(k, _)| key.starts_with(k.as_str())) {
        Some((_, body)) => (StatusCode::OK, body.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

impl Site {
    fn start(ca: &TestCa, pages: HashMap<String, Vec<u8>>) -> Self {
        let cert = ca
            .issue(&["openpgpkey.sealpost.test", "sealpost.test"])
            .unwrap();
        let tls = sealpost_server::tls::server_config_from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            "cert",
            "key",
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pages: Pages = Arc::new((pages, Mutex::new(Vec::new())));
        let router = axum::Router::new()
            .fallback(page)
            .with_state(Arc::clone(&pages));
        let addr = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(sealpost_server::tls::serve(
                listener,
                Some(tls),
                router,
                std::future::pending(),
            ));
            addr
        });
        Self {
            addr,
            pages,
            _rt: rt,
        }
    }

    fn hits(&self) -> Vec<String> {
        self.pages.1.lock().unwrap().clone()
    }
}

fn path_of(url: &str) -> String {
    url.strip_prefix("https://").unwrap().to_owned()
}

#[test]
fn keys_are_found_by_the_advanced_then_the_direct_method_and_checked() {
    let ca = TestCa::new("wkd test CA").unwrap();
    let now = SystemTime::now();
    let joe = KeyPair::generate("Joe", &["joe@sealpost.test"], now).unwrap();
    let ann = KeyPair::generate("Ann", &["ann@sealpost.test"], now).unwrap();
    let joe_addr = EmailAddress::parse("Joe@sealpost.test").unwrap();
    let ann_addr = EmailAddress::parse("ann@sealpost.test").unwrap();
    let eve_addr = EmailAddress::parse("eve@sealpost.test").unwrap();
    let (joe_advanced, _) = wkd::urls(&joe_addr);
    let (_, ann_direct) = wkd::urls(&ann_addr);
    let (eve_advanced, _) = wkd::urls(&eve_addr);
    let mut pages = HashMap::new();
    pages.insert(path_of(&joe_advanced), joe.public_bytes().unwrap());
    pages.insert(path_of(&ann_direct), ann.public_bytes().unwrap());
    // Eve's page serves Joe's key: it does not carry her address.
    pages.insert(path_of(&eve_advanced), joe.public_bytes().unwrap());
    let site = Site::start(&ca, pages);

    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn sealpost_core::Clock> = Arc::new(SystemClock);
    let (u, _code) = vault::create(
        &dir.path().join("p"),
        "me",
        &Password::new(PW).unwrap(),
        &*clock,
    )
    .unwrap();
    let u = Arc::new(u);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Advanced method: the openpgpkey subdomain exists.
    let advanced = WkdClient::with_overrides(
        ca.cert_pem().as_bytes(),
        &[
            ("openpgpkey.sealpost.test", site.addr),
            ("sealpost.test", site.addr),
        ],
    )
    .unwrap();
    assert_eq!(
        rt.block_on(wkd::lookup(&u, &advanced, "Joe@sealpost.test", &clock))
            .unwrap(),
        Some(Observation::New)
    );
    let record = keys::contact(&u, "joe@sealpost.test").unwrap().unwrap();
    assert_eq!(record.current.source, KeySource::Wkd);
    assert_eq!(record.current.fingerprint, joe.fingerprint().to_hex());
    assert!(!record.confirmed);
    // Nothing published: none, nothing stored.
    assert_eq!(
        rt.block_on(wkd::lookup(&u, &advanced, "nobody@sealpost.test", &clock))
            .unwrap(),
        None
    );
    assert!(keys::contact(&u, "nobody@sealpost.test").unwrap().is_none());
    // A key without the address is refused.
    assert!(matches!(
        rt.block_on(wkd::lookup(&u, &advanced, "eve@sealpost.test", &clock)),
        Err(CoreError::Pgp(_))
    ));
    assert!(keys::contact(&u, "eve@sealpost.test").unwrap().is_none());

    // Direct method: the subdomain does not exist (not resolvable), the domain does.
    let direct =
        WkdClient::with_overrides(ca.cert_pem().as_bytes(), &[("sealpost.test", site.addr)])
            .unwrap();
    assert_eq!(
        rt.block_on(wkd::lookup(&u, &direct, "ann@sealpost.test", &clock))
            .unwrap(),
        Some(Observation::New)
    );
    let hits = site.hits();
    assert!(
        hits.iter()
            .any(|h| h.starts_with("sealpost.test/.well-known/openpgpkey/hu/")),
        "{hits:?}"
    );

    // A certificate the client does not trust: an error, nothing stored.
    let stranger = TestCa::new("someone else").unwrap();
    let untrusting = WkdClient::with_overrides(
        stranger.cert_pem().as_bytes(),
        &[
            ("openpgpkey.sealpost.test", site.addr),
            ("sealpost.test", site.addr),
        ],
    )
    .unwrap();
    let before = keys::contacts(&u).unwrap();
    assert!(matches!(
        rt.block_on(wkd::lookup(&u, &untrusting, "joe@sealpost.test", &clock)),
        Err(CoreError::Wkd(_))
    ));
    assert_eq!(keys::contacts(&u).unwrap(), before);
}
