//! managedFields on every write, and server-side apply (`application/apply-patch+yaml`): the
//! glue between requests and `skiff_apply`'s pure merge. Who the manager is comes from
//! `?fieldManager=`, else the client's user agent, as kube-apiserver does.

use serde_json::{Value, json};

use crate::openapi::{SchemaStrategies, Schemas};
use crate::registry::Resource;
use crate::subresource::{self, View};
use crate::{ApiError, Cause, Details};

/// One writer's view of the fields it manages.
pub(crate) struct FieldManager<'s> {
    manager: String,
    now: String,
    definition: Option<&'s str>,
    strategies: SchemaStrategies<'s>,
    subresource: Option<&'static str>,
    ignore_status: bool,
}

impl<'s> FieldManager<'s> {
    pub(crate) fn new(
        schemas: &'s Schemas,
        resource: &Resource,
        view: Option<View>,
        manager: Option<&str>,
        user_agent: &str,
    ) -> FieldManager<'s> {
        FieldManager {
            manager: match manager.filter(|m| !m.is_empty()) {
                Some(name) => name.to_owned(),
                None => match skiff_apply::default_manager(user_agent) {
                    agent if agent.is_empty() => "unknown".to_owned(),
                    agent => agent,
                },
            },
            now: crate::objects::now_rfc3339(),
            definition: schemas.catalog.definition_for(
                resource.group,
                resource.version,
                resource.kind,
            ),
            strategies: SchemaStrategies(&schemas.catalog),
            subresource: match view {
                Some(View::Status) => Some("status"),
                Some(View::Scale) => Some("scale"),
                Some(View::Finalize) => Some("finalize"),
                None => None,
            },
            ignore_status: view.is_none() && subresource::has_status(resource),
        }
    }

    fn request(&self) -> skiff_apply::Request<'_> {
        skiff_apply::Request {
            manager: &self.manager,
            subresource: self.subresource,
            now: &self.now,
            root_definition: self.definition,
            strategies: &self.strategies,
            ignore_status: self.ignore_status,
        }
    }

    /// Records a non-apply write that turned `old` (`None`: a create) into `new`.
    pub(crate) fn track(&self, old: Option<&Value>, new: &mut Value) {
        let managed = old
            .and_then(|o| o["metadata"]["managedFields"].as_array().cloned())
            .unwrap_or_default();
        // What the client sent in managedFields is not taken as is.
        if let Some(metadata) = new["metadata"].as_object_mut() {
            metadata.remove("managedFields");
        }
        let entries = skiff_apply::track_update(old, new, &managed, &self.request());
        set_managed(new, entries);
    }

    /// Applies `config` to `live` (`None`: the object does not exist yet).
    pub(crate) fn apply(
        &self,
        resource: &Resource,
        live: Option<&Value>,
        config: &Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        let managed = live
            .and_then(|o| o["metadata"]["managedFields"].as_array().cloned())
            .unwrap_or_default();
        let name = config["metadata"]["name"].as_str().unwrap_or_default();
        match skiff_apply::apply(live, config, &managed, force, &self.request()) {
            Ok(applied) => {
                let mut object = applied.object;
                set_managed(&mut object, applied.managed_fields);
                Ok(object)
            }
            Err(skiff_apply::ApplyError::Conflicts(conflicts)) => {
                let causes = skiff_apply::conflict_causes(&conflicts)
                    .into_iter()
                    .map(|c| Cause {
                        reason: "FieldManagerConflict".to_owned(),
                        message: c["message"].as_str().unwrap_or_default().to_owned(),
                        field: c["field"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect();
                let mut error = ApiError::from_status_code(
                    axum::http::StatusCode::CONFLICT,
                    skiff_apply::conflict_message(&conflicts),
                );
                error.reason = "Conflict";
                Err(error.with_details(Details {
                    name: name.to_owned(),
                    group: resource.group.to_owned(),
                    kind: resource.kind.to_owned(),
                    causes,
                }))
            }
            Err(other) => Err(ApiError::invalid(
                resource,
                name,
                "body",
                &format!("Invalid value: {other}"),
            )),
        }
    }
}

fn set_managed(object: &mut Value, entries: Vec<Value>) {
    if !object["metadata"].is_object() {
        return;
    }
    if entries.is_empty() {
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("managedFields");
        }
    } else {
        object["metadata"]["managedFields"] = json!(entries);
    }
}

/// An apply body: YAML (of which JSON is a subset) holding one object.
pub(crate) fn parse_config(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply configuration is not UTF-8 text"))?;
    let config: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    Ok(config)
}
