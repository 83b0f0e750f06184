//! artifactd with one more provider: the whole integration of a third-party provider crate.

fn main() -> std::process::ExitCode {
    artifactd::main_with(
        artifactd::Server::builder()
            .builtin_providers()
            .provider(artifactd_example_tar::factory()),
    )
}
