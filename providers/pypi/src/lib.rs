//! placeholder
use artifactd_plugin_api::*;
use std::sync::Arc;
/// Kind.
pub const KIND: &str = "pypi";
/// Provider.
#[derive(Debug, Default)]
pub struct P;
#[async_trait]
impl Provider for P {
    fn kind(&self) -> &'static str {
        KIND
    }
    async fn upload(&self, _cx: &RepoContext, _req: UploadRequest) -> Result<UploadOutcome> {
        Err(Error::invalid("no"))
    }
    async fn index(&self, _cx: &RepoContext, _s: IndexScope) -> Result<()> {
        Ok(())
    }
    async fn serve(&self, _cx: &RepoContext, _r: ServeRequest) -> Result<ServeResponse> {
        Err(Error::not_found("no"))
    }
}
/// Factory.
pub fn factory() -> ProviderFactory {
    ProviderFactory::new(KIND, || Ok(Arc::new(P)))
}
