//! Admission of new objects against their namespace's bounds, as kube-apiserver's LimitRanger
//! and ResourceQuota plugins do on create: LimitRanges default and bound pods and claims, and
//! every ResourceQuota that applies is charged the object's usage in `status.used`, written
//! with compare-and-swap so that concurrent creates cannot both take the last unit. The
//! arithmetic is skiff-defaults' (`limitrange`, `quota`); here is only the reading and
//! writing. The resourcequota controller recomputes `status.used` from the objects, which
//! releases what deleted objects (and creates that failed after their charge) held.

use serde_json::Value;
use skiff_store::{Error as StoreError, ReadAt, Store};

use crate::cache::WatchCache;
use crate::registry::Resource;
use crate::{ApiError, objects};

/// How often a charge is retried when other writers keep updating the quota in between.
const CHARGE_ATTEMPTS: usize = 16;

/// `admission.NewForbidden`'s message names the group-resource (`pods`, `deployments.apps`).
fn forbidden(resource: &Resource, name: &str, why: &str) -> ApiError {
    let group_resource = if resource.group.is_empty() {
        resource.plural.to_owned()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    };
    ApiError::forbidden(format!("{group_resource} \"{name}\" is forbidden: {why}"))
}

/// Applies the namespace's LimitRanges (from the watch cache, or the store when the cache has
/// none: [`WatchCache::list_or_sync`]) to a new Pod or PersistentVolumeClaim: their defaults,
/// then their bounds (403 when one is broken).
pub(crate) async fn limit(
    cache: &WatchCache,
    resource: &Resource,
    namespace: &str,
    name: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    if !resource.group.is_empty() || !matches!(resource.kind, "Pod" | "PersistentVolumeClaim") {
        return Ok(());
    }
    let prefix = objects::collection_prefix("", "limitranges", Some(namespace));
    let ranges = cache.list_or_sync(&prefix).await?;
    if ranges.is_empty() {
        return Ok(());
    }
    let ranges: Vec<Value> = ranges.iter().map(|r| r.to_value()).collect();
    skiff_defaults::limitrange::admit(resource.kind, object, &ranges)
        .map_err(|why| forbidden(resource, name, &why))
}

/// Charges a new object to every ResourceQuota of its namespace that applies to it, or
/// refuses it (403) when one would be exceeded. A `dry_run` checks without charging. The
/// quotas are found in the watch cache (or the store when the cache has none:
/// [`WatchCache::list_or_sync`], so a quota created a moment ago counts); each one that
/// applies is then read from the store and charged with compare-and-swap.
pub(crate) async fn charge(
    store: &Store,
    cache: &WatchCache,
    resource: &Resource,
    namespace: &str,
    name: &str,
    object: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let prefix = objects::collection_prefix("", "resourcequotas", Some(namespace));
    let cached = cache.list_or_sync(&prefix).await?;
    let mut applying = Vec::new();
    for quota in cached {
        let quota = quota.to_value();
        if skiff_defaults::quota::applies(&quota, resource.group, resource.plural, object)
            && let Some(quota_name) = quota["metadata"]["name"].as_str()
        {
            applying.push(format!("{prefix}{quota_name}"));
        }
    }
    // Every quota is checked (as stored now: the cache may lag the controller's count) before
    // any is charged, so a refusal by one charges none.
    for key in &applying {
        let (_, current) = store
            .get(key, ReadAt::Latest)
            .await
            .map_err(objects::store_error)?;
        if let Some(current) = current {
            let quota = objects::decode(&current)?;
            skiff_defaults::quota::charge(&quota, resource.group, resource.plural, object)
                .map_err(|why| forbidden(resource, name, &why))?;
        }
    }
    if dry_run {
        return Ok(());
    }
    for key in applying {
        charge_one(store, resource, name, object, &key).await?;
    }
    Ok(())
}

/// Adds the object's usage to one quota's `status.used`, re-reading it while other writers
/// get in between.
async fn charge_one(
    store: &Store,
    resource: &Resource,
    name: &str,
    object: &Value,
    key: &str,
) -> Result<(), ApiError> {
    for _ in 0..CHARGE_ATTEMPTS {
        let (_, current) = store
            .get(key, ReadAt::Latest)
            .await
            .map_err(objects::store_error)?;
        // Deleted in between: nothing left to charge.
        let Some(current) = current else {
            return Ok(());
        };
        let mut quota = objects::decode(&current)?;
        let used = skiff_defaults::quota::charge(&quota, resource.group, resource.plural, object)
            .map_err(|why| forbidden(resource, name, &why))?;
        quota["status"]["used"] = Value::Object(used);
        match store
            .update(key, quota.to_string(), current.mod_revision)
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(other) => return Err(objects::store_error(other)),
        }
    }
    Err(ApiError::from_status_code(
        axum::http::StatusCode::CONFLICT,
        format!(
            "Operation cannot be fulfilled on resourcequotas: the quota for {} \"{name}\" kept changing; please try again",
            resource.plural
        ),
    ))
}
