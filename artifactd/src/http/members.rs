//! What a virtual repo reads of its hosted members: their catalogs and their providers' serve
//! hooks, through the [`Hosted`] interface of the proxy module.

use artifactd_plugin_api::{
    DynProvider, FileRecord, ListQuery, Principal, ServeRequest, ServeResponse,
};

use super::{ApiError, AppState};
use crate::db::entities::repo;
use crate::proxy::Hosted;

/// The hosted repos of one provider on this server.
pub(super) struct HostedRepos<'a> {
    pub(super) st: &'a AppState,
    pub(super) provider: DynProvider,
    pub(super) base: String,
}

impl HostedRepos<'_> {
    fn context(&self, row: &repo::Model) -> artifactd_plugin_api::RepoContext {
        self.st.context(
            &row.provider,
            &row.name,
            Some(row),
            Principal::Anonymous,
            &self.base,
        )
    }
}

#[async_trait::async_trait]
impl Hosted for HostedRepos<'_> {
    async fn records(&self, row: &repo::Model, project: &str) -> Result<Vec<FileRecord>, ApiError> {
        let cx = self.context(row);
        Ok(cx.catalog.list(ListQuery::key(project)).await?)
    }

    async fn projects(&self, row: &repo::Model) -> Result<Vec<(String, String)>, ApiError> {
        let cx = self.context(row);
        Ok(cx.catalog.keys().await?)
    }

    async fn serve(&self, row: &repo::Model, req: ServeRequest) -> Result<ServeResponse, ApiError> {
        let cx = self.context(row);
        Ok(self.provider.serve(&cx, req).await?)
    }
}
