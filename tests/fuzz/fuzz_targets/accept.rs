//! `Accept` negotiation of the PyPI simple API on arbitrary header values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|accept: &str| {
    let first = artifactd_pypi::negotiate(Some(accept));
    // Deterministic.
    assert_eq!(first, artifactd_pypi::negotiate(Some(accept)));
});
