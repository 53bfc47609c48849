//! The REST operations of served kinds, in a form both the v2 and v3 renderers consume.
//!
//! Per kind, like kube-apiserver: list / create / deletecollection on the collection,
//! get / replace / patch / delete on the item, list across namespaces for namespaced kinds,
//! the deprecated `watch/` paths, and `status` / `scale` (and a few other known) subresources.
//! Only the verbs a kind has are emitted.

use crate::Kind;
use crate::catalog::Catalog;

/// A query or path parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: &'static str,
    pub ty: &'static str,
    pub description: &'static str,
}

const fn q(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
    }
}

pub(crate) const PRETTY: Param = q(
    "pretty",
    "string",
    "If 'true', the output is pretty printed.",
);
const DRY_RUN: Param = q(
    "dryRun",
    "string",
    "When present, modifications are not persisted. Valid values: All (every dry-run stage is processed).",
);
const FIELD_MANAGER: Param = q(
    "fieldManager",
    "string",
    "Name of the actor or entity making these changes (at most 128 printable characters). Required for apply patches.",
);
const FIELD_VALIDATION: Param = q(
    "fieldValidation",
    "string",
    "How the server treats unknown or duplicate fields in the request object: Ignore drops them, Warn serves the request and returns a warning per field, Strict fails the request.",
);
const FORCE: Param = q(
    "force",
    "boolean",
    "Force an apply request: re-acquire fields owned by other managers. Must be unset for other patch types.",
);
const GRACE_PERIOD: Param = q(
    "gracePeriodSeconds",
    "integer",
    "Seconds before the object is deleted; non-negative, zero deletes immediately, unset uses the type's default.",
);
const IGNORE_STORE_READ_ERROR: Param = q(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "Delete an object that cannot be read from storage (corrupt or undecryptable). Potentially dangerous.",
);
const ORPHAN: Param = q(
    "orphanDependents",
    "boolean",
    "Deprecated in favour of propagationPolicy: whether dependents are orphaned.",
);
const PROPAGATION: Param = q(
    "propagationPolicy",
    "string",
    "Garbage collection of dependents: Orphan, Background or Foreground.",
);
const ALLOW_BOOKMARKS: Param = q(
    "allowWatchBookmarks",
    "boolean",
    "Request BOOKMARK watch events. Servers may send them at their discretion; ignored for non-watch requests.",
);
const CONTINUE: Param = q(
    "continue",
    "string",
    "Continue token of a previous, limited list call with otherwise identical parameters.",
);
const FIELD_SELECTOR: Param = q(
    "fieldSelector",
    "string",
    "Restrict the returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = q(
    "labelSelector",
    "string",
    "Restrict the returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = q(
    "limit",
    "integer",
    "Maximum number of objects to return; a continue token is set when more exist.",
);
const RESOURCE_VERSION: Param = q(
    "resourceVersion",
    "string",
    "Constrains which resource versions the request may be served from. Defaults to unset.",
);
const RESOURCE_VERSION_MATCH: Param = q(
    "resourceVersionMatch",
    "string",
    "How resourceVersion applies to list calls: Exact or NotOlderThan. Defaults to unset.",
);
const SEND_INITIAL_EVENTS: Param = q(
    "sendInitialEvents",
    "boolean",
    "With watch=true, start the stream with synthetic ADDED events for the current state, then a BOOKMARK.",
);
const TIMEOUT: Param = q(
    "timeoutSeconds",
    "integer",
    "Timeout for the list or watch call, regardless of activity.",
);
const WATCH: Param = q(
    "watch",
    "boolean",
    "Watch for changes to the described resources and stream them as add, update and remove notifications.",
);

const LIST_PARAMS: &[Param] = &[
    ALLOW_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT,
    WATCH,
];
const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD,
    IGNORE_STORE_READ_ERROR,
    ORPHAN,
    PROPAGATION,
];
const DELETECOLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN,
    PROPAGATION,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT,
];

pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// The media types a patch request body may have.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// What a request body carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// An object of the named definition.
    Object(String),
    /// A patch; `strategic` says whether strategic merge patch is offered.
    Patch { strategic: bool },
}

/// One operation of a path.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: &'static str,
    pub gvk: (String, String, String),
    pub params: &'static [Param],
    pub body: Option<Body>,
    /// `(status code, description, response definition)`.
    pub responses: Vec<(&'static str, &'static str, String)>,
    /// Whether the response may be a watch stream.
    pub streams: bool,
    pub tag: String,
}

/// A path with its path-level parameters and operations.
#[derive(Debug, Clone)]
pub(crate) struct PathItem {
    pub path: String,
    pub namespaced: bool,
    pub named: bool,
    /// The kind the `name` parameter names.
    pub name_of: String,
    pub ops: Vec<Op>,
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `""` → `Core`, as in kube's operation ids.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(upper_first)
        .collect::<Vec<_>>()
        .concat()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The tag kube files a group-version's operations under: `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let g = group_camel(group);
    let mut chars = g.chars();
    let lower: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// A subresource kube serves with a fixed shape.
struct Subresource {
    name: &'static str,
    /// Group/version/kind and definition of the subresource's object, or `None` for the
    /// parent's own.
    object: Option<(&'static str, &'static str, &'static str)>,
    /// Whether the subresource only takes POST (eviction, binding, token) rather than
    /// get / put / patch of the parent's verbs.
    create_only: bool,
}

const SUBRESOURCES: &[Subresource] = &[
    Subresource {
        name: "status",
        object: None,
        create_only: false,
    },
    Subresource {
        name: "ephemeralcontainers",
        object: None,
        create_only: false,
    },
    Subresource {
        name: "resize",
        object: None,
        create_only: false,
    },
    Subresource {
        name: "approval",
        object: None,
        create_only: false,
    },
    Subresource {
        name: "scale",
        object: Some(("autoscaling", "v1", "Scale")),
        create_only: false,
    },
    Subresource {
        name: "eviction",
        object: Some(("policy", "v1", "Eviction")),
        create_only: true,
    },
    Subresource {
        name: "binding",
        object: Some(("", "v1", "Binding")),
        create_only: true,
    },
    Subresource {
        name: "token",
        object: Some(("authentication.k8s.io", "v1", "TokenRequest")),
        create_only: true,
    },
];

/// The paths of one kind. Kinds whose definition the catalog lacks get none.
pub(crate) fn kind_paths(catalog: &Catalog, kind: &Kind) -> Vec<PathItem> {
    let Some(def) = catalog.definition_for(&kind.group, &kind.version, &kind.kind) else {
        return Vec::new();
    };
    let def = def.to_owned();
    let list_def = catalog
        .definition_for(&kind.group, &kind.version, &format!("{}List", kind.kind))
        .map(str::to_owned);
    let strategic = !catalog.is_custom(&def);
    let has = |verb: &str| kind.verbs.iter().any(|v| v == verb);
    let gvk = (kind.group.clone(), kind.version.clone(), kind.kind.clone());
    let gc = group_camel(&kind.group);
    let vc = upper_first(&kind.version);
    let ns = if kind.namespaced { "Namespaced" } else { "" };
    let k = &kind.kind;
    let tag = tag(&kind.group, &kind.version);
    let pre = prefix(&kind.group, &kind.version);
    let scope = if kind.namespaced {
        format!("{pre}/namespaces/{{namespace}}")
    } else {
        pre.clone()
    };
    let op = |method, id: String, description: String, action, params, body, responses| Op {
        method,
        id,
        description,
        action,
        gvk: gvk.clone(),
        params,
        body,
        responses,
        streams: false,
        tag: tag.clone(),
    };
    let ok = |d: &str| vec![("200", "OK", d.to_owned())];
    let written = |d: &str| {
        vec![
            ("200", "OK", d.to_owned()),
            ("201", "Created", d.to_owned()),
        ]
    };
    let mut out = Vec::new();

    // Collection.
    let mut ops = Vec::new();
    if let (true, Some(list)) = (has("list"), &list_def) {
        let mut o = op(
            "get",
            format!("list{gc}{vc}{ns}{k}"),
            format!("list or watch objects of kind {k}"),
            "list",
            LIST_PARAMS,
            None,
            ok(list),
        );
        o.streams = true;
        ops.push(o);
    }
    if has("create") {
        let mut responses = written(&def);
        responses.push(("202", "Accepted", def.clone()));
        ops.push(op(
            "post",
            format!("create{gc}{vc}{ns}{k}"),
            format!("create a {k}"),
            "post",
            WRITE_PARAMS,
            Some(Body::Object(def.clone())),
            responses,
        ));
    }
    if has("deletecollection") {
        ops.push(op(
            "delete",
            format!("delete{gc}{vc}Collection{ns}{k}"),
            format!("delete collection of {k}"),
            "deletecollection",
            DELETECOLLECTION_PARAMS,
            Some(Body::Object(DELETE_OPTIONS.into())),
            ok(STATUS),
        ));
    }
    push(
        &mut out,
        format!("{scope}/{}", kind.plural),
        kind.namespaced,
        false,
        k,
        ops,
    );

    // Item.
    let item = format!("{scope}/{}/{{name}}", kind.plural);
    let mut ops = Vec::new();
    if has("get") {
        ops.push(op(
            "get",
            format!("read{gc}{vc}{ns}{k}"),
            format!("read the specified {k}"),
            "get",
            &[],
            None,
            ok(&def),
        ));
    }
    if has("update") {
        ops.push(op(
            "put",
            format!("replace{gc}{vc}{ns}{k}"),
            format!("replace the specified {k}"),
            "put",
            WRITE_PARAMS,
            Some(Body::Object(def.clone())),
            written(&def),
        ));
    }
    if has("patch") {
        ops.push(op(
            "patch",
            format!("patch{gc}{vc}{ns}{k}"),
            format!("partially update the specified {k}"),
            "patch",
            PATCH_PARAMS,
            Some(Body::Patch { strategic }),
            written(&def),
        ));
    }
    if has("delete") {
        ops.push(op(
            "delete",
            format!("delete{gc}{vc}{ns}{k}"),
            format!("delete a {k}"),
            "delete",
            DELETE_PARAMS,
            Some(Body::Object(DELETE_OPTIONS.into())),
            vec![
                ("200", "OK", STATUS.into()),
                ("202", "Accepted", STATUS.into()),
            ],
        ));
    }
    push(&mut out, item.clone(), kind.namespaced, true, k, ops);

    // Across namespaces.
    if let (true, true, Some(list)) = (kind.namespaced, has("list"), &list_def) {
        let mut o = op(
            "get",
            format!("list{gc}{vc}{k}ForAllNamespaces"),
            format!("list or watch objects of kind {k}"),
            "list",
            LIST_PARAMS,
            None,
            ok(list),
        );
        o.streams = true;
        push(
            &mut out,
            format!("{pre}/{}", kind.plural),
            false,
            false,
            k,
            vec![o],
        );
    }

    // Deprecated watch paths.
    if has("watch") {
        let watch_scope = if kind.namespaced {
            format!("{pre}/watch/namespaces/{{namespace}}")
        } else {
            format!("{pre}/watch")
        };
        let watch_op = |id: String, description: String, action| {
            let mut o = op(
                "get",
                id,
                description,
                action,
                LIST_PARAMS,
                None,
                ok(WATCH_EVENT),
            );
            o.streams = true;
            o
        };
        let list_watch = watch_op(
            format!("watch{gc}{vc}{ns}{k}List"),
            format!(
                "watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."
            ),
            "watchlist",
        );
        let item_watch = watch_op(
            format!("watch{gc}{vc}{ns}{k}"),
            format!(
                "watch changes to an object of kind {k}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
            ),
            "watch",
        );
        let all_watch = watch_op(
            format!("watch{gc}{vc}{k}ListForAllNamespaces"),
            format!(
                "watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."
            ),
            "watchlist",
        );
        push(
            &mut out,
            format!("{watch_scope}/{}", kind.plural),
            kind.namespaced,
            false,
            k,
            vec![list_watch],
        );
        push(
            &mut out,
            format!("{watch_scope}/{}/{{name}}", kind.plural),
            kind.namespaced,
            true,
            k,
            vec![item_watch],
        );
        if kind.namespaced {
            push(
                &mut out,
                format!("{pre}/watch/{}", kind.plural),
                false,
                false,
                k,
                vec![all_watch],
            );
        }
    }

    // Subresources.
    for sub in &kind.subresources {
        let Some(known) = SUBRESOURCES.iter().find(|s| s.name == sub) else {
            continue;
        };
        let (sub_gvk, sub_def) = match known.object {
            None => (gvk.clone(), def.clone()),
            Some((g, v, sk)) => match catalog.definition_for(g, v, sk) {
                Some(d) => ((g.to_owned(), v.to_owned(), sk.to_owned()), d.to_owned()),
                None => continue,
            },
        };
        let suffix = upper_first(sub);
        let sop = |method, verb: &str, action, params, body, responses, description: String| {
            let mut o = op(
                method,
                format!("{verb}{gc}{vc}{ns}{k}{suffix}"),
                description,
                action,
                params,
                body,
                responses,
            );
            o.gvk = sub_gvk.clone();
            o
        };
        let mut ops = Vec::new();
        if known.create_only {
            if has("get") || has("create") {
                ops.push(sop(
                    "post",
                    "create",
                    "post",
                    WRITE_PARAMS,
                    Some(Body::Object(sub_def.clone())),
                    written(&sub_def),
                    format!("create {sub} of a {k}"),
                ));
            }
        } else {
            if has("get") {
                ops.push(sop(
                    "get",
                    "read",
                    "get",
                    &[],
                    None,
                    ok(&sub_def),
                    format!("read {sub} of the specified {k}"),
                ));
            }
            if has("update") {
                ops.push(sop(
                    "put",
                    "replace",
                    "put",
                    WRITE_PARAMS,
                    Some(Body::Object(sub_def.clone())),
                    written(&sub_def),
                    format!("replace {sub} of the specified {k}"),
                ));
            }
            if has("patch") {
                ops.push(sop(
                    "patch",
                    "patch",
                    "patch",
                    PATCH_PARAMS,
                    Some(Body::Patch { strategic }),
                    written(&sub_def),
                    format!("partially update {sub} of the specified {k}"),
                ));
            }
        }
        push(
            &mut out,
            format!("{item}/{sub}"),
            kind.namespaced,
            true,
            k,
            ops,
        );
    }
    out
}

fn push(
    out: &mut Vec<PathItem>,
    path: String,
    namespaced: bool,
    named: bool,
    kind: &str,
    ops: Vec<Op>,
) {
    if ops.is_empty() {
        return;
    }
    out.push(PathItem {
        path,
        namespaced,
        named,
        name_of: kind.to_owned(),
        ops,
    });
}

/// Definitions every group-version document carries whatever its kinds.
pub(crate) const COMMON_DEFS: &[&str] = &[
    STATUS,
    DELETE_OPTIONS,
    PATCH,
    WATCH_EVENT,
    API_RESOURCE_LIST,
];
