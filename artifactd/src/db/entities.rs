//! The catalog's tables as sea-orm entities.

/// A repository: one provider's named collection of files.
pub mod repo {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "repos")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub provider: String,
        pub name: String,
        /// JSON of `RepoSettings`.
        #[sea_orm(column_type = "Text")]
        pub settings: String,
        /// Bumped by every change to the repo's files.
        pub generation: i64,
        pub file_count: i64,
        pub total_size: i64,
        /// Milliseconds since the epoch; 0 when nothing was uploaded yet.
        pub last_upload: i64,
        pub created_at: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored file of a repo.
pub mod file {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "files")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
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
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// A repo's OpenPGP signing key.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub repo_id: i64,
        /// The armored secret key (unprotected).
        #[sea_orm(column_type = "Text")]
        pub secret_armored: String,
        pub fingerprint: String,
        pub created_at: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
