//! Claiming dependents the way upstream's `ControllerRefManager` does, for any owner and
//! dependent kind: a controller keeps the objects it controls that still match its selector
//! (and filter), releases its own that stopped matching, and adopts matching orphans after
//! re-reading itself to make sure it is not being deleted. Objects controlled by someone else
//! are never touched. [`wake_owners`] is the matching event routing: which owners to sync
//! when a dependent changes.

use std::fmt::Debug;
use std::sync::Arc;

use anyhow::Result;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::replicaset::is_not_found;
use crate::util::{
    controller_of, controller_ref, is_deleting, key, key_of, labels_of, selector_matches,
};

/// A namespaced kind with the bounds the API calls need.
pub trait Namespaced:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Namespaced for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The objects among `candidates` (all of the owner's namespace) that `owner` controls once
/// ownership is reconciled: `matches` is the selector test plus any extra filter (a
/// StatefulSet only claims pods named after it).
pub async fn claim<P, C>(
    client: &Client,
    owner: &P,
    selector: &LabelSelector,
    candidates: Vec<Arc<C>>,
    filter: impl Fn(&C) -> bool,
) -> Result<Vec<Arc<C>>>
where
    P: Namespaced,
    C: Namespaced,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let namespace = owner.meta().namespace.clone().unwrap_or_default();
    let api: Api<C> = Api::namespaced(client.clone(), &namespace);
    let mut claimed = Vec::new();
    let mut can_adopt = None;
    let mut first_error = None;
    for child in candidates {
        let matches = selector_matches(selector, &labels_of(child.as_ref())) && filter(&child);
        let name = child.meta().name.clone().unwrap_or_default();
        let owners = child.meta().owner_references.clone().unwrap_or_default();
        match controller_of(child.as_ref()) {
            Some(reference) if reference.uid == uid => {
                if matches {
                    claimed.push(child);
                } else if !is_deleting(owner) {
                    let kept: Vec<_> = owners.into_iter().filter(|r| r.uid != uid).collect();
                    let patch = json!({"metadata": {
                        "resourceVersion": child.meta().resource_version,
                        "ownerReferences": kept,
                    }});
                    if let Err(error) = patch_ignoring_missing(&api, &name, patch).await {
                        first_error.get_or_insert(error);
                    }
                }
            }
            Some(_) => {}
            None => {
                if !matches || is_deleting(owner) || is_deleting(child.as_ref()) {
                    continue;
                }
                if can_adopt.is_none() {
                    can_adopt = Some(owner_still_there(client, owner).await?);
                }
                if can_adopt != Some(true) {
                    continue;
                }
                let mut owners = owners;
                owners.push(controller_ref(owner));
                let patch = json!({"metadata": {
                    "resourceVersion": child.meta().resource_version,
                    "ownerReferences": owners,
                }});
                match patch_ignoring_missing(&api, &name, patch).await {
                    Ok(Some(adopted)) => claimed.push(Arc::new(adopted)),
                    Ok(None) => {}
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(claimed),
    }
}

/// Routes a change of `dependent` to the owners that must sync: its controller, if that is an
/// `O` (returned when cached with the same UID), or, for an orphan not being deleted, every
/// `O` of its namespace whose selector matches it (they may adopt it). `wake` gets their keys.
pub fn wake_owners<O, D>(
    owners: &Store<O>,
    dependent: &D,
    selector: impl Fn(&O) -> Option<&LabelSelector>,
    wake: impl Fn(String),
) -> Option<Arc<O>>
where
    O: Namespaced,
    D: Resource,
{
    let namespace = dependent.meta().namespace.as_deref().unwrap_or_default();
    if let Some(reference) = controller_of(dependent) {
        if reference.kind != O::kind(&()) {
            return None;
        }
        wake(key(namespace, &reference.name));
        return owners
            .get(&ObjectRef::new(&reference.name).within(namespace))
            .filter(|o| o.meta().uid.as_deref() == Some(reference.uid.as_str()));
    }
    if is_deleting(dependent) {
        return None;
    }
    let labels = labels_of(dependent);
    for owner in owners.state() {
        if owner.meta().namespace.as_deref() == Some(namespace)
            && selector(&owner).is_some_and(|s| selector_matches(s, &labels))
        {
            wake(key_of(owner.as_ref()));
        }
    }
    None
}

/// Whether the owner, read fresh, is still the one cached and not being deleted.
async fn owner_still_there<P: Namespaced>(client: &Client, owner: &P) -> Result<bool> {
    let namespace = owner.meta().namespace.as_deref().unwrap_or_default();
    let api: Api<P> = Api::namespaced(client.clone(), namespace);
    let fresh = api
        .get_opt(owner.meta().name.as_deref().unwrap_or_default())
        .await?;
    Ok(fresh.is_some_and(|f| f.meta().uid == owner.meta().uid && !is_deleting(&f)))
}

async fn patch_ignoring_missing<C: Namespaced>(
    api: &Api<C>,
    name: &str,
    patch: serde_json::Value,
) -> Result<Option<C>> {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(object) => Ok(Some(object)),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
