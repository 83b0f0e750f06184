//! The APT upload hook on arbitrary bytes: the ar reader, the control archive (every
//! compression), the control paragraph and the Debian name and version grammars.
#![no_main]

use std::sync::OnceLock;

use artifactd_plugin_api::testing::TestHost;
use libfuzzer_sys::fuzz_target;

fn host() -> &'static (TestHost, tokio::runtime::Runtime) {
    static HOST: OnceLock<(TestHost, tokio::runtime::Runtime)> = OnceLock::new();
    HOST.get_or_init(|| {
        let provider = artifactd_apt::factory().build().expect("provider");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        (TestHost::new(provider), rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let (host, rt) = host();
    let upload = host.upload("fuzz", "fuzz_1.0_amd64.deb", data, &[("dist", "stable")]);
    if let Err(e) = rt.block_on(upload) {
        assert!(e.is_client_error(), "a server error from client input: {e}");
    }
});
