//! End-to-end tests: the real binaries on 127.0.0.1:0, driven over HTTP and by real clients.

// The host: /addpkg, repo mounts, pages, persistence, request errors.
mod core;
// PyPI with real pip, uv and twine.
mod pypi;
// PyPI snapshots: frozen indexes for release pipelines.
mod pypi_snapshot;
// APT with real apt-get, gpgv and dpkg-deb.
mod apt;
// apt-get updating while uploads publish.
mod apt_race;
// Snapshots, promotion and roll-back of APT dists.
mod lifecycle;
// Debian source packages: upload, Sources, apt-get source and dpkg-source -x.
mod sources;
// Retention: keep_last, keep_min_age, pins, snapshots; after uploads and in gc.
mod retention;
// Signing key rotation with apt 2.6 and apt 3.
mod keys;
// Uploads with Debian's dput: .changes, staging, uploader keyrings.
mod dput;
// Contents-<arch> and apt-file.
mod contents;
// Proxy repos of another artifactd and of a scripted upstream.
mod proxy;
// APT proxy repos: apt-get through a proxy that verifies its upstream's signatures.
mod apt_proxy;
// Virtual repos: hosted and proxy members merged under a policy.
mod virtuals;
// PEP 792 project status in hosted, proxy and virtual repos.
mod project_status;
// Every client at the versions distributions ship: pip, uv, twine, poetry, pdm, hatch, apt 2.6/3.0.
mod clients;
// Blob storage on a real S3-compatible server.
mod s3;
// The same catalog tests on SQLite, MariaDB/MySQL and PostgreSQL.
mod databases;
// Tokens, private repos, delete, settings, audit.
mod auth;
// The rpcli command-line client.
mod rpcli;
// The JSON API and its OpenAPI document.
mod api;
// Several nodes on one database and one S3 bucket.
mod nodes;
// Readiness, JSON logs and request ids.
mod observe;
// /metrics read by prometheus_client's parsers.
mod metrics;
// artifactd fsck: finding damage and repairing it.
mod fsck;
// artifactd export and import across backend pairs.
mod backup;
// Taking over pypiserver, reprepro and aptly repos.
mod adopt;
// The web UI in headless Chromium.
mod ui;
// Hostile uploads on every path, slow clients.
mod hardening;
