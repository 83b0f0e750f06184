//! The PyPI upload hook on arbitrary bytes: the archive checks, the metadata reader and every
//! validation behind them. The first byte picks the kind of file name. It must never panic; a
//! refusal must be a client error.
#![no_main]

use std::sync::OnceLock;

use artifactd_plugin_api::testing::TestHost;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "demo_pkg-1.0-py3-none-any.whl",
    "demo_pkg-1.0.tar.gz",
    "demo_pkg-1.0.zip",
    "demo_pkg-1.0-py3.11.egg",
];

fn host() -> &'static (TestHost, tokio::runtime::Runtime) {
    static HOST: OnceLock<(TestHost, tokio::runtime::Runtime)> = OnceLock::new();
    HOST.get_or_init(|| {
        let provider = artifactd_pypi::factory().build().expect("provider");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        (TestHost::new(provider), rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let (host, rt) = host();
    let name = NAMES[usize::from(pick) % NAMES.len()];
    if let Err(e) = rt.block_on(host.upload("fuzz", name, bytes, &[])) {
        assert!(
            e.is_client_error(),
            "{name}: a server error from client input: {e}"
        );
    }
});
