//! The in-memory Kubernetes API server under the real kubectl and kube-rs:
//! server-side apply of the Stack CRD and a Stack, printer columns,
//! `kubectl wait`, finalizers, garbage collection, apply conflicts,
//! watches from a resourceVersion, optimistic concurrency, faults and the
//! kubelet stand-in. No Docker engine needed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use stackd_e2e::kubeapi::{FaultFilter, FaultKind, KubeApiServer, Kubectl, Verb};
use stackd_e2e::{wait_until, workspace_root};

const DEADLINE: Duration = Duration::from_secs(30);

fn crd_path() -> String {
    workspace_root()
        .join("crds/stack.yaml")
        .to_string_lossy()
        .into_owned()
}

fn stack_path() -> String {
    workspace_root()
        .join("manifests/agents/stack.yaml")
        .to_string_lossy()
        .into_owned()
}

/// A server with the Stack CRD and the agents Stack applied by kubectl.
fn with_agents() -> Result<Option<(KubeApiServer, Kubectl)>> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(None);
    };
    kubectl.ok(&["apply", "--server-side", "-f", &crd_path()])?;
    kubectl.ok(&["apply", "--server-side", "-f", &stack_path()])?;
    Ok(Some((server, kubectl)))
}

fn get_json(kubectl: &Kubectl, args: &[&str]) -> Result<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json", "--show-managed-fields"]);
    let out = kubectl.ok(&all)?;
    serde_json::from_str(&out).context("kubectl -o json printed JSON")
}

/// `kubectl create configmap NAME --from-literal=a=1` (sent as protobuf).
fn create_configmap(kubectl: &Kubectl, name: &str) -> Result<()> {
    kubectl.ok(&["create", "configmap", name, "--from-literal=a=1"])?;
    Ok(())
}

/// Waits for a background kubectl to exit (killing it at the deadline);
/// returns its exit success and output.
fn finish(mut child: Child) -> Result<(bool, String)> {
    let mut exited = None;
    wait_until(DEADLINE, "the background kubectl to exit", || {
        exited = child.try_wait()?;
        Ok(exited.is_some())
    })
    .inspect_err(|_| {
        let _ = child.kill();
        let _ = child.wait();
    })?;
    let output = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[test]
fn kubectl_server_side_apply_creates_the_stack_crd_and_a_stack() -> Result<()> {
    let Some((server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    let stack = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(stack["kind"], "Stack");
    assert_eq!(stack["metadata"]["namespace"], "default");
    assert_eq!(stack["metadata"]["generation"], 1);
    assert_eq!(stack["spec"]["compose"]["name"], "agents");
    assert_eq!(stack["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(stack["metadata"]["managedFields"][0]["operation"], "Apply");
    let crd = get_json(&kubectl, &["crd", "stacks.stackd.dev"])?;
    let established = crd["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    });
    assert!(established, "{crd}");
    let applies: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.resource.as_deref() == Some("stacks"))
        .collect();
    assert_eq!(applies.len(), 1, "{applies:?}");
    assert_eq!(applies[0].field_manager.as_deref(), Some("kubectl"));
    assert_eq!(applies[0].status, 201);
    let again = kubectl.ok(&["apply", "--server-side", "-f", &stack_path()])?;
    assert!(again.contains("serverside-applied"), "{again}");
    let unchanged = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(
        unchanged["metadata"]["resourceVersion"], stack["metadata"]["resourceVersion"],
        "a no-op apply does not write"
    );
    Ok(())
}

#[test]
fn a_stack_is_checked_against_the_crd_schema() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    let stack = |spec: &str| {
        format!("apiVersion: stackd.dev/v1alpha1\nkind: Stack\nmetadata:\n  name: other\nspec:\n  compose: {{}}\n{spec}")
    };
    let typo = kubectl.with_manifest(&["apply", "--server-side"], &stack("  suspnd: true\n"))?;
    assert!(!typo.success(), "{typo}");
    assert!(
        typo.stderr.contains(r#"unknown field "spec.suspnd""#),
        "{typo}"
    );
    let pruned = kubectl.with_manifest(
        &["apply", "--server-side", "--validate=false"],
        &stack("  suspnd: true\n"),
    )?;
    assert!(pruned.success(), "{pruned}");
    assert_eq!(
        get_json(&kubectl, &["stack", "other"])?["spec"],
        json!({"compose": {}, "prune": true, "suspend": false})
    );
    let wrong = kubectl.with_manifest(&["apply", "--server-side"], &stack("  suspend: maybe\n"))?;
    assert!(!wrong.success(), "{wrong}");
    assert!(
        wrong
            .stderr
            .contains("spec.suspend in body must be of type boolean"),
        "{wrong}"
    );
    Ok(())
}

#[test]
fn kubectl_get_stacks_prints_the_printer_columns_of_the_crd() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"serviceCount":4,"conditions":[{"type":"Ready","status":"False","reason":"Converging","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ])?;
    let table = kubectl.ok(&["get", "stacks"])?;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "READY", "SERVICES", "AGE"], "{table}");
    assert_eq!(lines[1][..3], ["agents", "False", "4"], "{table}");
    let short = kubectl.ok(&["get", "stk", "agents", "--no-headers"])?;
    assert!(short.starts_with("agents"), "{short}");
    Ok(())
}

#[test]
fn a_ready_condition_in_status_lets_kubectl_wait_succeed() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    let waiting = kubectl.spawn(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=20s",
        "stack/agents",
    ])?;
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Converged","message":"all services ready","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ])?;
    let (ok, output) = finish(waiting)?;
    assert!(ok, "kubectl wait failed: {output}");
    assert!(output.contains("condition met"), "{output}");
    Ok(())
}

#[test]
fn a_status_write_to_the_main_resource_is_ignored_when_status_is_a_subresource() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true},"status":{"serviceCount":9}}"#,
    ])?;
    let stack = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(stack["spec"]["suspend"], true);
    assert!(stack["status"].is_null(), "{}", stack["status"]);
    assert_eq!(
        stack["metadata"]["generation"], 2,
        "a spec change bumps the generation"
    );
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false},"status":{"serviceCount":9}}"#,
    ])?;
    let stack = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(
        stack["spec"]["suspend"], true,
        "a status write leaves spec alone"
    );
    assert_eq!(stack["status"]["serviceCount"], 9);
    assert_eq!(
        stack["metadata"]["generation"], 2,
        "a status change keeps the generation"
    );
    Ok(())
}

#[test]
fn kubectl_delete_of_a_stack_with_a_finalizer_waits_until_the_finalizer_is_removed() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["stackd.dev/cleanup"]}}"#,
    ])?;
    let mut deleting = kubectl.spawn(&["delete", "stack", "agents", "--timeout=30s"])?;
    wait_until(DEADLINE, "the deletionTimestamp", || {
        let stack = get_json(&kubectl, &["stack", "agents"])?;
        Ok(!stack["metadata"]["deletionTimestamp"].is_null())
    })?;
    ensure!(
        deleting.try_wait()?.is_none(),
        "kubectl delete returned while the finalizer was still there"
    );
    let stack = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(
        stack["metadata"]["finalizers"],
        json!(["stackd.dev/cleanup"])
    );
    kubectl.ok(&[
        "patch",
        "stack",
        "agents",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])?;
    let (ok, output) = finish(deleting)?;
    assert!(ok, "kubectl delete failed: {output}");
    let gone = kubectl.run(&["get", "stack", "agents"])?;
    assert!(!gone.success());
    assert!(
        gone.stderr.contains("NotFound") || gone.stderr.contains("not found"),
        "{gone}"
    );
    Ok(())
}

#[test]
fn a_dependent_with_an_owner_reference_is_collected_with_its_owner() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    let uid = get_json(&kubectl, &["stack", "agents"])?["metadata"]["uid"]
        .as_str()
        .context("a uid")?
        .to_string();
    let dependents = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: agents-config\n  ownerReferences:\n  - apiVersion: stackd.dev/v1alpha1\n    kind: Stack\n    name: agents\n    uid: {uid}\n    controller: true\ndata:\n  a: b\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unowned\ndata:\n  a: b\n"
    );
    kubectl
        .with_manifest(&["apply", "--server-side"], &dependents)?
        .ok()?;
    kubectl.ok(&["delete", "stack", "agents"])?;
    let left = kubectl.ok(&["get", "configmaps", "-o", "name"])?;
    assert_eq!(left.trim(), "configmap/unowned");
    Ok(())
}

#[test]
fn foreground_deletion_removes_dependents_first_and_orphaning_keeps_them() -> Result<()> {
    let Some((_server, kubectl)) = with_agents()? else {
        return Ok(());
    };
    let owned_by = |uid: &str, name: &str, finalizer: bool| {
        let finalizers = if finalizer {
            "  finalizers: [stackd.dev/hold]\n"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{finalizers}  ownerReferences:\n  - apiVersion: stackd.dev/v1alpha1\n    kind: Stack\n    name: agents\n    uid: {uid}\n    blockOwnerDeletion: true\n"
        )
    };
    let uid = get_json(&kubectl, &["stack", "agents"])?["metadata"]["uid"]
        .as_str()
        .context("a uid")?
        .to_string();
    kubectl
        .with_manifest(&["apply", "--server-side"], &owned_by(&uid, "held", true))?
        .ok()?;
    kubectl.ok(&[
        "delete",
        "stack",
        "agents",
        "--cascade=foreground",
        "--wait=false",
    ])?;
    let stack = get_json(&kubectl, &["stack", "agents"])?;
    assert_eq!(
        stack["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "{stack}"
    );
    let held = get_json(&kubectl, &["configmap", "held"])?;
    assert!(!held["metadata"]["deletionTimestamp"].is_null(), "{held}");
    kubectl.ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])?;
    let left = kubectl.ok(&["get", "stacks,configmaps", "-o", "name"])?;
    assert_eq!(left.trim(), "", "the dependent went, then the owner");

    kubectl.ok(&["apply", "--server-side", "-f", &stack_path()])?;
    let uid = get_json(&kubectl, &["stack", "agents"])?["metadata"]["uid"]
        .as_str()
        .context("a uid")?
        .to_string();
    kubectl
        .with_manifest(&["apply", "--server-side"], &owned_by(&uid, "kept", false))?
        .ok()?;
    kubectl.ok(&["delete", "stack", "agents", "--cascade=orphan"])?;
    let kept = get_json(&kubectl, &["configmap", "kept"])?;
    assert!(kept["metadata"]["ownerReferences"].is_null(), "{kept}");
    Ok(())
}

#[test]
fn two_field_managers_applying_different_values_conflict_and_force_wins() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    let config = |value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  key: {value}\n  other: x\n")
    };
    kubectl
        .with_manifest(
            &["apply", "--server-side", "--field-manager=first"],
            &config("one"),
        )?
        .ok()?;
    let conflict = kubectl.with_manifest(
        &["apply", "--server-side", "--field-manager=second"],
        &config("two"),
    )?;
    assert!(!conflict.success(), "{conflict}");
    assert!(
        conflict.stderr.contains(r#"conflict with "first""#)
            && conflict.stderr.contains(".data.key"),
        "{conflict}"
    );
    let status = server.requests().last().map(|r| r.status);
    assert_eq!(status, Some(409));
    kubectl
        .with_manifest(
            &[
                "apply",
                "--server-side",
                "--field-manager=second",
                "--force-conflicts",
            ],
            &config("two"),
        )?
        .ok()?;
    let cm = get_json(&kubectl, &["configmap", "shared"])?;
    assert_eq!(cm["data"]["key"], "two");
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["first", "second"], "both still own .data.other");
    let dropped = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  key: two\n";
    kubectl
        .with_manifest(
            &["apply", "--server-side", "--field-manager=second"],
            dropped,
        )?
        .ok()?;
    let cm = get_json(&kubectl, &["configmap", "shared"])?;
    assert_eq!(cm["data"]["other"], "x", "first still owns .data.other");
    kubectl
        .with_manifest(
            &["apply", "--server-side", "--field-manager=first"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n",
        )?
        .ok()?;
    let cm = get_json(&kubectl, &["configmap", "shared"])?;
    assert_eq!(
        cm["data"],
        json!({"key": "two"}),
        "no one owns .data.other any more"
    );
    Ok(())
}

#[test]
fn kubectl_replace_with_a_stale_resource_version_is_a_conflict() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    create_configmap(&kubectl, "settings")?;
    let stale = get_json(&kubectl, &["configmap", "settings"])?;
    kubectl.ok(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])?;
    let mut edited = stale.clone();
    edited["data"]["a"] = json!("3");
    let replace = kubectl.with_manifest(&["replace"], &edited.to_string())?;
    assert!(!replace.success(), "{replace}");
    assert!(
        replace.stderr.contains("the object has been modified"),
        "{replace}"
    );
    assert_eq!(server.requests().last().map(|r| r.status), Some(409));
    let mut fresh = get_json(&kubectl, &["configmap", "settings"])?;
    fresh["data"]["a"] = json!("3");
    kubectl
        .with_manifest(&["replace"], &fresh.to_string())?
        .ok()?;
    assert_eq!(
        get_json(&kubectl, &["configmap", "settings"])?["data"]["a"],
        "3"
    );
    Ok(())
}

/// The events of a watch, read from a raw HTTP/1.1 stream until `enough`.
fn watch_events(
    server: &KubeApiServer,
    path: &str,
    enough: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let mut stream = TcpStream::connect(server.addr())?;
    stream.set_read_timeout(Some(DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
        server.addr()
    )?;
    let mut reader = BufReader::new(stream);
    let mut events = Vec::new();
    let mut line = String::new();
    while !enough(&events) {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the watch ended after {events:?}");
        }
        if line.starts_with('{') {
            events.push(serde_json::from_str(line.trim())?);
        }
    }
    Ok(events)
}

#[test]
fn a_watch_from_a_resource_version_sees_the_changes_after_it() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    create_configmap(&kubectl, "before")?;
    let from = server.revision();
    create_configmap(&kubectl, "after")?;
    kubectl.ok(&[
        "patch",
        "configmap",
        "before",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])?;
    kubectl.ok(&["delete", "configmap", "after"])?;
    let events = watch_events(
        &server,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={from}"),
        |events| events.len() >= 3,
    )?;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".to_string(), "after".to_string()),
            ("MODIFIED".to_string(), "before".to_string()),
            ("DELETED".to_string(), "after".to_string()),
        ]
    );
    let selected = watch_events(
        &server,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={from}&fieldSelector=metadata.name%3Dbefore"),
        |events| !events.is_empty(),
    )?;
    assert_eq!(selected[0]["type"], "MODIFIED");
    let named = watch_events(
        &server,
        &format!("/api/v1/namespaces/default/configmaps/before?watch=true&resourceVersion={from}"),
        |events| !events.is_empty(),
    )?;
    assert_eq!(named[0]["type"], "MODIFIED");
    assert_eq!(named[0]["object"]["metadata"]["name"], "before");
    server.forget_history();
    let gone = watch_events(
        &server,
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={from}"),
        |events| !events.is_empty(),
    )?;
    assert_eq!(gone[0]["type"], "ERROR");
    assert_eq!(gone[0]["object"]["code"], 410);
    assert_eq!(gone[0]["object"]["reason"], "Expired");
    Ok(())
}

#[test]
fn injected_faults_fail_the_chosen_requests_and_then_stop() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    create_configmap(&kubectl, "settings")?;
    server.faults().fail_next(
        1,
        FaultKind::Internal,
        FaultFilter::on(Verb::Get, "configmaps"),
    );
    let failed = kubectl.run(&["get", "configmap", "settings"])?;
    assert!(!failed.success(), "{failed}");
    assert!(failed.stderr.contains("injected fault"), "{failed}");
    kubectl.ok(&["get", "configmap", "settings"])?;
    server.faults().fail_next(
        1,
        FaultKind::Conflict,
        FaultFilter::on(Verb::Patch, "configmaps"),
    );
    let conflict = kubectl.run(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])?;
    assert!(!conflict.success(), "{conflict}");
    assert_eq!(server.faults().injected(), 2);
    let statuses: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.resource.as_deref() == Some("configmaps"))
        .map(|r| r.status)
        .collect();
    assert!(
        statuses.contains(&500) && statuses.contains(&409),
        "{statuses:?}"
    );
    Ok(())
}

#[test]
fn the_kubelet_stand_in_rolls_out_only_the_workloads_it_is_allowed_to() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    let deployment = |name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: busybox\n"
        )
    };
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: busybox\n";
    let manifests = format!("{}---\n{}---\n{job}", deployment("web"), deployment("db"));
    kubectl
        .with_manifest(&["apply", "--server-side"], &manifests)?
        .ok()?;
    let kubelet = server.kubelet().only(&["web", "migrate"]).spawn();
    let rollout = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=20s"])?;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    kubectl.ok(&[
        "wait",
        "--for=condition=Complete",
        "--timeout=20s",
        "job/migrate",
    ])?;
    let db = get_json(&kubectl, &["deployment", "db"])?;
    assert!(
        db["status"].is_null(),
        "db was not allowed: {}",
        db["status"]
    );
    kubelet.allow("db");
    let rollout = kubectl.ok(&["rollout", "status", "deployment/db", "--timeout=20s"])?;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    let db = get_json(&kubectl, &["deployment", "db"])?;
    assert_eq!(db["status"]["readyReplicas"], 2);
    assert_eq!(db["status"]["observedGeneration"], 1);
    kubectl.ok(&["scale", "deployment/web", "--replicas=4"])?;
    let rollout = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=20s"])?;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    let web = get_json(&kubectl, &["deployment", "web"])?;
    assert_eq!(web["spec"]["replicas"], 4);
    assert_eq!(web["metadata"]["generation"], 2);
    assert_eq!(web["status"]["readyReplicas"], 4);
    Ok(())
}

#[test]
fn kubectl_create_generators_work_though_they_send_protobuf() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    kubectl.ok(&["create", "namespace", "team"])?;
    kubectl.ok(&[
        "create",
        "-n",
        "team",
        "secret",
        "generic",
        "token",
        "--from-literal=key=s3cret",
    ])?;
    kubectl.ok(&["create", "-n", "team", "serviceaccount", "runner"])?;
    create_configmap(&kubectl, "settings")?;
    let secret = get_json(&kubectl, &["-n", "team", "secret", "token"])?;
    assert_eq!(secret["data"]["key"], "czNjcmV0");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        get_json(&kubectl, &["configmap", "settings"])?["data"],
        json!({"a": "1"})
    );
    kubectl.ok(&["get", "-n", "team", "serviceaccount", "runner"])?;
    let deployment = kubectl.run(&["create", "deployment", "web", "--image=busybox"])?;
    assert!(!deployment.success());
    assert!(
        deployment.stderr.contains("send application/json"),
        "{deployment}"
    );
    Ok(())
}

#[test]
fn unknown_paths_and_verbs_answer_a_status_not_a_crash() -> Result<()> {
    let server = KubeApiServer::start()?;
    let Some(kubectl) = Kubectl::new(&server)? else {
        return Ok(());
    };
    let missing = kubectl.run(&["get", "--raw", "/apis/nothing.example/v1/widgets"])?;
    assert!(!missing.success());
    assert!(
        missing.stderr.contains("NotFound") || missing.stderr.contains("could not find"),
        "{missing}"
    );
    let scale = kubectl.run(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ])?;
    assert!(!scale.success(), "{scale}");
    let version = kubectl.ok(&["version", "-o", "json"])?;
    let version: Value = serde_json::from_str(&version)?;
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.37.1");
    Ok(())
}

type ConfigMapEvents = futures::stream::BoxStream<
    'static,
    Result<
        kube::runtime::watcher::Event<k8s_openapi::api::core::v1::ConfigMap>,
        kube::runtime::watcher::Error,
    >,
>;

/// Reads the watcher until it reports the configmap with `key=wanted`.
async fn saw(events: &mut ConfigMapEvents, wanted: &str) -> Result<()> {
    use futures::StreamExt;
    use kube::runtime::watcher::Event;
    while let Some(event) = events.next().await {
        let object = match event? {
            Event::Apply(cm) | Event::InitApply(cm) => cm,
            _ => continue,
        };
        if object
            .data
            .unwrap_or_default()
            .get("key")
            .map(String::as_str)
            == Some(wanted)
        {
            return Ok(());
        }
    }
    bail!("the watch stream ended before key={wanted}")
}

#[tokio::test]
async fn kube_rs_applies_a_configmap_and_a_watcher_sees_its_update() -> Result<()> {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    use kube::runtime::watcher;

    let server = KubeApiServer::start()?;
    let config = kube::Config::new(server.url().parse()?);
    let client = kube::Client::try_from(config)?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let manifest = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"key": value}});
    let created = api
        .patch(
            "settings",
            &PatchParams::apply("stackd"),
            &Patch::Apply(manifest("one")),
        )
        .await?;
    assert_eq!(
        created
            .data
            .unwrap_or_default()
            .get("key")
            .map(String::as_str),
        Some("one")
    );
    let mut events: ConfigMapEvents = watcher(api.clone(), watcher::Config::default()).boxed();
    tokio::time::timeout(DEADLINE, saw(&mut events, "one"))
        .await
        .context("the watcher never listed the configmap")??;
    api.patch(
        "settings",
        &PatchParams::apply("stackd"),
        &Patch::Apply(manifest("two")),
    )
    .await?;
    tokio::time::timeout(DEADLINE, saw(&mut events, "two"))
        .await
        .context("the watcher never saw the update")??;
    let conflict = api
        .patch(
            "settings",
            &PatchParams::apply("other"),
            &Patch::Apply(manifest("three")),
        )
        .await;
    match conflict {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => bail!("expected a 409 conflict, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn kube_rs_controller_calls_work_against_the_server() -> Result<()> {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::events::v1::Event as KubeEvent;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
    use kube::runtime::events::{Event, EventType, Recorder};
    use kube::runtime::watcher;

    let server = KubeApiServer::start()?;
    let client = kube::Client::try_from(kube::Config::new(server.url().parse()?))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    });
    let apply = PatchParams::apply("stackd").force();
    deployments
        .patch("web", &apply, &Patch::Apply(&manifest))
        .await?;

    let mut streamed = watcher(
        deployments.clone(),
        watcher::Config::default()
            .labels("app=web")
            .streaming_lists(),
    )
    .boxed();
    let mut listed = false;
    while let Some(event) = tokio::time::timeout(DEADLINE, streamed.next()).await? {
        if let watcher::Event::InitDone = event? {
            listed = true;
            break;
        }
    }
    assert!(listed, "the streaming list never finished");
    let metadata = deployments.list_metadata(&ListParams::default()).await?;
    assert_eq!(metadata.items.len(), 1);
    assert_eq!(metadata.items[0].metadata.name.as_deref(), Some("web"));
    let partial: Api<kube::core::PartialObjectMeta<Deployment>> =
        Api::namespaced(client.clone(), "default");
    let mut names = watcher(partial, watcher::Config::default()).boxed();
    let mut seen = None;
    while let Some(event) = tokio::time::timeout(DEADLINE, names.next()).await? {
        if let watcher::Event::InitApply(meta) = event? {
            seen = meta.metadata.name;
            break;
        }
    }
    assert_eq!(seen.as_deref(), Some("web"));

    let status = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1},
    });
    deployments
        .patch_status(
            "web",
            &PatchParams::apply("stackd-status"),
            &Patch::Apply(&status),
        )
        .await?;
    let web = deployments.get_status("web").await?;
    assert_eq!(web.status.and_then(|s| s.ready_replicas), Some(2));
    assert_eq!(web.metadata.generation, Some(1));

    let recorder = Recorder::new(client.clone(), "stackd".into());
    let reference = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some("web".into()),
        namespace: Some("default".into()),
        uid: web.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Normal,
        reason: "Applied".into(),
        note: Some("applied by a test".into()),
        action: "Apply".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await?;
    recorder.publish(&event, &reference).await?;
    let events: Api<KubeEvent> = Api::namespaced(client.clone(), "default");
    let published = events.list(&ListParams::default()).await?;
    assert_eq!(published.items.len(), 1);
    assert_eq!(
        published.items[0].series.as_ref().map(|s| s.count),
        Some(2),
        "the second publish patched the series"
    );
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let core = core.list(&ListParams::default()).await?;
    assert_eq!(
        core.items.len(),
        1,
        "core and events.k8s.io Events are one resource"
    );
    assert_eq!(core.items[0].message.as_deref(), Some("applied by a test"));
    assert_eq!(core.items[0].involved_object.name.as_deref(), Some("web"));

    deployments.delete("web", &DeleteParams::default()).await?;
    let gone = deployments.get_opt("web").await?;
    assert!(gone.is_none());
    Ok(())
}

#[test]
fn the_stackd_kube_apiserver_binary_serves_kubectl_until_it_is_stopped() -> Result<()> {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let Some(kubectl) = stackd_e2e::kubeapi::kubectl_bin()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let mut server = Command::new(env!("CARGO_BIN_EXE_stackd-kube-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kubelet", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = server.stdout.take().context("the server's stdout")?;
    let mut url = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte)? == 1 && byte[0] != b'\n' {
        url.push(byte[0]);
    }
    let url = String::from_utf8(url)?;
    let result = (|| -> Result<()> {
        ensure!(url.starts_with("http://127.0.0.1:"), "printed {url:?}");
        let run = stackd_e2e::run(
            {
                let mut c = Command::new(&kubectl);
                c.arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(dir.path().join("cache"))
                    .args(["get", "namespaces", "-o", "name"]);
                c
            },
            DEADLINE,
        )?
        .ok()?;
        assert!(run.stdout.contains("namespace/default"), "{run}");
        Ok(())
    })();
    server.kill()?;
    server.wait()?;
    result
}
