//! The metrics server over real sockets: `/healthz` and `/readyz`
//! transitions, and a real Prometheus server (Debian's `prometheus`, on
//! loopback) scraping `/metrics` and answering PromQL queries about what it
//! scraped. Without `prometheus` installed the scrape test skips, unless
//! `CI` is set: then it fails.
// Tests may unwrap: a panic is how a test reports, helpers included.
#![allow(clippy::unwrap_used)]
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stackd::metrics::server::{self, CONTENT_TYPE};
use stackd::metrics::{Metrics, ReconcileResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

/// A response: status code, headers (names lowercased) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over HTTP/1.0, so the server closes the connection after
/// one response with no chunked body, and reading to the end is enough.
async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = timeout(Duration::from_secs(10), exchange).await??;
    let text = String::from_utf8(raw)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {text:?}"))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("bad status line {status_line:?}"))?
        .parse()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A running metrics server and the handles to steer and stop it.
struct Server {
    addr: SocketAddr,
    ready: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), stackd::metrics::Error>>,
}

async fn start_server(metrics: Metrics) -> Server {
    let listener = server::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ready, ready_rx) = watch::channel(false);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, metrics, ready_rx, async {
        let _ = stop_rx.await;
    }));
    Server {
        addr,
        ready,
        stop: Some(stop),
        task,
    }
}

impl Server {
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "the server ends cleanly on shutdown"
        );
    }
}

#[tokio::test]
async fn readyz_follows_the_first_sync_while_healthz_always_answers() {
    let metrics = Metrics::new();
    let server = start_server(metrics).await;

    let health = get(server.addr, "/healthz").await.unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let before = get(server.addr, "/readyz").await.unwrap();
    assert_eq!(before.status, 503, "{}", before.body);
    assert!(before.body.contains("not ready"), "{}", before.body);

    server.ready.send(true).unwrap();
    let after = get(server.addr, "/readyz").await.unwrap();
    assert_eq!((after.status, after.body.as_str()), (200, "ok\n"));
    assert_eq!(get(server.addr, "/healthz").await.unwrap().status, 200);

    // A controller that loses its footing (sets it back) is unready again.
    server.ready.send(false).unwrap();
    assert_eq!(get(server.addr, "/readyz").await.unwrap().status, 503);
    assert_eq!(get(server.addr, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(server.addr, "/nothing").await.unwrap().status, 404);

    let addr = server.addr;
    server.shut_down().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

#[tokio::test]
async fn metrics_are_served_in_the_text_format() {
    let metrics = Metrics::new();
    metrics.set_stack_ready("shop", true);
    let server = start_server(metrics.clone()).await;
    let response = get(server.addr, "/metrics").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(CONTENT_TYPE));
    // The same as encode(), but for the process's own numbers, which move.
    let stackd_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.contains("stackd_"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        stackd_lines(&response.body),
        stackd_lines(&metrics.encode())
    );
    assert!(response
        .body
        .contains("stackd_stack_ready{stack=\"shop\"} 1\n"));
    assert!(response.body.contains("\nprocess_open_fds "));
    server.shut_down().await;
}

#[tokio::test]
async fn binding_an_address_in_use_names_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let error = server::bind(&addr).await.unwrap_err();
    assert!(matches!(error, stackd::metrics::Error::BindFailed { addr: ref a, .. } if *a == addr));
    assert!(error.to_string().contains(&addr), "{error}");
    let error = server::bind("not-an-address").await.unwrap_err();
    assert!(error.to_string().contains("not-an-address"), "{error}");
}

/// `name` on `PATH`, or `None` after saying why the test skips; under CI
/// (the `CI` variable set) a missing tool fails the test instead.
fn required_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (Debian package prometheus) and CI is set"
        );
        eprintln!("skipped: {name} is not installed (Debian package prometheus)");
    }
    found
}

/// A Prometheus server in a temporary directory, killed when dropped (a
/// failing assertion included).
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts `binary` scraping `target` every second.
    fn start(binary: &Path, target: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: stackd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an instant PromQL query; the result vector as
    /// `(labels, value)` pairs.
    async fn query(&self, promql: &str) -> anyhow::Result<Vec<(Value, f64)>> {
        let response = get(
            self.addr,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )
        .await?;
        let json: Value = serde_json::from_str(&response.body)?;
        anyhow::ensure!(
            json["status"] == "success",
            "{promql}: {} {}",
            response.status,
            response.body
        );
        let result = json["data"]["result"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("{promql}: not a vector: {}", response.body))?;
        result
            .iter()
            .map(|sample| {
                let value = sample["value"][1]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("no value in {sample}"))?
                    .parse::<f64>()?;
                Ok((sample["metric"].clone(), value))
            })
            .collect()
    }

    /// The single value of `promql`, waiting (up to 30 s) until there is
    /// one for which `accept` holds; the last answer on failure.
    async fn value_when(&self, promql: &str, accept: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.query(promql).await;
            if let Ok([(_, value)]) = answer.as_deref() {
                if accept(*value) {
                    return *value;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: last answer {answer:?}\nprometheus log:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Percent-encodes a query parameter (every byte but the unreserved ones).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `n` reconciles of `stack` that each take about `each`.
async fn reconciles(metrics: &Metrics, stack: &str, n: usize, each: Duration) {
    for _ in 0..n {
        let measurer = metrics.count_and_measure(stack);
        if !each.is_zero() {
            sleep(each).await;
        }
        measurer.result(ReconcileResult::Success);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_endpoint_and_answers_promql() {
    let Some(binary) = required_tool("prometheus") else {
        return;
    };
    let metrics = Metrics::new();
    // Before the first scrape: ten no-op reconciles of shop, a ready stack
    // with its replicas, a failure, a source error and backend calls.
    reconciles(&metrics, "shop", 10, Duration::ZERO).await;
    metrics.set_stack_ready("shop", true);
    metrics.set_stack_ready("blog", false);
    metrics.set_service_replicas("shop", "web", "desired", 3);
    metrics.set_service_replicas("shop", "web", "running", 2);
    metrics.reconcile_failed("blog", "load_failed");
    metrics
        .count_and_measure("blog")
        .result(ReconcileResult::Error);
    metrics.source_error("blog", "parse");
    metrics.backend_request("docker", "observe", "success");
    metrics.backend_request("docker", "observe", "success");
    metrics.backend_request("docker", "create_container", "error");
    let server = start_server(metrics.clone()).await;
    let prometheus = Prometheus::start(&binary, server.addr);

    let up = prometheus
        .value_when("up{job=\"stackd\"}", |v| v == 1.0)
        .await;
    assert_eq!(up, 1.0);
    let version = env!("CARGO_PKG_VERSION");
    let info = prometheus.query("stackd_build_info").await.unwrap();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].0["version"], version);
    assert_eq!(info[0].1, 1.0);
    assert_eq!(
        prometheus
            .value_when("sum(stackd_reconcile_total)", |_| true)
            .await,
        11.0
    );
    let ready = prometheus.query("stackd_stack_ready == 1").await.unwrap();
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert_eq!(ready[0].0["stack"], "shop");
    assert_eq!(
        prometheus
            .value_when(
                "sum(stackd_service_replicas{state=\"desired\"}) - sum(stackd_service_replicas{state=\"running\"})",
                |_| true
            )
            .await,
        1.0
    );
    assert_eq!(
        prometheus
            .value_when(
                "sum by (outcome) (stackd_backend_requests_total{outcome=\"success\"})",
                |_| true
            )
            .await,
        2.0
    );
    assert_eq!(
        prometheus
            .value_when(
                "stackd_reconcile_errors_total{stack=\"blog\",reason=\"load_failed\"}",
                |_| true
            )
            .await,
        1.0
    );
    let process = prometheus
        .value_when("process_resident_memory_bytes{job=\"stackd\"}", |_| true)
        .await;
    assert!(process > 1e6, "{process}");

    // While Prometheus scrapes: ten more no-ops and ten that take 30 ms.
    reconciles(&metrics, "shop", 10, Duration::ZERO).await;
    reconciles(&metrics, "shop", 10, Duration::from_millis(30)).await;
    let shop = "stackd_reconcile_total{stack=\"shop\",result=\"success\"}";
    prometheus.value_when(shop, |v| v == 30.0).await;

    let rate = prometheus
        .value_when(&format!("rate({shop}[1m])"), |_| true)
        .await;
    assert!(rate > 0.0, "{rate}");
    // The first scrapes saw 10, the last 30.
    let span = prometheus
        .value_when(
            &format!("max_over_time({shop}[1m]) - min_over_time({shop}[1m])"),
            |_| true,
        )
        .await;
    assert_eq!(span, 20.0);
    // increase() extrapolates to the window's edges (by up to an interval
    // and a half on a few seconds of samples): more than 20, never less.
    let increase = prometheus
        .value_when(&format!("increase({shop}[1m])"), |_| true)
        .await;
    assert!((20.0..=50.0).contains(&increase), "{increase}");

    // 20 no-ops (under 1 ms) and 10 slow ones (30 ms and a little more):
    // the median is in the first bucket, the 90th percentile among the
    // slow ones.
    let quantile = |q: f64| {
        format!(
            "histogram_quantile({q}, sum by (le) (stackd_reconcile_duration_seconds_bucket{{stack=\"shop\"}}))"
        )
    };
    let p50 = prometheus.value_when(&quantile(0.5), |_| true).await;
    assert!(p50 <= 0.001, "{p50}");
    let p90 = prometheus.value_when(&quantile(0.9), |_| true).await;
    assert!(p90 > 0.025 && p90 <= 0.2, "{p90}");
    let count = prometheus
        .value_when(
            "stackd_reconcile_duration_seconds_count{stack=\"shop\"}",
            |_| true,
        )
        .await;
    assert_eq!(count, 30.0);
    // The rate of the buckets (what a dashboard plots) sees only the
    // recent reconciles, 10 fast and 10 slow of 20.
    let recent_p90 = prometheus
        .value_when(
            "histogram_quantile(0.9, sum by (le) (rate(stackd_reconcile_duration_seconds_bucket{stack=\"shop\"}[1m])))",
            |_| true,
        )
        .await;
    assert!(recent_p90 > 0.025 && recent_p90 <= 0.2, "{recent_p90}");

    // A deleted stack's series stop being exposed (stale after a scrape).
    metrics.forget_stack("blog");
    prometheus
        .value_when("count(stackd_stack_ready)", |v| v == 1.0)
        .await;

    drop(prometheus);
    server.shut_down().await;
}
