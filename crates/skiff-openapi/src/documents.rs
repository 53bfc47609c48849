//! Prebuilt OpenAPI documents: the `/openapi/v3` index, one v3 document per group-version and
//! the swagger 2.0 `/openapi/v2` document, serialized once with stable hashes.
//!
//! Each group-version document holds the paths of that group-version's kinds and exactly the
//! schemas they reach (kinds, their lists, `Status`, `DeleteOptions`, `Patch`, `WatchEvent`,
//! `APIResourceList`, `Scale` for scale subresources, ...), so every `$ref` resolves within
//! the document.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::Kind;
use crate::catalog::{Catalog, REF_PREFIX};
use crate::paths::{
    Body, COMMON_DEFS, Op, PATCH, PATCH_TYPES, PRETTY, Param, PathItem, kind_paths,
};
use crate::v2proto::Conv;

/// The Kubernetes version the documents advertise in `info.version`.
const INFO_VERSION: &str = "v1.33.0";

/// Media types of ordinary responses, and the extra ones of list/watch responses.
const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const STREAM_TYPES: &[&str] = &[
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const CUSTOM_RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];

/// One serialized document and its hash.
#[derive(Debug, Clone)]
struct Doc {
    bytes: Vec<u8>,
    hash: String,
}

impl Doc {
    fn new(bytes: Vec<u8>) -> Doc {
        let hash = upper_hex(&Sha512::digest(&bytes));
        Doc { bytes, hash }
    }
}

fn upper_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The served OpenAPI documents, serialized.
#[derive(Debug, Clone)]
pub struct Documents {
    index: Vec<u8>,
    group_versions: BTreeMap<String, Doc>,
    v2: Doc,
    v2_protobuf: Vec<u8>,
}

/// The index key of a group-version: `api/v1` or `apis/<group>/<version>`.
pub fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Documents {
    /// Builds every document for `kinds` (the served resources; kinds the catalog has no
    /// definition for are left out).
    pub fn build(catalog: &Catalog, kinds: &[Kind]) -> Documents {
        // Group the kinds by group-version, keeping the caller's order within one.
        let mut by_gv: BTreeMap<String, Vec<&Kind>> = BTreeMap::new();
        for kind in kinds {
            by_gv
                .entry(group_version_key(&kind.group, &kind.version))
                .or_default()
                .push(kind);
        }

        let mut v3_cache: HashMap<&str, String> = HashMap::new();
        let mut group_versions = BTreeMap::new();
        let mut all_paths: Vec<PathItem> = Vec::new();
        let mut all_roots: BTreeSet<&str> = COMMON_DEFS.iter().copied().collect();
        for (key, kinds) in &by_gv {
            let mut roots: Vec<String> = COMMON_DEFS.iter().map(|d| (*d).to_owned()).collect();
            let mut items = Vec::new();
            for kind in kinds {
                let paths = kind_paths(catalog, kind);
                for op in paths.iter().flat_map(|item| &item.ops) {
                    roots.extend(op.responses.iter().map(|r| r.2.clone()));
                    if let Some(Body::Object(def)) = &op.body {
                        roots.push(def.clone());
                    }
                }
                items.extend(paths);
            }
            let schemas = catalog.closure(roots.iter().map(String::as_str));
            all_roots.extend(schemas.iter().copied());

            let paths = render_v3_paths(catalog, &items);
            let doc = assemble_v3(catalog, &paths, &schemas, &mut v3_cache);
            group_versions.insert(key.clone(), Doc::new(doc));
            all_paths.extend(items);
        }

        let mut index = Map::new();
        for (key, doc) in &group_versions {
            index.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash)}),
            );
        }
        let index = serde_json::to_vec(&json!({ "paths": index })).unwrap_or_default();

        let (v2, v2_protobuf) = render_v2(catalog, &all_paths, &catalog.closure(all_roots));
        Documents {
            index,
            group_versions,
            v2: Doc::new(v2),
            v2_protobuf,
        }
    }

    /// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=.."}, ..}}`.
    pub fn v3_index(&self) -> &[u8] {
        &self.index
    }

    /// The v3 document of a group-version and its hash; `key` is `api/v1` or
    /// `apis/<group>/<version>` (the request path after `/openapi/v3/`).
    pub fn v3_group_version(&self, key: &str) -> Option<(&[u8], &str)> {
        self.group_versions
            .get(key.trim_matches('/'))
            .map(|d| (d.bytes.as_slice(), d.hash.as_str()))
    }

    /// The index keys of every group-version document, sorted.
    pub fn v3_keys(&self) -> impl Iterator<Item = &str> {
        self.group_versions.keys().map(String::as_str)
    }

    /// The swagger 2.0 document (`/openapi/v2`, JSON).
    pub fn v2(&self) -> &[u8] {
        &self.v2.bytes
    }

    /// The hash of the v2 document, usable as an ETag (of the JSON and the protobuf
    /// encoding alike: they are the same document, and responses vary by `Accept`).
    pub fn v2_hash(&self) -> &str {
        &self.v2.hash
    }

    /// The same swagger 2.0 document as [`Documents::v2`], encoded as gnostic's
    /// `openapi.v2.Document` protobuf message: what kube-apiserver serves at `/openapi/v2`
    /// for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (kubectl
    /// reads it to find the `fieldValidation` parameter and for client-side validation). See
    /// [`crate::v2proto`].
    pub fn v2_protobuf(&self) -> &[u8] {
        &self.v2_protobuf
    }
}

// ---- v3 ----

/// A definition in the v3 flavour: references with siblings become `allOf: [{$ref}]`.
fn to_v3(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let is_ref = map.get("$ref").is_some_and(Value::is_string);
            if is_ref && map.len() > 1 {
                let mut out = Map::new();
                for (k, child) in map {
                    if k == "$ref" {
                        out.insert("allOf".into(), json!([{ "$ref": child }]));
                    } else {
                        out.insert(k.clone(), to_v3(child));
                    }
                }
                Value::Object(out)
            } else {
                Value::Object(map.iter().map(|(k, c)| (k.clone(), to_v3(c))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn v3_ref(def: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{def}") })
}

fn v3_param(p: &Param, description: &str, required: bool) -> Value {
    let mut v = json!({
        "description": description,
        "in": p.location,
        "name": p.name,
        "schema": {"type": p.ty, "uniqueItems": true},
    });
    if required {
        v["required"] = true.into();
    }
    v
}

/// The path-level parameters of a path item: `(param, description, required)`.
fn path_params(item: &PathItem) -> Vec<(Param, String, bool)> {
    let path = |name| Param {
        name,
        location: "path",
        ty: "string",
        description: "",
    };
    let mut params = Vec::new();
    if item.named {
        params.push((path("name"), format!("name of the {}", item.name_of), true));
    }
    if item.namespaced {
        params.push((
            path("namespace"),
            "object name and auth scope, such as for teams and projects".to_owned(),
            true,
        ));
    }
    params.push((PRETTY, PRETTY.description.to_owned(), false));
    params
}

fn gvk_object(op: &Op) -> Value {
    json!({"group": op.gvk.0, "kind": op.gvk.2, "version": op.gvk.1})
}

fn response_types(catalog: &Catalog, def: &str, streams: bool) -> Vec<&'static str> {
    let mut types: Vec<&str> = if catalog.is_custom(def) {
        CUSTOM_RESPONSE_TYPES.to_vec()
    } else {
        RESPONSE_TYPES.to_vec()
    };
    if streams {
        types.extend(STREAM_TYPES);
    }
    types
}

fn render_v3_op(catalog: &Catalog, op: &Op) -> Value {
    let mut o = Map::new();
    o.insert("description".into(), op.description.clone().into());
    o.insert("operationId".into(), op.id.clone().into());
    if !op.params.is_empty() {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|p| v3_param(p, p.description, false))
            .collect();
        o.insert("parameters".into(), params.into());
    }
    match &op.body {
        Some(Body::Object(def)) => {
            let mut content = Map::new();
            for t in ["application/json", "application/yaml"] {
                content.insert(t.into(), json!({ "schema": v3_ref(def) }));
            }
            o.insert(
                "requestBody".into(),
                json!({"content": content, "required": true}),
            );
        }
        Some(Body::Patch { strategic }) => {
            let mut content = Map::new();
            for t in PATCH_TYPES {
                if *strategic || !t.contains("strategic") {
                    content.insert((*t).into(), json!({ "schema": v3_ref(PATCH) }));
                }
            }
            o.insert(
                "requestBody".into(),
                json!({"content": content, "required": true}),
            );
        }
        None => {}
    }
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        let mut content = Map::new();
        for t in response_types(catalog, def, op.streams) {
            content.insert(t.into(), json!({ "schema": v3_ref(def) }));
        }
        responses.insert(
            (*code).into(),
            json!({"content": content, "description": description}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    o.insert("responses".into(), responses.into());
    o.insert("tags".into(), json!([op.tag]));
    o.insert("x-kubernetes-action".into(), op.action.into());
    o.insert("x-kubernetes-group-version-kind".into(), gvk_object(op));
    Value::Object(o)
}

fn render_v3_paths(catalog: &Catalog, items: &[PathItem]) -> Map<String, Value> {
    let mut paths = Map::new();
    for item in items {
        let mut p = Map::new();
        for op in &item.ops {
            p.insert(op.method.into(), render_v3_op(catalog, op));
        }
        let params: Vec<Value> = path_params(item)
            .iter()
            .map(|(param, description, required)| v3_param(param, description, *required))
            .collect();
        p.insert("parameters".into(), params.into());
        paths.insert(item.path.clone(), Value::Object(p));
    }
    paths
}

/// Serializes a v3 document. Schemas are serialized once per build and spliced in.
fn assemble_v3<'a>(
    catalog: &'a Catalog,
    paths: &Map<String, Value>,
    schemas: &BTreeSet<&'a str>,
    cache: &mut HashMap<&'a str, String>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(b"{\"components\":{\"schemas\":{");
    let mut first = true;
    for name in schemas {
        let Some(def) = catalog.defs.get(*name) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        let text = cache
            .entry(name)
            .or_insert_with(|| serde_json::to_string(&to_v3(def)).unwrap_or_default());
        out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes());
        out.push(b':');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"}},\"info\":");
    out.extend_from_slice(
        json!({"title": "Kubernetes", "version": INFO_VERSION})
            .to_string()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"openapi\":\"3.0.0\",\"paths\":");
    out.extend_from_slice(&serde_json::to_vec(paths).unwrap_or_default());
    out.push(b'}');
    out
}

// ---- v2 ----

const V2_PREFIX: &str = "#/definitions/";

fn v2_ref(def: &str) -> Value {
    json!({ "$ref": format!("{V2_PREFIX}{def}") })
}

fn v2_param(p: &Param, description: &str, required: bool) -> Value {
    let mut v = json!({
        "description": description,
        "in": p.location,
        "name": p.name,
        "type": p.ty,
        "uniqueItems": true,
    });
    if required {
        v["required"] = true.into();
    }
    v
}

fn render_v2_op(catalog: &Catalog, op: &Op) -> Value {
    let mut o = Map::new();
    let consumes: Vec<&str> = match &op.body {
        Some(Body::Patch { strategic }) => PATCH_TYPES
            .iter()
            .copied()
            .filter(|t| *strategic || !t.contains("strategic"))
            .collect(),
        _ => vec!["*/*"],
    };
    o.insert("consumes".into(), json!(consumes));
    o.insert("description".into(), op.description.clone().into());
    o.insert("operationId".into(), op.id.clone().into());
    let mut params: Vec<Value> = Vec::new();
    match &op.body {
        Some(Body::Object(def)) => {
            params.push(
                json!({"in": "body", "name": "body", "required": true, "schema": v2_ref(def)}),
            );
        }
        Some(Body::Patch { .. }) => {
            params.push(
                json!({"in": "body", "name": "body", "required": true, "schema": v2_ref(PATCH)}),
            );
        }
        None => {}
    }
    params.extend(op.params.iter().map(|p| v2_param(p, p.description, false)));
    if !params.is_empty() {
        o.insert("parameters".into(), params.into());
    }
    let def = op.responses.first().map_or("", |r| r.2.as_str());
    o.insert(
        "produces".into(),
        json!(response_types(catalog, def, op.streams)),
    );
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        responses.insert(
            (*code).into(),
            json!({"description": description, "schema": v2_ref(def)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    o.insert("responses".into(), responses.into());
    o.insert("schemes".into(), json!(["https"]));
    o.insert("tags".into(), json!([op.tag]));
    o.insert("x-kubernetes-action".into(), op.action.into());
    o.insert("x-kubernetes-group-version-kind".into(), gvk_object(op));
    Value::Object(o)
}

/// Renders the v2 document as JSON and, from the same values, as protobuf.
fn render_v2(
    catalog: &Catalog,
    items: &[PathItem],
    schemas: &BTreeSet<&str>,
) -> (Vec<u8>, Vec<u8>) {
    let mut paths = Map::new();
    for item in items {
        let mut p = Map::new();
        for op in &item.ops {
            p.insert(op.method.into(), render_v2_op(catalog, op));
        }
        let params: Vec<Value> = path_params(item)
            .iter()
            .map(|(param, description, required)| v2_param(param, description, *required))
            .collect();
        p.insert("parameters".into(), params.into());
        paths.insert(item.path.clone(), Value::Object(p));
    }
    let head = json!({
        "info": {"title": "Kubernetes", "version": INFO_VERSION},
        "paths": paths,
        "security": [{"BearerToken": []}],
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            }
        },
        "swagger": "2.0",
    });
    let head_bytes = serde_json::to_vec(&head).unwrap_or_default();
    // Definitions are spliced in as text: serialized canonically, with the reference prefix
    // rewritten. `"$ref":"` can only occur as a key and its value: quotes inside JSON strings
    // are escaped.
    let canonical_ref = format!("\"$ref\":\"{REF_PREFIX}");
    let v2_ref = format!("\"$ref\":\"{V2_PREFIX}");
    let mut out = Vec::with_capacity(head_bytes.len() + (4 << 20));
    out.extend_from_slice(b"{\"definitions\":{");
    let mut first = true;
    for name in schemas {
        let Some(def) = catalog.defs.get(*name) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        let text = serde_json::to_string(def).unwrap_or_default();
        out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes());
        out.push(b':');
        out.extend_from_slice(text.replace(&canonical_ref, &v2_ref).as_bytes());
    }
    out.extend_from_slice(b"},");
    // `head` is a JSON object: splice its members after the definitions.
    out.extend_from_slice(head_bytes.get(1..).unwrap_or_default());

    let conv = Conv {
        ref_from: REF_PREFIX,
        ref_to: V2_PREFIX,
    };
    let definitions = schemas
        .iter()
        .filter_map(|name| catalog.defs.get(*name).map(|def| (*name, def)));
    let proto = head
        .as_object()
        .map(|head| conv.document(head, Some(definitions)))
        .unwrap_or_default();
    (out, proto)
}
