//! The object store: every object as JSON, one cluster-wide resourceVersion,
//! the event history watches replay, and the write rules of the real API
//! server (optimistic concurrency, generation, the status subresource,
//! finalizers, garbage collection, CRDs registering resources).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use super::apply::{self, Writer};
use super::clock;
use super::error::{qualified, ApiError};
use super::events;
use super::patch::{self, PatchError};
use super::resources::{self, ResourceType};
use super::schema;
use super::select::Selector;

/// What happened to an object, as a watch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed (including being marked for deletion).
    Modified,
    /// Gone.
    Deleted,
}

/// One change, kept so that watches can start from a past resourceVersion.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub revision: u64,
    /// The resource's group.
    pub group: String,
    /// The resource's plural.
    pub plural: String,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (before it, for a deletion).
    pub object: Value,
    /// The object before a modification.
    pub previous: Option<Value>,
}

/// The body of a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

/// Who writes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// `fieldManager`, or what the user agent implies.
    pub manager: String,
    /// `force` (server-side apply only).
    pub force: bool,
    /// `dryRun=All`: check and answer, store nothing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields of a custom resource are an
    /// error rather than silently pruned.
    pub strict: bool,
}

/// What a DELETE asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `Orphan`, `Background` (the default) or `Foreground`.
    pub propagation: Option<String>,
    /// Delete only if the uid still matches.
    pub uid: Option<String>,
    /// Delete only if the resourceVersion still matches.
    pub resource_version: Option<String>,
    /// Check and answer, change nothing.
    pub dry_run: bool,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object (not its status, when status is a subresource).
    Main,
    /// Only `.status`, through `/status`.
    Status,
}

impl Part {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Part::Main => None,
            Part::Status => Some("status"),
        }
    }
}

type Key = (String, String);

/// Events kept for watches; older ones are forgotten (a watch from before
/// them gets 410 Gone, as from a compacted etcd).
const HISTORY_LIMIT: usize = 50_000;

const GC_MANAGER: &str = "generic-garbage-collector";

/// The finalizer that holds an owner deleted in the foreground.
const FOREGROUND: &str = "foregroundDeletion";

/// What happens to the dependents of a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// They stay, without the reference.
    Orphan,
    /// They are deleted after the owner.
    Background,
    /// They are deleted first; the owner waits for them.
    Foreground,
}

/// Every object, and the history of changes.
#[derive(Debug)]
pub struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<Key, BTreeMap<Key, Value>>,
    revision: u64,
    events: VecDeque<Event>,
    forgotten_through: u64,
    seed: u64,
    next_cluster_ip: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// The built-in types and the namespaces every cluster has.
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        let mut store = Store {
            types: resources::builtin(),
            objects: BTreeMap::new(),
            revision: 0,
            events: VecDeque::new(),
            forgotten_through: 0,
            seed,
            next_cluster_ip: 0,
        };
        let namespaces = store.types[0].clone();
        let system = WriteOptions {
            manager: "kube-apiserver".to_string(),
            force: false,
            dry_run: false,
            strict: false,
        };
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            // The namespaces are valid by construction; a failure would be a bug here.
            let _ = store.create(&namespaces, "v1", None, body, &system);
        }
        store
    }

    /// The latest resourceVersion.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every served resource type.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type `plural` of `group` served at `version`.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| {
                t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
            })
            .cloned()
    }

    /// Forgets the watch history: a watch from any earlier resourceVersion
    /// gets 410 Gone (what a compaction does to a real server).
    pub fn forget_history(&mut self) {
        self.events.clear();
        self.forgotten_through = self.revision;
    }

    /// The changes after `revision`, or 410 when they are forgotten.
    pub fn events_after(&self, revision: u64) -> Result<Vec<Event>, ApiError> {
        if revision < self.forgotten_through {
            return Err(ApiError::Expired {
                requested: revision,
                oldest: self.forgotten_through,
            });
        }
        let start = self.events.partition_point(|e| e.revision <= revision);
        Ok(self.events.range(start..).cloned().collect())
    }

    fn bucket(&self, rt: &ResourceType) -> Option<&BTreeMap<Key, Value>> {
        self.objects.get(&rt.storage_key())
    }

    fn stored(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.bucket(rt)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// One object, in the requested version.
    pub fn get(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.stored(rt, namespace.unwrap_or(""), name)
            .map(|o| output(o, rt, version))
            .ok_or_else(|| ApiError::object_not_found(&rt.group, &rt.plural, name))
    }

    /// The objects matching `selector` (in `namespace`, or everywhere).
    pub fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> Vec<Value> {
        self.bucket(rt)
            .map(|bucket| {
                bucket
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                    .filter(|(_, obj)| rt.is_events_v1() || selector.matches(obj))
                    .map(|(_, obj)| output(obj, rt, version))
                    .filter(|obj| !rt.is_events_v1() || selector.matches(obj))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn new_uid(&mut self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn record(
        &mut self,
        rt: &ResourceType,
        kind: EventKind,
        object: Value,
        previous: Option<Value>,
    ) {
        let revision = self.revision;
        self.events.push_back(Event {
            revision,
            group: rt.storage_key().0,
            plural: rt.storage_key().1,
            kind,
            object,
            previous,
        });
        while self.events.len() > HISTORY_LIMIT {
            if let Some(old) = self.events.pop_front() {
                self.forgotten_through = old.revision;
            }
        }
    }

    fn namespace_of(
        &self,
        rt: &ResourceType,
        url_namespace: Option<&str>,
        body: &Value,
    ) -> Result<String, ApiError> {
        if !rt.namespaced {
            return Ok(String::new());
        }
        let Some(ns) = url_namespace else {
            return Err(ApiError::BadRequest(
                "the server could not find the requested resource: a namespaced resource needs a namespace in the path".into(),
            ));
        };
        if let Some(body_ns) = body["metadata"]["namespace"].as_str() {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
        Ok(ns.to_string())
    }

    fn require_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        if namespace.is_empty() {
            return Ok(());
        }
        match self.objects.get(&(String::new(), "namespaces".to_string())).and_then(|b| b.get(&(String::new(), namespace.to_string()))) {
            None => Err(ApiError::object_not_found("", "namespaces", namespace)),
            Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::Internal(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn schema_of(&self, rt: &ResourceType, version: &str) -> Option<Value> {
        if rt.builtin {
            return None;
        }
        let crd = self
            .objects
            .get(&(
                "apiextensions.k8s.io".to_string(),
                "customresourcedefinitions".to_string(),
            ))?
            .get(&(String::new(), format!("{}.{}", rt.plural, rt.group)))?;
        crd["spec"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"].as_str() == Some(version))
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
    }

    /// Prunes and checks a custom resource against its version's schema.
    fn validate(
        &self,
        rt: &ResourceType,
        version: &str,
        object: &mut Value,
        strict: bool,
    ) -> Result<(), ApiError> {
        let Some(schema_doc) = self.schema_of(rt, version) else {
            return Ok(());
        };
        let findings = schema::check(object, &schema_doc);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Some(((field, message), rest)) = findings.invalid.split_first() {
            let more: Vec<String> = rest.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            return Err(ApiError::Invalid {
                kind: format!("{}.{}", rt.kind, rt.group),
                name,
                field: field.clone(),
                message: if more.is_empty() {
                    message.clone()
                } else {
                    format!("{message}, {}", more.join(", "))
                },
            });
        }
        if strict && !findings.unknown.is_empty() {
            let fields: Vec<String> = findings
                .unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                fields.join(", ")
            )));
        }
        Ok(())
    }

    /// POST: a new object.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        version: &str,
        url_namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let namespace = self.namespace_of(rt, url_namespace, &body)?;
        let mut object = self.prepare_new(rt, version, &namespace, input(body, rt))?;
        self.validate(rt, version, &mut object, options.strict)?;
        let writer = Writer {
            manager: &options.manager,
            api_version: &rt.api_version(version),
            subresource: None,
            now: &clock::now_rfc3339(),
        };
        let skeleton = json!({"metadata": {}});
        let entries = apply::record_update(&[], &skeleton, &object, writer);
        apply::write_entries(&mut object, &entries);
        self.insert(rt, version, object, options.dry_run)
    }

    fn prepare_new(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let Value::Object(mut map) = body else {
            return Err(ApiError::BadRequest(
                "the body of a create must be an object".into(),
            ));
        };
        if let Some(kind) = map.get("kind").and_then(Value::as_str) {
            if kind != rt.kind {
                return Err(ApiError::BadRequest(format!(
                    "the kind of the provided object ({kind}) does not match the resource ({})",
                    rt.kind
                )));
            }
        }
        self.require_namespace(namespace)?;
        let mut meta = match map.remove("metadata") {
            Some(Value::Object(meta)) => meta,
            _ => Map::new(),
        };
        let name = match meta
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(name) => name.to_string(),
            None => match meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                Some(prefix) => {
                    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
                    let suffix: String = (0..5)
                        .map(|_| ALPHABET[(self.random() % ALPHABET.len() as u64) as usize] as char)
                        .collect();
                    format!("{prefix}{suffix}")
                }
                None => {
                    return Err(ApiError::Invalid {
                        kind: rt.kind.clone(),
                        name: String::new(),
                        field: "metadata.name".into(),
                        message: "Required value: name or generateName is required".into(),
                    })
                }
            },
        };
        validate_name(rt, &name)?;
        if self.stored(rt, namespace, &name).is_some() {
            return Err(ApiError::AlreadyExists {
                qualified: qualified(&rt.group, &rt.plural),
                name,
            });
        }
        meta.insert("name".into(), json!(name));
        if rt.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        for server_owned in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "resourceVersion",
        ] {
            meta.remove(server_owned);
        }
        meta.insert("uid".into(), json!(self.new_uid()));
        meta.insert("creationTimestamp".into(), json!(clock::now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        map.insert("apiVersion".into(), json!(rt.api_version(version)));
        map.insert("kind".into(), json!(rt.kind));
        map.insert("metadata".into(), Value::Object(meta));
        if rt.status_subresource {
            map.remove("status");
        }
        let mut object = Value::Object(map);
        if let Some(schema) = self.schema_of(rt, version) {
            apply_defaults(&mut object, &schema);
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            object["status"] = json!({"phase": "Active"});
        }
        if rt.group.is_empty()
            && rt.plural == "secrets"
            && object["type"].as_str().unwrap_or("").is_empty()
        {
            object["type"] = json!("Opaque");
        }
        if rt.group.is_empty() && rt.plural == "services" {
            self.default_service(&mut object);
        }
        if rt.group == "apiextensions.k8s.io" {
            let registered =
                resources::from_crd(&object).map_err(|message| invalid(rt, &name, message))?;
            object["status"] = crd_status(&object, &registered);
        }
        Ok(object)
    }

    /// What the real server fills into a new Service: its type, a cluster
    /// IP from 10.96.0.0/16 (unless headless), and each port's protocol and
    /// target port.
    fn default_service(&mut self, service: &mut Value) {
        if !service["spec"].is_object() {
            service["spec"] = json!({});
        }
        let spec = &mut service["spec"];
        if spec["type"].as_str().unwrap_or("").is_empty() {
            spec["type"] = json!("ClusterIP");
        }
        if spec["clusterIP"].as_str().unwrap_or("").is_empty() && spec["type"] != "ExternalName" {
            self.next_cluster_ip += 1;
            let n = self.next_cluster_ip;
            spec["clusterIP"] = json!(format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff));
        }
        if spec["clusterIPs"].is_null() && spec["clusterIP"].is_string() {
            spec["clusterIPs"] = json!([spec["clusterIP"]]);
        }
        if spec["sessionAffinity"].is_null() {
            spec["sessionAffinity"] = json!("None");
        }
        if let Some(ports) = spec["ports"].as_array_mut() {
            for port in ports.iter_mut().filter(|p| p.is_object()) {
                if port["protocol"].is_null() {
                    port["protocol"] = json!("TCP");
                }
                if port["targetPort"].is_null() {
                    port["targetPort"] = port["port"].clone();
                }
            }
        }
    }

    fn insert(
        &mut self,
        rt: &ResourceType,
        version: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if dry_run {
            return Ok(output(&object, rt, version));
        }
        let revision = self.next_revision();
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert((namespace, name), object.clone());
        self.record(rt, EventKind::Added, object.clone(), None);
        if rt.group == "apiextensions.k8s.io" {
            self.refresh_crds();
        }
        Ok(output(&object, rt, version))
    }

    /// PUT: the whole object (or its status), with optimistic concurrency.
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self
            .stored(rt, namespace.unwrap_or(""), name)
            .cloned()
            .ok_or_else(|| ApiError::object_not_found(&rt.group, &rt.plural, name))?;
        let sent_version = body["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if sent_version.is_empty() && !rt.builtin {
            return Err(invalid(
                rt,
                name,
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                    .into(),
            ));
        }
        self.write(rt, version, &existing, body, part, options)
    }

    /// The shared tail of PUT and non-apply PATCH: `incoming` is the whole
    /// object the client wants.
    fn write(
        &mut self,
        rt: &ResourceType,
        version: &str,
        existing: &Value,
        incoming: Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let incoming = input(incoming, rt);
        let name = existing["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !incoming.is_object() {
            return Err(ApiError::BadRequest("the body must be an object".into()));
        }
        if let Some(sent) = incoming["metadata"]["name"].as_str() {
            if !sent.is_empty() && sent != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({sent}) does not match the name on the URL ({name})"
                )));
            }
        }
        let sent_version = incoming["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("");
        if !sent_version.is_empty()
            && Some(sent_version) != existing["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::Conflict {
                qualified: qualified(&rt.group, &rt.plural),
                name,
                reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
            });
        }
        let mut new = self.merge_write(rt, version, existing, incoming, part);
        self.validate(rt, version, &mut new, options.strict)?;
        let writer = Writer {
            manager: &options.manager,
            api_version: &rt.api_version(version),
            subresource: part.subresource(),
            now: &clock::now_rfc3339(),
        };
        let entries = apply::record_update(&apply::read_entries(existing), existing, &new, writer);
        apply::write_entries(&mut new, &entries);
        self.commit(rt, version, existing, new, options.dry_run)
    }

    /// The object a write to `part` produces: server-owned metadata kept,
    /// status taken only from where it may change.
    fn merge_write(
        &self,
        rt: &ResourceType,
        version: &str,
        existing: &Value,
        incoming: Value,
        part: Part,
    ) -> Value {
        let mut new = match part {
            Part::Main => {
                let mut new = incoming;
                if rt.status_subresource {
                    match existing.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => {
                            if let Some(map) = new.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                new
            }
            Part::Status => {
                let mut new = existing.clone();
                match incoming.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                new
            }
        };
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        for kept in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match existing["metadata"].get(kept) {
                Some(v) => new["metadata"][kept] = v.clone(),
                None => {
                    if let Some(meta) = new["metadata"].as_object_mut() {
                        meta.remove(kept);
                    }
                }
            }
        }
        new["apiVersion"] = json!(rt.api_version(version));
        new["kind"] = json!(rt.kind);
        if let Some(schema) = self.schema_of(rt, version) {
            apply_defaults(&mut new, &schema);
        }
        new
    }

    /// Stores `new` in place of `old` unless nothing changed; bumps the
    /// generation on a spec change; finishes a deletion whose last
    /// finalizer went.
    fn commit(
        &mut self,
        rt: &ResourceType,
        version: &str,
        old: &Value,
        mut new: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
        if rt.group == "apiextensions.k8s.io" {
            let registered =
                resources::from_crd(&new).map_err(|message| invalid(rt, &name, message))?;
            let conditions = old["status"]["conditions"].clone();
            new["status"] = crd_status(&new, &registered);
            if conditions.is_array() {
                new["status"]["conditions"] = conditions;
            }
        }
        if spec_of(old) != spec_of(&new) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == *old || dry_run {
            return Ok(output(&new, rt, version));
        }
        let revision = self.next_revision();
        new["metadata"]["resourceVersion"] = json!(revision.to_string());
        let namespace = old["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        self.objects
            .entry(rt.storage_key())
            .or_default()
            .insert((namespace.clone(), name.clone()), new.clone());
        self.record(rt, EventKind::Modified, new.clone(), Some(old.clone()));
        if rt.group == "apiextensions.k8s.io" {
            self.refresh_crds();
        }
        let finalizers_left = new["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !new["metadata"]["deletionTimestamp"].is_null() && !finalizers_left {
            let gone = self.remove(rt, &namespace, &name, false);
            return Ok(output(&gone.unwrap_or(new), rt, version));
        }
        Ok(output(&new, rt, version))
    }

    /// PATCH of any kind; an apply creates the object when it is missing.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let existing = self.stored(rt, namespace.unwrap_or(""), name).cloned();
        if kind == PatchKind::Apply {
            return self.apply(rt, version, namespace, name, existing, body, part, options);
        }
        let existing =
            existing.ok_or_else(|| ApiError::object_not_found(&rt.group, &rt.plural, name))?;
        let mut patched = output(&existing, rt, version);
        let failed = |e: PatchError| match e {
            PatchError::Malformed(m) => ApiError::BadRequest(m),
            PatchError::Failed(m) => invalid(rt, name, m),
        };
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut patched, body),
            PatchKind::Json => patch::json_patch(&mut patched, body).map_err(failed)?,
            PatchKind::Strategic => {
                if !rt.builtin {
                    return Err(ApiError::UnsupportedMediaType(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                    ));
                }
                patch::strategic_merge_patch(&mut patched, body).map_err(failed)?
            }
            PatchKind::Apply => {}
        }
        self.write(rt, version, &existing, patched, part, options)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        rt: &ResourceType,
        version: &str,
        url_namespace: Option<&str>,
        name: &str,
        existing: Option<Value>,
        body: &Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "an apply patch must be an object".into(),
            ));
        }
        if let Some(sent) = body["metadata"]["name"].as_str() {
            if sent != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({sent}) does not match the name on the URL ({name})"
                )));
            }
        }
        if let Some(kind) = body["kind"].as_str() {
            if kind != rt.kind {
                return Err(ApiError::BadRequest(format!(
                    "the kind of the provided object ({kind}) does not match the resource ({})",
                    rt.kind
                )));
            }
        }
        if let (Some(sent), Some(live)) = (
            body["metadata"]["resourceVersion"]
                .as_str()
                .filter(|v| !v.is_empty()),
            existing.as_ref(),
        ) {
            if Some(sent) != live["metadata"]["resourceVersion"].as_str() {
                return Err(ApiError::Conflict {
                    qualified: qualified(&rt.group, &rt.plural),
                    name: name.to_string(),
                    reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
                });
            }
        }
        let namespace = self.namespace_of(rt, url_namespace, body)?;
        let config = match part {
            Part::Main => {
                let mut config = input(body.clone(), rt);
                if rt.status_subresource {
                    if let Some(map) = config.as_object_mut() {
                        map.remove("status");
                    }
                }
                config
            }
            Part::Status => json!({"status": body.get("status").cloned().unwrap_or(Value::Null)}),
        };
        let live = existing.clone().unwrap_or_else(|| {
            json!({"apiVersion": rt.api_version(version), "kind": rt.kind, "metadata": {"name": name, "namespace": namespace}})
        });
        let now = clock::now_rfc3339();
        let api_version = rt.api_version(version);
        let writer = Writer {
            manager: &options.manager,
            api_version: &api_version,
            subresource: part.subresource(),
            now: &now,
        };
        let applied = apply::apply(
            &live,
            &apply::read_entries(&live),
            &config,
            writer,
            options.force,
        )
        .map_err(|conflicts| ApiError::ApplyConflict { conflicts })?;
        let mut object = applied.object;
        match existing {
            None => {
                if part == Part::Status {
                    return Err(ApiError::object_not_found(&rt.group, &rt.plural, name));
                }
                let mut object = self.prepare_new(rt, version, &namespace, object)?;
                self.validate(rt, version, &mut object, options.strict)?;
                apply::write_entries(&mut object, &applied.entries);
                self.insert(rt, version, object, options.dry_run)
            }
            Some(existing) => {
                object = self.merge_write(rt, version, &existing, object, part);
                self.validate(rt, version, &mut object, options.strict)?;
                apply::write_entries(&mut object, &applied.entries);
                self.commit(rt, version, &existing, object, options.dry_run)
            }
        }
    }

    /// The `autoscaling/v1` Scale of a Deployment, StatefulSet or ReplicaSet.
    pub fn scale(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let object = self
            .stored(rt, namespace.unwrap_or(""), name)
            .ok_or_else(|| ApiError::object_not_found(&rt.group, &rt.plural, name))?;
        let selector: Vec<String> = object["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let meta = &object["metadata"];
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
            "status": {
                "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
                "selector": selector.join(","),
            },
        }))
    }

    /// Writes `spec.replicas` of a Scale back to its object.
    pub fn write_scale(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .ok_or_else(|| ApiError::Invalid {
                kind: "Scale".into(),
                name: name.to_string(),
                field: "spec.replicas".into(),
                message: "Required value".into(),
            })?;
        let mut patch = json!({"spec": {"replicas": replicas}});
        if let Some(rv) = scale["metadata"]["resourceVersion"]
            .as_str()
            .filter(|v| !v.is_empty())
        {
            patch["metadata"] = json!({"resourceVersion": rv});
        }
        let version = rt.preferred_version().to_string();
        self.patch(
            rt,
            &version,
            namespace,
            name,
            PatchKind::Merge,
            &patch,
            Part::Main,
            options,
        )?;
        self.scale(rt, namespace, name)
    }

    /// DELETE: gone at once, or marked with a deletionTimestamp while
    /// finalizers remain. Answers the object, or a success Status.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let namespace = namespace.unwrap_or("");
        let existing = self
            .stored(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::object_not_found(&rt.group, &rt.plural, name))?;
        let precondition_failed = |what: &str, want: &str, have: &str| {
            ApiError::Conflict {
            qualified: qualified(&rt.group, &rt.plural),
            name: name.to_string(),
            reason: format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"),
        }
        };
        if let Some(uid) = &options.uid {
            let have = existing["metadata"]["uid"].as_str().unwrap_or("");
            if uid != have {
                return Err(precondition_failed("UID", uid, have));
            }
        }
        if let Some(rv) = &options.resource_version {
            let have = existing["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("");
            if rv != have {
                return Err(precondition_failed("ResourceVersion", rv, have));
            }
        }
        if options.dry_run {
            return Ok(output(&existing, rt, version));
        }
        let propagation = match options.propagation.as_deref() {
            Some("Orphan") => Propagation::Orphan,
            Some("Foreground") => Propagation::Foreground,
            _ => Propagation::Background,
        };
        match self.delete_object(rt, namespace, name, propagation) {
            Some(still_there) => Ok(output(&still_there, rt, version)),
            None if !rt.builtin || rt.plural == "pods" => {
                let mut gone = output(&existing, rt, version);
                gone["metadata"]["resourceVersion"] = json!(self.revision.to_string());
                Ok(gone)
            }
            None => Ok(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.plural,
                    "uid": existing["metadata"]["uid"],
                },
            })),
        }
    }

    /// DELETE on a collection: every object the selector matches.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        selector: &Selector,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let names: Vec<(String, String)> = self
            .list(rt, version, namespace, selector)
            .iter()
            .map(|o| {
                (
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut items = Vec::new();
        for (ns, name) in names {
            let ns = (!ns.is_empty()).then_some(ns);
            items.push(self.delete(rt, version, ns.as_deref(), &name, options)?);
        }
        Ok(json!({
            "kind": rt.list_kind,
            "apiVersion": rt.api_version(version),
            "metadata": {"resourceVersion": self.revision.to_string()},
            "items": items,
        }))
    }

    /// Deletes or marks an object; `Some(object)` when it stays (finalizers).
    fn delete_object(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        propagation: Propagation,
    ) -> Option<Value> {
        let existing = self.stored(rt, namespace, name)?.clone();
        if !existing["metadata"]["deletionTimestamp"].is_null() {
            return Some(existing);
        }
        let uid = existing["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let dependents = self.dependents_of(&uid);
        if propagation == Propagation::Foreground && !dependents.is_empty() {
            let mut marked = existing.clone();
            let mut finalizers = marked["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            finalizers.push(json!(FOREGROUND));
            marked["metadata"]["finalizers"] = Value::Array(finalizers);
            marked["metadata"]["deletionTimestamp"] = json!(clock::now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let version = rt.preferred_version().to_string();
            let kept = self.commit(rt, &version, &existing, marked, false).ok();
            for (dependent_rt, ns, dependent) in dependents {
                self.delete_object(&dependent_rt, &ns, &dependent, Propagation::Foreground);
            }
            return self.stored(rt, namespace, name).cloned().or(kept);
        }
        let finalizers = existing["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            let mut marked = existing.clone();
            marked["metadata"]["deletionTimestamp"] = json!(clock::now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let version = rt.preferred_version().to_string();
            return self.commit(rt, &version, &existing, marked, false).ok();
        }
        self.remove(rt, namespace, name, propagation == Propagation::Orphan);
        None
    }

    /// Removes an object for good, then what depended on it.
    fn remove(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let mut gone = self
            .objects
            .get_mut(&rt.storage_key())?
            .remove(&(namespace.to_string(), name.to_string()))?;
        let revision = self.next_revision();
        gone["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.record(rt, EventKind::Deleted, gone.clone(), None);
        if rt.group == "apiextensions.k8s.io" {
            self.drop_custom_objects(&gone);
            self.refresh_crds();
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            self.empty_namespace(name);
        }
        let uid = gone["metadata"]["uid"].as_str().unwrap_or("").to_string();
        self.collect_dependents(&uid, orphan);
        self.release_foreground_owners();
        Some(gone)
    }

    fn all_keys(&self) -> Vec<(ResourceType, String, String)> {
        let mut keys = Vec::new();
        for rt in &self.types {
            if let Some(bucket) = self.bucket(rt) {
                for (ns, name) in bucket.keys() {
                    keys.push((rt.clone(), ns.clone(), name.clone()));
                }
            }
        }
        keys
    }

    fn empty_namespace(&mut self, namespace: &str) {
        for (rt, ns, name) in self.all_keys() {
            if rt.namespaced && ns == namespace {
                self.delete_object(&rt, &ns, &name, Propagation::Background);
            }
        }
    }

    fn drop_custom_objects(&mut self, crd: &Value) {
        let group = crd["spec"]["group"].as_str().unwrap_or("").to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let Some(rt) = self
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
        else {
            return;
        };
        let names: Vec<Key> = self
            .bucket(&rt)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in names {
            self.remove(&rt, &ns, &name, false);
        }
    }

    /// The objects whose ownerReferences name `owner_uid`.
    fn dependents_of(&self, owner_uid: &str) -> Vec<(ResourceType, String, String)> {
        if owner_uid.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (storage, bucket) in &self.objects {
            for ((ns, name), object) in bucket {
                let owned = object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid)));
                if owned {
                    if let Some(rt) = self.types.iter().find(|t| t.storage_key() == *storage) {
                        found.push((rt.clone(), ns.clone(), name.clone()));
                    }
                }
            }
        }
        found
    }

    /// Owners deleted in the foreground lose their `foregroundDeletion`
    /// finalizer once no dependent is left (and then go, if nothing else holds them).
    fn release_foreground_owners(&mut self) {
        let waiting: Vec<(ResourceType, String, String)> = self
            .objects
            .iter()
            .flat_map(|(storage, bucket)| {
                bucket
                    .iter()
                    .map(move |(key, object)| (storage, key, object))
            })
            .filter(|(_, _, object)| {
                object["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == FOREGROUND))
            })
            .filter_map(|(storage, (ns, name), _)| {
                let rt = self.types.iter().find(|t| t.storage_key() == *storage)?;
                Some((rt.clone(), ns.clone(), name.clone()))
            })
            .collect();
        for (rt, ns, name) in waiting {
            let Some(owner) = self.stored(&rt, &ns, &name).cloned() else {
                continue;
            };
            let waiting = owner["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == FOREGROUND));
            let uid = owner["metadata"]["uid"].as_str().unwrap_or("");
            if !waiting || !self.dependents_of(uid).is_empty() {
                continue;
            }
            let mut released = owner.clone();
            if let Some(finalizers) = released["metadata"]["finalizers"].as_array_mut() {
                finalizers.retain(|f| f != FOREGROUND);
            }
            let version = rt.preferred_version().to_string();
            let _ = self.commit(&rt, &version, &owner, released, false);
        }
    }

    /// Background garbage collection: a dependent whose every owner is gone
    /// is deleted; one with owners left loses the dangling reference.
    fn collect_dependents(&mut self, owner_uid: &str, orphan: bool) {
        if owner_uid.is_empty() {
            return;
        }
        let dependents = self.dependents_of(owner_uid);
        if dependents.is_empty() {
            return;
        }
        let live_uids: std::collections::BTreeSet<String> = self
            .objects
            .values()
            .flat_map(|b| b.values())
            .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        for (rt, ns, name) in dependents {
            let Some(object) = self.stored(&rt, &ns, &name).cloned() else {
                continue;
            };
            let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if !refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid)) {
                continue;
            }
            let others_alive = refs
                .iter()
                .filter(|r| r["uid"].as_str() != Some(owner_uid))
                .any(|r| r["uid"].as_str().is_some_and(|u| live_uids.contains(u)));
            if orphan || others_alive {
                let mut kept = object.clone();
                let remaining: Vec<Value> = refs
                    .iter()
                    .filter(|r| r["uid"].as_str() != Some(owner_uid))
                    .cloned()
                    .collect();
                if remaining.is_empty() {
                    if let Some(meta) = kept["metadata"].as_object_mut() {
                        meta.remove("ownerReferences");
                    }
                } else {
                    kept["metadata"]["ownerReferences"] = Value::Array(remaining);
                }
                let writer = Writer {
                    manager: GC_MANAGER,
                    api_version: &rt.api_version(rt.preferred_version()),
                    subresource: None,
                    now: &clock::now_rfc3339(),
                };
                let entries =
                    apply::record_update(&apply::read_entries(&object), &object, &kept, writer);
                apply::write_entries(&mut kept, &entries);
                let version = rt.preferred_version().to_string();
                let _ = self.commit(&rt, &version, &object, kept, false);
            } else {
                self.delete_object(&rt, &ns, &name, Propagation::Background);
            }
        }
    }

    fn refresh_crds(&mut self) {
        let crds: Vec<Value> = self
            .objects
            .get(&(
                "apiextensions.k8s.io".to_string(),
                "customresourcedefinitions".to_string(),
            ))
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        let mut types = resources::builtin();
        for crd in &crds {
            if let Ok(rt) = resources::from_crd(crd) {
                if !types
                    .iter()
                    .any(|t| t.group == rt.group && t.plural == rt.plural)
                {
                    types.push(rt);
                }
            }
        }
        self.types = types;
    }
}

fn invalid(rt: &ResourceType, name: &str, message: String) -> ApiError {
    let (field, message) = match message.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => (field.to_string(), rest.to_string()),
        _ => (String::new(), message),
    };
    ApiError::Invalid {
        kind: rt.kind.clone(),
        name: name.to_string(),
        field,
        message,
    }
}

/// What `generation` tracks: everything but metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    spec
}

/// An object as served at `version` (CRD versions convert with strategy
/// None; events.k8s.io Events convert from the stored core form).
pub fn output(object: &Value, rt: &ResourceType, version: &str) -> Value {
    let mut out = if rt.is_events_v1() {
        events::to_events_v1(object)
    } else {
        object.clone()
    };
    out["apiVersion"] = json!(rt.api_version(version));
    out
}

/// A body in the stored form (events.k8s.io Events become core Events).
fn input(body: Value, rt: &ResourceType) -> Value {
    if rt.is_events_v1() && body.is_object() {
        events::to_core(&body)
    } else {
        body
    }
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        return Ok(());
    }
    Err(ApiError::Invalid {
        kind: rt.kind.clone(),
        name: name.to_string(),
        field: "metadata.name".to_string(),
        message: format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ),
    })
}

/// Fills `default`s of a structural schema into the parts of `object` that exist.
fn apply_defaults(object: &mut Value, schema: &Value) {
    default_within(object, schema, true);
}

/// Defaults of one schema node: absent properties with a `default`, then
/// the same inside present properties, list items and map values.
fn default_within(value: &mut Value, schema: &Value, top: bool) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, property) in properties {
                    if top && matches!(key.as_str(), "metadata" | "apiVersion" | "kind") {
                        continue;
                    }
                    match map.get_mut(key) {
                        Some(child) => default_within(child, property, false),
                        None => {
                            if let Some(default) = property.get("default") {
                                let mut filled = default.clone();
                                default_within(&mut filled, property, false);
                                map.insert(key.clone(), filled);
                            }
                        }
                    }
                }
            }
            if let Some(values) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let known = schema["properties"].as_object();
                for (key, child) in map.iter_mut() {
                    if !known.is_some_and(|k| k.contains_key(key)) {
                        default_within(child, values, false);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for item in items {
                    default_within(item, item_schema, false);
                }
            }
        }
        _ => {}
    }
}

fn crd_status(crd: &Value, registered: &ResourceType) -> Value {
    let now = clock::now_rfc3339();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": [registered.preferred_version()],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(manager: &str) -> WriteOptions {
        WriteOptions {
            manager: manager.to_string(),
            force: false,
            dry_run: false,
            strict: false,
        }
    }

    fn configmaps(store: &Store) -> ResourceType {
        store
            .resolve("", "v1", "configmaps")
            .expect("configmaps are built in")
    }

    fn configmap(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn a_put_with_a_stale_resource_version_conflicts_and_a_fresh_one_wins() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let created = store
            .create(&rt, "v1", Some("default"), configmap("c"), &options("test"))
            .expect("created");
        let mut first = created.clone();
        first["data"]["a"] = json!("2");
        store
            .replace(
                &rt,
                "v1",
                Some("default"),
                "c",
                first,
                Part::Main,
                &options("test"),
            )
            .expect("a fresh update");
        let mut stale = created;
        stale["data"]["a"] = json!("3");
        let error = store
            .replace(
                &rt,
                "v1",
                Some("default"),
                "c",
                stale,
                Part::Main,
                &options("test"),
            )
            .expect_err("a stale update");
        assert_eq!(error.code(), 409);
        assert_eq!(error.reason(), "Conflict");
    }

    #[test]
    fn resource_versions_increase_and_a_no_op_write_keeps_them() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let a = store
            .create(&rt, "v1", Some("default"), configmap("a"), &options("test"))
            .expect("created");
        let b = store
            .create(&rt, "v1", Some("default"), configmap("b"), &options("test"))
            .expect("created");
        let rv = |o: &Value| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .parse::<u64>()
                .unwrap_or(0)
        };
        assert!(rv(&b) > rv(&a));
        let same = store
            .patch(
                &rt,
                "v1",
                Some("default"),
                "a",
                PatchKind::Merge,
                &json!({"data": {"a": "1"}}),
                Part::Main,
                &options("test"),
            )
            .expect("patched");
        assert_eq!(rv(&same), rv(&a));
    }

    #[test]
    fn generate_name_makes_a_fresh_name_and_a_missing_namespace_is_not_found() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let body = json!({"metadata": {"generateName": "run-"}, "data": {}});
        let created = store
            .create(&rt, "v1", Some("default"), body.clone(), &options("test"))
            .expect("created");
        let name = created["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.starts_with("run-") && name.len() == 9, "{name}");
        let error = store
            .create(&rt, "v1", Some("nowhere"), body, &options("test"))
            .expect_err("no such namespace");
        assert_eq!(error.code(), 404);
    }

    #[test]
    fn a_finalizer_holds_a_deleted_object_until_it_is_removed() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let mut held = configmap("held");
        held["metadata"]["finalizers"] = json!(["test/hold"]);
        store
            .create(&rt, "v1", Some("default"), held, &options("test"))
            .expect("created");
        let marked = store
            .delete(
                &rt,
                "v1",
                Some("default"),
                "held",
                &DeleteOptions::default(),
            )
            .expect("marked");
        assert!(!marked["metadata"]["deletionTimestamp"].is_null());
        assert!(store.get(&rt, "v1", Some("default"), "held").is_ok());
        store
            .patch(
                &rt,
                "v1",
                Some("default"),
                "held",
                PatchKind::Merge,
                &json!({"metadata": {"finalizers": null}}),
                Part::Main,
                &options("test"),
            )
            .expect("finalizer removed");
        assert_eq!(
            store
                .get(&rt, "v1", Some("default"), "held")
                .map_err(|e| e.code()),
            Err(404)
        );
    }

    #[test]
    fn deleting_an_owner_collects_its_dependents_and_spares_the_rest() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let owner = store
            .create(
                &rt,
                "v1",
                Some("default"),
                configmap("owner"),
                &options("test"),
            )
            .expect("created");
        let mut dependent = configmap("dependent");
        dependent["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
        }]);
        store
            .create(&rt, "v1", Some("default"), dependent, &options("test"))
            .expect("created");
        store
            .create(
                &rt,
                "v1",
                Some("default"),
                configmap("bystander"),
                &options("test"),
            )
            .expect("created");
        store
            .delete(
                &rt,
                "v1",
                Some("default"),
                "owner",
                &DeleteOptions::default(),
            )
            .expect("deleted");
        let left: Vec<String> = store
            .list(&rt, "v1", Some("default"), &Selector::default())
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        assert_eq!(left, ["bystander"]);
    }

    #[test]
    fn a_crd_registers_its_resource_and_status_writes_go_through_the_subresource() {
        let mut store = Store::new();
        let crds = store
            .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("CRDs are built in");
        let text = std::fs::read_to_string(crate::workspace_root().join("crds/stack.yaml"))
            .expect("the CRD file");
        let crd: Value = serde_saphyr::from_str(&text).expect("yaml");
        store
            .create(&crds, "v1", None, crd, &options("test"))
            .expect("the CRD is created");
        let stacks = store
            .resolve("stackd.dev", "v1alpha1", "stacks")
            .expect("stacks are served");
        let stack = json!({"apiVersion": "stackd.dev/v1alpha1", "kind": "Stack", "metadata": {"name": "s"},
                           "spec": {"compose": {}}, "status": {"serviceCount": 1}});
        let created = store
            .create(
                &stacks,
                "v1alpha1",
                Some("default"),
                stack,
                &options("test"),
            )
            .expect("created");
        assert!(created["status"].is_null(), "status is dropped on create");
        assert_eq!(created["spec"]["prune"], true, "schema defaults apply");
        let updated = store
            .patch(
                &stacks,
                "v1alpha1",
                Some("default"),
                "s",
                PatchKind::Merge,
                &json!({"status": {"serviceCount": 2}, "spec": {"suspend": true}}),
                Part::Status,
                &options("test"),
            )
            .expect("status patched");
        assert_eq!(updated["status"]["serviceCount"], 2);
        let with_services = store
            .patch(
                &stacks,
                "v1alpha1",
                Some("default"),
                "s",
                PatchKind::Merge,
                &json!({"status": {"services": {"web": {"image": "x"}}}}),
                Part::Status,
                &options("test"),
            )
            .expect("status patched");
        assert_eq!(
            with_services["status"]["services"]["web"],
            json!({"image": "x", "desired": 0, "ready": 0}),
            "defaults apply inside map values"
        );
        assert_eq!(with_services["status"]["conditions"], json!([]));
        assert_eq!(updated["spec"]["suspend"], false);
        assert_eq!(updated["metadata"]["generation"], 1);
    }

    #[test]
    fn malformed_bodies_are_refused_or_stored_without_a_panic() {
        let mut store = Store::new();
        let services = store
            .resolve("", "v1", "services")
            .expect("services are built in");
        let configmaps = configmaps(&store);
        let bodies = [
            json!("a string"),
            json!({"metadata": "not a map"}),
            json!({"metadata": {"name": 7}}),
            json!({"metadata": {"name": "Bad_Name"}}),
            json!({"metadata": {"name": "s", "labels": 3, "finalizers": "x", "ownerReferences": {}}}),
            json!({"metadata": {"name": "p"}, "spec": {"ports": [1, "x", {"port": 80}]}}),
            json!({"kind": "Pod", "metadata": {"name": "k"}}),
        ];
        for body in bodies {
            let _ = store.create(
                &services,
                "v1",
                Some("default"),
                body.clone(),
                &options("test"),
            );
            let _ = store.create(&configmaps, "v1", Some("default"), body, &options("test"));
        }
        store
            .create(
                &configmaps,
                "v1",
                Some("default"),
                configmap("c"),
                &options("test"),
            )
            .expect("created");
        for (kind, patch) in [
            (PatchKind::Merge, json!({"metadata": "x"})),
            (PatchKind::Merge, json!(null)),
            (
                PatchKind::Json,
                json!([{"op": "replace", "path": "", "value": 1}]),
            ),
            (
                PatchKind::Json,
                json!([{"op": "move", "from": "/nope", "path": "/x"}]),
            ),
            (PatchKind::Json, json!({"op": "add"})),
            (PatchKind::Strategic, json!({"data": {"$patch": "delete"}})),
            (
                PatchKind::Apply,
                json!({"metadata": {"name": "c"}, "data": [1]}),
            ),
            (PatchKind::Apply, json!({"metadata": {"name": "other"}})),
        ] {
            let _ = store.patch(
                &configmaps,
                "v1",
                Some("default"),
                "c",
                kind,
                &patch,
                Part::Main,
                &options("test"),
            );
        }
        assert!(store.get(&configmaps, "v1", Some("default"), "c").is_ok());
    }

    #[test]
    fn a_watch_from_a_forgotten_resource_version_is_expired() {
        let mut store = Store::new();
        let rt = configmaps(&store);
        let from = store.revision();
        store
            .create(&rt, "v1", Some("default"), configmap("a"), &options("test"))
            .expect("created");
        assert_eq!(store.events_after(from).map(|e| e.len()), Ok(1));
        store.forget_history();
        assert_eq!(
            store.events_after(from).map_err(|e| e.code()).err(),
            Some(410)
        );
        assert_eq!(store.events_after(store.revision()).map(|e| e.len()), Ok(0));
    }
}
