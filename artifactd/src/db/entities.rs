//! The catalog's tables as sea-orm entities.

/// A repository: one provider's named collection of files.
pub mod repo {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "repos")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        pub provider: String,
        pub name: String,
        /// JSON of `RepoSettings`.
        #[sea_orm(column_type = "Text")]
        pub settings: String,
        /// Bumped by every change to the repo's files.
        pub generation: i64,
        /// The generation of the latest removal of a file record.
        #[serde(default)]
        pub removed_gen: i64,
        pub file_count: i64,
        pub total_size: i64,
        /// Milliseconds since the epoch; 0 when nothing was uploaded yet.
        pub last_upload: i64,
        pub created_at: i64,
        /// `hosted`, `proxy` or `virtual`.
        pub kind: String,
        /// JSON of the kind's configuration (a proxy's upstream, a virtual's members).
        #[sea_orm(column_type = "Text", nullable)]
        pub config: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored file of a repo.
pub mod file {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "files")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        #[serde(default)]
        pub repo_id: i64,
        pub scope: String,
        pub path: String,
        pub name: String,
        pub pkey: String,
        pub version: String,
        pub size: i64,
        pub sha256: String,
        /// JSON of the provider's metadata.
        #[sea_orm(column_type = "Text")]
        pub meta: String,
        pub uploaded_at: i64,
        pub uploader: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub yanked: Option<String>,
        /// The repo generation of the row's last insert, replace or yank.
        pub changed_gen: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A repo's OpenPGP signing key.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        #[serde(default)]
        pub repo_id: i64,
        /// The armored secret key (unprotected).
        #[sea_orm(column_type = "Text")]
        pub secret_armored: String,
        pub fingerprint: String,
        pub created_at: i64,
        /// The key this one replaced, still signing until `previous_until` (key rotation).
        #[sea_orm(column_type = "Text", nullable)]
        pub previous_armored: Option<String>,
        pub previous_until: Option<i64>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// An API token (only its SHA-256 is stored).
pub mod token {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        pub name: String,
        pub token_hash: String,
        /// `read`, `write` or `admin`.
        pub scope: String,
        /// JSON list of `provider/repo` patterns; empty for every repo.
        #[sea_orm(column_type = "Text")]
        pub repos: String,
        pub created_at: i64,
        pub expires_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One write, for the audit log.
pub mod audit {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "audit")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        pub at: i64,
        pub principal: String,
        pub action: String,
        pub provider: String,
        pub repo: String,
        #[sea_orm(column_type = "Text")]
        pub detail: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The row locked while a repo's indexes are published (serializes publishing across nodes).
pub mod publish_lock {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "publish_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        #[serde(default)]
        pub repo_id: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// What a proxy repo fetched from its upstream: a page or a file, by key.
pub mod proxy_entry {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "proxy_entries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        #[serde(default)]
        pub repo_id: i64,
        /// `page:<project>` or `file:<filename>`.
        pub key: String,
        /// 200, or 404 for a page the upstream does not have (kept for a short while).
        pub status: i32,
        /// The stored bytes' content blob ("" for a 404).
        pub sha256: String,
        pub size: i64,
        pub content_type: String,
        /// When it was fetched (ms since the epoch).
        pub fetched_at: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A blob a provider keeps without a record (an APT snapshot's pool files), by tag.
pub mod blob_hold {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "blob_holds")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        #[serde(default)]
        pub repo_id: i64,
        /// The provider's name for the hold (`snapshot:<name>/<dist>`).
        pub tag: String,
        pub sha256: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// Files staged by an upload in several requests (dput), until the one that completes it.
pub mod incoming_file {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(
        Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize,
    )]
    #[sea_orm(table_name = "incoming_files")]
    pub struct Model {
        #[sea_orm(primary_key)]
        #[serde(default)]
        pub id: i64,
        #[serde(default)]
        pub repo_id: i64,
        /// The principal's label: each uploader has its own staging area.
        pub uploader: String,
        pub filename: String,
        pub sha256: String,
        pub size: i64,
        pub created_at: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
