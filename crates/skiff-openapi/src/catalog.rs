//! The schema catalog: every k8s-openapi definition by name, in one canonical form.
//!
//! Canonical form is the OpenAPI v3 flavour kube-apiserver serves, minus one detail: a
//! reference that carries a description sits next to it (`{"$ref": .., "description": ..}`),
//! as schemars produces it. The v3 renderer wraps such references as `allOf: [{$ref}]`; the
//! v2 renderer rewrites the prefix to `#/definitions/`. References always read
//! `#/components/schemas/<name>` here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::Kind;

/// Prefix of every reference in canonical schemas.
pub(crate) const REF_PREFIX: &str = "#/components/schemas/";

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers convert recognized schemas to the latest internal value and may reject unrecognized values.";
const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents, in CamelCase. Servers may infer it from the endpoint the client submits requests to. Cannot be updated.";

/// Patch strategy facts per `(definition, field)`, the `x-kubernetes-*` extensions kube
/// attaches to properties and which k8s-openapi's schemas do not carry.
const PATCH_STRATEGIES: &str = skiff_patch::PATCH_STRATEGIES_TSV;

/// A group/version/kind triple.
pub(crate) type Gvk = (String, String, String);

/// Strategic-merge-patch metadata of one property.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchMeta {
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`, e.g. `name`.
    pub merge_key: Option<String>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub map_type: Option<String>,
}

/// All known schema definitions, plus the map from group/version/kind to definition name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub(crate) defs: BTreeMap<String, Value>,
    pub(crate) gvks: HashMap<Gvk, String>,
    /// Definitions added by [`Catalog::add_custom`] (custom resources and their lists).
    pub(crate) custom: BTreeSet<String>,
    /// The listable builtin kinds with default verbs, see [`Catalog::builtin_kinds`].
    pub(crate) builtin_kinds: Vec<Kind>,
}

/// Whether a k8s-openapi resource scope is a namespace.
pub(crate) trait ScopeKind {
    const NAMESPACED: bool;
}
impl ScopeKind for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl ScopeKind for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}
impl ScopeKind for k8s_openapi::SubResourceScope {
    const NAMESPACED: bool = false;
}

/// Kinds kube serves a `scale` subresource for.
const SCALABLE: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "ReplicationController",
];

/// Collects definitions from k8s-openapi types; used by [`crate::builtin::register`].
pub(crate) struct Registrar {
    generator: SchemaGenerator,
    gvks: Vec<(Gvk, String)>,
    lists: Vec<(Gvk, String)>,
    kinds: Vec<Kind>,
}

impl Registrar {
    /// A resource type that also has a `<Kind>List`.
    pub(crate) fn listable<T>(&mut self)
    where
        T: k8s_openapi::ListableResource + JsonSchema,
        T::Scope: ScopeKind,
    {
        self.single::<T>();
        self.lists
            .push((gvk_of::<T>(), T::schema_name().into_owned()));
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut subresources = Vec::new();
        if SCALABLE.contains(&T::KIND) {
            subresources.push("scale".to_owned());
        }
        self.kinds.push(Kind {
            group: T::GROUP.to_owned(),
            version: T::VERSION.to_owned(),
            kind: T::KIND.to_owned(),
            plural: T::URL_PATH_SEGMENT.to_owned(),
            namespaced: <T::Scope as ScopeKind>::NAMESPACED,
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            subresources,
        });
    }

    /// A resource type without a list.
    pub(crate) fn single<T: k8s_openapi::Resource + JsonSchema>(&mut self) {
        self.plain::<T>();
        self.gvks
            .push((gvk_of::<T>(), T::schema_name().into_owned()));
    }

    /// A type that is no resource.
    pub(crate) fn plain<T: JsonSchema>(&mut self) {
        self.generator.subschema_for::<T>();
    }
}

fn gvk_of<T: k8s_openapi::Resource>() -> Gvk {
    (
        T::GROUP.to_owned(),
        T::VERSION.to_owned(),
        T::KIND.to_owned(),
    )
}

fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// Appends `gvk` to a definition's `x-kubernetes-group-version-kind` list.
fn tag_gvk(def: &mut Value, (group, version, kind): &Gvk) {
    let Some(obj) = def.as_object_mut() else {
        return;
    };
    let list = obj
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        let v = gvk_value(group, version, kind);
        if !items.contains(&v) {
            items.push(v);
        }
    }
}

/// A synthesized `<Kind>List` definition for `item` (a definition name).
/// k8s-openapi lists `metadata` as required for every resource (its Rust field is not an
/// `Option`); kube's schemas never do, and clients validating against them (kubectl's
/// client-side validation) would refuse objects without one, such as a TokenReview.
fn metadata_optional(def: &mut Value) {
    if let Some(required) = def.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|field| field != "metadata");
        if required.is_empty() {
            def.as_object_mut().map(|d| d.remove("required"));
        }
    }
}

fn list_def(item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{item}")},
            },
            "kind": {"description": KIND_DESC, "type": "string"},
            "metadata": {
                "$ref": format!("{REF_PREFIX}{LIST_META}"),
                "description": "Standard list metadata.",
            },
        },
    })
}

/// `stable.example.com` → `com.example.stable`, the prefix kube names CRD schemas with.
fn reverse_group(group: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

/// Applies the patch-strategy table to the definitions it names.
fn apply_patch_strategies(defs: &mut BTreeMap<String, Value>) {
    for line in PATCH_STRATEGIES.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let col = |i: usize| cols.get(i).map(|s| s.trim()).unwrap_or("");
        let Some(prop) = defs
            .get_mut(col(0))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(col(1)))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if !col(2).is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), col(2).into());
        }
        if !col(3).is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), col(3).into());
        }
        if !col(4).is_empty() {
            prop.insert("x-kubernetes-list-type".into(), col(4).into());
        }
        if !col(5).is_empty() {
            let keys: Vec<Value> = col(5).split(',').map(|k| Value::from(k.trim())).collect();
            prop.insert("x-kubernetes-list-map-keys".into(), Value::Array(keys));
        }
        if !col(6).is_empty() {
            prop.insert("x-kubernetes-map-type".into(), col(6).into());
        }
    }
}

/// The definition name a `$ref` value points at, if it is one of ours.
pub(crate) fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

impl Catalog {
    /// Every top-level resource type of k8s-openapi's `v1_33` release, their `<Kind>List`s and
    /// everything they reference, plus the meta types operations use (`Status`,
    /// `DeleteOptions`, `Patch`, `WatchEvent`, `APIResourceList`, `autoscaling/v1` `Scale`,
    /// `policy/v1` `Eviction`, ...).
    pub fn builtin() -> Catalog {
        let settings = SchemaSettings::draft07().with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        });
        let mut registrar = Registrar {
            generator: settings.into_generator(),
            gvks: Vec::new(),
            lists: Vec::new(),
            kinds: Vec::new(),
        };
        crate::builtin::register(&mut registrar);
        let mut defs: BTreeMap<String, Value> = registrar
            .generator
            .take_definitions(false)
            .into_iter()
            .collect();
        apply_patch_strategies(&mut defs);

        let mut gvks = HashMap::new();
        for (gvk, name) in registrar.gvks {
            if let Some(def) = defs.get_mut(&name) {
                tag_gvk(def, &gvk);
                metadata_optional(def);
            }
            gvks.insert(gvk, name);
        }
        for ((group, version, kind), name) in registrar.lists {
            let list_name = format!("{name}List");
            let list_kind = format!("{kind}List");
            let mut def = list_def(&name, &kind);
            let gvk = (group, version, list_kind);
            tag_gvk(&mut def, &gvk);
            defs.insert(list_name.clone(), def);
            gvks.insert(gvk, list_name);
        }
        let mut builtin_kinds = registrar.kinds;
        for kind in &mut builtin_kinds {
            let has_status = gvks
                .get(&(kind.group.clone(), kind.version.clone(), kind.kind.clone()))
                .and_then(|name| defs.get(name))
                .and_then(|def| def.get("properties"))
                .is_some_and(|props| props.get("status").is_some());
            if has_status {
                kind.subresources.insert(0, "status".to_owned());
            }
        }
        Catalog {
            defs,
            gvks,
            custom: BTreeSet::new(),
            builtin_kinds,
        }
    }

    /// Every listable builtin kind of the release with all eight verbs, a `status`
    /// subresource where the kind has a `status` field and `scale` for the workload kinds
    /// kube scales. An approximation of kube's discovery, for callers that serve everything.
    pub fn builtin_kinds(&self) -> &[Kind] {
        &self.builtin_kinds
    }

    /// The definition name of a group/version/kind, e.g. `("", "v1", "Pod")` →
    /// `io.k8s.api.core.v1.Pod`. `<Kind>List` kinds resolve too.
    pub fn definition_for(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.gvks
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }

    /// The schema of a definition, in canonical form (references as
    /// `#/components/schemas/<name>`, possibly with a sibling `description`).
    pub fn schema(&self, definition: &str) -> Option<&Value> {
        self.defs.get(definition)
    }

    /// Whether `definition` came from [`Catalog::add_custom`].
    pub fn is_custom(&self, definition: &str) -> bool {
        self.custom.contains(definition)
    }

    /// The property schema of `field` in `definition`.
    fn property(&self, definition: &str, field: &str) -> Option<&Value> {
        self.defs.get(definition)?.get("properties")?.get(field)
    }

    /// The definition of a property's value: the property's own reference, or that of its
    /// array items or map values. `None` for scalars, free-form values, unknown fields and
    /// inline (custom resource) schemas.
    pub fn child(&self, definition: &str, field: &str) -> Option<String> {
        let prop = self.property(definition, field)?;
        [
            Some(prop),
            prop.get("items"),
            prop.get("additionalProperties"),
        ]
        .into_iter()
        .flatten()
        .find_map(ref_name)
        .map(str::to_owned)
    }

    /// The strategic-merge-patch metadata of `field` in `definition`; `None` for an unknown
    /// field, an all-`None` value for a field without any.
    pub fn patch_meta(&self, definition: &str, field: &str) -> Option<PatchMeta> {
        let prop = self.property(definition, field)?;
        let s = |key: &str| prop.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(PatchMeta {
            strategy: s("x-kubernetes-patch-strategy"),
            merge_key: s("x-kubernetes-patch-merge-key"),
            list_type: s("x-kubernetes-list-type"),
            list_map_keys: prop
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            map_type: s("x-kubernetes-map-type"),
        })
    }

    /// The definition name kube gives a custom resource: the reversed group, the version and
    /// the kind, e.g. `com.example.stable.v1.CronTab`.
    pub fn custom_definition_name(group: &str, version: &str, kind: &str) -> String {
        format!("{}.{version}.{kind}", reverse_group(group))
    }

    /// Adds (or replaces) a custom resource kind with its CRD's structural `openAPIV3Schema`,
    /// plus its `<Kind>List`. `apiVersion`, `kind` and `metadata` (as `ObjectMeta`) are
    /// filled in as kube does.
    pub fn add_custom(&mut self, kind: &Kind, schema: Value) {
        let name = Self::custom_definition_name(&kind.group, &kind.version, &kind.kind);
        let mut def = match schema {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        def.entry("type").or_insert_with(|| "object".into());
        let props = def
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(props) = props {
            props.insert(
                "apiVersion".into(),
                json!({"description": API_VERSION_DESC, "type": "string"}),
            );
            props.insert(
                "kind".into(),
                json!({"description": KIND_DESC, "type": "string"}),
            );
            props.insert(
                "metadata".into(),
                json!({
                    "$ref": format!("{REF_PREFIX}{OBJECT_META}"),
                    "description": "Standard object's metadata.",
                }),
            );
        }
        let mut def = Value::Object(def);
        // Stale tags of an earlier version of this kind are dropped with the old value.
        let gvk = (kind.group.clone(), kind.version.clone(), kind.kind.clone());
        tag_gvk(&mut def, &gvk);
        self.defs.insert(name.clone(), def);
        self.gvks.insert(gvk, name.clone());
        self.custom.insert(name.clone());

        let list_name = format!("{name}List");
        let list_gvk = (
            kind.group.clone(),
            kind.version.clone(),
            format!("{}List", kind.kind),
        );
        let mut list = list_def(&name, &kind.kind);
        tag_gvk(&mut list, &list_gvk);
        self.defs.insert(list_name.clone(), list);
        self.gvks.insert(list_gvk, list_name.clone());
        self.custom.insert(list_name);
    }

    /// Removes a custom resource kind added by [`Catalog::add_custom`].
    pub fn remove_custom(&mut self, group: &str, version: &str, kind: &str) {
        let name = Self::custom_definition_name(group, version, kind);
        for (k, n) in [
            (kind.to_owned(), name.clone()),
            (format!("{kind}List"), format!("{name}List")),
        ] {
            if self.custom.remove(&n) {
                self.defs.remove(&n);
                self.gvks.remove(&(group.to_owned(), version.to_owned(), k));
            }
        }
    }

    /// Names of the definitions `definition` references directly.
    pub(crate) fn direct_refs(&self, definition: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        if let Some(def) = self.defs.get(definition) {
            collect_refs(def, &mut out);
        }
        out
    }

    /// `roots` plus every definition reachable from them, restricted to known definitions.
    pub(crate) fn closure<'a, 'b>(
        &'a self,
        roots: impl IntoIterator<Item = &'b str>,
    ) -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&'a str> = roots
            .into_iter()
            .filter_map(|r| self.defs.get_key_value(r).map(|(k, _)| k.as_str()))
            .collect();
        while let Some(name) = stack.pop() {
            if seen.insert(name) {
                stack.extend(
                    self.direct_refs(name)
                        .into_iter()
                        .filter_map(|r| self.defs.get_key_value(r).map(|(k, _)| k.as_str())),
                );
            }
        }
        seen
    }
}

/// Collects the definition names of every `$ref` below `v`.
fn collect_refs<'a>(v: &'a Value, out: &mut BTreeSet<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(name) = ref_name(v) {
                out.insert(name);
            }
            for child in map.values() {
                collect_refs(child, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                collect_refs(child, out);
            }
        }
        _ => {}
    }
}
