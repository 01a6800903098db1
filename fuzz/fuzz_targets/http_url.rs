//! The `http_request` allowlist on arbitrary URLs: whatever it accepts is, once normalised,
//! under the allowed base (same scheme, host and port; path below the base's).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pae_local::agent::tools::HttpRequest;

fn tool() -> &'static HttpRequest {
    static T: OnceLock<HttpRequest> = OnceLock::new();
    T.get_or_init(|| HttpRequest::new(vec!["http://127.0.0.1:8080/api/".into()], Duration::from_secs(1)).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let url = String::from_utf8_lossy(data);
    if let Ok(u) = tool().check(&url) {
        assert_eq!((u.scheme(), u.host_str(), u.port_or_known_default()), ("http", Some("127.0.0.1"), Some(8080)), "{url:?}");
        assert!(u.path().starts_with("/api/") || u.path() == "/api", "{url:?} -> {u}");
        assert!(!u.path().split('/').any(|s| s == ".." || s == "." || s.eq_ignore_ascii_case("%2e%2e")), "{url:?} -> {u}");
    }
});
