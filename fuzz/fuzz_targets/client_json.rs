//! Fuzz target `client_json`: see `../src/bodies.rs`. Run from `fuzz/`:
//! `cargo +nightly fuzz run client_json -- -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -runs=10000000`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orrery_fuzz::client_json(data));
