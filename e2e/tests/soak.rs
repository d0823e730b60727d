//! The soak run: 20 stacks (compose folders and Stack manifests, each with
//! a named volume holding a marker file) kept by one `stackd watch` that
//! reaches the engine through the fault proxy, for `STACKD_SOAK_SECONDS`
//! (default 120; `just soak` runs 1800) of seeded chaos: valid and invalid
//! edits, containers killed and removed by hand, the Docker connection
//! severed or cut for seconds, the controller SIGKILLed and restarted.
//! Throughout, no container ever runs what only an invalid file asked for.
//! Afterwards every stack converges to its last valid file, an unlabelled
//! container beside them was never touched, every volume keeps its marker,
//! and the controller's memory did not grow over the run's last two thirds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use stackd_e2e::{
    docker, docker_ok, inspect_container, seed, volume_exists, ApiProxy, Endpoint, Expected, Fault,
    FaultPlan, ProxyOptions, Rng, Run, WatchDir, IDLE_COMMAND, IMAGE, PROJECT_LABEL,
};

const STACKS: usize = 20;
const DEFAULT_SECONDS: u64 = 120;
/// Resyncs run during the soak too (they are where a leak per round would
/// show); retries are quick so the final converge is.
const FLAGS: [&str; 6] = [
    "--resync",
    "30s",
    "--retry-base",
    "200ms",
    "--retry-cap",
    "3s",
];
/// How long the first and the final converge of all stacks may take on a
/// loaded machine.
const CONVERGE: Duration = Duration::from_secs(180);
/// The crash-loop brake (DESIGN.md rule 4: past 5 starts of stopped
/// containers of one stack within 10 minutes, it is Stalled until its spec
/// changes) is a promise, not a fault, so the chaos stays under it: at most
/// this many hand kills per stack in the window, leaving the rest to
/// containers a SIGKILL or a cut connection leaves stopped. Removals are
/// not counted by the brake and are not limited.
const KILLS_PER_WINDOW: usize = 2;
const BRAKE_WINDOW: Duration = Duration::from_secs(600);
/// The largest RSS growth allowed over the run's last two thirds.
const MAX_GROWTH: f64 = 0.10;

/// One service of a stack's desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Service {
    replicas: u32,
    /// Its `V` variable: numbered per stack, never reused, so a value seen
    /// on a container tells which file asked for it.
    v: u32,
}

/// A stack's desired state: `app` (which mounts the volume) always,
/// `extra` added and removed by the chaos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Desired {
    app: Service,
    extra: Option<Service>,
}

/// How an invalid file is broken; each also changes `app`'s `V`, so a
/// file applied in part would show on the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// An unclosed flow mapping: not YAML.
    UnclosedMapping,
    /// `replicas: many`: not a number.
    WordReplicas,
    /// `restart: sometimes`: no such policy.
    UnknownRestart,
    /// A network the file does not define.
    UndefinedNetwork,
    /// `prune: sometimes` in a Stack manifest's spec: not a boolean.
    SpecField,
}

const COMPOSE_FLAWS: [Flaw; 4] = [
    Flaw::UnclosedMapping,
    Flaw::WordReplicas,
    Flaw::UnknownRestart,
    Flaw::UndefinedNetwork,
];

impl Desired {
    fn expected(&self) -> BTreeMap<String, Expected> {
        let mut services = BTreeMap::new();
        for (name, service) in [("app", Some(self.app)), ("extra", self.extra)] {
            if let Some(s) = service {
                services.insert(
                    name.to_owned(),
                    Expected::with_env(s.replicas, "V", &s.v.to_string()),
                );
            }
        }
        services
    }

    fn containers(&self) -> u32 {
        self.app.replicas + self.extra.map_or(0, |e| e.replicas)
    }

    /// The compose file, broken as `flaw` says (a [`Flaw::SpecField`] is
    /// the manifest's business and leaves it valid).
    fn compose(&self, flaw: Option<Flaw>) -> String {
        let mut yaml = String::from("services:\n");
        yaml.push_str(&service("app", self.app, true, flaw));
        if let Some(extra) = self.extra {
            yaml.push_str(&service("extra", extra, false, None));
        }
        yaml.push_str("volumes:\n  data: {}\n");
        yaml
    }
}

fn service(name: &str, s: Service, volume: bool, flaw: Option<Flaw>) -> String {
    let restart = if flaw == Some(Flaw::UnknownRestart) {
        "sometimes"
    } else {
        "always"
    };
    let environment = if flaw == Some(Flaw::UnclosedMapping) {
        format!("{{V: \"{}\"", s.v)
    } else {
        format!("{{V: \"{}\"}}", s.v)
    };
    let replicas = if flaw == Some(Flaw::WordReplicas) {
        "many".to_owned()
    } else {
        s.replicas.to_string()
    };
    let mut yaml = format!(
        "  {name}:\n    image: {IMAGE}\n    command: {IDLE_COMMAND}\n    restart: {restart}\n    stop_grace_period: 2s\n    environment: {environment}\n    deploy: {{replicas: {replicas}}}\n"
    );
    if volume {
        yaml.push_str("    volumes: [\"data:/data\"]\n");
    }
    if flaw == Some(Flaw::UndefinedNetwork) {
        yaml.push_str("    networks: [nowhere]\n");
    }
    yaml
}

/// Uniform in 1..=n.
fn one_to(rng: &mut Rng, n: u32) -> u32 {
    let drawn = rng.below(n as usize);
    u32::try_from(drawn).map_or(1, |d| d + 1)
}

/// A stack under soak: where its files are and what it should run.
struct SoakStack {
    short: String,
    name: String,
    manifest: bool,
    /// The last valid file's state.
    valid: Desired,
    /// The file on disk is invalid now.
    flawed: bool,
    next_v: u32,
    /// When the chaos killed one of its containers (for the brake).
    kills: VecDeque<Instant>,
    /// The `V` values only invalid files asked for.
    flawed_values: BTreeSet<String>,
}

impl SoakStack {
    fn bump(&mut self) -> u32 {
        self.next_v += 1;
        self.next_v
    }

    /// A valid change of the last valid state: an environment value, a
    /// replica count, or `extra` added or removed.
    fn changed(&mut self, rng: &mut Rng) -> Desired {
        let mut d = self.valid;
        let on_extra = d.extra.is_some() && rng.chance(0.5);
        match rng.below(3) {
            0 => {
                let v = self.bump();
                match d.extra.as_mut() {
                    Some(extra) if on_extra => extra.v = v,
                    _ => d.app.v = v,
                }
            }
            1 => match d.extra.as_mut() {
                Some(extra) if on_extra => extra.replicas = one_to(rng, 2),
                _ => d.app.replicas = one_to(rng, 3),
            },
            _ => {
                d.extra = match d.extra {
                    Some(_) => None,
                    None => Some(Service {
                        replicas: one_to(rng, 2),
                        v: self.bump(),
                    }),
                }
            }
        }
        d
    }

    fn text(&self, desired: &Desired, flaw: Option<Flaw>) -> String {
        let compose = desired.compose(flaw);
        if !self.manifest {
            return compose;
        }
        let mut spec = String::from("  compose:\n");
        for line in compose.lines() {
            spec.push_str(&format!("    {line}\n"));
        }
        if flaw == Some(Flaw::SpecField) {
            spec.push_str("  prune: sometimes\n");
        }
        spec
    }

    fn write(&self, watch: &WatchDir, text: &str, by_rename: bool) -> Result<()> {
        if self.manifest {
            watch.write_manifest(&self.short, text)?;
        } else if by_rename {
            watch.save_by_rename(&self.short, "compose.yaml", text)?;
        } else {
            watch.write_compose(&self.short, text)?;
        }
        Ok(())
    }

    fn volume(&self) -> String {
        format!("{}_data", self.name)
    }
}

/// The chaos's actions, drawn with these weights.
const ACTIONS: [(&str, u32); 6] = [
    ("valid edit", 35),
    ("invalid edit", 15),
    ("container removed", 15),
    ("container killed", 12),
    ("connections severed", 8),
    ("engine cut", 7),
];

fn draw_action(rng: &mut Rng) -> &'static str {
    let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    #[allow(clippy::cast_possible_truncation)]
    let mut pick = rng.below(total as usize) as u32;
    for (name, weight) in ACTIONS {
        if pick < weight {
            return name;
        }
        pick -= weight;
    }
    ACTIONS[0].0
}

/// A few faults on ordinary calls all along, besides the cuts; the event
/// stream and version negotiation are spared (cuts sever those).
fn start_proxy(socket: &Path, seed: u64) -> Result<ApiProxy> {
    let plan = FaultPlan::seeded(seed)
        .rate(Fault::Status500, 0.01)
        .rate(Fault::Delay(Duration::from_millis(150)), 0.01)
        .except(Endpoint::prefix("GET", "/events"))
        .except(Endpoint::prefix("*", "/_ping"))
        .except(Endpoint::prefix("GET", "/version"));
    ApiProxy::start_with(ProxyOptions {
        listen: Some(socket.to_path_buf()),
        faults: Some(plan),
        ..ProxyOptions::default()
    })
}

/// Waits until every stack runs its last valid state and reports Ready;
/// how long that took.
fn converge_all(watch: &WatchDir, stacks: &[SoakStack], what: &str) -> Result<Duration> {
    let started = Instant::now();
    let mut pending: BTreeMap<usize, String> = (0..stacks.len())
        .map(|i| (i, "not checked".to_owned()))
        .collect();
    loop {
        let mut still = BTreeMap::new();
        for (i, _) in pending {
            let stack = &stacks[i];
            if let Some(why) = watch.unconverged(&stack.name, &stack.valid.expected())? {
                still.insert(i, why);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() > CONVERGE {
            let whys: Vec<String> = pending
                .iter()
                .map(|(i, why)| format!("{}: {why}", stacks[*i].name))
                .collect();
            bail!(
                "{what}: {} stacks not converged within {CONVERGE:?}:\n{}\nlog tail:\n{}",
                whys.len(),
                whys.join("\n"),
                tail(&watch.log(), 60)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let took = started.elapsed();
    // Once more for all: one that converged early must still be converged.
    for stack in stacks {
        if let Some(why) = watch.unconverged(&stack.name, &stack.valid.expected())? {
            bail!("{what}: {} converged, then not: {why}", stack.name);
        }
    }
    Ok(took)
}

/// Runs one container mounting every stack's volume (at `/v/NN`, with
/// `options` such as `:ro`) and the shell commands `command` gives for each
/// mount point, in stack order.
fn on_every_volume(
    watch: &WatchDir,
    stacks: &[SoakStack],
    options: &str,
    command: impl Fn(&str, &SoakStack) -> String,
) -> Result<Run> {
    let mut args = vec![
        "run".to_owned(),
        "--rm".to_owned(),
        "--name".to_owned(),
        watch.stack("marker"),
    ];
    let mut script = String::new();
    for (i, stack) in stacks.iter().enumerate() {
        let dir = format!("/v/{i:02}");
        args.extend([
            "-v".to_owned(),
            format!("{}:{dir}{options}", stack.volume()),
        ]);
        script.push_str(&command(&dir, stack));
    }
    args.extend([IMAGE.to_owned(), "sh".into(), "-c".into(), script]);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Fails when a container of a stack runs a `V` only an invalid file asked
/// for (safety rule 1: a bad file changes nothing).
fn check_no_flawed_config(watch: &WatchDir, stacks: &[SoakStack]) -> Result<()> {
    let flawed: BTreeMap<&str, &BTreeSet<String>> = stacks
        .iter()
        .map(|s| (s.name.as_str(), &s.flawed_values))
        .collect();
    for container in watch.all_containers()? {
        let project = container
            .labels
            .get(PROJECT_LABEL)
            .map(String::as_str)
            .unwrap_or_default();
        if let Some(v) = container.env("V") {
            ensure!(
                !flawed
                    .get(project)
                    .is_some_and(|values| values.contains(&v)),
                "{} runs V={v}, which only an invalid file asked for\nlog tail:\n{}",
                container.name,
                tail(&watch.log(), 60)
            );
        }
    }
    Ok(())
}

/// One reading of the controller's memory.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Since the chaos started.
    at: Duration,
    pid: u32,
    kib: u64,
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Does one chaos action on `stack` (or on the connection); what was
/// done, to count, or `None` when there was nothing to do it to.
/// `traffic` adds up the calls (and faulted calls) of the proxies cut.
fn act(
    action: &'static str,
    stack: &mut SoakStack,
    watch: &WatchDir,
    rng: &mut Rng,
    proxy: &mut Option<ApiProxy>,
    traffic: &mut (usize, usize),
) -> Result<Option<&'static str>> {
    match action {
        "valid edit" => {
            let desired = stack.changed(rng);
            let text = stack.text(&desired, None);
            stack.write(watch, &text, rng.chance(0.5))?;
            stack.valid = desired;
            stack.flawed = false;
        }
        "invalid edit" => {
            let mut desired = stack.changed(rng);
            desired.app.v = stack.bump();
            stack.flawed_values.insert(desired.app.v.to_string());
            let flaw = if stack.manifest && rng.chance(0.2) {
                Flaw::SpecField
            } else {
                COMPOSE_FLAWS[rng.below(COMPOSE_FLAWS.len())]
            };
            let text = stack.text(&desired, Some(flaw));
            stack.write(watch, &text, rng.chance(0.5))?;
            stack.flawed = true;
        }
        "container removed" | "container killed" => {
            let containers = watch.containers(&stack.name)?;
            if containers.is_empty() {
                return Ok(None);
            }
            let victim = &containers[rng.below(containers.len())];
            while stack
                .kills
                .front()
                .is_some_and(|t| t.elapsed() > BRAKE_WINDOW)
            {
                stack.kills.pop_front();
            }
            let kill = action == "container killed" && stack.kills.len() < KILLS_PER_WINDOW;
            // It may be gone already (the controller replacing it).
            if kill {
                stack.kills.push_back(Instant::now());
                if docker(&["kill", &victim.id])?.success() {
                    return Ok(Some("container killed"));
                }
            } else if docker(&["rm", "-f", &victim.id])?.success() {
                return Ok(Some("container removed"));
            }
            return Ok(None);
        }
        "connections severed" => match proxy {
            Some(p) => p.sever_connections(),
            None => return Ok(None),
        },
        _ => {
            // Dropping the proxy closes its socket: the engine is gone
            // until the loop starts a new one on the same path.
            let Some(cut) = proxy.take() else {
                return Ok(None);
            };
            traffic.0 += cut.calls().len();
            traffic.1 += cut.faulted_calls().len();
        }
    }
    Ok(Some(action))
}

#[test]
fn twenty_stacks_under_chaos_converge_lose_no_volume_touch_no_stranger_and_leak_no_memory(
) -> Result<()> {
    let Some(mut watch) = WatchDir::new("soak")? else {
        return Ok(());
    };
    let seconds: u64 = match std::env::var("STACKD_SOAK_SECONDS") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("STACKD_SOAK_SECONDS={text:?} is not a number"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    let duration = Duration::from_secs(seconds);
    let seed = seed(0x50A4_0001);
    // The same seed draws the same actions in the same order; how they
    // interleave with the controller's work depends on timing.
    eprintln!("soak: seed {seed} (set STACKD_E2E_SEED to replay), {seconds} s of chaos");
    let mut rng = Rng::new(seed);

    let mut stacks: Vec<SoakStack> = (0..STACKS)
        .map(|i| {
            let short = format!("s{i:02}");
            let app = Service {
                replicas: one_to(&mut rng, 2),
                v: 1,
            };
            let extra = rng.chance(0.5).then_some(Service { replicas: 1, v: 1 });
            SoakStack {
                name: watch.stack(&short),
                short,
                manifest: i % 2 == 1,
                valid: Desired { app, extra },
                flawed: false,
                next_v: 1,
                kills: VecDeque::new(),
                flawed_values: BTreeSet::new(),
            }
        })
        .collect();
    for stack in &stacks {
        stack.write(&watch, &stack.text(&stack.valid, None), false)?;
    }

    // The stranger: no compose labels, no restart policy (a kill or stop
    // would leave it exited), so any touch shows.
    let stranger_name = watch.stack("unlabelled");
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &stranger_name,
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 86400 & wait",
    ])?;
    let stranger = inspect_container(&stranger_name)?.context("the unlabelled container")?;

    let socket = watch.outside_path("docker.sock");
    let mut proxy = Some(start_proxy(&socket, seed)?);
    watch.set_docker_host(&format!("unix://{}", socket.display()));
    watch.start(&FLAGS)?;
    let first = converge_all(&watch, &stacks, "first converge")?;
    eprintln!("soak: first converge of {STACKS} stacks took {first:?}");

    // Markers written once, by one container mounting every volume.
    let token = |stack: &SoakStack| format!("{}-{seed}", stack.name);
    let marked = on_every_volume(&watch, &stacks, "", |dir, stack| {
        format!("echo {} > {dir}/marker; ", token(stack))
    })?;
    ensure!(marked.success(), "writing the markers: {marked}");

    // Memory: the controller is SIGKILLed only in the first fifth of the
    // run, so one process lives through the measured last two thirds
    // (and has run since before them, its start-up allocations done).
    // Growth compares the median RSS of the window's first tenth of the
    // run with that of its last tenth: medians, so one reading taken
    // mid-converge does not decide it.
    let mut kill_at: Vec<Duration> = (0..(seconds / 180).max(2))
        .map(|_| rng.between(duration / 20, duration / 5))
        .collect();
    kill_at.sort();
    let mut kill_at: VecDeque<Duration> = kill_at.into();
    let tick = (duration / 150).max(Duration::from_secs(3));

    // Actions done, and drawn (one finds nothing to act on during a cut,
    // a container gone meanwhile, or a kill past the brake's budget).
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut drawn: BTreeMap<&str, u32> = BTreeMap::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut reconciles = 0.0;
    // Calls (and faulted calls) through the proxies cut, then the last one's.
    let mut traffic = (0usize, 0usize);
    let mut max_containers = 0u32;
    let mut outage_until: Option<Instant> = None;
    let started = Instant::now();
    let mut next_sample = started;

    while started.elapsed() < duration {
        let now = Instant::now();
        if outage_until.is_some_and(|t| now >= t) {
            proxy = Some(start_proxy(&socket, rng.next_u64())?);
            outage_until = None;
        }
        if now >= next_sample {
            next_sample = now + tick;
            if let (Some(pid), Some(kib)) = (watch.pid(), watch.rss_kib()?) {
                samples.push(Sample {
                    at: started.elapsed(),
                    pid,
                    kib,
                });
            }
            check_no_flawed_config(&watch, &stacks)?;
        }
        if proxy.is_some() && kill_at.front().is_some_and(|t| started.elapsed() >= *t) {
            kill_at.pop_front();
            // Counted before each kill: the counter restarts with the process.
            reconciles += watch.metric_total("stackd_reconcile_total").unwrap_or(0.0);
            watch.kill()?;
            std::thread::sleep(rng.between(Duration::ZERO, Duration::from_secs(2)));
            watch.start(&FLAGS)?;
            *counts.entry("controller SIGKILLed").or_default() += 1;
        } else {
            let action = draw_action(&mut rng);
            *drawn.entry(action).or_default() += 1;
            let i = rng.below(STACKS);
            if let Some(done) = act(
                action,
                &mut stacks[i],
                &watch,
                &mut rng,
                &mut proxy,
                &mut traffic,
            )? {
                *counts.entry(done).or_default() += 1;
            }
            if action == "engine cut" && proxy.is_none() && outage_until.is_none() {
                outage_until = Some(
                    Instant::now() + rng.between(Duration::from_secs(1), Duration::from_secs(6)),
                );
            }
            max_containers = max_containers.max(stacks.iter().map(|s| s.valid.containers()).sum());
        }
        std::thread::sleep(rng.between(Duration::from_millis(300), Duration::from_millis(2500)));
    }
    let chaos_ended = Instant::now();

    // The last files valid, the engine reachable.
    if proxy.is_none() {
        proxy = Some(start_proxy(&socket, rng.next_u64())?);
    }
    check_no_flawed_config(&watch, &stacks)?;
    for stack in stacks.iter_mut().filter(|s| s.flawed) {
        stack.write(&watch, &stack.text(&stack.valid, None), false)?;
        stack.flawed = false;
    }
    converge_all(&watch, &stacks, "after the chaos")?;
    let convergence = chaos_ended.elapsed();
    check_no_flawed_config(&watch, &stacks)?;
    reconciles += watch.metric_total("stackd_reconcile_total")?;
    if let Some(p) = &proxy {
        traffic.0 += p.calls().len();
        traffic.1 += p.faulted_calls().len();
    }
    let end_kib = watch.rss_kib()?.unwrap_or_default();

    // The stranger: same container, still running, never restarted.
    let now = inspect_container(&stranger_name)?.context("the unlabelled container is gone")?;
    ensure!(
        now.id == stranger.id
            && now.is_running()
            && now.started_at == stranger.started_at
            && now.restart_count == 0,
        "the unlabelled container was touched: before {:?} {} {:?}, now {:?} {} {:?} (restarts {})",
        stranger.id,
        stranger.status,
        stranger.started_at,
        now.id,
        now.status,
        now.started_at,
        now.restart_count
    );

    // Every volume, with the marker written before the chaos.
    for stack in &stacks {
        ensure!(
            volume_exists(&stack.volume())?,
            "{} is gone",
            stack.volume()
        );
    }
    let markers = on_every_volume(&watch, &stacks, ":ro", |dir, _| {
        format!("cat {dir}/marker; ")
    })?;
    let found: Vec<&str> = markers.stdout.lines().collect();
    let wanted: Vec<String> = stacks.iter().map(token).collect();
    ensure!(
        found == wanted,
        "volume markers: found {found:?}, wanted {wanted:?} ({})",
        markers.stderr
    );

    // Memory over the last two thirds (see above).
    let window: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= duration / 3)
        .collect();
    let last_pid = window.last().map(|s| s.pid);
    ensure!(
        window.iter().all(|s| Some(s.pid) == last_pid),
        "the controller restarted inside the measured window: {window:?}"
    );
    let mut early: Vec<u64> = window
        .iter()
        .filter(|s| s.at < duration / 3 + duration / 10)
        .map(|s| s.kib)
        .collect();
    let mut late: Vec<u64> = window
        .iter()
        .filter(|s| s.at >= duration - duration / 10)
        .map(|s| s.kib)
        .collect();
    ensure!(
        !early.is_empty() && !late.is_empty(),
        "too few RSS samples: {samples:?}"
    );
    let (early, late) = (median(&mut early), median(&mut late));
    let max_kib = window.iter().map(|s| s.kib).max().unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    let growth = late as f64 / early as f64 - 1.0;

    let containers: u32 = stacks.iter().map(|s| s.valid.containers()).sum();
    let manifests = stacks.iter().filter(|s| s.manifest).count();
    eprintln!("soak figures (seed {seed}, {seconds} s of chaos):");
    eprintln!(
        "  stacks {STACKS} ({manifests} Stack manifests), containers at the end {containers} (at most {max_containers} desired at once), plus 1 unlabelled"
    );
    for (action, n) in &counts {
        let of = drawn
            .get(action)
            .map_or(String::new(), |d| format!(" (drawn {d})"));
        eprintln!("  {action}: {n}{of}");
    }
    for (action, d) in drawn.iter().filter(|(a, _)| !counts.contains_key(*a)) {
        eprintln!("  {action}: 0 (drawn {d})");
    }
    eprintln!("  reconciles {reconciles:.0}, Docker API calls through the proxy {} ({} with an injected 500 or delay)", traffic.0, traffic.1);
    eprintln!(
        "  RSS KiB: first sample {}, window start (median) {early}, window end (median) {late}, window max {max_kib}, after converging {end_kib}; growth {:+.1}% ({} samples every {tick:?})",
        samples.first().map_or(0, |s| s.kib),
        growth * 100.0,
        samples.len()
    );
    eprintln!("  first converge {first:?}; converged {convergence:?} after the chaos stopped");

    ensure!(
        growth <= MAX_GROWTH,
        "the controller's RSS grew {:.1}% over the last two thirds (median {early} KiB to {late} KiB): {window:?}",
        growth * 100.0
    );
    ensure!(
        counts.get("controller SIGKILLed").copied().unwrap_or(0) >= 2,
        "the chaos killed the controller fewer than twice: {counts:?}"
    );
    Ok(())
}
