//! The registry: providers by kind, registered explicitly, resolved by URL segment.

use std::collections::BTreeMap;

use crate::provider::{DynProvider, ProviderFactory};

/// Why a provider could not be registered or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two providers claimed one kind.
    #[error("provider kind {0:?} is registered twice")]
    Duplicate(String),
    /// A kind that is not a lower-case URL segment, or a factory whose provider reports another kind.
    #[error(
        "provider kind {0:?} is not valid: use lower-case ASCII letters, digits and '-', and the same kind in the factory and the provider"
    )]
    InvalidKind(String),
    /// The factory failed.
    #[error("provider {kind:?} failed to build")]
    Build {
        /// The kind.
        kind: String,
        /// Why.
        #[source]
        source: crate::Error,
    },
    /// No provider of that kind.
    #[error("Unknown provider {kind:?}; available providers: {}.", known.join(", "))]
    Unknown {
        /// What was asked for.
        kind: String,
        /// What exists.
        known: Vec<String>,
    },
}

/// Providers by kind.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    providers: BTreeMap<&'static str, DynProvider>,
}

fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds and registers the provider of `factory`.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when the kind is taken, [`RegistryError::InvalidKind`] when it
    /// is not a URL segment, [`RegistryError::Build`] when the factory fails.
    pub fn register(&mut self, factory: &ProviderFactory) -> Result<(), RegistryError> {
        let kind = factory.kind();
        if !valid_kind(kind) {
            return Err(RegistryError::InvalidKind(kind.to_owned()));
        }
        if self.providers.contains_key(kind) {
            return Err(RegistryError::Duplicate(kind.to_owned()));
        }
        let provider = factory.build().map_err(|source| RegistryError::Build {
            kind: kind.to_owned(),
            source,
        })?;
        if provider.kind() != kind {
            return Err(RegistryError::InvalidKind(provider.kind().to_owned()));
        }
        self.providers.insert(kind, provider);
        Ok(())
    }

    /// The provider of `kind`.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], listing the known kinds.
    pub fn get(&self, kind: &str) -> Result<&DynProvider, RegistryError> {
        self.providers
            .get(kind)
            .ok_or_else(|| RegistryError::Unknown {
                kind: kind.to_owned(),
                known: self.kinds().map(str::to_owned).collect(),
            })
    }

    /// Splits a path below `/repo/` into its provider and the rest (`"pypi/R/x"` → pypi, `"R/x"`).
    ///
    /// # Errors
    /// [`RegistryError::Unknown`] when the first segment names no provider.
    pub fn resolve<'p>(&self, path: &'p str) -> Result<(&DynProvider, &'p str), RegistryError> {
        let (kind, rest) = path.split_once('/').unwrap_or((path, ""));
        Ok((self.get(kind)?, rest))
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.providers.keys().copied()
    }

    /// The registered providers, sorted by kind.
    pub fn providers(&self) -> impl Iterator<Item = &DynProvider> + '_ {
        self.providers.values()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::{
        IndexScope, Provider, RepoContext, Result, ServeRequest, ServeResponse, UploadOutcome,
        UploadRequest,
    };

    #[derive(Debug)]
    struct Named(&'static str);

    #[async_trait]
    impl Provider for Named {
        fn kind(&self) -> &'static str {
            self.0
        }
        async fn upload(&self, _: &RepoContext, _: UploadRequest) -> Result<UploadOutcome> {
            Err(crate::Error::invalid("no"))
        }
        async fn index(&self, _: &RepoContext, _: IndexScope) -> Result<()> {
            Ok(())
        }
        async fn serve(&self, _: &RepoContext, _: ServeRequest) -> Result<ServeResponse> {
            Err(crate::Error::not_found("no"))
        }
    }

    fn factory(kind: &'static str, reports: &'static str) -> ProviderFactory {
        ProviderFactory::new(kind, move || Ok(Arc::new(Named(reports))))
    }

    #[test]
    fn registers_resolves_and_refuses() {
        let mut r = Registry::new();
        r.register(&factory("pypi", "pypi")).unwrap();
        r.register(&factory("apt", "apt")).unwrap();
        assert!(matches!(
            r.register(&factory("pypi", "pypi")),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            r.register(&factory("Bad/Kind", "Bad/Kind")),
            Err(RegistryError::InvalidKind(_))
        ));
        assert!(matches!(
            r.register(&factory("x", "y")),
            Err(RegistryError::InvalidKind(_))
        ));
        let (p, rest) = r.resolve("pypi/team/simple/").unwrap();
        assert_eq!((p.kind(), rest), ("pypi", "team/simple/"));
        let e = r.resolve("npm/x").unwrap_err().to_string();
        assert_eq!(
            e,
            "Unknown provider \"npm\"; available providers: apt, pypi."
        );
        assert_eq!(r.kinds().collect::<Vec<_>>(), ["apt", "pypi"]);
    }
}
