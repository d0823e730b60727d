//! A real Prometheus server under test (Debian's `prometheus`, on loopback):
//! started in a private directory with scrape targets and rule files,
//! queried through its HTTP API, killed when dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `name` on `PATH`, or `None` after saying why the test skips; when the
/// `CI` variable is set a missing tool is an error instead (CI installs it).
pub fn required_tool(name: &str) -> Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            bail!("{name} is not installed (Debian package prometheus) and CI is set");
        }
        eprintln!("skipped: {name} is not installed (Debian package prometheus)");
    }
    Ok(found)
}

/// One series of a query result: its labels and its values (one for an
/// instant query, one per step for a range query).
#[derive(Debug, Clone)]
pub struct Series {
    /// The label set (`__name__` included when the query kept it).
    pub labels: Value,
    /// The sample values, NaN and infinities as Prometheus gave them.
    pub values: Vec<f64>,
}

impl Series {
    /// The value of label `name`, if any.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels[name].as_str()
    }

    /// True when at least one value is a finite number.
    pub fn has_finite_value(&self) -> bool {
        self.values.iter().any(|v| v.is_finite())
    }
}

/// A Prometheus process scraping its targets every second.
pub struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    started: SystemTime,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `binary` scraping `targets` (`host:port`) under job `stackd`
    /// every second and evaluating `rule_files` every second; waits until
    /// it is ready.
    pub fn start(binary: &Path, targets: &[String], rule_files: &[PathBuf]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("stackd-prom-").tempdir()?;
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - '{}'\n", p.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:{}\n{}\
             scrape_configs:\n  - job_name: stackd\n    static_configs:\n      - targets: [{}]\n",
            if rules.is_empty() { " []" } else { "" },
            rules.concat(),
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, config)?;
        let port = free_port()?;
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut prometheus = Self {
            child,
            port,
            log,
            started: SystemTime::now(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = get(port, "/-/ready") {
                return Ok(prometheus);
            }
            if let Some(status) = prometheus.child.try_wait()? {
                bail!("prometheus exited ({status}):\n{}", prometheus.log());
            }
            if Instant::now() > deadline {
                bail!("prometheus not ready within 30 s:\n{}", prometheus.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `data` of an API answer to `GET path_and_query`; an error
    /// carrying Prometheus's message when the status is not `success`.
    pub fn api(&self, path_and_query: &str) -> Result<Value> {
        let (code, body) = get(self.port, path_and_query)?;
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("GET {path_and_query}: {code} {body}"))?;
        if json["status"] != "success" {
            bail!(
                "{code} {}: {}",
                json["errorType"].as_str().unwrap_or("error"),
                json["error"].as_str().unwrap_or(&body)
            );
        }
        Ok(json["data"].clone())
    }

    /// An instant query at now.
    pub fn query(&self, promql: &str) -> Result<Vec<Series>> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(promql)))?;
        series_of(&data)
    }

    /// A range query from when the server started to now, one step a second
    /// (what a dashboard panel asks for).
    pub fn query_range(&self, promql: &str) -> Result<Vec<Series>> {
        let start = unix(self.started) - 1.0;
        let end = unix(SystemTime::now());
        let data = self.api(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step=1",
            percent_encode(promql)
        ))?;
        series_of(&data)
    }

    /// The values of label `label` on the series `selector` matches
    /// (Grafana's `label_values(selector, label)`).
    pub fn label_values(&self, selector: &str, label: &str) -> Result<Vec<String>> {
        let data = self.api(&format!(
            "/api/v1/label/{label}/values?match[]={}",
            percent_encode(selector)
        ))?;
        let values = data
            .as_array()
            .with_context(|| format!("label values are not a list: {data}"))?;
        Ok(values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    /// Polls `promql` (instant) until `accept` holds for its result;
    /// returns that result, or fails after `within` with the last answer.
    pub fn wait_for(
        &self,
        promql: &str,
        within: Duration,
        accept: impl Fn(&[Series]) -> bool,
    ) -> Result<Vec<Series>> {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.query(promql);
            if let Ok(series) = &answer {
                if accept(series) {
                    return Ok(series.clone());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{promql}: not as expected within {within:?}; last answer {answer:?}\nprometheus log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The series of a `vector` or `matrix` result.
fn series_of(data: &Value) -> Result<Vec<Series>> {
    let parse = |v: &Value| -> Result<f64> {
        let text = v[1].as_str().with_context(|| format!("no value in {v}"))?;
        // Prometheus writes "NaN", "+Inf" and "-Inf", which parse() takes.
        text.parse::<f64>()
            .with_context(|| format!("bad sample value {text}"))
    };
    let result = data["result"]
        .as_array()
        .with_context(|| format!("no result in {data}"))?;
    match data["resultType"].as_str() {
        Some("vector") => result
            .iter()
            .map(|s| {
                Ok(Series {
                    labels: s["metric"].clone(),
                    values: vec![parse(&s["value"])?],
                })
            })
            .collect(),
        Some("matrix") => result
            .iter()
            .map(|s| {
                let values = s["values"]
                    .as_array()
                    .with_context(|| format!("no values in {s}"))?
                    .iter()
                    .map(parse)
                    .collect::<Result<Vec<_>>>()?;
                Ok(Series {
                    labels: s["metric"].clone(),
                    values,
                })
            })
            .collect(),
        // A scalar (`vector(0)` folded, `time()`): one unlabelled value.
        Some("scalar") => Ok(vec![Series {
            labels: Value::Object(Default::default()),
            values: vec![parse(&data["result"])?],
        }]),
        other => bail!("unexpected result type {other:?}: {data}"),
    }
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:`port`: status code and body.
fn get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("GET {path}: no status line in {head:?}"))?;
    Ok((code, body.to_owned()))
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

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
