//! The `artifactd` server with the built-in providers.

fn main() -> std::process::ExitCode {
    artifactd::main_with(artifactd::Server::builder().builtin_providers())
}
