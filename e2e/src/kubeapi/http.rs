//! The HTTP face of the server: Kubernetes REST paths to store calls,
//! discovery documents, Table output and streamed watches.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::error::ApiError;
use super::faults::{FaultKind, Faults, RequestRecord, Verb};
use super::openapi;
use super::patch;
use super::protobuf::{self, ProtobufError};
use super::resources::{version_priority, ResourceType};
use super::select::Selector;
use super::store::{self, DeleteOptions, Event, EventKind, Part, PatchKind, Store, WriteOptions};
use super::table::{self, Include};

/// The state every request handler shares.
#[derive(Debug)]
pub struct Shared {
    /// Every object.
    pub store: Mutex<Store>,
    /// The latest resourceVersion, to wake watches.
    pub changes: tokio::sync::watch::Sender<u64>,
    /// True once the server stops: watches end.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The fault plan and request log.
    pub faults: Faults,
    /// How often an idle watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
}

impl Shared {
    /// A fresh cluster.
    pub fn new() -> Self {
        Shared {
            store: Mutex::new(Store::new()),
            changes: tokio::sync::watch::Sender::new(0),
            shutdown: tokio::sync::watch::Sender::new(false),
            faults: Faults::new(),
            bookmark_interval: Duration::from_secs(5),
        }
    }

    /// The store, even after a panic elsewhere poisoned the lock.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs a write and wakes the watches.
    pub fn write<T>(&self, action: impl FnOnce(&mut Store) -> T) -> T {
        let (result, revision) = {
            let mut store = self.store();
            let result = action(&mut store);
            (result, store.revision())
        };
        self.changes.send_replace(revision);
        result
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// The router: every path goes through one handler.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    GroupVersion(String, String),
    OpenApiIndex,
    OpenApi(String),
    Resource(Target),
}

/// The resource a request's path names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) namespace: Option<String>,
    pub(crate) plural: String,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
}

pub(crate) fn parse_route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::CoreVersions),
        ["openapi", "v3"] => return Some(Route::OpenApiIndex),
        ["openapi", "v3", rest @ ..] if !rest.is_empty() => {
            return Some(Route::OpenApi(rest.join("/")))
        }
        ["apis"] => return Some(Route::Groups),
        ["apis", group] => return Some(Route::Group(group.to_string())),
        ["api", version] => return Some(Route::GroupVersion(String::new(), version.to_string())),
        ["apis", group, version] => {
            return Some(Route::GroupVersion(group.to_string(), version.to_string()))
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let mut rest = rest;
    let mut namespace = None;
    if rest.first() == Some(&"namespaces")
        && rest.len() >= 3
        && !matches!(rest[2], "status" | "finalize")
    {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Route::Resource(Target {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
    }))
}

/// The query string as (key, value) pairs, percent-decoded.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }
}

fn json_response(code: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .unwrap_or_default()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code(), &error.status())
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let raw_query = request.uri().query().unwrap_or("").to_string();
    let headers = request.headers().clone();
    let query = Query(parse_query(&raw_query));
    let body = match axum::body::to_bytes(request.into_body(), 64 << 20).await {
        Ok(body) => body,
        Err(e) => return error_response(&ApiError::BadRequest(format!("reading the body: {e}"))),
    };
    let mut record = RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        query: raw_query,
        verb: None,
        resource: None,
        field_manager: query.get("fieldManager").map(str::to_string),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
        status: 0,
        at,
    };
    let response = match parse_route(&path) {
        None => error_response(&ApiError::no_such_path()),
        Some(Route::Resource(target)) => {
            record.resource = Some(target.plural.clone());
            resource_request(
                &shared,
                &method,
                target,
                &query,
                &headers,
                &body,
                &mut record,
            )
            .await
        }
        Some(route) if method == Method::GET => discovery(&shared, &route, &headers),
        Some(_) => error_response(&ApiError::MethodNotAllowed),
    };
    record.status = response.status().as_u16();
    shared.faults.log(record);
    response
}

fn discovery(shared: &Shared, route: &Route, headers: &HeaderMap) -> Response {
    let types = shared.store().types().to_vec();
    let groups = group_versions(&types);
    match route {
        Route::Version => json_response(
            200,
            &json!({
                "major": "1", "minor": "37", "gitVersion": "v1.37.1",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-11-01T00:00:00Z",
                "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64",
            }),
        ),
        Route::Health => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("ok"))
            .unwrap_or_default(),
        Route::CoreVersions => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            json_response(
                200,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                }),
            )
        }
        Route::Groups => json_response(
            200,
            &json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": groups.iter().map(|(name, versions)| group_document(name, versions)).collect::<Vec<_>>(),
            }),
        ),
        Route::Group(name) => match groups.iter().find(|(g, _)| g == name) {
            Some((name, versions)) => {
                let mut doc = group_document(name, versions);
                doc["kind"] = json!("APIGroup");
                doc["apiVersion"] = json!("v1");
                json_response(200, &doc)
            }
            None => error_response(&ApiError::no_such_path()),
        },
        Route::GroupVersion(group, version) => {
            let served: Vec<&ResourceType> = types
                .iter()
                .filter(|t| &t.group == group && t.versions.contains(version))
                .collect();
            if served.is_empty() {
                return error_response(&ApiError::no_such_path());
            }
            let group_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            json_response(
                200,
                &json!({
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": served.iter().flat_map(|t| t.discovery()).collect::<Vec<_>>(),
                }),
            )
        }
        Route::OpenApiIndex => json_response(200, &openapi::index(&types)),
        Route::OpenApi(key) => match openapi::document(&types, key) {
            Some(doc) => json_response(200, &doc),
            None => error_response(&ApiError::no_such_path()),
        },
        Route::Resource(_) => error_response(&ApiError::no_such_path()),
    }
}

/// Non-core groups with their versions, preferred first, in first-seen order.
fn group_versions(types: &[ResourceType]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let entry = match groups.iter_mut().position(|(g, _)| *g == t.group) {
            Some(at) => &mut groups[at].1,
            None => {
                groups.push((t.group.clone(), Vec::new()));
                let last = groups.len() - 1;
                &mut groups[last].1
            }
        };
        for v in &t.versions {
            if !entry.contains(v) {
                entry.push(v.clone());
            }
        }
        entry.sort_by(|a, b| version_priority(a, b));
    }
    groups
}

fn group_document(name: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.starts_with(protobuf::MAGIC) {
        return protobuf::decode(body).map_err(|e| match e {
            ProtobufError::Malformed => ApiError::BadRequest(e.to_string()),
            ProtobufError::UnsupportedKind(_) => ApiError::UnsupportedMediaType(e.to_string()),
        });
    }
    if body.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    serde_json::from_slice(body).or_else(|json_error| {
        let text = std::str::from_utf8(body).map_err(|_| {
            ApiError::BadRequest(format!("the body is neither JSON nor YAML: {json_error}"))
        })?;
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::BadRequest(format!("the body is neither JSON nor YAML: {e}")))
    })
}

fn default_manager(headers: &HeaderMap) -> String {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("unknown");
    let prefix = agent.split('/').next().unwrap_or(agent);
    prefix.chars().take(128).collect()
}

/// The form the client asked objects in (the first media type of Accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The objects themselves.
    Full,
    /// A `meta.k8s.io/v1` Table (`kubectl get`).
    Table(Include),
    /// `PartialObjectMetadata` (metadata-only watches and lists).
    Metadata,
}

impl Shape {
    fn of(headers: &HeaderMap, query: &Query) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let first = accept.split(',').next().unwrap_or("");
        if first.contains("as=Table") {
            Shape::Table(Include::parse(query.get("includeObject")))
        } else if first.contains("as=PartialObjectMetadata") {
            Shape::Metadata
        } else {
            Shape::Full
        }
    }

    fn one(self, rt: &ResourceType, version: &str, object: Value, revision: u64) -> Value {
        match self {
            Shape::Full => object,
            Shape::Table(include) => table::table(rt, version, &[object], revision, include),
            Shape::Metadata => metadata_only(&object),
        }
    }

    fn list(self, rt: &ResourceType, version: &str, items: Vec<Value>, revision: u64) -> Value {
        match self {
            Shape::Full => json!({
                "kind": rt.list_kind,
                "apiVersion": rt.api_version(version),
                "metadata": {"resourceVersion": revision.to_string()},
                "items": items,
            }),
            Shape::Table(include) => table::table(rt, version, &items, revision, include),
            Shape::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": revision.to_string()},
                "items": items.iter().map(metadata_only).collect::<Vec<_>>(),
            }),
        }
    }
}

fn metadata_only(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

#[allow(clippy::too_many_arguments)]
async fn resource_request(
    shared: &Arc<Shared>,
    method: &Method,
    target: Target,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    record: &mut RequestRecord,
) -> Response {
    let Some(rt) = shared
        .store()
        .resolve(&target.group, &target.version, &target.plural)
    else {
        return error_response(&ApiError::no_such_path());
    };
    if target.namespace.is_some() && !rt.namespaced {
        return error_response(&ApiError::no_such_path());
    }
    let scalable = matches!(
        rt.plural.as_str(),
        "deployments" | "statefulsets" | "replicasets"
    );
    let part = match target.subresource.as_deref() {
        None => Part::Main,
        Some("status") if rt.status_subresource => Part::Status,
        Some("scale") if scalable => {
            return scale_request(shared, method, &rt, &target, query, headers, body, record);
        }
        Some(_) => return error_response(&ApiError::no_such_path()),
    };
    let watch = query.flag("watch") && query.get("watch").is_some();
    let verb = match (method.clone(), target.name.is_some()) {
        (Method::GET, true) if watch => Verb::Watch,
        (Method::GET, true) => Verb::Get,
        (Method::GET, false) if watch => Verb::Watch,
        (Method::GET, false) => Verb::List,
        (Method::POST, false) => Verb::Create,
        (Method::PUT, true) => Verb::Update,
        (Method::PATCH, true) => Verb::Patch,
        (Method::DELETE, true) => Verb::Delete,
        (Method::DELETE, false) => Verb::DeleteCollection,
        _ => return error_response(&ApiError::MethodNotAllowed),
    };
    if part == Part::Status && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch) {
        return error_response(&ApiError::MethodNotAllowed);
    }
    record.verb = Some(verb);
    if let Some(fault) = shared.faults.draw(verb, &rt.plural, part == Part::Status) {
        let name = target.name.clone().unwrap_or_default();
        return error_response(&match fault {
            FaultKind::Internal => ApiError::Internal("injected fault".into()),
            FaultKind::Conflict => ApiError::Conflict {
                qualified: super::error::qualified(&rt.group, &rt.plural),
                name,
                reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
            },
        });
    }
    let namespace = target.namespace.as_deref();
    let version = target.version.as_str();
    let shape = Shape::of(headers, query);
    // A watch on a named object is a watch of the collection for that name.
    let field_selector = match (verb, target.name.as_deref(), query.get("fieldSelector")) {
        (Verb::Watch, Some(name), Some(fields)) => Some(format!("{fields},metadata.name={name}")),
        (Verb::Watch, Some(name), None) => Some(format!("metadata.name={name}")),
        (_, _, fields) => fields.map(str::to_string),
    };
    let selector = match Selector::parse(query.get("labelSelector"), field_selector.as_deref()) {
        Ok(selector) => selector,
        Err(e) => return error_response(&e),
    };
    let options = WriteOptions {
        manager: query
            .get("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| default_manager(headers)),
        force: query.flag("force") && query.get("force").is_some(),
        dry_run: query.get("dryRun") == Some("All"),
        strict: query.get("fieldValidation") == Some("Strict"),
    };
    let name = target.name.clone().unwrap_or_default();
    let result: Result<(u16, Value), ApiError> = match verb {
        Verb::Get => {
            let (found, revision) = {
                let store = shared.store();
                (store.get(&rt, version, namespace, &name), store.revision())
            };
            found.map(|object| (200, shape.one(&rt, version, object, revision)))
        }
        Verb::List => {
            let (items, revision) = {
                let store = shared.store();
                (
                    store.list(&rt, version, namespace, &selector),
                    store.revision(),
                )
            };
            Ok((200, shape.list(&rt, version, items, revision)))
        }
        Verb::Watch => {
            let start = match watch_start(query) {
                Ok(start) => start,
                Err(e) => return error_response(&e),
            };
            let spec = WatchSpec {
                rt,
                version: target.version.clone(),
                namespace: target.namespace.clone(),
                selector,
                start,
                bookmarks: query.flag("allowWatchBookmarks")
                    && query.get("allowWatchBookmarks").is_some(),
                timeout: query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1800)),
                shape,
            };
            return watch_response(shared.clone(), spec);
        }
        Verb::Create => parse_body(body).and_then(|object| {
            shared
                .write(|s| s.create(&rt, version, namespace, object, &options))
                .map(|o| (201, o))
        }),
        Verb::Update => parse_body(body).and_then(|object| {
            shared
                .write(|s| s.replace(&rt, version, namespace, &name, object, part, &options))
                .map(|o| (200, o))
        }),
        Verb::Patch => {
            let kind = patch_kind(headers);
            match kind {
                Err(e) => Err(e),
                Ok(PatchKind::Apply) if query.get("fieldManager").is_none() => {
                    Err(ApiError::BadRequest(
                        "PATCH requests with apply content type must specify a fieldManager".into(),
                    ))
                }
                Ok(kind) => parse_body(body).and_then(|patch| {
                    let existed = shared.store().get(&rt, version, namespace, &name).is_ok();
                    shared
                        .write(|s| {
                            s.patch(&rt, version, namespace, &name, kind, &patch, part, &options)
                        })
                        .map(|o| (if existed { 200 } else { 201 }, o))
                }),
            }
        }
        Verb::Delete | Verb::DeleteCollection => {
            let mut delete = DeleteOptions {
                propagation: query.get("propagationPolicy").map(str::to_string),
                dry_run: query.get("dryRun") == Some("All"),
                ..DeleteOptions::default()
            };
            if let Ok(options) = serde_json::from_slice::<Value>(body) {
                if let Some(p) = options["propagationPolicy"].as_str() {
                    delete.propagation = Some(p.to_string());
                }
                if options["orphanDependents"].as_bool() == Some(true) {
                    delete.propagation = Some("Orphan".into());
                }
                delete.uid = options["preconditions"]["uid"].as_str().map(str::to_string);
                delete.resource_version = options["preconditions"]["resourceVersion"]
                    .as_str()
                    .map(str::to_string);
                if options["dryRun"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|v| v == "All"))
                {
                    delete.dry_run = true;
                }
            }
            if verb == Verb::Delete {
                shared
                    .write(|s| s.delete(&rt, version, namespace, &name, &delete))
                    .map(|o| (200, o))
            } else {
                shared
                    .write(|s| s.delete_collection(&rt, version, namespace, &selector, &delete))
                    .map(|o| (200, o))
            }
        }
    };
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(e) => error_response(&e),
    }
}

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
        ))),
    }
}

/// GET, PUT and PATCH of `/scale` (what `kubectl scale` uses).
#[allow(clippy::too_many_arguments)]
fn scale_request(
    shared: &Arc<Shared>,
    method: &Method,
    rt: &ResourceType,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    record: &mut RequestRecord,
) -> Response {
    let name = target.name.clone().unwrap_or_default();
    let namespace = target.namespace.as_deref();
    let options = WriteOptions {
        manager: query
            .get("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| default_manager(headers)),
        force: false,
        dry_run: query.get("dryRun") == Some("All"),
        strict: query.get("fieldValidation") == Some("Strict"),
    };
    let verb = match *method {
        Method::GET => Verb::Get,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        _ => return error_response(&ApiError::MethodNotAllowed),
    };
    record.verb = Some(verb);
    let result = match verb {
        Verb::Get => shared.store().scale(rt, namespace, &name),
        Verb::Update => parse_body(body).and_then(|scale| {
            shared.write(|s| s.write_scale(rt, namespace, &name, &scale, &options))
        }),
        _ => patch_kind(headers).and_then(|kind| {
            let patch = parse_body(body)?;
            shared.write(|s| {
                let mut scale = s.scale(rt, namespace, &name)?;
                match kind {
                    PatchKind::Json => patch::json_patch(&mut scale, &patch)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    PatchKind::Strategic => patch::strategic_merge_patch(&mut scale, &patch)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                    PatchKind::Merge | PatchKind::Apply => patch::merge_patch(&mut scale, &patch),
                }
                s.write_scale(rt, namespace, &name, &scale, &options)
            })
        }),
    };
    match result {
        Ok(scale) => json_response(200, &scale),
        Err(e) => error_response(&e),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// Now, after synthetic ADDED events for what exists (when `true`).
    Now { initial: bool, end_bookmark: bool },
    /// Replay from this resourceVersion.
    After(u64),
}

fn watch_start(query: &Query) -> Result<Start, ApiError> {
    let rv = query.get("resourceVersion").unwrap_or("");
    let send_initial = query.get("sendInitialEvents").map(|v| v == "true");
    match (rv, send_initial) {
        (_, Some(true)) => Ok(Start::Now {
            initial: true,
            end_bookmark: true,
        }),
        ("" | "0", Some(false)) => Ok(Start::Now {
            initial: false,
            end_bookmark: false,
        }),
        ("" | "0", None) => Ok(Start::Now {
            initial: true,
            end_bookmark: false,
        }),
        (rv, _) => rv
            .parse()
            .map(Start::After)
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}"))),
    }
}

#[derive(Debug, Clone)]
struct WatchSpec {
    rt: ResourceType,
    version: String,
    namespace: Option<String>,
    selector: Selector,
    start: Start,
    bookmarks: bool,
    timeout: Duration,
    shape: Shape,
}

impl WatchSpec {
    fn render(&self, stored: &Value, revision: u64) -> Value {
        let object = store::output(stored, &self.rt, &self.version);
        self.shape.one(&self.rt, &self.version, object, revision)
    }

    fn in_scope(&self, stored: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| stored["metadata"]["namespace"].as_str() == Some(ns))
            && self
                .selector
                .matches(&store::output(stored, &self.rt, &self.version))
    }

    /// What this watch reports of `event` (an object leaving the selection
    /// is a DELETED, one entering it an ADDED).
    fn visible(&self, event: &Event) -> Option<(&'static str, Value)> {
        if (event.group.clone(), event.plural.clone()) != self.rt.storage_key() {
            return None;
        }
        let now = self.in_scope(&event.object);
        let before = event.previous.as_ref().is_some_and(|p| self.in_scope(p));
        let kind = match (event.kind, before, now) {
            (EventKind::Added, _, true) => "ADDED",
            (EventKind::Deleted, _, true) => "DELETED",
            (EventKind::Modified, true, true) => "MODIFIED",
            (EventKind::Modified, false, true) => "ADDED",
            (EventKind::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some((kind, self.render(&event.object, event.revision)))
    }

    fn bookmark(&self, revision: u64, initial_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {
                "kind": self.rt.kind,
                "apiVersion": self.rt.api_version(&self.version),
                "metadata": metadata,
            },
        })
    }
}

type Chunk = Result<Bytes, Infallible>;

fn line(event: &Value) -> Chunk {
    let mut bytes = serde_json::to_vec(event).unwrap_or_default();
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

fn watch_response(shared: Arc<Shared>, spec: WatchSpec) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(256);
    tokio::spawn(run_watch(shared, spec, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

async fn run_watch(shared: Arc<Shared>, spec: WatchSpec, tx: tokio::sync::mpsc::Sender<Chunk>) {
    let mut changes = shared.changes.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    changes.borrow_and_update();
    let mut cursor = match spec.start {
        Start::Now {
            initial,
            end_bookmark,
        } => {
            let (objects, revision) = {
                let store = shared.store();
                let namespace = spec.namespace.as_deref();
                let objects = if initial {
                    store.list(&spec.rt, &spec.version, namespace, &spec.selector)
                } else {
                    Vec::new()
                };
                (objects, store.revision())
            };
            for object in objects {
                let event = json!({"type": "ADDED", "object": spec.render(&object, revision)});
                if tx.send(line(&event)).await.is_err() {
                    return;
                }
            }
            if end_bookmark
                && spec.bookmarks
                && tx.send(line(&spec.bookmark(revision, true))).await.is_err()
            {
                return;
            }
            revision
        }
        Start::After(revision) => revision,
    };
    loop {
        changes.borrow_and_update();
        let batch = {
            let store = shared.store();
            store
                .events_after(cursor)
                .map(|events| (events, store.revision()))
        };
        let (events, revision) = match batch {
            Ok(batch) => batch,
            Err(expired) => {
                let _ = tx
                    .send(line(&json!({"type": "ERROR", "object": expired.status()})))
                    .await;
                return;
            }
        };
        for event in &events {
            if let Some((kind, object)) = spec.visible(event) {
                if tx
                    .send(line(&json!({"type": kind, "object": object})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        cursor = cursor.max(revision);
        if *shutdown.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(shared.bookmark_interval), if spec.bookmarks => {
                if tx.send(line(&spec.bookmark(cursor, false))).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_name_group_namespace_and_subresource() {
        assert_eq!(
            parse_route("/apis/stackd.dev/v1alpha1/namespaces/default/stacks/web/status"),
            Some(Route::Resource(Target {
                group: "stackd.dev".into(),
                version: "v1alpha1".into(),
                namespace: Some("default".into()),
                plural: "stacks".into(),
                name: Some("web".into()),
                subresource: Some("status".into()),
            }))
        );
        assert_eq!(
            parse_route("/api/v1/namespaces/default"),
            Some(Route::Resource(Target {
                group: String::new(),
                version: "v1".into(),
                namespace: None,
                plural: "namespaces".into(),
                name: Some("default".into()),
                subresource: None,
            }))
        );
        assert_eq!(parse_route("/apis"), Some(Route::Groups));
        assert_eq!(parse_route("/openapi/v2"), None);
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let query = Query(parse_query(
            "fieldSelector=metadata.name%3Dweb&labelSelector=app+in+(a%2Cb)&watch",
        ));
        assert_eq!(query.get("fieldSelector"), Some("metadata.name=web"));
        assert_eq!(query.get("labelSelector"), Some("app in (a,b)"));
        assert!(query.flag("watch"));
    }
}
