//! Which resources the API server serves, as the namespace controller and the garbage
//! collector need to know: one discovery (aggregated when the server offers it) shared and
//! refreshed when older than a limit, the preferred version of every resource, and the
//! resource of an `apiVersion`/`kind` pair (owner references name kinds, not resources).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Discovery, Scope};

/// A served resource: how to reach it and what it supports.
#[derive(Debug, Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub capabilities: ApiCapabilities,
}

impl Served {
    /// Whether the resource's objects live in namespaces.
    pub fn namespaced(&self) -> bool {
        matches!(self.capabilities.scope, Scope::Namespaced)
    }

    /// Whether the resource supports every verb in `verbs`.
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs
            .iter()
            .all(|verb| self.capabilities.supports_operation(verb))
    }

    /// `<resource>.<group>` (the way kube names a resource in messages; `configmaps.` for
    /// the core group).
    pub fn display(&self) -> String {
        format!("{}.{}", self.resource.plural, self.resource.group)
    }
}

/// One complete discovery.
#[derive(Clone)]
pub struct Catalog {
    discovery: Arc<Discovery>,
}

impl Catalog {
    /// Asks the server (aggregated discovery first: two requests instead of one per group).
    pub async fn discover(client: &Client) -> Result<Catalog, kube::Error> {
        let discovery = match Discovery::new(client.clone()).run_aggregated().await {
            Ok(discovery) => discovery,
            Err(_) => Discovery::new(client.clone()).run().await?,
        };
        Ok(Catalog {
            discovery: Arc::new(discovery),
        })
    }

    /// The preferred version of every resource of every group.
    pub fn preferred(&self) -> Vec<Served> {
        self.discovery
            .groups()
            .flat_map(|group| group.recommended_resources())
            .map(|(resource, capabilities)| Served {
                resource,
                capabilities,
            })
            .collect()
    }

    /// The resource serving `kind` at `api_version`, or at another version of its group when
    /// that version is not served (the object is the same at every version).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Served> {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = self.discovery.resolve_gvk(&gvk).or_else(|| {
            self.discovery
                .get(group)?
                .recommended_kind(kind)
                .filter(|(resource, _)| resource.kind == kind)
        })?;
        Some(Served {
            resource: found.0,
            capabilities: found.1,
        })
    }
}

/// A [`Catalog`] shared by tasks, refreshed when older than `max_age`.
pub struct SharedCatalog {
    client: Client,
    max_age: Duration,
    current: tokio::sync::Mutex<Option<(Instant, Catalog)>>,
}

impl SharedCatalog {
    pub fn new(client: Client, max_age: Duration) -> SharedCatalog {
        SharedCatalog {
            client,
            max_age,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The catalog, discovered again when it is older than the limit.
    pub async fn get(&self) -> Result<Catalog, kube::Error> {
        let mut current = self.current.lock().await;
        if let Some((at, catalog)) = current.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(catalog.clone());
        }
        let catalog = Catalog::discover(&self.client).await?;
        *current = Some((Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    /// A fresh catalog, whatever the age of the current one.
    pub async fn refresh(&self) -> Result<Catalog, kube::Error> {
        let mut current = self.current.lock().await;
        let catalog = Catalog::discover(&self.client).await?;
        *current = Some((Instant::now(), catalog.clone()));
        Ok(catalog)
    }
}
