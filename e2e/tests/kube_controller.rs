//! `stackd controller` against the in-memory API server (kubeapi), driven
//! with the real kubectl: Stacks become owned objects applied by `stackd`,
//! changes touch only what changed, removed services are pruned, invalid
//! Stacks stall without harm, deletion cleans up, only the leader acts,
//! injected server errors are retried with a backoff that doubles and
//! resets, `kubectl wait` sees Ready, the metrics are watch mode's with
//! a namespace label, and the Helm chart's RBAC (both scopes) grants every
//! request the controller makes, and nothing it does not use.
//! Skipped (passing, after saying why) when kubectl is not installed.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use stackd_e2e::kubeapi::{
    kubectl_bin, Access, FaultFilter, FaultKind, Grants, KubeApiServer, RequestRecord, Rule,
    RunningKubelet, Verb,
};
use stackd_e2e::{holds_for, http_get, stackd_bin, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// A server, its kubeconfig, the CRD installed, and the controllers started.
struct Cluster {
    server: KubeApiServer,
    dir: tempfile::TempDir,
    kubectl: PathBuf,
    controllers: Vec<(String, Child)>,
    /// The metrics port of each controller, by identity.
    metrics_ports: BTreeMap<String, u16>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.controllers {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// `None` (after saying why) when kubectl is missing.
    fn start() -> Result<Option<Self>> {
        let Some(kubectl) = kubectl_bin()? else {
            eprintln!("skipped: no kubectl (set STACKD_KUBECTL or install it)");
            return Ok(None);
        };
        let server = KubeApiServer::start()?;
        let dir = tempfile::tempdir()?;
        server.write_kubeconfig(&dir.path().join("kubeconfig"))?;
        let cluster = Cluster {
            server,
            dir,
            kubectl,
            controllers: Vec::new(),
            metrics_ports: BTreeMap::new(),
        };
        let crd = Command::new(stackd_bin()?).arg("crd").output()?;
        if !crd.status.success() {
            bail!("stackd crd failed");
        }
        let crd_file = cluster.dir.path().join("crd.yaml");
        std::fs::write(&crd_file, &crd.stdout)?;
        cluster.kubectl(&["apply", "-f", &crd_file.display().to_string()])?;
        Ok(Some(cluster))
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn kubectl_raw(&self, args: &[&str], input: Option<&str>) -> Result<std::process::Output> {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.unwrap_or_default().as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl_raw(args, None)?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn apply(&self, manifest: &str) -> Result<()> {
        let out = self.kubectl_raw(&["apply", "-f", "-"], Some(manifest))?;
        if !out.status.success() {
            bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The object as JSON, `None` when it does not exist.
    fn get(&self, resource: &str, name: &str) -> Result<Option<Value>> {
        let out = self.kubectl_raw(
            &["get", resource, name, "-o", "json", "--show-managed-fields"],
            None,
        )?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("NotFound") || err.contains("not found") {
                return Ok(None);
            }
            bail!("kubectl get {resource} {name}: {err}");
        }
        Ok(Some(serde_json::from_slice(&out.stdout)?))
    }

    /// Names of the objects of `resource` labelled for stack `stack`.
    fn names(&self, resource: &str, stack: &str) -> Result<Vec<String>> {
        let selector = format!("app.kubernetes.io/part-of={stack}");
        let out = self.kubectl(&["get", resource, "-l", &selector, "-o", "json"])?;
        let list: Value = serde_json::from_str(&out)?;
        let mut names: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// `kind/name` → resourceVersion of every object of the stack.
    fn versions(&self, stack: &str) -> Result<BTreeMap<String, String>> {
        let selector = format!("app.kubernetes.io/part-of={stack}");
        let out = self.kubectl(&[
            "get",
            "deployments,statefulsets,jobs,services,configmaps,secrets,persistentvolumeclaims,networkpolicies",
            "-l",
            &selector,
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    format!(
                        "{}/{}",
                        i["kind"].as_str().unwrap_or(""),
                        i["metadata"]["name"].as_str().unwrap_or("")
                    ),
                    i["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect())
    }

    fn start_controller(&mut self, identity: &str) -> Result<()> {
        self.start_controller_retrying(identity, "100ms", "2s")
    }

    /// A controller whose failed reconciles are retried after `base`,
    /// doubling up to `cap`.
    fn start_controller_retrying(&mut self, identity: &str, base: &str, cap: &str) -> Result<()> {
        let args = [
            "controller",
            "--lease-namespace",
            "default",
            "--retry-base",
            base,
            "--retry-cap",
            cap,
        ];
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.spawn_controller(identity, &args, &self.kubeconfig())
    }

    /// Runs `stackd ARGS --metrics-addr (a free port) --identity IDENTITY
    /// --lease-duration 3s` with `kubeconfig`.
    fn spawn_controller(
        &mut self,
        identity: &str,
        args: &[String],
        kubeconfig: &Path,
    ) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join(format!("{identity}.log")))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let child = Command::new(stackd_bin()?)
            .args(args)
            .args([
                "--metrics-addr",
                &metrics_addr,
                "--identity",
                identity,
                "--lease-duration",
                "3s",
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.controllers.push((identity.to_string(), child));
        self.metrics_ports.insert(identity.to_string(), port);
        Ok(())
    }

    fn stop_controller(&mut self, identity: &str) {
        if let Some(index) = self.controllers.iter().position(|(i, _)| i == identity) {
            let (_, mut child) = self.controllers.remove(index);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn controller_log(&self, identity: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{identity}.log"))).unwrap_or_default()
    }

    fn kubelet(&self) -> RunningKubelet {
        self.server.kubelet().spawn()
    }

    fn condition(&self, stack: &str, type_: &str) -> Result<Option<Value>> {
        let Some(stack) = self.get("stack", stack)? else {
            return Ok(None);
        };
        Ok(stack["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_)
            .cloned())
    }

    fn wait_ready(&self, stack: &str) -> Result<()> {
        wait_until(WAIT, &format!("stack {stack} Ready"), || {
            Ok(self
                .condition(stack, "Ready")?
                .is_some_and(|c| c["status"] == "True"))
        })
        .with_context(|| self.diagnostics())
    }

    fn diagnostics(&self) -> String {
        let logs: Vec<String> = self
            .controllers
            .iter()
            .map(|(id, _)| format!("--- {id}\n{}", self.controller_log(id)))
            .collect();
        let stacks = self
            .kubectl(&["get", "stacks", "-o", "yaml"])
            .unwrap_or_default();
        format!("{stacks}\n{}", logs.join("\n"))
    }
}

fn shop(web_image: &str, with_cache: bool) -> String {
    let cache = if with_cache {
        "      cache:\n        image: redis:7\n        ports: [{target: 6379}]\n"
    } else {
        ""
    };
    format!(
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {{name: shop, namespace: default}}\nspec:\n  compose:\n    services:\n      web:\n        image: {web_image}\n        ports: [{{target: 80}}]\n        environment: {{MODE: prod}}\n      db:\n        image: postgres:16\n        volumes: [{{type: volume, source: data, target: /var/lib/postgresql/data}}]\n{cache}    volumes:\n      data: {{}}\n"
    )
}

/// Whether stackd made the request: its client sends `stackd/<version>`
/// as User-Agent (kubectl sends `kubectl/...`; the kubelet stand-in makes
/// no requests).
fn is_stackd(request: &RequestRecord) -> bool {
    request
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with("stackd/"))
}

/// The requests stackd made (not kubectl's), in the order they arrived.
fn stackd_requests(cluster: &Cluster) -> Vec<RequestRecord> {
    let mut requests: Vec<RequestRecord> = cluster
        .server
        .requests()
        .into_iter()
        .filter(is_stackd)
        .collect();
    requests.sort_by_key(|r| r.at);
    requests
}

fn is_failed_web_apply(request: &RequestRecord) -> bool {
    request.verb == Some(Verb::Patch)
        && request.path.ends_with("/deployments/shop-web")
        && request.status == 500
}

/// After each failed apply of Deployment shop-web, how long the controller
/// waited between the end of that attempt (its last write: the Event and
/// status that report the failure) and the start of the next one (its
/// first list of the Stack's objects; lease renewals aside, nothing else
/// lists).
fn waits_after_failures(requests: &[RequestRecord]) -> Vec<Duration> {
    let mut waits = Vec::new();
    for (index, failed) in requests.iter().enumerate() {
        if !is_failed_web_apply(failed) {
            continue;
        }
        let rest = &requests[index + 1..];
        let Some(next) = rest.iter().position(|r| r.verb == Some(Verb::List)) else {
            continue;
        };
        let ended = rest[..next]
            .iter()
            .filter(|r| {
                matches!(r.verb, Some(Verb::Create | Verb::Patch | Verb::Update))
                    && r.resource.as_deref() != Some("leases")
            })
            .map(|r| r.at)
            .next_back()
            .unwrap_or(failed.at);
        waits.push(rest[next].at.saturating_duration_since(ended));
    }
    waits
}

/// Whether `wait` is `nominal` within the backoff's ±20 % jitter, with a
/// little room above for the next attempt getting to its first request.
fn within_jitter(wait: Duration, nominal: Duration) -> bool {
    let low = nominal
        .mul_f64(0.8)
        .saturating_sub(Duration::from_millis(20));
    let high = nominal.mul_f64(1.2) + Duration::from_millis(400);
    (low..=high).contains(&wait)
}

/// The value of an unlabelled series in a scrape.
fn scraped(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One series of a scrape: its family (histogram suffixes removed) and
/// its labels.
fn series(line: &str) -> Option<(String, BTreeMap<String, String>)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (name, labels) = match line.split_once('{') {
        Some((name, rest)) => (name, rest.split_once('}')?.0),
        None => (line.split_whitespace().next()?, ""),
    };
    let family = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .filter(|_| name.starts_with("stackd_reconcile_duration_seconds"))
        .unwrap_or(name);
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once("=\"")?;
            Some((key.to_string(), value.trim_end_matches('"').to_string()))
        })
        .collect();
    Some((family.to_string(), labels))
}

/// The stackd families docs/metrics.md lists (it is generated from the
/// registry watch mode serves), with their label names.
fn documented_families() -> Result<BTreeMap<String, BTreeSet<String>>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("| `stackd_"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells.get(1)?.trim_matches('`').to_string();
            let labels = cells
                .get(3)?
                .split(", ")
                .filter(|l| *l != "none")
                .map(|l| l.trim_matches('`').to_string())
                .collect();
            Some((name, labels))
        })
        .collect())
}

#[test]
fn a_stack_becomes_objects_owned_by_it_and_applied_by_stackd_and_turns_ready() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    cluster.apply(&shop("nginx:1.27", true))?;
    wait_until(WAIT, "the web Deployment", || {
        Ok(cluster.get("deployment", "shop-web")?.is_some())
    })
    .with_context(|| cluster.diagnostics())?;
    let stack = cluster.get("stack", "shop")?.context("no stack")?;
    let uid = stack["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        stack["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "stackd.dev/cleanup")),
        "{stack}"
    );
    wait_until(WAIT, "the cache Deployment and the db StatefulSet", || {
        Ok(cluster.get("deployment", "shop-cache")?.is_some()
            && cluster.get("statefulset", "shop-db")?.is_some())
    })?;
    for (resource, name) in [
        ("deployment", "shop-web"),
        ("deployment", "shop-cache"),
        ("statefulset", "shop-db"),
        ("service", "web"),
    ] {
        let object = cluster.get(resource, name)?.context(name.to_string())?;
        let owners = &object["metadata"]["ownerReferences"];
        assert_eq!(owners[0]["kind"], "Stack", "{resource}/{name}: {owners}");
        assert_eq!(owners[0]["uid"], uid.as_str());
        assert_eq!(owners[0]["controller"], true);
        let managers: Vec<&str> = object["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"stackd"),
            "{resource}/{name}: {managers:?}"
        );
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "stackd"
        );
    }
    let applies = cluster
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Patch) && r.field_manager.as_deref() == Some("stackd"))
        .count();
    assert!(applies >= 4, "{applies} applies as stackd");
    let ready = cluster
        .condition("shop", "Ready")?
        .context("no Ready condition")?;
    assert_eq!(ready["status"], "False", "nothing runs yet: {ready}");

    let _kubelet = cluster.kubelet();
    let wait = cluster.kubectl_raw(
        &[
            "wait",
            "--for=condition=Ready",
            "stack/shop",
            "--timeout=60s",
        ],
        None,
    )?;
    assert!(
        wait.status.success(),
        "kubectl wait: {}\n{}",
        String::from_utf8_lossy(&wait.stderr),
        cluster.diagnostics()
    );
    let status = cluster.get("stack", "shop")?.context("no stack")?["status"].clone();
    assert_eq!(
        status["observedGeneration"],
        stack["metadata"]["generation"]
    );
    assert_eq!(status["services"]["web"]["ready"], 1, "{status}");

    let port = cluster.metrics_ports["solo"];
    assert_eq!(http_get(port, "/readyz")?, "ok\n");
    let metrics = http_get(port, "/metrics")?;
    assert!(
        metrics.contains(r#"stackd_stack_ready{namespace="default",stack="shop"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"stackd_service_replicas{namespace="default",service="web",stack="shop",state="desired"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"stackd_backend_requests_total{backend="kubernetes",operation="apply",outcome="success"}"#
    ));
    Ok(())
}

#[test]
fn changing_one_service_changes_only_its_objects_and_removing_one_prunes_it() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", true))?;
    cluster.wait_ready("shop")?;
    let before = cluster.versions("shop")?;
    assert!(before.contains_key("Deployment/shop-cache"), "{before:?}");

    cluster.apply(&shop("nginx:1.28", true))?;
    wait_until(WAIT, "web on nginx:1.28", || {
        Ok(cluster.get("deployment", "shop-web")?.is_some_and(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
        }))
    })?;
    cluster.wait_ready("shop")?;
    let generation =
        cluster.get("stack", "shop")?.context("no stack")?["metadata"]["generation"].clone();
    wait_until(WAIT, "the new generation observed", || {
        Ok(cluster
            .get("stack", "shop")?
            .is_some_and(|s| s["status"]["observedGeneration"] == generation))
    })?;
    let after = cluster.versions("shop")?;
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        changed,
        ["Deployment/shop-web"],
        "before {before:?} after {after:?}"
    );

    cluster.apply(&shop("nginx:1.28", false))?;
    wait_until(WAIT, "the cache pruned", || {
        Ok(cluster.get("deployment", "shop-cache")?.is_none()
            && cluster.get("service", "cache")?.is_none())
    })
    .with_context(|| cluster.diagnostics())?;
    assert!(cluster.get("deployment", "shop-web")?.is_some());
    assert!(cluster.get("statefulset", "shop-db")?.is_some());
    cluster.wait_ready("shop")?;
    Ok(())
}

#[test]
fn an_invalid_stack_stalls_with_a_message_and_deletes_nothing() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", true))?;
    cluster.wait_ready("shop")?;
    let before = cluster.names("deployments", "shop")?;
    let privileged = shop("nginx:1.27", false).replace(
        "        environment: {MODE: prod}\n",
        "        environment: {MODE: prod}\n        privileged: true\n",
    );
    cluster.apply(&privileged)?;
    wait_until(WAIT, "Stalled", || {
        Ok(cluster
            .condition("shop", "Stalled")?
            .is_some_and(|c| c["status"] == "True"))
    })
    .with_context(|| cluster.diagnostics())?;
    let stalled = cluster
        .condition("shop", "Stalled")?
        .context("no Stalled")?;
    assert_eq!(stalled["reason"], "PolicyRefused");
    let message = stalled["message"].as_str().unwrap_or_default();
    assert!(message.contains("service web: privileged"), "{message}");
    assert!(message.contains("--allow-privileged"), "{message}");
    let events = cluster.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let events: Value = serde_json::from_str(&events)?;
    assert!(
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "PolicyRefused" && e["type"] == "Warning"),
        "no PolicyRefused warning event: {events}"
    );
    holds_for(Duration::from_secs(2), "the last good objects", || {
        Ok(cluster.names("deployments", "shop")? == before)
    })?;
    assert!(before.contains(&"shop-cache".to_string()), "{before:?}");
    Ok(())
}

#[test]
fn deleting_a_stack_removes_its_objects_and_keeps_its_volume_claims() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    let manifest = shop("nginx:1.27", true).replace(
        "    volumes:\n      data: {}\n",
        "      backup:\n        image: busybox\n        volumes: [{type: volume, source: data, target: /data}]\n    volumes:\n      data: {}\n",
    );
    cluster.apply(&manifest)?;
    cluster.wait_ready("shop")?;
    let claims = cluster.names("persistentvolumeclaims", "shop")?;
    assert_eq!(
        claims,
        ["shop-data"],
        "a volume shared by two services is one claim"
    );
    cluster.kubectl(&["delete", "stack", "shop", "--wait=false"])?;
    wait_until(WAIT, "the stack and its objects gone", || {
        Ok(cluster.get("stack", "shop")?.is_none()
            && cluster.names("deployments", "shop")?.is_empty()
            && cluster.names("services", "shop")?.is_empty()
            && cluster.names("configmaps", "shop")?.is_empty())
    })
    .with_context(|| cluster.diagnostics())?;
    assert_eq!(
        cluster.names("persistentvolumeclaims", "shop")?,
        ["shop-data"]
    );
    // The controller's cleanup, not the garbage collector, removed them:
    // the collector deletes inside the server, stackd sends DELETEs.
    let deleted: BTreeSet<String> = stackd_requests(&cluster)
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Delete) && r.status < 300)
        .filter_map(|r| {
            let resource = r.resource?;
            let name = r.path.rsplit('/').next()?.to_string();
            Some(format!("{resource}/{name}"))
        })
        .collect();
    for object in [
        "deployments/shop-web",
        "deployments/shop-cache",
        "services/web",
    ] {
        assert!(
            deleted.contains(object),
            "stackd did not delete {object}: {deleted:?}"
        );
    }
    assert!(
        deleted.iter().any(|o| o.starts_with("configmaps/")),
        "{deleted:?}"
    );
    assert!(
        !deleted
            .iter()
            .any(|o| o.starts_with("persistentvolumeclaims/")),
        "a claim was deleted: {deleted:?}"
    );
    let events = cluster.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let events: Value = serde_json::from_str(&events)?;
    let cleanup = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["reason"] == "Deleted" && e["regarding"]["name"] == "shop")
        .with_context(|| format!("no Deleted event: {events}"))?;
    assert_eq!(cleanup["reportingController"], "stackd", "{cleanup}");
    assert_eq!(cleanup["action"], "Cleanup", "{cleanup}");
    let note = cleanup["note"].as_str().unwrap_or_default();
    let count: usize = note
        .strip_prefix("deleted ")
        .and_then(|n| n.strip_suffix(" objects"))
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("note {note:?}"))?;
    assert!(
        count >= deleted.len(),
        "the event counts {count}, stackd deleted {deleted:?}"
    );
    Ok(())
}

#[test]
fn of_two_controllers_only_the_lease_holder_acts_and_the_other_takes_over() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("one")?;
    wait_until(WAIT, "a lease holder", || {
        Ok(cluster
            .get("lease", "stackd-controller")?
            .is_some_and(|l| l["spec"]["holderIdentity"] == "one"))
    })?;
    cluster.start_controller("two")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", true))?;
    cluster.wait_ready("shop")?;
    let reporters = |cluster: &Cluster| -> Result<Vec<String>> {
        let out = cluster.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
        let list: Value = serde_json::from_str(&out)?;
        let mut found: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["reportingInstance"].as_str().map(str::to_string))
            .collect();
        found.sort();
        found.dedup();
        Ok(found)
    };
    assert_eq!(reporters(&cluster)?, ["one"]);
    assert!(
        !cluster
            .controller_log("two")
            .contains("leading: reconciling"),
        "the follower started reconciling:\n{}",
        cluster.controller_log("two")
    );

    cluster.stop_controller("one");
    wait_until(WAIT, "two holding the lease", || {
        Ok(cluster
            .get("lease", "stackd-controller")?
            .is_some_and(|l| l["spec"]["holderIdentity"] == "two"))
    })?;
    cluster.apply(&shop("nginx:1.28", true))?;
    wait_until(WAIT, "two applying the change", || {
        Ok(cluster.get("deployment", "shop-web")?.is_some_and(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
        }))
    })
    .with_context(|| cluster.diagnostics())?;
    let lease = cluster
        .get("lease", "stackd-controller")?
        .context("no lease")?;
    assert!(
        lease["spec"]["leaseTransitions"].as_i64() >= Some(1),
        "{lease}"
    );
    Ok(())
}

#[test]
fn injected_server_errors_are_retried_until_the_stack_converges() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    let faults = cluster.server.faults().clone();
    faults.seed(7);
    faults.fail_next(
        3,
        FaultKind::Internal,
        FaultFilter::on(Verb::Patch, "deployments"),
    );
    faults.fail_next(
        2,
        FaultKind::Conflict,
        FaultFilter::on(Verb::Patch, "services"),
    );
    faults.fail_fraction(
        0.2,
        FaultKind::Internal,
        FaultFilter::on(Verb::List, "configmaps"),
    );
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", true))?;
    cluster.wait_ready("shop")?;
    assert!(
        faults.injected() >= 5,
        "{} faults injected",
        faults.injected()
    );
    let log = cluster.controller_log("solo");
    assert!(log.contains("reconcile failed"), "no retry logged:\n{log}");
    Ok(())
}

#[test]
fn a_persisting_fault_is_retried_after_doubling_delays_that_reset_after_a_success() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    let base = Duration::from_millis(500);
    let faults = cluster.server.faults().clone();
    // Each attempt fails at its one Deployment, four attempts in a row.
    faults.fail_next(
        4,
        FaultKind::Internal,
        FaultFilter::on(Verb::Patch, "deployments"),
    );
    cluster.start_controller_retrying("solo", "500ms", "10s")?;
    // The kubelet makes the db StatefulSet ready during the backoff: its
    // watch event, like the failed attempt's own status write, must wait.
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", false))?;
    let port = cluster.metrics_ports["solo"];
    let failures = |cluster: &Cluster| {
        stackd_requests(cluster)
            .iter()
            .filter(|r| is_failed_web_apply(r))
            .count()
    };
    wait_until(WAIT, "the third failed attempt", || {
        Ok(failures(&cluster) >= 3)
    })
    .with_context(|| cluster.diagnostics())?;
    wait_until(
        Duration::from_secs(5),
        "the Stack counted in the queue during its backoff",
        || Ok(scraped(&http_get(port, "/metrics")?, "stackd_queue_depth") == Some(1.0)),
    )?;
    cluster.wait_ready("shop")?;
    let waits = waits_after_failures(&stackd_requests(&cluster));
    assert_eq!(waits.len(), 4, "one wait per failed attempt: {waits:?}");
    for (index, wait) in waits.iter().enumerate() {
        let nominal = base * (1 << index);
        assert!(
            within_jitter(*wait, nominal),
            "retry {} waited {wait:?}, not {nominal:?} within jitter: {waits:?}\n{}",
            index + 1,
            cluster.controller_log("solo")
        );
    }
    wait_until(
        Duration::from_secs(10),
        "nothing waiting once Ready",
        || Ok(scraped(&http_get(port, "/metrics")?, "stackd_queue_depth") == Some(0.0)),
    )?;

    // The success reset the backoff: a new fault is retried after the
    // base delay again, not after the 8 s a fifth failure in a row gets.
    // The fault is set once the controller is idle, so that the attempt
    // it fails is the one of the new spec (a new spec goes ahead at once,
    // a failure of the old one would not be waited out).
    wait_until(WAIT, "the controller idle for a second", || {
        Ok(stackd_requests(&cluster)
            .iter()
            .rfind(|r| {
                r.resource.is_some()
                    && r.resource.as_deref() != Some("leases")
                    && r.verb != Some(Verb::Watch)
            })
            .is_some_and(|r| r.at.elapsed() > Duration::from_secs(1)))
    })?;
    faults.clear_requests();
    faults.fail_next(
        1,
        FaultKind::Internal,
        FaultFilter::on(Verb::Patch, "deployments"),
    );
    cluster.apply(&shop("nginx:1.28", false))?;
    wait_until(WAIT, "web on nginx:1.28", || {
        Ok(cluster.get("deployment", "shop-web")?.is_some_and(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
        }))
    })
    .with_context(|| cluster.diagnostics())?;
    let waits = waits_after_failures(&stackd_requests(&cluster));
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(
        within_jitter(waits[0], base),
        "the retry after a success waited {:?}, not {base:?}",
        waits[0]
    );
    cluster.wait_ready("shop")?;
    Ok(())
}

#[test]
fn the_controller_serves_every_metric_family_of_watch_mode_with_a_namespace_label() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    let documented = documented_families()?;
    assert!(documented.len() >= 10, "{documented:?}");
    // One failed reconcile, a convergence, a repaired drift and a refused
    // spec: every family gets a series.
    cluster.server.faults().fail_next(
        1,
        FaultKind::Internal,
        FaultFilter::on(Verb::Patch, "deployments"),
    );
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", false))?;
    cluster.wait_ready("shop")?;
    cluster.kubectl(&["delete", "deployment", "shop-web"])?;
    let port = cluster.metrics_ports["solo"];
    wait_until(WAIT, "the drift repaired", || {
        Ok(http_get(port, "/metrics")?.contains("stackd_drift_repairs_total{"))
    })
    .with_context(|| cluster.diagnostics())?;
    cluster.wait_ready("shop")?;
    let privileged = shop("nginx:1.27", false).replace(
        "        environment: {MODE: prod}\n",
        "        environment: {MODE: prod}\n        privileged: true\n",
    );
    cluster.apply(&privileged)?;
    let mut metrics = String::new();
    wait_until(WAIT, "every documented family", || {
        metrics = http_get(port, "/metrics")?;
        let families: BTreeSet<String> =
            metrics.lines().filter_map(series).map(|(f, _)| f).collect();
        Ok(documented.keys().all(|f| families.contains(f)))
    })
    .with_context(|| format!("{metrics}\n{}", cluster.diagnostics()))?;
    let mut per_stack = 0;
    for (family, labels) in metrics.lines().filter_map(series) {
        let Some(expected) = documented.get(&family) else {
            continue;
        };
        let mut names: BTreeSet<String> = labels.keys().cloned().collect();
        names.remove("le");
        if expected.contains("stack") {
            per_stack += 1;
            let mut scoped = expected.clone();
            scoped.insert("namespace".into());
            assert_eq!(names, scoped, "{family} {labels:?}");
            assert_eq!(labels["namespace"], "default", "{family} {labels:?}");
            assert_eq!(labels["stack"], "shop", "{family} {labels:?}");
        } else {
            assert_eq!(&names, expected, "{family} {labels:?}");
        }
    }
    assert!(per_stack >= 10, "{per_stack} per-stack series:\n{metrics}");
    for needle in [
        r#"stackd_reconcile_errors_total{namespace="default",reason="server_error",stack="shop"}"#,
        r#"stackd_drift_repairs_total{kind="removed",namespace="default",stack="shop"}"#,
        r#"stackd_source_errors_total{kind="policy_refused",namespace="default",stack="shop"}"#,
        r#"stackd_service_replicas{namespace="default",service="web",stack="shop",state="running"} 1"#,
        r#"stackd_service_replicas{namespace="default",service="web",stack="shop",state="healthy"} 1"#,
    ] {
        assert!(metrics.contains(needle), "no {needle}:\n{metrics}");
    }
    Ok(())
}

#[test]
fn a_dependent_workload_is_applied_only_once_its_dependency_is_ready() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    let kubelet = cluster.server.kubelet().only(&[]).spawn();
    let manifest = "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {name: shop, namespace: default}\nspec:\n  compose:\n    services:\n      web:\n        image: nginx:1.27\n        depends_on: {db: {condition: service_healthy}}\n      db:\n        image: postgres:16\n        healthcheck: {test: [CMD, pg_isready]}\n";
    cluster.apply(manifest)?;
    wait_until(WAIT, "the db Deployment", || {
        Ok(cluster.get("deployment", "shop-db")?.is_some())
    })
    .with_context(|| cluster.diagnostics())?;
    wait_until(WAIT, "Reconciling saying what web waits for", || {
        Ok(cluster.condition("shop", "Reconciling")?.is_some_and(|c| {
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("web: waiting for db (service_healthy)"))
        }))
    })
    .with_context(|| cluster.diagnostics())?;
    holds_for(Duration::from_secs(2), "web not applied", || {
        Ok(cluster.get("deployment", "shop-web")?.is_none())
    })?;
    kubelet.allow("shop-db");
    wait_until(WAIT, "the web Deployment once db is ready", || {
        Ok(cluster.get("deployment", "shop-web")?.is_some())
    })
    .with_context(|| cluster.diagnostics())?;
    kubelet.allow("shop-web");
    cluster.wait_ready("shop")?;
    Ok(())
}

#[test]
fn a_workload_deleted_behind_the_controllers_back_is_recreated() -> Result<()> {
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    cluster.start_controller("solo")?;
    let _kubelet = cluster.kubelet();
    cluster.apply(&shop("nginx:1.27", false))?;
    cluster.wait_ready("shop")?;
    let uid_of = |cluster: &Cluster| -> Result<Option<String>> {
        Ok(cluster
            .get("deployment", "shop-web")?
            .and_then(|d| d["metadata"]["uid"].as_str().map(str::to_string)))
    };
    let first = uid_of(&cluster)?.context("no web Deployment")?;
    cluster.kubectl(&["delete", "deployment", "shop-web"])?;
    wait_until(WAIT, "web recreated", || {
        Ok(uid_of(&cluster)?.is_some_and(|uid| uid != first))
    })
    .with_context(|| cluster.diagnostics())?;
    cluster.wait_ready("shop")?;
    Ok(())
}

/// A Stack of every shape the seed stacks have, so that the controller
/// makes every kind it manages: Deployments (web, cache), a StatefulSet
/// with a claim template (db), a Job (migrate), a DaemonSet (agent), a
/// claim shared by two services, Services, the environment's ConfigMap, a
/// Secret, NetworkPolicies (two networks, one internal), and for the
/// `depends_on` waits a ServiceAccount, Role and RoleBinding.
fn shapes(namespace: &str, web_image: &str, with_cache: bool) -> String {
    let cache = if with_cache {
        "      cache:\n        image: redis:7\n        ports: [{target: 6379}]\n        networks: {back: null}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata: {{name: shapes, namespace: {namespace}}}\nspec:\n  compose:\n    services:\n\
         \x20     web:\n        image: {web_image}\n        ports: [{{target: 80}}]\n        environment: {{MODE: prod}}\n\
         \x20       depends_on: {{db: {{condition: service_healthy}}, migrate: {{condition: service_completed_successfully}}}}\n\
         \x20       networks: {{front: {{}}, back: {{}}}}\n        secrets: [{{source: api_key}}]\n\
         \x20       volumes: [{{type: volume, source: shared, target: /shared}}]\n\
         \x20     db:\n        image: postgres:16\n        healthcheck: {{test: [CMD, pg_isready]}}\n\
         \x20       volumes: [{{type: volume, source: data, target: /var/lib/postgresql/data}}]\n        networks: {{back: {{}}}}\n\
         \x20     migrate:\n        image: busybox\n        restart: \"no\"\n        depends_on: {{db: {{condition: service_healthy}}}}\n        networks: {{back: {{}}}}\n\
         \x20     agent:\n        image: busybox\n        deploy: {{mode: global}}\n        networks: {{front: {{}}}}\n\
         \x20       volumes: [{{type: volume, source: shared, target: /shared}}]\n\
         {cache}    networks:\n      front: {{}}\n      back: {{internal: true}}\n    volumes:\n      data: {{}}\n      shared: {{}}\n\
         \x20   secrets:\n      api_key: {{content: k3y}}\n"
    )
}

/// Every kind the controller manages, as (group, plural): the kinds
/// `shapes` must make.
const MANAGED: [(&str, &str); 12] = [
    ("", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("", "secrets"),
    ("", "configmaps"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
    ("networking.k8s.io", "networkpolicies"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
];

/// The checks the API server makes for the objects the controller wrote
/// that are not requests of their own: for an owner reference with
/// `blockOwnerDeletion`, `update` on the owner's `finalizers` and `delete`
/// on the object (the OwnerReferencesPermissionEnforcement admission
/// plugin, which some clusters enable); for a Role, every permission it
/// grants (RBAC lets one create a Role, and bind it, only with permissions
/// one holds). Also checks that the Stack made every managed kind.
fn implied_accesses(cluster: &Cluster, namespace: &str) -> Result<BTreeSet<Access>> {
    let mut out = BTreeSet::new();
    for (group, plural) in MANAGED {
        let resource = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        let list = cluster.kubectl(&[
            "get",
            &resource,
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/part-of=shapes",
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&list)?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(!items.is_empty(), "the Stack made no {resource}");
        for item in items {
            let name = item["metadata"]["name"].as_str().map(str::to_string);
            for owner in item["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if owner["blockOwnerDeletion"] != true {
                    continue;
                }
                anyhow::ensure!(owner["kind"] == "Stack", "{resource} {name:?}: {owner}");
                out.insert(Access {
                    verb: "update".into(),
                    group: "stackd.dev".into(),
                    resource: "stacks/finalizers".into(),
                    namespace: Some(namespace.into()),
                    name: owner["name"].as_str().map(str::to_string),
                });
                out.insert(Access {
                    verb: "delete".into(),
                    group: group.into(),
                    resource: plural.into(),
                    namespace: Some(namespace.into()),
                    name: name.clone(),
                });
            }
            if plural != "roles" {
                continue;
            }
            for rule in Rule::of_role(&item)? {
                for verb in &rule.verbs {
                    for group in &rule.groups {
                        for resource in &rule.resources {
                            let names: Vec<Option<String>> = if rule.names.is_empty() {
                                vec![None]
                            } else {
                                rule.names.iter().cloned().map(Some).collect()
                            };
                            for name in names {
                                out.insert(Access {
                                    verb: verb.clone(),
                                    group: group.clone(),
                                    resource: resource.clone(),
                                    namespace: Some(namespace.into()),
                                    name,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The rendered chart (`helm template stackd` in `namespace` with the
/// values files of `charts/stackd/ci/` named), or `None` (after saying
/// why) when helm is missing and `CI` is not set.
fn render_chart(namespace: &str, values: &[&str]) -> Result<Option<Vec<Value>>> {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/stackd");
    let mut command = Command::new("helm");
    command
        .args(["template", "stackd"])
        .arg(&chart)
        .args(["--namespace", namespace]);
    for file in values {
        command.arg("-f").arg(chart.join("ci").join(file));
    }
    let out = match command.output() {
        Ok(out) => out,
        Err(error) => {
            anyhow::ensure!(
                std::env::var_os("CI").is_none(),
                "helm is not usable ({error}) and CI is set"
            );
            eprintln!("skipped: no helm ({error}; e2e/tools/install-kube-tools.sh)");
            return Ok(None);
        }
    };
    if !out.status.success() {
        bail!("helm template: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)?;
    Ok(Some(docs.into_iter().filter(|d| !d.is_null()).collect()))
}

/// Grants the chart gives that no scenario makes the controller use, each
/// with why it stays.
const UNUSED_BUT_NEEDED: &[((&str, &str, &str), &str)] = &[];

/// Runs the controller as the chart deploys it (its arguments, its
/// ServiceAccount's namespace as the client's default) through a
/// representative life of a Stack in `apps`: two replicas and the Lease,
/// a first apply with failed writes (ApplyFailed events, repeated: the
/// Event is patched), readiness, a change, a prune, and a deletion
/// behind the finalizer that takes the volume claims too. Then checks that
/// the chart's RBAC allows every request the controller made and every
/// check its writes imply, and that it grants nothing the controller did
/// not use (unless [`UNUSED_BUT_NEEDED`] says why).
fn chart_rbac_covers_the_controller(release_namespace: &str, values: &[&str]) -> Result<()> {
    const APPS: &str = "apps";
    let Some(rendered) = render_chart(release_namespace, values)? else {
        return Ok(());
    };
    let Some(mut cluster) = Cluster::start()? else {
        return Ok(());
    };
    let account = rendered
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .and_then(|o| o["metadata"]["name"].as_str())
        .context("the chart renders no ServiceAccount")?
        .to_string();
    let grants = Grants::for_service_account(&rendered, release_namespace, &account)?;
    anyhow::ensure!(!grants.rules.is_empty(), "nothing is bound to {account}");
    let args: Vec<String> = rendered
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .and_then(|d| d["spec"]["template"]["spec"]["containers"][0]["args"].as_array())
        .context("the chart renders no controller Deployment")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    // The metrics address is the test's; the retry delays are short.
    let mut args: Vec<String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| *a != "--metrics-addr" && (*i == 0 || args[*i - 1] != "--metrics-addr"))
        .map(|(_, a)| a.clone())
        .collect();
    args.extend(["--retry-base", "100ms", "--retry-cap", "1s"].map(String::from));
    for namespace in BTreeSet::from([release_namespace, APPS]) {
        if namespace != "default" {
            cluster.kubectl(&["create", "namespace", namespace])?;
        }
    }
    // In a pod, the client's default namespace is the pod's: the release's.
    let kubeconfig = cluster.dir.path().join("in-release-namespace");
    std::fs::write(
        &kubeconfig,
        cluster.server.kubeconfig().replace(
            "namespace: default",
            &format!("namespace: {release_namespace}"),
        ),
    )?;
    let faults = cluster.server.faults().clone();
    // Three failed attempts with the same error: the third one's Event
    // repeats the second's (same Stack version) and is patched.
    faults.fail_next(
        3,
        FaultKind::Internal,
        FaultFilter::on(Verb::Patch, "deployments"),
    );
    cluster.spawn_controller("one", &args, &kubeconfig)?;
    cluster.spawn_controller("two", &args, &kubeconfig)?;
    let _kubelet = cluster.kubelet();
    let stack = |cluster: &Cluster| -> Result<Option<Value>> {
        let out =
            cluster.kubectl_raw(&["get", "stack", "shapes", "-n", APPS, "-o", "json"], None)?;
        Ok(out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout))
            .transpose()?)
    };
    let ready = |cluster: &Cluster| -> Result<bool> {
        Ok(stack(cluster)?.is_some_and(|s| {
            s["metadata"]["generation"] == s["status"]["observedGeneration"]
                && s["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        }))
    };
    let exists = |cluster: &Cluster, resource: &str, name: &str| -> Result<bool> {
        let out = cluster.kubectl_raw(&["get", resource, name, "-n", APPS, "-o", "name"], None)?;
        Ok(out.status.success())
    };
    cluster.apply(&shapes(APPS, "nginx:1.27", true))?;
    wait_until(WAIT, "shapes Ready", || ready(&cluster)).with_context(|| cluster.diagnostics())?;
    let implied = implied_accesses(&cluster, APPS)?;

    cluster.apply(&shapes(APPS, "nginx:1.28", true))?;
    wait_until(WAIT, "the change applied and Ready", || ready(&cluster))
        .with_context(|| cluster.diagnostics())?;
    cluster.apply(&shapes(APPS, "nginx:1.28", false))?;
    wait_until(WAIT, "the cache pruned", || {
        Ok(!exists(&cluster, "deployment", "shapes-cache")?
            && !exists(&cluster, "service", "cache")?)
    })
    .with_context(|| cluster.diagnostics())?;
    wait_until(WAIT, "Ready after the prune", || ready(&cluster))
        .with_context(|| cluster.diagnostics())?;
    cluster.kubectl(&[
        "annotate",
        "stack",
        "shapes",
        "-n",
        APPS,
        "stackd.dev/delete-volumes=true",
    ])?;
    cluster.kubectl(&["delete", "stack", "shapes", "-n", APPS, "--wait=false"])?;
    wait_until(WAIT, "the Stack, its objects and its claims gone", || {
        Ok(stack(&cluster)?.is_none()
            && !exists(&cluster, "deployment", "shapes-web")?
            && !exists(&cluster, "persistentvolumeclaim", "shapes-shared")?)
    })
    .with_context(|| cluster.diagnostics())?;

    let requests: Vec<RequestRecord> = cluster.server.requests();
    let made: Vec<Access> = requests
        .iter()
        .filter(|r| is_stackd(r))
        .flat_map(RequestRecord::accesses)
        .collect();
    anyhow::ensure!(made.len() > 50, "{} requests from stackd", made.len());
    let all: BTreeSet<Access> = made.into_iter().chain(implied).collect();
    let mut used: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for access in &all {
        let scope = match &access.namespace {
            Some(namespace) => format!("in {namespace}"),
            None => "cluster-wide".to_string(),
        };
        used.entry(access.what()).or_default().insert(scope);
    }
    eprintln!("the controller used ({release_namespace} release, values {values:?}):");
    for ((verb, group, resource), scopes) in &used {
        eprintln!("  {verb} {group:?} {resource} {scopes:?}");
    }
    let denied: Vec<String> = all
        .iter()
        .filter(|a| !grants.allows(a))
        .map(ToString::to_string)
        .collect();
    anyhow::ensure!(
        denied.is_empty(),
        "the chart's RBAC does not grant what the controller did:\n  {}",
        denied.join("\n  ")
    );
    let allowed: BTreeMap<(String, String, String), &str> = UNUSED_BUT_NEEDED
        .iter()
        .map(|((verb, group, resource), why)| {
            (
                (verb.to_string(), group.to_string(), resource.to_string()),
                *why,
            )
        })
        .collect();
    let unused: BTreeSet<String> = grants
        .entries()
        .into_iter()
        .filter(|grant| !used.contains_key(&grant.what) && !allowed.contains_key(&grant.what))
        .map(|grant| grant.to_string())
        .collect();
    anyhow::ensure!(
        unused.is_empty(),
        "the chart grants what the controller never used (remove it, or say in \
         UNUSED_BUT_NEEDED why it stays):\n  {}",
        unused.iter().cloned().collect::<Vec<_>>().join("\n  ")
    );
    Ok(())
}

#[test]
fn the_cluster_scoped_chart_grants_exactly_what_the_controller_uses_in_every_namespace(
) -> Result<()> {
    chart_rbac_covers_the_controller("stackd-system", &[])
}

#[test]
fn the_namespace_scoped_chart_grants_exactly_what_the_controller_uses_in_its_namespace(
) -> Result<()> {
    chart_rbac_covers_the_controller("apps", &["namespaced-values.yaml"])
}
