//! The bodies of Orrery's fuzz targets, shared with the corpus replay test (`../tests/fuzz_corpus.rs`), which
//! includes `bodies.rs` directly so that CI runs exactly this code on stable without libfuzzer.
#![forbid(unsafe_code)]

mod bodies;

pub use bodies::*;
