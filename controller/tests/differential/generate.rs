//! Generator of realistic compose projects for the differential test: a
//! small seeded PRNG, feature tags that can be switched off, a tiny YAML
//! writer, and the project shapes teams actually write (services built or
//! pulled, short and long syntaxes, anchors, `.env` interpolation, override
//! files with `!reset`/`!override`).
//!
//! Every project is meant to be one the reference accepts: references point
//! only at declared resources, `depends_on` only points at earlier services
//! (no cycles), and only the last base service gets a profile, so nothing
//! depends on a disabled service.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Every feature tag the generator knows, with what it produces.
pub const FEATURES: &[(&str, &str)] = &[
    ("version-key", "obsolete top-level `version: \"3.8\"`"),
    ("top-name", "top-level `name:` (the -p flag wins)"),
    ("build", "`build` as a context string or a long form (context, dockerfile, target)"),
    ("build-args", "`build.args` as a map or a list"),
    ("ports-short", "ports `\"80\"`, `8080:80`, `- 80` (int)"),
    ("ports-ip", "ports with a host ip `127.0.0.1:8080:80`, `127.0.0.1::80`"),
    ("ports-ipv6", "ports with an IPv6 host ip `[::1]:8080:80`"),
    ("ports-protocol", "ports with `/udp` or `/tcp`"),
    ("ports-range", "port ranges `9000-9002:9000-9002`, `3000-3001`, `8000-8002:8000`"),
    ("ports-long", "ports in long form (target, published int or string, mode, host_ip, name, app_protocol)"),
    ("volumes-named", "named volume mounts `data:/var/lib/data[:ro]`"),
    ("volumes-bind", "relative binds `./data:/data:ro`, `.:/app`, `../shared:/shared`"),
    ("volumes-home", "binds from `~/...`"),
    ("volumes-abs", "absolute binds `/var/run/docker.sock:...`"),
    ("volumes-anon", "anonymous volumes `/app/node_modules`"),
    ("volumes-options", "short volume options beyond ro/rw: `z`, `cached`, `nocopy`"),
    ("volumes-long", "long-form mounts: volume (nocopy), bind (read_only, create_host_path), tmpfs (size)"),
    ("resources-null", "top-level `volumes:`/`networks:` entries with a null body"),
    ("volumes-top", "top-level volume options: driver, driver_opts, labels, name"),
    ("volumes-external", "`external: true` volumes"),
    ("env-map", "environment as a map (strings, ints, floats, booleans, quoted numbers)"),
    ("env-list", "environment as a list of `KEY=value`"),
    ("env-empty", "environment entries with an empty value (`KEY=`, `KEY: \"\"`)"),
    ("env-null", "environment entries without a value (`KEY`, `KEY:`, `KEY: null`)"),
    ("env-yes-no", "unquoted `yes`/`no`/`on`/`off` environment values"),
    ("env-file", "`env_file` as a string or a list of existing files"),
    ("env-file-optional", "`env_file` long form, `required: false` on a missing file"),
    ("labels-map", "labels as a map"),
    ("labels-list", "labels as a list"),
    ("depends-list", "depends_on as a list"),
    ("depends-map", "depends_on as a map with conditions"),
    ("depends-options", "depends_on `required: false` / `restart: true`"),
    ("healthcheck", "healthcheck with test as string, CMD or CMD-SHELL list, durations, retries"),
    ("healthcheck-disable", "healthcheck `disable: true` or `test: [\"NONE\"]`"),
    ("duration-normalize", "durations Go prints differently (`90s`, `1m`, `2m`, `120s`, `1h`)"),
    ("deploy-replicas", "deploy.replicas and deploy.labels"),
    ("deploy-resources", "deploy.resources limits/reservations, cpus as number and string, memory units"),
    ("deploy-restart", "deploy.restart_policy"),
    ("deploy-update", "deploy.update_config / rollback_config"),
    ("restart", "restart policies (`\"no\"`, `no`, `always`, `on-failure:3`, ...)"),
    ("read-only", "read_only: true"),
    ("user", "user as a quoted uid:gid or a name"),
    ("tmpfs", "tmpfs as a string or a list"),
    ("caps", "cap_add / cap_drop"),
    ("ulimits", "ulimits as an int and as soft/hard"),
    ("secrets", "top-level file secrets and short service references"),
    ("secrets-env", "secrets and configs from `environment:`"),
    ("secrets-long", "long-form secret/config references (target, uid, gid, mode)"),
    ("file-mode-octal", "secret/config mode as `0440`, `0o440` or a string"),
    ("configs", "top-level file configs and short service references"),
    ("configs-content", "configs with inline `content:`"),
    ("networks", "custom top-level networks and service network lists"),
    ("networks-map", "service networks as a map (null entries)"),
    ("networks-aliases", "service network aliases"),
    ("networks-ipv4", "ipv4_address with a top-level ipam config"),
    ("networks-internal", "`internal: true` networks"),
    ("networks-external", "`external: true` networks"),
    ("extra-hosts-list", "extra_hosts as a list (`host:ip`, `host=ip`, host-gateway)"),
    ("extra-hosts-map", "extra_hosts as a map"),
    ("logging", "logging driver and options"),
    ("command-string", "command as a shell string with quotes"),
    ("command-list", "command as a list"),
    ("entrypoint", "entrypoint as a string or a list"),
    ("dollar-escape", "`$$` in commands"),
    ("stop-grace", "stop_grace_period and stop_signal"),
    ("init", "init: true"),
    ("profiles", "a profile on the last service"),
    ("profiles-cli", "`--profile` on the command line"),
    ("misc", "container_name, hostname, working_dir, platform, pull_policy, tty, stdin_open"),
    ("expose", "expose as strings and ints"),
    ("sysctls", "sysctls as a map or a list"),
    ("dns", "dns as a string or a list"),
    ("security-opt", "security_opt"),
    ("shm-size", "shm_size with a unit"),
    ("legacy-limits", "mem_limit / cpus outside deploy"),
    ("extensions", "`x-` top-level blocks and service-level `x-` keys"),
    ("anchors", "anchors and aliases (`&name` / `*name`)"),
    ("merge-keys", "merge keys `<<: *common`, `<<: [*a, *b]`"),
    ("interp", "`${VAR}` and `$VAR` from `.env`"),
    ("interp-default", "`${VAR:-default}`, `${VAR-default}` with unset variables"),
    ("interp-required", "`${VAR:?message}` on a variable `.env` sets"),
    ("interp-unset", "`${UNSET}` without a default (blank, with a warning)"),
    ("dotenv-syntax", "`.env` with export, quotes, comments and `${...}` references"),
    ("override", "a second -f file changing image, env, ports, labels, command, volumes, deploy"),
    ("override-new-service", "the override file adds a service"),
    ("override-third-file", "a third -f file"),
    ("reset-tag", "`!reset` in an override file"),
    ("override-tag", "`!override` in an override file"),
    ("override-more", "override files also changing logging, build args, deploy, extra_hosts, caps, networks, dns, env_file, healthcheck test, ulimits, entrypoint, expose, tmpfs"),
    ("nested-reset", "`!reset` below a service key (deploy.resources, build.args, logging.options)"),
    ("interp-typed", "interpolated values in typed fields (replicas, retries, read_only, init, cpus, ulimits, ports target)"),
    ("interp-nested", "`${A:-${B:-x}}` and `${A:+alt}`"),
    ("env-floats", "float-looking values (`1.10`, `2.0`, `1e3`, `0.50`) in environment and labels"),
    ("yaml-core", "YAML 1.2 core scalars: `True`, `FALSE`, `Null`, `0x1F`, `0o17`, `+5`, `010`, `1_000`, `.5`"),
    ("flow-style", "flow collections (`[a, b]`, `{k: v}`) for service values"),
    ("block-scalars", "folded and literal block scalars for commands and healthcheck tests"),
    ("crlf", "CRLF line endings"),
    ("doc-markers", "a leading comment and `---` document marker"),
    ("implicit-deps", "links and volumes_from, which imply depends_on"),
    ("network-mode", "network_mode `host`, `none` or `service:NAME`"),
    ("devices", "devices in short and long form"),
    ("gpus", "gpus and deploy reservations devices"),
    ("build-extras", "build ssh, secrets, additional_contexts, cache_from, labels, platforms, network, extra_hosts, shm_size, tags"),
    ("develop-watch", "develop.watch rules (ignore as string or list)"),
    ("secrets-external", "external secrets/configs and custom `name:`"),
    ("networks-default", "a customized `default` network"),
    ("networks-extra", "network labels, attachable, driver_opts, ipv6, aux_addresses, service priority"),
    ("volumes-paths-odd", "bind paths with trailing slashes, `..` and `//`"),
    ("volumes-long-extra", "long mounts with bind.propagation, consistency, volume.subpath, tmpfs.mode"),
    ("merge-keys-list", "`<<: [*a, *b]` and merge keys inside a healthcheck"),
    ("env-keys-dotted", "dotted environment keys (`spring.profiles.active`)"),
    ("extra-hosts-multi", "extra_hosts with several addresses or IPv6"),
    ("env-file-syntax", "env files with quotes, escapes, multi-line values, interpolation and inline comments"),
    ("misc-limits", "cpu_shares, mem_reservation, memswap_limit, oom_score_adj, pids_limit, cpuset, cpu_quota"),
    ("expose-range", "expose ranges `3000-3005`"),
    ("unicode", "non-ASCII text in labels and environment"),
    ("image-digest", "images pinned by digest"),
    ("duration-fraction", "durations with fractions and milliseconds (`1.5s`, `500ms`, `0.5s`)"),
    ("memory-units", "memory in less usual units (`1.5G`, `512mb`, `128Mi`, bytes as an int)"),
    ("scale", "legacy `scale:`"),
    ("ports-long-range", "long-form ports with a published range"),
    ("healthcheck-shell", "healthcheck shell strings with `$$` and quotes"),
    ("command-empty", "empty command or entrypoint (`[]`, `\"\"`)"),
    ("override-repeat", "an override file repeating list/map entries of the base verbatim (ports, volumes, labels, env, dns, caps, secrets, ...)"),
    ("extra-hosts-repeat", "an override file repeating a `host:ip` extra_hosts entry an earlier file has"),
    ("extra-hosts-mixed", "extra_hosts on both sides of a merge (override or extends) with one host spelled `host:ip` on one side and `host=ip` or as a map on the other"),
    ("extends-file", "`extends` from a template service in another folder's file"),
    ("extends-local", "`extends` of an earlier service in the same file (string and map form)"),
    ("include", "top-level `include` of a monitoring stack in a sub-folder (short and long form)"),
    ("memory-float", "`mem_limit`/`shm_size` written as a float (`2e9`)"),
    ("tmpfs-size-float", "a long tmpfs mount's size written as a whole float (`1e8`, `2.0`)"),
    ("dotenv-profiles", "`COMPOSE_PROFILES` set in `.env`"),
];

/// Whether a feature tag is one the generator knows.
pub fn is_known(tag: &str) -> bool {
    FEATURES.iter().any(|(known, _)| *known == tag)
}

/// Which features the generator may use.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Switched off (known gaps).
    pub off: BTreeSet<String>,
    /// When set, only these are on (a probe of a few features).
    pub only: Option<BTreeSet<String>>,
}

impl Features {
    fn allows(&self, tag: &str) -> bool {
        assert!(is_known(tag), "feature tag {tag:?} is not in FEATURES");
        !self.off.contains(tag) && self.only.as_ref().is_none_or(|only| only.contains(tag))
    }
}

/// splitmix64: tiny, seedable, good enough to pick shapes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.next_u64() % 100 < u64::from(percent)
    }

    fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The seed of case `index` in a run seeded with `seed`.
pub fn case_seed(seed: u64, index: usize) -> u64 {
    Rng::new(seed ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// A tiny YAML tree, written in block style.
#[derive(Debug, Clone)]
pub enum Y {
    /// A scalar, already written (plain, quoted, alias `*a`, or empty).
    S(String),
    /// A block sequence.
    Seq(Vec<Y>),
    /// A block mapping.
    Map(Vec<(String, Y)>),
    /// A tagged node (`!reset`, `!override`).
    Tag(&'static str, Box<Y>),
    /// An anchored node (`&name`).
    Anchor(String, Box<Y>),
    /// A block scalar: indicator (`|`, `>-`, ...) and text.
    Block(&'static str, String),
    /// A collection written in flow style (`[a, b]`, `{k: v}`).
    Flow(Box<Y>),
}

fn plain(text: &str) -> Y {
    Y::S(text.to_owned())
}

fn dq(text: &str) -> Y {
    Y::S(dq_text(text))
}

fn dq_text(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn sq(text: &str) -> Y {
    Y::S(format!("'{}'", text.replace('\'', "''")))
}

fn map(entries: Vec<(&str, Y)>) -> Y {
    Y::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Whether a plain scalar would read back as something else than this string.
fn needs_quotes(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text.is_empty()
        || text.parse::<f64>().is_ok()
        || text.starts_with("0x")
        || text.starts_with("0o")
        || [
            "true", "false", "null", "~", "yes", "no", "on", "off", "y", "n", ".inf", ".nan",
        ]
        .contains(&lower.as_str())
        || text.starts_with(|c: char| "[]{}&*!|>'\"%@`#,?:- ".contains(c))
        || text.ends_with([':', ' '])
        || text.contains(": ")
        || text.contains(" #")
        || text.contains('\n')
        || text
            .split(':')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// A string scalar: plain when that reads back as the same string, else quoted.
fn text(text: &str) -> Y {
    if needs_quotes(text) {
        dq(text)
    } else {
        plain(text)
    }
}

/// After `key:` (or `-`): the inline part, and the node whose body follows.
fn head(y: &Y) -> (String, Option<&Y>) {
    match y {
        Y::S(s) if s.is_empty() => (String::new(), None),
        Y::S(s) => (format!(" {s}"), None),
        Y::Map(m) if m.is_empty() => (" {}".into(), None),
        Y::Seq(s) if s.is_empty() => (" []".into(), None),
        Y::Map(_) | Y::Seq(_) => (String::new(), Some(y)),
        Y::Block(indicator, _) => (format!(" {indicator}"), Some(y)),
        Y::Flow(inner) => (format!(" {}", flow_text(inner)), None),
        Y::Tag(tag, inner) => {
            let (h, body) = head(inner);
            (format!(" {tag}{h}"), body)
        }
        Y::Anchor(name, inner) => {
            let (h, body) = head(inner);
            (format!(" &{name}{h}"), body)
        }
    }
}

fn body(y: &Y, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        Y::Map(entries) => {
            for (key, value) in entries {
                let (h, b) = head(value);
                writeln!(out, "{pad}{key}:{h}").unwrap();
                if let Some(b) = b {
                    body(b, indent + 2, out);
                }
            }
        }
        Y::Seq(items) => {
            for item in items {
                let (h, b) = head(item);
                match b {
                    Some(Y::Map(_)) if h.is_empty() => {
                        let mut nested = String::new();
                        body(b.unwrap(), indent + 2, &mut nested);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&nested[indent + 2..]);
                    }
                    Some(b) => {
                        writeln!(out, "{pad}-{h}").unwrap();
                        body(b, indent + 2, out);
                    }
                    None => writeln!(out, "{pad}-{h}").unwrap(),
                }
            }
        }
        Y::Block(_, text) => {
            for line in text.lines() {
                writeln!(out, "{pad}{line}").unwrap();
            }
        }
        Y::S(_) | Y::Tag(..) | Y::Anchor(..) | Y::Flow(_) => {
            unreachable!("only collections have a body")
        }
    }
}

/// Whether `y` can be written in flow style: scalars (quoted, or plain
/// without flow indicators) in collections without tags, anchors or merge keys.
fn flowable(y: &Y) -> bool {
    match y {
        Y::S(s) => {
            !s.is_empty()
                && (s.starts_with('"')
                    || s.starts_with('\'')
                    || !s.contains([',', '[', ']', '{', '}', '#']))
        }
        Y::Seq(items) => items.iter().all(flowable),
        Y::Map(entries) => entries
            .iter()
            .all(|(k, v)| k != "<<" && !k.contains([',', '[', ']', '{', '}']) && flowable(v)),
        Y::Flow(inner) => flowable(inner),
        Y::Tag(..) | Y::Anchor(..) | Y::Block(..) => false,
    }
}

fn flow_text(y: &Y) -> String {
    match y {
        Y::S(s) => s.clone(),
        Y::Seq(items) => format!(
            "[{}]",
            items.iter().map(flow_text).collect::<Vec<_>>().join(", ")
        ),
        Y::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", flow_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Y::Flow(inner) => flow_text(inner),
        Y::Tag(..) | Y::Anchor(..) | Y::Block(..) => unreachable!("checked by flowable"),
    }
}

/// A whole document: top-level keys separated by blank lines.
pub fn render(top: &[(String, Y)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in top.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        body(&Y::Map(vec![(key.clone(), value.clone())]), 0, &mut out);
    }
    out
}

/// One generated project.
#[derive(Debug, Clone)]
pub struct Case {
    /// Position in the run.
    pub index: usize,
    /// The project name passed with -p.
    pub project: String,
    /// Compose files in -f order.
    pub compose_files: Vec<String>,
    /// Profiles passed with --profile.
    pub profiles: Vec<String>,
    /// Every file to write: compose files first, then `.env`, env files,
    /// secret and config files.
    pub files: Vec<(String, String)>,
    /// Feature tags this case uses.
    pub features: BTreeSet<&'static str>,
}

struct Archetype {
    name: &'static str,
    image: &'static str,
    build: Option<&'static str>,
    port: u16,
    health: Health,
}

#[derive(Clone, Copy)]
enum Health {
    Http,
    Postgres,
    Redis,
    None,
}

const ARCHETYPES: &[Archetype] = &[
    Archetype {
        name: "web",
        image: "nginx:1.27-alpine",
        build: None,
        port: 80,
        health: Health::Http,
    },
    Archetype {
        name: "api",
        image: "ghcr.io/acme/api:1.4.2",
        build: Some("./api"),
        port: 3000,
        health: Health::Http,
    },
    Archetype {
        name: "worker",
        image: "ghcr.io/acme/api:1.4.2",
        build: Some("./api"),
        port: 0,
        health: Health::None,
    },
    Archetype {
        name: "db",
        image: "postgres:16-alpine",
        build: None,
        port: 5432,
        health: Health::Postgres,
    },
    Archetype {
        name: "cache",
        image: "redis:7-alpine",
        build: None,
        port: 6379,
        health: Health::Redis,
    },
    Archetype {
        name: "queue",
        image: "rabbitmq:3.13-management",
        build: None,
        port: 5672,
        health: Health::None,
    },
    Archetype {
        name: "proxy",
        image: "traefik:v3.1",
        build: None,
        port: 443,
        health: Health::None,
    },
    Archetype {
        name: "frontend",
        image: "node:20-alpine",
        build: Some("./frontend"),
        port: 5173,
        health: Health::Http,
    },
    Archetype {
        name: "grafana",
        image: "grafana/grafana:11.2.0",
        build: None,
        port: 3000,
        health: Health::Http,
    },
];

/// What later parts of the generation need to know about a service.
struct Svc {
    name: String,
    arch: usize,
    profiled: bool,
    healthcheck: bool,
    has_image: bool,
    /// Top-level keys of the service body.
    keys: Vec<String>,
    /// Container paths already mounted.
    targets: Vec<String>,
    /// The service body as first written.
    body: Vec<(String, Y)>,
}

struct Net {
    name: String,
    /// `172.N.0.0/16` when it has an ipam config.
    subnet: Option<u8>,
    /// Also an IPv6 subnet `fd00:N::/64`.
    ipv6: bool,
    external: bool,
}

/// Variables `.env` defines when it is written.
const DOTENV: &[(&str, &str)] = &[
    ("TAG", "1.27-alpine"),
    ("POSTGRES_USER", "app"),
    ("POSTGRES_DB", "appdb"),
    ("WEB_PORT", "8080"),
    ("LOG_LEVEL", "info"),
    ("API_KEY", "s3cr3t-key"),
    ("APP_CONFIG", "debug=false"),
    ("REGISTRY", "registry.example.com"),
    ("REPLICAS", "2"),
    ("HC_RETRIES", "5"),
    ("READ_ONLY", "true"),
];

/// The state of one project's generation.
struct Gen<'f> {
    rng: Rng,
    features: &'f Features,
    used: BTreeSet<&'static str>,
    services: Vec<Svc>,
    networks: Vec<Net>,
    volumes: Vec<String>,
    secrets: Vec<(String, Y)>,
    configs: Vec<(String, Y)>,
    aux: Vec<(String, String)>,
    dotenv: bool,
    next_port: u16,
    x_logging: bool,
    x_common: bool,
    x_env: bool,
    x_deploy: bool,
    x_health: bool,
    app_image_anchored: bool,
    dotenv_profiles: bool,
    /// How override files spell their extra host: `host:ip` or `host=ip`.
    metrics_host_colon: Option<bool>,
}

impl Gen<'_> {
    /// Rolls `percent`, and when it hits and `tag` is allowed, records its use.
    fn on(&mut self, tag: &'static str, percent: u32) -> bool {
        let hit = self.rng.chance(percent);
        if hit && self.features.allows(tag) {
            self.used.insert(tag);
            true
        } else {
            false
        }
    }

    fn allowed(&self, tag: &str) -> bool {
        self.features.allows(tag)
    }

    fn mark(&mut self, tag: &'static str) {
        assert!(is_known(tag), "feature tag {tag:?} is not in FEATURES");
        self.used.insert(tag);
    }

    fn host_port(&mut self) -> u16 {
        self.next_port += 1;
        self.next_port
    }

    fn aux_file(&mut self, path: &str, content: &str) {
        if !self.aux.iter().any(|(p, _)| p == path) {
            self.aux.push((path.to_owned(), content.to_owned()));
        }
    }

    /// A value for a typed field, sometimes interpolated
    /// (`${VAR:-value}`; `.env` may set VAR).
    fn typed(&mut self, value: &str, var: &str) -> Y {
        if !self.on("interp-typed", 25) {
            return plain(value);
        }
        if DOTENV.iter().any(|(name, _)| *name == var) && self.rng.chance(50) {
            self.dotenv = true;
            return plain(&format!("${{{var}}}"));
        }
        if self.rng.chance(50) {
            dq(&format!("${{{var}:-{value}}}"))
        } else {
            plain(&format!("${{{var}:-{value}}}"))
        }
    }

    /// A memory size: `usual`, or (with `memory-units`) a less usual
    /// spelling; `int` allows a plain byte count.
    fn memory(&mut self, usual: &str, int: bool) -> Y {
        if self.on("memory-units", 25) {
            match self.rng.below(6) {
                0 => plain("1.5G"),
                1 => plain("512mb"),
                2 => plain("128MB"),
                3 if int => plain("268435456"),
                3 => dq("268435456"),
                4 => dq("1gb"),
                _ => plain("1024k"),
            }
        } else {
            plain(usual)
        }
    }

    /// Sometimes writes a collection in flow style.
    fn style(&mut self, y: Y) -> Y {
        let collection = matches!(&y, Y::Seq(items) if !items.is_empty())
            || matches!(&y, Y::Map(entries) if !entries.is_empty());
        if collection && flowable(&y) && self.on("flow-style", 12) {
            Y::Flow(Box::new(y))
        } else {
            y
        }
    }

    /// A duration Go prints as written, or (with `duration-normalize`) one
    /// it prints differently.
    fn duration(&mut self, usual: &[&'static str]) -> Y {
        if self.on("duration-fraction", 10) {
            return plain(self.rng.pick(&["1.5s", "500ms", "0.5s", "250ms", "2.5s"]));
        }
        if self.on("duration-normalize", 25) {
            plain(
                self.rng
                    .pick(&["90s", "1m", "2m", "120s", "1h", "1m0s", "3600s"]),
            )
        } else {
            plain(self.rng.pick(usual))
        }
    }

    /// The value of `name` (a `.env` variable): written as some form of
    /// interpolation when one of those features rolls, else literally.
    fn interp_var(&mut self, name: &str, default: &str) -> String {
        if self.on("interp-nested", 12) {
            self.dotenv = true;
            return if self.rng.chance(50) {
                format!("${{UNSET_{name}:-${{{name}:-{default}}}}}")
            } else {
                format!("${{{name}:+{default}}}")
            };
        }
        if self.on("interp", 50) {
            self.dotenv = true;
            if self.rng.chance(25) {
                return format!("${name}");
            }
            return format!("${{{name}}}");
        }
        if self.on("interp-default", 50) {
            if self.rng.chance(50) {
                self.dotenv = true;
                return format!("${{{name}:-{default}}}");
            }
            let op = if self.rng.chance(50) { ":-" } else { "-" };
            return format!("${{UNSET_{name}{op}{default}}}");
        }
        if self.on("interp-required", 40) {
            self.dotenv = true;
            return format!("${{{name}:?{name} must be set}}");
        }
        DOTENV
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(default, |(_, v)| *v)
            .to_owned()
    }
}

/// Generates case `index` of a run seeded with `seed`.
pub fn generate(seed: u64, index: usize, features: &Features) -> Case {
    let case_seed = case_seed(seed, index);
    let mut g = Gen {
        rng: Rng::new(case_seed),
        features,
        used: BTreeSet::new(),
        services: Vec::new(),
        networks: Vec::new(),
        volumes: Vec::new(),
        secrets: Vec::new(),
        configs: Vec::new(),
        aux: Vec::new(),
        dotenv: false,
        // A different hundred per case, so shown cases are easy to tell apart.
        next_port: 8000 + (index % 50) as u16 * 10,
        x_logging: false,
        x_common: false,
        x_env: false,
        x_deploy: false,
        x_health: false,
        app_image_anchored: false,
        dotenv_profiles: false,
        metrics_host_colon: None,
    };
    let mut top: Vec<(String, Y)> = Vec::new();
    if g.on("version-key", 15) {
        top.push(("version".into(), dq(g.rng.pick(&["3.8", "3", "3.9"]))));
    }
    if g.on("top-name", 15) {
        top.push(("name".into(), plain("myapp")));
    }
    if g.on("extensions", 45) {
        if g.allowed("anchors") && g.rng.chance(70) {
            g.x_logging = true;
            top.push((
                "x-logging".into(),
                Y::Anchor("default-logging".into(), Box::new(logging_map(&mut g))),
            ));
        }
        if g.allowed("merge-keys") && g.rng.chance(60) {
            g.x_common = true;
            let logging = if g.x_logging {
                g.mark("anchors");
                plain("*default-logging")
            } else {
                logging_map(&mut g)
            };
            top.push((
                "x-common".into(),
                Y::Anchor(
                    "common".into(),
                    Box::new(map(vec![
                        ("restart", plain("unless-stopped")),
                        ("logging", logging),
                    ])),
                ),
            ));
        }
        if g.allowed("merge-keys") && g.rng.chance(50) {
            g.x_env = true;
            top.push((
                "x-env".into(),
                Y::Anchor(
                    "common-env".into(),
                    Box::new(map(vec![
                        ("TZ", plain("UTC")),
                        ("APP_REGION", plain("eu-west-1")),
                    ])),
                ),
            ));
        }
        if g.x_common && g.allowed("merge-keys-list") && g.rng.chance(50) {
            g.x_deploy = true;
            top.push((
                "x-deploy-defaults".into(),
                Y::Anchor(
                    "deploy-defaults".into(),
                    Box::new(map(vec![(
                        "deploy",
                        map(vec![(
                            "resources",
                            map(vec![("limits", map(vec![("memory", plain("256M"))]))]),
                        )]),
                    )])),
                ),
            ));
        }
        if g.allowed("merge-keys-list") && g.rng.chance(40) {
            g.x_health = true;
            top.push((
                "x-healthcheck".into(),
                Y::Anchor(
                    "hc-defaults".into(),
                    Box::new(map(vec![
                        ("interval", plain("10s")),
                        ("timeout", plain("5s")),
                        ("retries", plain("3")),
                    ])),
                ),
            ));
        }
        if top.iter().all(|(k, _)| !k.starts_with("x-")) {
            top.push((
                "x-project-owner".into(),
                map(vec![
                    ("team", plain("platform")),
                    ("oncall", dq("#platform-oncall")),
                ]),
            ));
        }
    }
    if g.on("networks", 45) {
        declare_networks(&mut g);
    }

    let count = g.rng.range(2, 5);
    let mut order: Vec<usize> = (0..ARCHETYPES.len()).collect();
    for i in (1..order.len()).rev() {
        let j = g.rng.below(i + 1);
        order.swap(i, j);
    }
    let mut services: Vec<(String, Y)> = Vec::new();
    for &arch in order.iter().take(count) {
        let (name, body) = service(&mut g, arch, false);
        services.push((name, body));
    }
    let mut profiles = Vec::new();
    if g.on("profiles", 20) {
        let last = services.len() - 1;
        let profile_list = if g.rng.chance(70) {
            Y::Seq(vec![plain("debug")])
        } else {
            Y::Seq(vec![plain("tools"), plain("debug")])
        };
        if let Y::Map(entries) = &mut services[last].1 {
            entries.push(("profiles".into(), profile_list));
        }
        g.services[last].profiled = true;
        g.services[last].keys.push("profiles".into());
        if g.on("profiles-cli", 50) {
            profiles.push("debug".to_owned());
        } else if g.on("dotenv-profiles", 30) {
            g.dotenv = true;
            g.dotenv_profiles = true;
        }
    }
    top.push(("services".into(), Y::Map(services)));
    if g.on("include", 8) {
        include(&mut g, &mut top);
    }
    push_resources(&mut g, &mut top);

    let base_name = if g.rng.chance(70) {
        "compose.yaml"
    } else {
        "docker-compose.yml"
    };
    let text = finish_file(&mut g, render(&top));
    let mut compose = vec![(base_name.to_owned(), text)];
    if g.on("override", 45) {
        let name = if g.rng.chance(60) {
            "compose.override.yaml"
        } else {
            "docker-compose.prod.yml"
        };
        let text = override_file(&mut g);
        let text = finish_file(&mut g, text);
        compose.push((name.to_owned(), text));
        if g.on("override-third-file", 20) {
            let text = override_file(&mut g);
            let text = finish_file(&mut g, text);
            compose.push(("compose.local.yaml".to_owned(), text));
        }
    }
    if g.dotenv {
        let text = dotenv_file(&mut g);
        g.aux.push((".env".into(), text));
    }
    let compose_files = compose.iter().map(|(n, _)| n.clone()).collect();
    let mut files = compose;
    files.extend(std::mem::take(&mut g.aux));
    Case {
        index,
        project: format!("gen{index:03}"),
        compose_files,
        profiles,
        files,
        features: g.used,
    }
}

/// Document marker, comments and line endings of a compose file.
fn finish_file(g: &mut Gen<'_>, text: String) -> String {
    let mut text = text;
    if g.on("doc-markers", 12) {
        text = format!("# Compose file for myapp; see README.md\n---\n{text}");
        text = text.replacen("\nservices:\n", "\n# the application\nservices:\n", 1);
    }
    if g.on("crlf", 6) {
        text = text.replace('\n', "\r\n");
    }
    text
}

fn logging_map(g: &mut Gen<'_>) -> Y {
    g.mark("logging");
    match g.rng.below(3) {
        0 => map(vec![
            ("driver", plain("json-file")),
            (
                "options",
                map(vec![("max-size", dq("10m")), ("max-file", dq("3"))]),
            ),
        ]),
        1 => map(vec![
            ("driver", plain("json-file")),
            (
                "options",
                map(vec![("max-size", plain("50m")), ("max-file", plain("5"))]),
            ),
        ]),
        _ => map(vec![
            ("driver", plain("syslog")),
            (
                "options",
                map(vec![
                    ("syslog-address", dq("tcp://192.168.0.42:514")),
                    ("tag", dq("{{.Name}}")),
                ]),
            ),
        ]),
    }
}

fn declare_networks(g: &mut Gen<'_>) {
    g.networks.push(Net {
        name: "frontend".into(),
        subnet: None,
        ipv6: false,
        external: false,
    });
    g.networks.push(Net {
        name: "backend".into(),
        subnet: None,
        ipv6: false,
        external: false,
    });
    if g.on("networks-ipv4", 40) {
        let octet = 20 + g.rng.below(10) as u8;
        g.networks[1].subnet = Some(octet);
        g.networks[1].ipv6 = g.on("networks-extra", 40);
    }
    if g.on("networks-external", 30) {
        g.networks.push(Net {
            name: "proxy".into(),
            subnet: None,
            ipv6: false,
            external: true,
        });
    }
}

fn network_body(g: &mut Gen<'_>, net: usize) -> Y {
    let name = g.networks[net].name.clone();
    if g.networks[net].external {
        return if g.rng.chance(50) {
            map(vec![("external", plain("true"))])
        } else {
            map(vec![
                ("external", plain("true")),
                ("name", plain("traefik_proxy")),
            ])
        };
    }
    let mut entries: Vec<(&str, Y)> = Vec::new();
    if g.rng.chance(40) {
        entries.push(("driver", plain("bridge")));
    }
    if name == "backend" && g.on("networks-internal", 40) {
        let internal = g.typed("true", "INTERNAL");
        entries.push(("internal", internal));
    }
    if name == "frontend" && g.on("networks-extra", 30) {
        entries.push(("attachable", plain("true")));
        entries.push((
            "labels",
            map(vec![("com.example.network.tier", plain("edge"))]),
        ));
        entries.push((
            "driver_opts",
            map(vec![("com.docker.network.driver.mtu", plain("1450"))]),
        ));
    }
    if let Some(octet) = g.networks[net].subnet {
        let mut v4 = vec![
            ("subnet", plain(&format!("172.{octet}.0.0/16"))),
            ("gateway", plain(&format!("172.{octet}.0.1"))),
        ];
        let mut configs = Vec::new();
        if g.networks[net].ipv6 {
            entries.push(("enable_ipv6", plain("true")));
            v4.push((
                "aux_addresses",
                map(vec![("router", plain(&format!("172.{octet}.0.2")))]),
            ));
            configs.push(map(v4));
            configs.push(map(vec![("subnet", dq(&format!("fd00:{octet}::/64")))]));
        } else {
            configs.push(map(v4));
        }
        entries.push((
            "ipam",
            map(vec![
                ("driver", plain("default")),
                ("config", Y::Seq(configs)),
            ]),
        ));
    }
    if entries.is_empty() && g.on("resources-null", 50) {
        return Y::S(String::new());
    }
    map(entries)
}

fn push_resources(g: &mut Gen<'_>, top: &mut Vec<(String, Y)>) {
    let default = if g.on("networks-default", 8) {
        Some(match g.rng.below(3) {
            0 => map(vec![("name", plain("myapp_shared"))]),
            1 => map(vec![
                ("driver", plain("bridge")),
                (
                    "driver_opts",
                    map(vec![("com.docker.network.driver.mtu", plain("1450"))]),
                ),
            ]),
            _ => map(vec![
                ("external", plain("true")),
                ("name", plain("shared_net")),
            ]),
        })
    } else {
        None
    };
    if !g.networks.is_empty() || default.is_some() {
        let mut nets = Vec::new();
        if let Some(body) = default {
            nets.push(("default".to_owned(), body));
        }
        for i in 0..g.networks.len() {
            let body = network_body(g, i);
            nets.push((g.networks[i].name.clone(), body));
        }
        top.push(("networks".into(), Y::Map(nets)));
    }
    if !g.volumes.is_empty() {
        let mut vols = Vec::new();
        for name in g.volumes.clone() {
            let body = if g.on("volumes-external", 10) {
                map(vec![("external", plain("true"))])
            } else if g.on("volumes-top", 35) {
                match g.rng.below(4) {
                    0 => map(vec![("driver", plain("local"))]),
                    1 => map(vec![
                        ("driver", plain("local")),
                        (
                            "driver_opts",
                            map(vec![
                                ("type", plain("none")),
                                ("o", plain("bind")),
                                ("device", plain(&format!("/srv/{name}"))),
                            ]),
                        ),
                    ]),
                    2 => map(vec![(
                        "labels",
                        map(vec![("com.example.backup", dq("daily"))]),
                    )]),
                    _ => map(vec![("name", plain(&format!("shared-{name}")))]),
                }
            } else if g.on("resources-null", 50) {
                Y::S(String::new())
            } else {
                Y::Map(Vec::new())
            };
            vols.push((name, body));
        }
        top.push(("volumes".into(), Y::Map(vols)));
    }
    if !g.secrets.is_empty() {
        top.push(("secrets".into(), Y::Map(std::mem::take(&mut g.secrets))));
    }
    if !g.configs.is_empty() {
        top.push(("configs".into(), Y::Map(std::mem::take(&mut g.configs))));
    }
}

/// Generates one service; `late` is true for a service an override file adds.
fn service(g: &mut Gen<'_>, arch: usize, late: bool) -> (String, Y) {
    let a = &ARCHETYPES[arch];
    let name = if late {
        format!("{}-extra", a.name)
    } else {
        a.name.to_owned()
    };
    let index = g.services.len();
    g.services.push(Svc {
        name: name.clone(),
        arch,
        profiled: false,
        healthcheck: false,
        has_image: false,
        keys: Vec::new(),
        targets: Vec::new(),
        body: Vec::new(),
    });
    let mut m: Vec<(String, Y)> = Vec::new();
    let mut merged_common = false;
    if g.x_common && g.on("merge-keys", 50) {
        merged_common = true;
        if g.x_deploy && g.on("merge-keys-list", 40) {
            m.push(("<<".into(), plain("[*common, *deploy-defaults]")));
        } else {
            m.push(("<<".into(), plain("*common")));
        }
    }
    // What an extended service brings (networks, limits, replicas) must
    // not clash with what this one declares.
    let (extends, parent) = match extends(g, index, late) {
        Some((value, parent)) => (Some(value), parent),
        None => (None, None),
    };
    let extended = extends.is_some();
    // A service sharing another's network stack publishes no ports and
    // joins no networks.
    let network_mode = if extended {
        None
    } else {
        network_mode(g, index)
    };
    let shares_network = network_mode.is_some();

    // image / build
    let build = a.build.is_some() && g.on("build", 70);
    if !build || g.rng.chance(40) {
        g.services[index].has_image = true;
        m.push(("image".into(), image_value(g, a)));
    }
    if build {
        m.push(("build".into(), build_value(g, a)));
    }
    if !shares_network && g.on("misc", 20) {
        if !late && !extended && g.rng.chance(50) {
            m.push(("container_name".into(), plain(&format!("myapp-{name}"))));
        }
        if g.rng.chance(40) {
            m.push(("hostname".into(), plain(&name)));
        }
        if g.rng.chance(40) {
            m.push(("working_dir".into(), plain("/app")));
        }
        if g.rng.chance(30) {
            m.push(("platform".into(), plain("linux/amd64")));
        }
        if g.rng.chance(30) {
            let policy = if build { "build" } else { "missing" };
            m.push(("pull_policy".into(), plain(policy)));
        }
        if g.rng.chance(30) {
            let tty = g.typed("true", "TTY");
            m.push(("tty".into(), tty));
            m.push(("stdin_open".into(), plain("true")));
        }
    }
    if let Some(mode) = network_mode {
        m.push(("network_mode".into(), mode));
    }
    if let Some(extends) = extends {
        m.push(("extends".into(), extends));
    }
    if g.on("command-string", 30) {
        m.push(("command".into(), command_string(g, a)));
    } else if g.on("command-list", 25) {
        m.push(("command".into(), command_list(a)));
    } else if g.on("command-empty", 4) {
        m.push(("command".into(), Y::Seq(Vec::new())));
    }
    if g.on("entrypoint", 12) {
        let value = match g.rng.below(3) {
            0 => plain("/docker-entrypoint.sh"),
            1 => Y::Seq(vec![dq("/bin/sh"), dq("-c")]),
            _ => dq("tini -- /usr/local/bin/start.sh"),
        };
        m.push(("entrypoint".into(), value));
    } else if g.on("command-empty", 4) {
        let value = if g.rng.chance(50) {
            Y::Seq(Vec::new())
        } else {
            dq("")
        };
        m.push(("entrypoint".into(), value));
    }
    if let Some(env) = environment(g) {
        m.push(("environment".into(), env));
    }
    if let Some(env_file) = env_file(g, &name) {
        m.push(("env_file".into(), env_file));
    }
    if !shares_network && a.port > 0 && g.rng.chance(60) {
        let ports = ports(g, a.port);
        if !ports.is_empty() {
            m.push(("ports".into(), Y::Seq(ports)));
        }
    }
    if a.port > 0 && g.on("expose", 10) {
        let mut items = vec![dq(&a.port.to_string()), plain("9100")];
        if g.on("expose-range", 40) {
            items.push(dq("7000-7002"));
        }
        m.push(("expose".into(), Y::Seq(items)));
    }
    if g.rng.chance(55) {
        let vols = volumes(g, index);
        if !vols.is_empty() {
            m.push(("volumes".into(), Y::Seq(vols)));
        }
    }
    if let Some(links) = implicit_dependencies(g, index) {
        m.extend(links);
    }
    if g.on("tmpfs", 12) {
        let value = if g.rng.chance(50) {
            plain("/run")
        } else {
            Y::Seq(vec![plain("/run"), plain("/tmp:size=64m")])
        };
        m.push(("tmpfs".into(), value));
    }
    if let Some(labels) = labels(g, &name) {
        m.push(("labels".into(), labels));
    }
    if let Some(deps) = depends_on(g, index) {
        m.push(("depends_on".into(), deps));
    }
    if let Some((health, enabled)) = healthcheck(g, a) {
        g.services[index].healthcheck = enabled;
        m.push(("healthcheck".into(), health));
    }
    let mut has_deploy_resources = false;
    let named_container = m.iter().any(|(k, _)| k == "container_name");
    let scaled = !named_container && g.on("scale", 4);
    if let Some((deploy, resources)) = deploy(g, named_container || scaled) {
        has_deploy_resources = resources;
        m.push(("deploy".into(), deploy));
    }
    if scaled {
        m.push(("scale".into(), plain("2")));
    }
    // compose refuses service-level limits that disagree with deploy's.
    let limits_free = !has_deploy_resources && !extended && !m.iter().any(|(k, _)| k == "<<");
    if limits_free && g.on("legacy-limits", 10) {
        let memory = if g.on("memory-float", 15) {
            plain("2e9")
        } else {
            g.memory("512m", true)
        };
        m.push(("mem_limit".into(), memory));
        let cpus = cpus_value(g);
        let cpus = g.typed(cpus, "CPUS");
        m.push(("cpus".into(), cpus));
    }
    if limits_free && g.on("misc-limits", 8) {
        m.push(("cpu_shares".into(), g.typed("512", "CPU_SHARES")));
        m.push(("mem_reservation".into(), plain("256m")));
        m.push(("memswap_limit".into(), plain("1g")));
        m.push(("oom_score_adj".into(), plain("-500")));
        m.push(("pids_limit".into(), g.typed("100", "PIDS_LIMIT")));
        m.push(("cpuset".into(), dq("0,1")));
        m.push(("cpu_quota".into(), plain("50000")));
    }
    if !merged_common && g.on("restart", 50) {
        let value = match g.rng.below(6) {
            0 => dq("no"),
            1 => plain("no"),
            2 => plain("always"),
            3 => plain("on-failure"),
            4 => dq("on-failure:3"),
            _ => plain("unless-stopped"),
        };
        m.push(("restart".into(), value));
    }
    if g.on("read-only", 10) {
        let value = g.typed("true", "READ_ONLY");
        m.push(("read_only".into(), value));
    }
    if g.on("user", 15) {
        let value = match g.rng.below(3) {
            0 => dq("1000:1000"),
            1 => dq("1000"),
            _ => plain("node"),
        };
        m.push(("user".into(), value));
    }
    if g.on("caps", 12) {
        m.push(("cap_drop".into(), Y::Seq(vec![plain("ALL")])));
        m.push((
            "cap_add".into(),
            Y::Seq(vec![plain("NET_BIND_SERVICE"), plain("CHOWN")]),
        ));
    }
    if g.on("ulimits", 12) {
        let mut entries = vec![(
            "nofile",
            map(vec![("soft", plain("20000")), ("hard", plain("40000"))]),
        )];
        if g.rng.chance(50) {
            let nproc = g.typed("65535", "NPROC");
            entries.push(("nproc", nproc));
        }
        if g.rng.chance(40) {
            entries.push((
                "memlock",
                map(vec![("soft", plain("-1")), ("hard", plain("-1"))]),
            ));
        }
        m.push(("ulimits".into(), map(entries)));
    }
    if g.on("sysctls", 8) {
        let value = if g.rng.chance(50) {
            map(vec![("net.core.somaxconn", plain("1024"))])
        } else {
            Y::Seq(vec![plain("net.ipv4.tcp_syncookies=0")])
        };
        m.push(("sysctls".into(), value));
    }
    if g.on("dns", 8) {
        let value = if g.rng.chance(50) {
            plain("8.8.8.8")
        } else {
            Y::Seq(vec![plain("1.1.1.1"), plain("9.9.9.9")])
        };
        m.push(("dns".into(), value));
    }
    // compose validates the extended result, where a repeated entry is refused.
    if !extended && g.on("security-opt", 8) {
        m.push((
            "security_opt".into(),
            Y::Seq(vec![plain("no-new-privileges:true")]),
        ));
    }
    if g.on("shm-size", 8) {
        let value = if g.rng.chance(50) {
            plain("256m")
        } else {
            dq("1gb")
        };
        m.push(("shm_size".into(), value));
    }
    if g.on("devices", 6) {
        let mut items = vec![
            plain("/dev/ttyUSB0:/dev/ttyUSB0"),
            plain("/dev/snd:/dev/snd:rwm"),
        ];
        if g.rng.chance(50) {
            items.push(plain("/dev/dri"));
        } else {
            items.push(map(vec![
                ("source", plain("/dev/fuse")),
                ("target", plain("/dev/fuse")),
                ("permissions", plain("rwm")),
            ]));
        }
        m.push(("devices".into(), Y::Seq(items)));
    }
    if g.on("gpus", 5) {
        let value = if g.rng.chance(50) {
            plain("all")
        } else {
            Y::Seq(vec![map(vec![
                ("driver", plain("nvidia")),
                ("count", plain("1")),
                ("capabilities", Y::Seq(vec![plain("gpu")])),
            ])])
        };
        m.push(("gpus".into(), value));
    }
    if !shares_network {
        if let Some(nets) = service_networks(g, &name) {
            m.push(("networks".into(), nets));
        }
    }
    // compose drops an extended entry only when spelled the same way.
    let parent_hosts =
        parent.is_some_and(|p| g.services[p].keys.iter().any(|k| k == "extra_hosts"));
    if !parent_hosts {
        if let Some(extra) = extra_hosts(g) {
            m.push(("extra_hosts".into(), extra));
        }
    } else if g.on("extra-hosts-mixed", 60) {
        // The parent's host in the other spelling.
        let parent_list = parent.is_some_and(|p| {
            g.services[p].body.iter().any(|(k, v)| {
                let list = match v {
                    Y::Flow(inner) => matches!(**inner, Y::Seq(_)),
                    other => matches!(other, Y::Seq(_)),
                };
                k == "extra_hosts" && list
            })
        });
        let value = if parent_list {
            map(vec![("host.docker.internal", plain("host-gateway"))])
        } else {
            Y::Seq(vec![dq("host.docker.internal:host-gateway")])
        };
        m.push(("extra_hosts".into(), value));
    }
    if !merged_common && g.rng.chance(25) {
        if g.x_logging && g.on("anchors", 60) {
            m.push(("logging".into(), plain("*default-logging")));
        } else if g.allowed("logging") {
            let value = logging_map(g);
            m.push(("logging".into(), value));
        }
    }
    if let Some(secrets) = service_secrets(g, &name) {
        m.push(("secrets".into(), secrets));
    }
    if let Some(configs) = service_configs(g, a) {
        m.push(("configs".into(), configs));
    }
    if g.on("stop-grace", 12) {
        let value = g.duration(&["10s", "30s", "1m30s", "45s"]);
        m.push(("stop_grace_period".into(), value));
        if g.rng.chance(40) {
            m.push(("stop_signal".into(), plain("SIGINT")));
        }
    }
    if g.on("init", 10) {
        let value = g.typed("true", "INIT");
        m.push(("init".into(), value));
    }
    if build && g.on("develop-watch", 12) {
        let ignore = if g.rng.chance(50) {
            plain("node_modules/")
        } else {
            Y::Seq(vec![plain("node_modules/"), dq("*.log")])
        };
        m.push((
            "develop".into(),
            map(vec![(
                "watch",
                Y::Seq(vec![
                    map(vec![
                        ("action", plain("sync")),
                        ("path", plain("./src")),
                        ("target", plain("/app/src")),
                        ("ignore", ignore),
                    ]),
                    map(vec![
                        ("action", plain("rebuild")),
                        ("path", plain("package.json")),
                    ]),
                    map(vec![
                        ("action", plain("sync+restart")),
                        ("path", plain("./config")),
                        ("target", plain("/etc/app")),
                    ]),
                ]),
            )]),
        ));
    }
    if g.used.contains("extensions") && g.on("extensions", 20) {
        m.push((
            "x-traefik".into(),
            map(vec![("enabled", plain("true")), ("port", plain("8080"))]),
        ));
    }
    for (_, value) in &mut m {
        let taken = std::mem::replace(value, Y::S(String::new()));
        *value = g.style(taken);
    }
    g.services[index].keys = m.iter().map(|(k, _)| k.clone()).collect();
    g.services[index].body.clone_from(&m);
    (name, Y::Map(m))
}

fn cpus_value(g: &mut Gen<'_>) -> &'static str {
    g.rng.pick(&["0.5", "1.5", "0.3", "2", "0.25"])
}

/// `extends` of a template in another file, or of an earlier service
/// (whose index comes along).
fn extends(g: &mut Gen<'_>, index: usize, late: bool) -> Option<(Y, Option<usize>)> {
    if g.on("extends-file", 10) {
        g.aux_file(
            "templates/common.yml",
            concat!(
                "services:\n",
                "  app-template:\n",
                "    image: ghcr.io/acme/base:1.0\n",
                "    environment:\n",
                "      TZ: UTC\n",
                "      LOG_FORMAT: json\n",
                "    volumes:\n",
                "      - ./shared:/shared:ro\n",
                "    env_file: template.env\n",
                "    labels:\n",
                "      com.example.managed: \"true\"\n",
                "    healthcheck:\n",
                "      test: [\"CMD\", \"true\"]\n",
                "      interval: 30s\n",
                "    logging:\n",
                "      driver: json-file\n",
                "      options:\n",
                "        max-size: 5m\n",
            ),
        );
        g.aux_file("templates/template.env", "FROM_TEMPLATE=1\n");
        let value = map(vec![
            ("file", plain("templates/common.yml")),
            ("service", plain("app-template")),
        ]);
        return Some((value, None));
    }
    if late {
        return None;
    }
    let candidates: Vec<usize> = (0..index)
        .filter(|&i| {
            let s = &g.services[i];
            !s.profiled
                && !s.keys.iter().any(|k| {
                    [
                        "container_name",
                        "extends",
                        "<<",
                        "scale",
                        "network_mode",
                        "deploy",
                        "mem_limit",
                        "cpus",
                        "pids_limit",
                        "mem_reservation",
                    ]
                    .contains(&k.as_str())
                })
        })
        .collect();
    if candidates.is_empty() || !g.on("extends-local", 10) {
        return None;
    }
    let parent = g.rng.pick(&candidates);
    let target = g.services[parent].name.clone();
    let value = if g.rng.chance(50) {
        plain(&target)
    } else {
        map(vec![("service", plain(&target))])
    };
    Some((value, Some(parent)))
}

/// A monitoring stack in `monitoring/`, pulled in with `include`.
fn include(g: &mut Gen<'_>, top: &mut Vec<(String, Y)>) {
    g.aux_file(
        "monitoring/compose.yaml",
        concat!(
            "services:\n",
            "  prometheus:\n",
            "    image: prom/prometheus:${PROM_TAG:-v2.54.0}\n",
            "    volumes:\n",
            "      - ./prometheus.yml:/etc/prometheus/prometheus.yml:ro\n",
            "      - prometheus-data:/prometheus\n",
            "    ports:\n",
            "      - \"9090:9090\"\n",
            "    env_file: prometheus.env\n",
            "volumes:\n",
            "  prometheus-data: {}\n",
        ),
    );
    g.aux_file("monitoring/prometheus.env", "RETENTION=15d\n");
    g.aux_file(
        "monitoring/prometheus.yml",
        "global:\n  scrape_interval: 15s\n",
    );
    let item = if g.rng.chance(50) {
        plain("monitoring/compose.yaml")
    } else {
        g.aux_file("monitoring/monitoring.env", "PROM_TAG=v2.53.1\n");
        map(vec![
            ("path", plain("monitoring/compose.yaml")),
            ("env_file", plain("monitoring/monitoring.env")),
        ])
    };
    // compose reads `include` first; where it sits in the file is free.
    top.insert(0, ("include".into(), Y::Seq(vec![item])));
}

/// network_mode for service `index`, decided before anything that would clash.
fn network_mode(g: &mut Gen<'_>, index: usize) -> Option<Y> {
    if !g.on("network-mode", 5) {
        return None;
    }
    let candidates: Vec<usize> = (0..index).filter(|&i| !g.services[i].profiled).collect();
    if !candidates.is_empty() && g.rng.chance(50) {
        let target = g.rng.pick(&candidates);
        return Some(dq(&format!("service:{}", g.services[target].name)));
    }
    Some(plain(g.rng.pick(&["host", "none"])))
}

/// links and volumes_from towards earlier services.
fn implicit_dependencies(g: &mut Gen<'_>, index: usize) -> Option<Vec<(String, Y)>> {
    let candidates: Vec<usize> = (0..index).filter(|&i| !g.services[i].profiled).collect();
    if candidates.is_empty() || !g.on("implicit-deps", 8) {
        return None;
    }
    let target = g.services[g.rng.pick(&candidates)].name.clone();
    let mut out = Vec::new();
    if g.rng.chance(60) {
        let link = if g.rng.chance(50) {
            plain(&target)
        } else {
            plain(&format!("{target}:{target}-alias"))
        };
        out.push(("links".into(), Y::Seq(vec![link])));
    }
    if out.is_empty() || g.rng.chance(40) {
        let from = if g.rng.chance(50) {
            plain(&target)
        } else {
            plain(&format!("{target}:ro"))
        };
        out.push(("volumes_from".into(), Y::Seq(vec![from])));
    }
    Some(out)
}

fn image_value(g: &mut Gen<'_>, a: &Archetype) -> Y {
    let shared = a.image.starts_with("ghcr.io/acme/api");
    if shared && g.app_image_anchored {
        g.mark("anchors");
        return plain("*app-image");
    }
    let image = if a.name == "web" {
        format!("nginx:{}", g.interp_var("TAG", "1.27-alpine"))
    } else if shared && g.rng.chance(30) {
        format!(
            "{}/acme/api:1.4.2",
            g.interp_var("REGISTRY", "registry.example.com")
        )
    } else if !shared && g.on("image-digest", 10) {
        format!(
            "{}@sha256:4d2d5d3b6f1e8a7c9b0a1f2e3d4c5b6a7980716253443526170819a0b1c2d3e4",
            a.image
        )
    } else {
        a.image.to_owned()
    };
    let value = text(&image);
    if shared && g.on("anchors", 50) {
        g.app_image_anchored = true;
        return Y::Anchor("app-image".into(), Box::new(value));
    }
    value
}

fn build_value(g: &mut Gen<'_>, a: &Archetype) -> Y {
    let context = a.build.unwrap_or(".");
    if g.rng.chance(35) {
        return plain(if g.rng.chance(80) { context } else { "." });
    }
    let mut entries = vec![("context", plain(context))];
    if g.rng.chance(50) {
        entries.push((
            "dockerfile",
            plain(
                g.rng
                    .pick(&["Dockerfile", "Dockerfile.prod", "docker/Dockerfile"]),
            ),
        ));
    }
    if g.on("build-args", 60) {
        let args = if g.rng.chance(50) {
            let mut args = vec![
                ("NODE_ENV", plain("production")),
                ("APP_VERSION", dq("1.4.2")),
            ];
            if g.rng.chance(40) {
                args.push(("BUILD_JOBS", plain("4")));
            }
            if g.on("env-null", 30) {
                args.push(("GIT_SHA", Y::S(String::new())));
            }
            map(args)
        } else {
            let mut args = vec![plain("NODE_ENV=production"), plain("APP_VERSION=1.4.2")];
            if g.rng.chance(40) {
                args.push(dq(
                    "PIP_EXTRA_INDEX_URL=https://packages.example.com/simple",
                ));
            }
            if g.on("env-null", 30) {
                args.push(plain("GIT_SHA"));
            }
            Y::Seq(args)
        };
        entries.push(("args", args));
    }
    if g.rng.chance(35) {
        entries.push(("target", plain("production")));
    }
    if g.on("build-extras", 30) {
        match g.rng.below(3) {
            0 => {
                entries.push(("ssh", Y::Seq(vec![plain("default")])));
                g.aux_file("secrets/npm_token.txt", "npm-token\n");
                if !g.secrets.iter().any(|(n, _)| n == "npm_token") {
                    g.secrets.push((
                        "npm_token".into(),
                        map(vec![("file", plain("./secrets/npm_token.txt"))]),
                    ));
                }
                entries.push(("secrets", Y::Seq(vec![plain("npm_token")])));
            }
            1 => {
                let contexts = if g.rng.chance(50) {
                    map(vec![("shared", plain("../shared"))])
                } else {
                    Y::Seq(vec![plain("shared=../shared")])
                };
                entries.push(("additional_contexts", contexts));
                entries.push((
                    "cache_from",
                    Y::Seq(vec![plain("type=registry,ref=ghcr.io/acme/api:cache")]),
                ));
                entries.push((
                    "platforms",
                    Y::Seq(vec![plain("linux/amd64"), plain("linux/arm64")]),
                ));
            }
            _ => {
                entries.push((
                    "labels",
                    map(vec![(
                        "org.opencontainers.image.source",
                        dq("https://example.com/acme/api"),
                    )]),
                ));
                entries.push(("network", plain("host")));
                entries.push((
                    "extra_hosts",
                    Y::Seq(vec![dq("packages.internal:10.0.0.9")]),
                ));
                entries.push(("shm_size", plain("2gb")));
                entries.push(("tags", Y::Seq(vec![plain("ghcr.io/acme/api:dev")])));
            }
        }
    }
    map(entries)
}

fn command_string(g: &mut Gen<'_>, a: &Archetype) -> Y {
    if g.on("dollar-escape", 25) {
        return dq("sh -c 'echo starting on $$HOSTNAME && exec nginx -g \"daemon off;\"'");
    }
    if g.on("block-scalars", 20) {
        return if g.rng.chance(50) {
            Y::Block(
                ">-",
                "bash -c \"python manage.py migrate\n&& gunicorn app.wsgi\n-b 0.0.0.0:8000\""
                    .into(),
            )
        } else {
            Y::Block("|", "sh -c '\n  npm ci\n  npm run start\n'\n".into())
        };
    }
    match (a.name, g.rng.below(4)) {
        ("worker", _) => plain("celery -A app worker --loglevel=info --concurrency 4"),
        ("cache", _) => plain("redis-server --appendonly yes --maxmemory 256mb"),
        ("db", _) => plain("postgres -c max_connections=200 -c shared_buffers=256MB"),
        (_, 0) => {
            plain("bash -c \"python manage.py migrate && gunicorn app.wsgi -b 0.0.0.0:8000\"")
        }
        (_, 1) => sq("sh -c 'npm ci && npm run start -- --host \"0.0.0.0\"'"),
        (_, 2) => dq("sh -c \"echo \\\"ready\\\" && exec node server.js --title 'My App'\""),
        _ => plain("npm run start"),
    }
}

fn command_list(a: &Archetype) -> Y {
    match a.name {
        "worker" => Y::Seq(vec![
            dq("celery"),
            dq("-A"),
            dq("app"),
            dq("worker"),
            dq("--loglevel=info"),
        ]),
        "cache" => Y::Seq(vec![
            plain("redis-server"),
            plain("--appendonly"),
            dq("yes"),
        ]),
        _ => Y::Seq(vec![dq("npm"), dq("run"), dq("start")]),
    }
}

/// One environment value in both spellings: a map value, a list item.
fn env_entry(g: &mut Gen<'_>) -> (String, Y, Y) {
    let kind = g.rng.below(17);
    let (key, map_value, list_item) = match kind {
        0 => (
            "NODE_ENV",
            plain("production"),
            plain("NODE_ENV=production"),
        ),
        1 => ("PORT", plain("8080"), plain("PORT=8080")),
        2 => ("WORKERS", dq("4"), dq("WORKERS=4")),
        3 => ("RATIO", plain("0.75"), plain("RATIO=0.75")),
        4 => ("DEBUG", plain("false"), plain("DEBUG=false")),
        5 => (
            "REDIS_URL",
            plain("redis://cache:6379/0"),
            plain("REDIS_URL=redis://cache:6379/0"),
        ),
        6 => (
            "JAVA_OPTS",
            dq("-Xms512m -Xmx512m -Dfile.encoding=UTF-8"),
            plain("JAVA_OPTS=-Xms512m -Xmx512m -Dfile.encoding=UTF-8"),
        ),
        7 if g.on("env-yes-no", 60) => {
            let word = g.rng.pick(&["yes", "no", "on", "off"]);
            (
                "ALLOW_EMPTY_PASSWORD",
                plain(word),
                plain(&format!("ALLOW_EMPTY_PASSWORD={word}")),
            )
        }
        8 if g.on("env-empty", 60) => {
            let map_value = if g.rng.chance(50) { dq("") } else { sq("") };
            ("EMPTY_SETTING", map_value, plain("EMPTY_SETTING="))
        }
        9 if g.on("env-null", 60) => {
            // A passthrough: `.env` defines LOG_LEVEL, not HTTP_PROXY.
            let key = if g.rng.chance(50) {
                g.dotenv = true;
                "LOG_LEVEL"
            } else {
                "HTTP_PROXY"
            };
            let map_value = Y::S(g.rng.pick(&["", "null", "~"]).to_string());
            (key, map_value, plain(key))
        }
        10 => {
            let user = g.interp_var("POSTGRES_USER", "app");
            let db = g.interp_var("POSTGRES_DB", "appdb");
            let url = format!("postgres://{user}:secret@db:5432/{db}");
            let item = format!("DATABASE_URL={url}");
            ("DATABASE_URL", text(&url), text(&item))
        }
        11 if g.on("interp-unset", 50) => (
            "BUILD_ID",
            plain("${BUILD_ID}"),
            plain("BUILD_ID=${BUILD_ID}"),
        ),
        12 if g.on("env-floats", 60) => {
            let value = g.rng.pick(&[
                "1.10",
                "2.0",
                "1e3",
                "0.50",
                "3.14159265358979",
                "1.5e-3",
                "100.000",
            ]);
            (
                "APP_VERSION",
                plain(value),
                plain(&format!("APP_VERSION={value}")),
            )
        }
        13 if g.on("yaml-core", 60) => {
            let value = g.rng.pick(&[
                "True", "FALSE", "Null", "0x1F", "0o17", "+5", "010", "1_000", ".5", "-0",
            ]);
            (
                "LEGACY_FLAG",
                plain(value),
                plain(&format!("LEGACY_FLAG={value}")),
            )
        }
        14 if g.on("env-keys-dotted", 60) => {
            if g.rng.chance(50) {
                (
                    "spring.profiles.active",
                    plain("prod"),
                    plain("spring.profiles.active=prod"),
                )
            } else {
                (
                    "spring.datasource.url",
                    plain("jdbc:postgresql://db:5432/app"),
                    plain("spring.datasource.url=jdbc:postgresql://db:5432/app"),
                )
            }
        }
        15 if g.on("unicode", 60) => (
            "GREETING",
            dq("héllo wörld ☕ — ünïcode"),
            plain("GREETING=héllo wörld ☕ — ünïcode"),
        ),
        16 if g.on("dollar-escape", 60) => (
            "ADMIN_HASH",
            sq("$$2y$$10$$N9qo8uLOickgx2ZMRZoMye"),
            sq("ADMIN_HASH=$$2y$$10$$N9qo8uLOickgx2ZMRZoMye"),
        ),
        _ => ("TZ", plain("Europe/Paris"), plain("TZ=Europe/Paris")),
    };
    (key.to_owned(), map_value, list_item)
}

fn env_entries(g: &mut Gen<'_>, count: usize) -> Vec<(String, Y, Y)> {
    let mut entries: Vec<(String, Y, Y)> = Vec::new();
    for _ in 0..count {
        let entry = env_entry(g);
        if !entries.iter().any(|(k, ..)| *k == entry.0) {
            entries.push(entry);
        }
    }
    entries
}

fn environment(g: &mut Gen<'_>) -> Option<Y> {
    let as_map = g.rng.chance(50);
    let tag = if as_map { "env-map" } else { "env-list" };
    if !g.on(tag, 60) {
        return None;
    }
    let count = g.rng.range(1, 5);
    let entries = env_entries(g, count);
    if as_map {
        let mut m: Vec<(String, Y)> = Vec::new();
        if g.x_env && g.on("merge-keys", 50) {
            m.push(("<<".into(), plain("*common-env")));
        }
        m.extend(entries.into_iter().map(|(k, v, _)| (k, v)));
        Some(Y::Map(m))
    } else {
        Some(Y::Seq(entries.into_iter().map(|(_, _, i)| i).collect()))
    }
}

fn env_file(g: &mut Gen<'_>, service: &str) -> Option<Y> {
    let optional = g.on("env-file-optional", 10);
    let plain_form = g.on("env-file", 15);
    if !optional && !plain_form {
        return None;
    }
    let own = format!("./{service}.env");
    let mut content = format!(
        "# settings for {service}\n{}_WORKERS=4\nGREETING=\"hello world\"\nEMPTY_FROM_FILE=\nexport EXPORTED=1\n",
        service.to_ascii_uppercase().replace('-', "_")
    );
    if g.on("env-file-syntax", 40) {
        content.push_str(concat!(
            "ESCAPED=\"tab\\there\\nnewline \\\"quoted\\\"\"\n",
            "RAW='single $QUOTED \\n kept'\n",
            "INLINE=value # a comment\n",
            "HASH_IN_QUOTES=\"value # not a comment\"\n",
            "MULTILINE=\"first line\nsecond line\"\n",
            "FROM_DOTENV=${TAG:-none}\n",
            "EMPTY_QUOTED=\"\"\n",
            "  INDENTED=yes\n",
        ));
        g.dotenv = true;
    }
    g.aux_file(&own[2..], &content);
    if optional {
        let mut items = Vec::new();
        if plain_form {
            items.push(map(vec![("path", plain(&own))]));
        }
        items.push(map(vec![
            ("path", plain("./local.env")),
            ("required", plain("false")),
        ]));
        return Some(Y::Seq(items));
    }
    if g.rng.chance(50) {
        Some(plain(&own))
    } else {
        g.aux_file("common.env", "TZ=UTC\nLANG=C.UTF-8\n");
        Some(Y::Seq(vec![plain("common.env"), plain(&own)]))
    }
}

fn ports(g: &mut Gen<'_>, target: u16) -> Vec<Y> {
    let mut out = Vec::new();
    let count = g.rng.range(1, 3);
    for n in 0..count {
        let target = target + n as u16;
        let published = g.host_port();
        let kind = g.rng.below(8);
        let item = match kind {
            0 if g.on("ports-ip", 60) => {
                if g.rng.chance(70) {
                    dq(&format!("127.0.0.1:{published}:{target}"))
                } else {
                    dq(&format!("127.0.0.1::{target}"))
                }
            }
            1 if g.on("ports-protocol", 60) => {
                let proto = if g.rng.chance(60) { "udp" } else { "tcp" };
                if g.allowed("ports-ip") && g.rng.chance(50) {
                    g.mark("ports-ip");
                    dq(&format!("127.0.0.1:{published}:{target}/{proto}"))
                } else {
                    dq(&format!("{published}:{target}/{proto}"))
                }
            }
            2 if g.on("ports-range", 60) => {
                let base = 9000 + (g.next_port - 8000) * 3;
                g.next_port += 3;
                match g.rng.below(4) {
                    0 => dq(&format!("{base}-{}:{base}-{}", base + 2, base + 2)),
                    1 => dq(&format!("{base}-{}", base + 1)),
                    2 => dq(&format!(
                        "127.0.0.1:{base}-{}:{base}-{}/udp",
                        base + 1,
                        base + 1
                    )),
                    _ => dq(&format!("{base}-{}:{target}", base + 2)),
                }
            }
            3 if g.on("ports-long", 70) => {
                let target_value = g.typed(&target.to_string(), "APP_PORT");
                let mut entries = vec![("target", target_value)];
                let published = if g.on("ports-long-range", 25) {
                    let base = 9000 + (g.next_port - 8000) * 3;
                    g.next_port += 3;
                    dq(&format!("{base}-{}", base + 2))
                } else if g.rng.chance(50) {
                    dq(&published.to_string())
                } else {
                    plain(&published.to_string())
                };
                entries.push(("published", published));
                if g.rng.chance(60) {
                    entries.push(("protocol", plain("tcp")));
                }
                if g.rng.chance(50) {
                    entries.push(("mode", plain(g.rng.pick(&["host", "ingress"]))));
                }
                if g.rng.chance(30) {
                    entries.push(("host_ip", plain("127.0.0.1")));
                } else if g.on("ports-ipv6", 15) {
                    entries.push(("host_ip", dq("::1")));
                }
                if g.rng.chance(30) {
                    entries.push(("name", plain("http")));
                    entries.push(("app_protocol", plain("http")));
                }
                map(entries)
            }
            4 if g.on("ports-ipv6", 30) => dq(&format!("[::1]:{published}:{target}")),
            5 if g.allowed("interp") || g.allowed("interp-default") => {
                let host = g.interp_var("WEB_PORT", "8080");
                if host.contains('$') {
                    dq(&format!("{host}:{target}"))
                } else if g.on("ports-short", 100) {
                    dq(&format!("{published}:{target}"))
                } else {
                    continue;
                }
            }
            _ if g.on("ports-short", 80) => match g.rng.below(4) {
                0 => dq(&target.to_string()),
                1 => plain(&target.to_string()),
                2 => plain(&format!("{published}:{target}")),
                _ => dq(&format!("{published}:{target}")),
            },
            _ => continue,
        };
        out.push(item);
    }
    out
}

fn named_volume(g: &mut Gen<'_>, service: &str) -> String {
    let name = match service {
        "db" => "dbdata".to_owned(),
        "cache" => "redis-data".to_owned(),
        "grafana" => "grafana-storage".to_owned(),
        other => format!("{other}-data"),
    };
    if !g.volumes.contains(&name) {
        g.volumes.push(name.clone());
    }
    name
}

fn volumes(g: &mut Gen<'_>, index: usize) -> Vec<Y> {
    let service = g.services[index].name.clone();
    let mut out = Vec::new();
    let count = g.rng.range(1, 3);
    for _ in 0..count {
        let kind = g.rng.below(8);
        let (target, item) = match kind {
            6 if g.on("volumes-paths-odd", 40) => {
                let (source, target) = g.rng.pick(&[
                    ("./data/", "/srv/data/"),
                    ("./config/../data", "/srv/merged"),
                    ("./logs//app", "/var/log/app"),
                    ("./", "/workspace"),
                ]);
                (target.to_owned(), plain(&format!("{source}:{target}")))
            }
            0 if g.on("volumes-named", 80) => {
                let vol = named_volume(g, &service);
                let target = "/var/lib/data".to_owned();
                let opt = if g.rng.chance(25) {
                    ":ro"
                } else if g.on("volumes-options", 20) {
                    ":nocopy"
                } else {
                    ""
                };
                (target.clone(), plain(&format!("{vol}:{target}{opt}")))
            }
            1 if g.on("volumes-bind", 80) => {
                let (source, target) = g.rng.pick(&[
                    ("./data", "/data"),
                    (".", "/app"),
                    ("./config/app.yml", "/etc/app/app.yml"),
                    ("../shared", "/shared"),
                    ("./nginx/conf.d", "/etc/nginx/conf.d"),
                ]);
                let opt = if g.rng.chance(40) {
                    ":ro"
                } else if g.rng.chance(20) {
                    ":rw"
                } else if g.on("volumes-options", 20) {
                    g.rng.pick(&[":z", ":cached", ":ro,z"])
                } else {
                    ""
                };
                (target.to_owned(), plain(&format!("{source}:{target}{opt}")))
            }
            2 if g.on("volumes-abs", 60) => {
                let (source, target) = g.rng.pick(&[
                    ("/var/run/docker.sock", "/var/run/docker.sock"),
                    ("/etc/localtime", "/etc/localtime"),
                    ("/srv/backups", "/backups"),
                ]);
                let opt = if g.rng.chance(50) { ":ro" } else { "" };
                (target.to_owned(), plain(&format!("{source}:{target}{opt}")))
            }
            3 if g.on("volumes-home", 30) => {
                ("/root/.aws".to_owned(), plain("~/.aws:/root/.aws:ro"))
            }
            4 if g.on("volumes-anon", 40) => {
                ("/app/node_modules".to_owned(), plain("/app/node_modules"))
            }
            5 if g.on("volumes-long", 70) => {
                let shape = g.rng.below(3);
                match shape {
                    0 => {
                        let vol = named_volume(g, &service);
                        let mut entries = vec![
                            ("type", plain("volume")),
                            ("source", plain(&vol)),
                            ("target", plain("/var/lib/data")),
                        ];
                        if g.on("volumes-long-extra", 25) {
                            entries.push((
                                "volume",
                                map(vec![
                                    ("nocopy", plain("true")),
                                    ("subpath", plain("pgdata")),
                                ]),
                            ));
                        } else if g.rng.chance(50) {
                            entries.push(("volume", map(vec![("nocopy", plain("true"))])));
                        }
                        ("/var/lib/data".to_owned(), map(entries))
                    }
                    1 => {
                        let mut entries = vec![
                            ("type", plain("bind")),
                            ("source", plain("./config")),
                            ("target", plain("/etc/app")),
                        ];
                        if g.rng.chance(60) {
                            let read_only = g.typed("true", "READ_ONLY");
                            entries.push(("read_only", read_only));
                        }
                        if g.on("volumes-long-extra", 25) {
                            entries.push(("consistency", plain("cached")));
                            entries.push((
                                "bind",
                                map(vec![
                                    ("propagation", plain("rprivate")),
                                    ("create_host_path", plain("false")),
                                    ("selinux", plain("z")),
                                ]),
                            ));
                        } else if g.rng.chance(50) {
                            entries.push(("bind", map(vec![("create_host_path", plain("true"))])));
                        }
                        ("/etc/app".to_owned(), map(entries))
                    }
                    _ => {
                        let size = if g.on("tmpfs-size-float", 10) {
                            plain(g.rng.pick(&["1e8", "2.0", "6.7108864e7"]))
                        } else if g.rng.chance(50) {
                            plain("67108864")
                        } else {
                            dq("64m")
                        };
                        let mut tmpfs = vec![("size", size)];
                        if g.on("volumes-long-extra", 25) {
                            tmpfs.push(("mode", plain(g.rng.pick(&["0o1777", "01777", "1777"]))));
                        }
                        (
                            "/run/cache".to_owned(),
                            map(vec![
                                ("type", plain("tmpfs")),
                                ("target", plain("/run/cache")),
                                ("tmpfs", map(tmpfs)),
                            ]),
                        )
                    }
                }
            }
            _ => continue,
        };
        if g.services[index].targets.contains(&target) {
            continue;
        }
        g.services[index].targets.push(target);
        out.push(item);
    }
    out
}

fn labels(g: &mut Gen<'_>, service: &str) -> Option<Y> {
    let as_map = g.rng.chance(50);
    let tag = if as_map { "labels-map" } else { "labels-list" };
    if !g.on(tag, 35) {
        return None;
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("com.example.team".into(), "platform".into()),
        ("com.example.service".into(), service.into()),
    ];
    if service == "proxy" || service == "web" || g.rng.chance(30) {
        pairs.push(("traefik.enable".into(), "true".into()));
        pairs.push((
            format!("traefik.http.routers.{service}.rule"),
            format!("Host(`{service}.example.com`)"),
        ));
    }
    if g.on("interp-unset", 30) {
        pairs.push(("com.example.build".into(), "${BUILD_ID}".into()));
    }
    if g.on("unicode", 20) {
        pairs.push(("com.example.description".into(), "Café ☕ — API".into()));
    }
    if g.on("dollar-escape", 15) {
        pairs.push((
            "traefik.http.middlewares.auth.basicauth.users".into(),
            "admin:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/".into(),
        ));
    }
    // Map values YAML reads as numbers or booleans, written plain.
    let mut typed: Vec<(String, &str)> = Vec::new();
    if as_map && g.on("env-floats", 20) {
        typed.push((
            "com.example.version".into(),
            g.rng.pick(&["1.10", "2.0", "1e3"]),
        ));
    }
    if as_map && g.on("yaml-core", 20) {
        typed.push((
            "com.example.enabled".into(),
            g.rng.pick(&["True", "FALSE", "0x1F"]),
        ));
    }
    if as_map {
        let mut entries: Vec<(String, Y)> = pairs
            .into_iter()
            .map(|(k, v)| {
                let value = if v == "true" && g.rng.chance(50) {
                    plain("true")
                } else {
                    text(&v)
                };
                (k, value)
            })
            .collect();
        entries.extend(typed.into_iter().map(|(k, v)| (k, plain(v))));
        Some(Y::Map(entries))
    } else {
        Some(Y::Seq(
            pairs
                .into_iter()
                .map(|(k, v)| text(&format!("{k}={v}")))
                .collect(),
        ))
    }
}

fn depends_on(g: &mut Gen<'_>, index: usize) -> Option<Y> {
    let candidates: Vec<usize> = (0..index).filter(|&i| !g.services[i].profiled).collect();
    if candidates.is_empty() || !g.rng.chance(55) {
        return None;
    }
    let count = g.rng.range(1, candidates.len().min(3));
    let mut chosen: Vec<usize> = Vec::new();
    for _ in 0..count {
        let pick = g.rng.pick(&candidates);
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }
    depends_on_value(g, &chosen)
}

fn depends_on_value(g: &mut Gen<'_>, chosen: &[usize]) -> Option<Y> {
    if g.rng.chance(45) {
        if !g.on("depends-list", 100) {
            return None;
        }
        return Some(Y::Seq(
            chosen.iter().map(|&i| plain(&g.services[i].name)).collect(),
        ));
    }
    if !g.on("depends-map", 100) {
        return None;
    }
    let mut entries = Vec::new();
    for &i in chosen {
        let condition = if g.services[i].healthcheck && g.rng.chance(70) {
            "service_healthy"
        } else if g.rng.chance(15) {
            "service_completed_successfully"
        } else {
            "service_started"
        };
        let mut body = vec![("condition", plain(condition))];
        if g.on("depends-options", 30) {
            if g.rng.chance(50) {
                body.push(("restart", plain("true")));
            } else {
                body.push(("required", plain("false")));
            }
        }
        entries.push((g.services[i].name.clone(), map(body)));
    }
    Some(Y::Map(entries))
}

/// A healthcheck, and whether it is enabled.
fn healthcheck(g: &mut Gen<'_>, a: &Archetype) -> Option<(Y, bool)> {
    if g.on("healthcheck-disable", 4) {
        let value = if g.rng.chance(50) {
            map(vec![("disable", plain("true"))])
        } else {
            map(vec![("test", Y::Seq(vec![dq("NONE")]))])
        };
        return Some((value, false));
    }
    if matches!(a.health, Health::None) || !g.on("healthcheck", 45) {
        return None;
    }
    let test = match (a.health, g.rng.below(2)) {
        (Health::Postgres, 0) => Y::Seq(vec![
            dq("CMD-SHELL"),
            dq("pg_isready -U postgres -d postgres"),
        ]),
        (Health::Postgres, _) => {
            Y::Seq(vec![dq("CMD"), dq("pg_isready"), dq("-U"), dq("postgres")])
        }
        (Health::Redis, 0) => Y::Seq(vec![dq("CMD"), dq("redis-cli"), dq("ping")]),
        (Health::Redis, _) => dq("redis-cli ping | grep PONG"),
        (_, 0) if g.on("healthcheck-shell", 30) => {
            if g.rng.chance(50) {
                dq("curl -fsS \"http://localhost:$${PORT:-80}/health\" || exit 1")
            } else {
                Y::Seq(vec![
                    dq("CMD-SHELL"),
                    dq("wget -qO- 'http://localhost/health' | grep -q \"ok\""),
                ])
            }
        }
        (_, 0) if g.on("block-scalars", 20) => Y::Block(
            "|",
            "curl -fsS http://localhost/health \\\n  || exit 1\n".into(),
        ),
        (_, 0) => plain("curl -fsS http://localhost/health || exit 1"),
        _ => Y::Seq(vec![
            dq("CMD"),
            dq("wget"),
            dq("--spider"),
            dq("-q"),
            dq("http://localhost/healthz"),
        ]),
    };
    let mut entries = Vec::new();
    if g.x_health && g.on("merge-keys-list", 60) {
        entries.push(("<<", plain("*hc-defaults")));
    }
    entries.push(("test", test));
    if g.rng.chance(80) {
        let interval = g.duration(&["10s", "5s", "30s", "1m30s"]);
        entries.push(("interval", interval));
    }
    if g.rng.chance(70) {
        let timeout = g.duration(&["5s", "3s", "10s"]);
        entries.push(("timeout", timeout));
    }
    if g.rng.chance(70) {
        let retries = g.rng.pick(&["3", "5", "10"]);
        let retries = g.typed(retries, "HC_RETRIES");
        entries.push(("retries", retries));
    }
    if g.rng.chance(50) {
        let start = g.duration(&["30s", "10s", "40s"]);
        entries.push(("start_period", start));
    }
    if g.rng.chance(20) {
        entries.push(("start_interval", plain("2s")));
    }
    Some((map(entries), true))
}

/// deploy, and whether it has resources. A named container runs once, so
/// it gets no replicas.
fn deploy(g: &mut Gen<'_>, named_container: bool) -> Option<(Y, bool)> {
    if !g.rng.chance(30) {
        return None;
    }
    let mut entries: Vec<(&str, Y)> = Vec::new();
    let mut resources = false;
    if !named_container && g.on("deploy-replicas", 40) {
        let replicas = g.rng.pick(&["1", "2", "3"]);
        let replicas = g.typed(replicas, "REPLICAS");
        entries.push(("replicas", replicas));
        if g.rng.chance(30) {
            entries.push(("labels", map(vec![("com.example.tier", plain("app"))])));
        }
    }
    if g.on("deploy-resources", 60) {
        resources = true;
        let cpus = match g.rng.below(5) {
            0 => plain("0.5"),
            1 => sq("0.50"),
            2 => plain("2"),
            3 => plain("0.3"),
            _ => dq("1.5"),
        };
        let memory = g.rng.pick(&["512M", "1g", "256m", "1G", "2048M"]);
        let memory = g.memory(memory, false);
        let mut limits = vec![("cpus", cpus), ("memory", memory)];
        if g.rng.chance(20) {
            limits.push(("pids", plain("200")));
        }
        let mut res = vec![("limits", map(limits))];
        let mut reservations = Vec::new();
        if g.rng.chance(50) {
            reservations.push(("cpus", sq("0.25")));
            reservations.push(("memory", plain("128M")));
        }
        if g.on("gpus", 15) {
            let mut device = vec![("driver", plain("nvidia"))];
            if g.rng.chance(50) {
                device.push(("count", plain(g.rng.pick(&["1", "all"]))));
            } else {
                device.push(("device_ids", Y::Seq(vec![dq("0"), dq("1")])));
            }
            device.push(("capabilities", Y::Seq(vec![plain("gpu")])));
            reservations.push(("devices", Y::Seq(vec![map(device)])));
        }
        if !reservations.is_empty() {
            res.push(("reservations", map(reservations)));
        }
        entries.push(("resources", map(res)));
    }
    if g.on("deploy-restart", 30) {
        let max_attempts = g.typed("3", "MAX_ATTEMPTS");
        let delay = g.duration(&["5s", "10s"]);
        let window = g.duration(&["30s", "45s"]);
        entries.push((
            "restart_policy",
            map(vec![
                ("condition", plain(g.rng.pick(&["on-failure", "any"]))),
                ("delay", delay),
                ("max_attempts", max_attempts),
                ("window", window),
            ]),
        ));
    }
    if g.on("deploy-update", 25) {
        let delay = g.duration(&["10s", "5s"]);
        entries.push((
            "update_config",
            map(vec![
                ("parallelism", plain("2")),
                ("delay", delay),
                ("order", plain("start-first")),
                ("failure_action", plain("rollback")),
            ]),
        ));
        if g.rng.chance(30) {
            entries.push((
                "rollback_config",
                map(vec![
                    ("parallelism", plain("1")),
                    ("order", plain("stop-first")),
                ]),
            ));
        }
    }
    if entries.is_empty() {
        return None;
    }
    Some((map(entries), resources))
}

fn service_networks(g: &mut Gen<'_>, service: &str) -> Option<Y> {
    if g.networks.is_empty() || !g.rng.chance(65) {
        return None;
    }
    let mut chosen: Vec<usize> = Vec::new();
    match service {
        "web" | "proxy" | "frontend" => chosen.push(0),
        "db" | "cache" | "queue" => chosen.push(1),
        _ => {
            chosen.push(0);
            chosen.push(1);
        }
    }
    if (service == "proxy" || service == "web") && g.networks.len() > 2 {
        chosen.push(2);
    }
    if g.rng.chance(50) {
        if !g.on("networks-map", 100) {
            return None;
        }
        let mut entries = Vec::new();
        for &n in &chosen {
            let mut body = Vec::new();
            if g.on("networks-aliases", 40) {
                body.push((
                    "aliases",
                    Y::Seq(vec![plain(&format!("{service}.internal"))]),
                ));
            }
            if let Some(octet) = g.networks[n].subnet {
                if g.on("networks-ipv4", 70) {
                    let host = 10 + g.services.len();
                    body.push(("ipv4_address", plain(&format!("172.{octet}.0.{host}"))));
                    if g.networks[n].ipv6 {
                        body.push(("ipv6_address", dq(&format!("fd00:{octet}::{host}"))));
                    }
                }
            }
            if g.on("networks-extra", 15) {
                body.push(("priority", plain("1000")));
            }
            let value = if body.is_empty() {
                if g.rng.chance(50) {
                    Y::S(String::new())
                } else {
                    Y::Map(Vec::new())
                }
            } else {
                map(body)
            };
            entries.push((g.networks[n].name.clone(), value));
        }
        Some(Y::Map(entries))
    } else {
        Some(Y::Seq(
            chosen.iter().map(|&n| plain(&g.networks[n].name)).collect(),
        ))
    }
}

fn extra_hosts(g: &mut Gen<'_>) -> Option<Y> {
    if g.on("extra-hosts-list", 10) {
        let mut items = vec![dq("host.docker.internal:host-gateway")];
        if g.rng.chance(50) {
            items.push(dq("db.local=10.0.0.5"));
        } else {
            items.push(dq("legacy.example.com:192.168.1.20"));
        }
        if g.on("extra-hosts-multi", 30) {
            items.push(dq("ipv6.local=::1"));
            items.push(dq("multi.local=10.0.0.7"));
            items.push(dq("multi.local=10.0.0.8"));
        }
        return Some(Y::Seq(items));
    }
    if g.on("extra-hosts-map", 8) {
        let mut entries = vec![
            ("host.docker.internal", plain("host-gateway")),
            ("db.local", dq("10.0.0.5")),
        ];
        if g.on("extra-hosts-multi", 30) {
            entries.push(("multi.local", Y::Seq(vec![dq("10.0.0.7"), dq("10.0.0.8")])));
            entries.push(("ipv6.local", dq("::1")));
        }
        return Some(map(entries));
    }
    None
}

fn file_mode(g: &mut Gen<'_>) -> Y {
    if g.on("file-mode-octal", 50) {
        match g.rng.below(3) {
            0 => plain("0440"),
            1 => plain("0o440"),
            _ => dq("0440"),
        }
    } else {
        plain(g.rng.pick(&["288", "292", "256"]))
    }
}

fn service_secrets(g: &mut Gen<'_>, service: &str) -> Option<Y> {
    if !g.on("secrets", 22) {
        return None;
    }
    let name = "db_password".to_owned();
    if !g.secrets.iter().any(|(n, _)| *n == name) {
        g.aux_file("secrets/db_password.txt", "correct-horse-battery-staple\n");
        g.secrets.push((
            name.clone(),
            map(vec![("file", plain("./secrets/db_password.txt"))]),
        ));
    }
    let mut items = vec![plain(&name)];
    if g.on("secrets-external", 25) {
        if !g.secrets.iter().any(|(n, _)| n == "tls_cert") {
            let body = if g.rng.chance(50) {
                map(vec![("external", plain("true"))])
            } else {
                map(vec![
                    ("external", plain("true")),
                    ("name", plain("prod_tls_cert")),
                ])
            };
            g.secrets.push(("tls_cert".into(), body));
        }
        items.push(plain("tls_cert"));
    }
    if g.on("secrets-env", 40) {
        g.dotenv = true;
        if !g.secrets.iter().any(|(n, _)| n == "api_key") {
            g.secrets.push((
                "api_key".into(),
                map(vec![("environment", plain("API_KEY"))]),
            ));
        }
        if g.on("secrets-long", 60) {
            let mode = file_mode(g);
            items.push(map(vec![
                ("source", plain("api_key")),
                ("target", plain(&format!("{service}_api_key"))),
                ("uid", dq("1000")),
                ("gid", dq("1000")),
                ("mode", mode),
            ]));
        } else {
            items.push(plain("api_key"));
        }
    }
    Some(Y::Seq(items))
}

fn service_configs(g: &mut Gen<'_>, a: &Archetype) -> Option<Y> {
    if !g.on("configs", 18) {
        return None;
    }
    let mut items = Vec::new();
    let (name, file, target) = if a.name == "web" || a.name == "proxy" {
        ("nginx_conf", "./nginx/nginx.conf", "/etc/nginx/nginx.conf")
    } else {
        ("app_config", "./config/app.yml", "/etc/app/config.yml")
    };
    if !g.configs.iter().any(|(n, _)| n == name) {
        g.aux_file(&file[2..], "# generated\nkey: value\n");
        let body = if g.on("secrets-external", 25) {
            map(vec![
                ("file", plain(file)),
                ("name", plain(&format!("myapp_{name}_v2"))),
            ])
        } else {
            map(vec![("file", plain(file))])
        };
        g.configs.push((name.to_owned(), body));
    }
    if g.on("secrets-long", 50) {
        let mode = file_mode(g);
        items.push(map(vec![
            ("source", plain(name)),
            ("target", plain(target)),
            ("mode", mode),
        ]));
    } else {
        items.push(plain(name));
    }
    if g.on("configs-content", 30) {
        if !g.configs.iter().any(|(n, _)| n == "app_settings") {
            g.configs.push((
                "app_settings".into(),
                map(vec![(
                    "content",
                    Y::Block(
                        "|",
                        "debug=false\nport=8080\nname=${COMPOSE_PROJECT_NAME}\n".into(),
                    ),
                )]),
            ));
        }
        items.push(plain("app_settings"));
    }
    if g.on("secrets-env", 30) {
        g.dotenv = true;
        if !g.configs.iter().any(|(n, _)| n == "app_env") {
            g.configs.push((
                "app_env".into(),
                map(vec![("environment", plain("APP_CONFIG"))]),
            ));
        }
        items.push(plain("app_env"));
    }
    Some(Y::Seq(items))
}

fn dotenv_file(g: &mut Gen<'_>) -> String {
    let mut out = String::from("# local settings\n");
    let fancy = g.on("dotenv-syntax", 40);
    for (name, value) in DOTENV {
        if !fancy {
            writeln!(out, "{name}={value}").unwrap();
            continue;
        }
        match g.rng.below(6) {
            0 => writeln!(out, "export {name}={value}").unwrap(),
            1 => writeln!(out, "{name}=\"{value}\"").unwrap(),
            2 => writeln!(out, "{name}='{value}'").unwrap(),
            3 => writeln!(out, "{name}={value} # inline comment").unwrap(),
            4 => writeln!(out, "\n# {name}\n{name}={value}").unwrap(),
            _ => writeln!(out, "{name}={value}").unwrap(),
        }
    }
    if g.dotenv_profiles {
        out.push_str("COMPOSE_PROFILES=debug,tools\n");
    }
    if fancy {
        out.push_str("DATABASE_HOST=db\nDATABASE_URL=\"postgres://${POSTGRES_USER}@${DATABASE_HOST}/${POSTGRES_DB}\"\n");
    }
    out
}

/// Whether a value can be copied into another file: no anchors, aliases
/// or merge keys.
fn portable(y: &Y) -> bool {
    match y {
        Y::S(s) => !s.starts_with('*'),
        Y::Seq(items) => items.iter().all(portable),
        Y::Map(entries) => entries.iter().all(|(k, v)| k != "<<" && portable(v)),
        Y::Flow(inner) | Y::Tag(_, inner) => portable(inner),
        Y::Anchor(..) => false,
        Y::Block(..) => true,
    }
}

/// An override file changing a few services (and maybe adding one).
fn override_file(g: &mut Gen<'_>) -> String {
    let mut services: Vec<(String, Y)> = Vec::new();
    let count = g.rng.range(1, g.services.len().min(3));
    let mut touched: Vec<usize> = Vec::new();
    for _ in 0..count {
        let i = g.rng.below(g.services.len());
        if !touched.contains(&i) {
            touched.push(i);
        }
    }
    // Anchors live in the base file; an alias here would dangle.
    let anchors = (
        g.x_common,
        g.x_env,
        g.x_logging,
        g.x_deploy,
        g.x_health,
        g.app_image_anchored,
    );
    (
        g.x_common,
        g.x_env,
        g.x_logging,
        g.x_deploy,
        g.x_health,
        g.app_image_anchored,
    ) = (false, false, false, false, false, false);
    let volumes_before = g.volumes.len();
    for &i in &touched {
        let body = override_service(g, i);
        if !body.is_empty() {
            services.push((g.services[i].name.clone(), Y::Map(body)));
        }
    }
    if g.on("override-new-service", 30) {
        let used: Vec<usize> = g.services.iter().map(|s| s.arch).collect();
        let arch = (0..ARCHETYPES.len())
            .find(|a| !used.contains(a))
            .unwrap_or(g.rng.below(ARCHETYPES.len()));
        let exists = g
            .services
            .iter()
            .any(|s| s.name == format!("{}-extra", ARCHETYPES[arch].name));
        if !exists {
            let (name, body) = service(g, arch, true);
            services.push((name, body));
        }
    }
    if services.is_empty() {
        // An override that changes nothing is still a realistic file.
        let name = g.services[0].name.clone();
        services.push((
            name,
            map(vec![(
                "labels",
                map(vec![("com.example.env", plain("dev"))]),
            )]),
        ));
    }
    let mut top: Vec<(String, Y)> = vec![("services".into(), Y::Map(services))];
    // Resources the added service introduced live in this file.
    let new_volumes: Vec<String> = g.volumes[volumes_before..].to_vec();
    if !new_volumes.is_empty() {
        top.push((
            "volumes".into(),
            Y::Map(
                new_volumes
                    .into_iter()
                    .map(|v| (v, Y::Map(Vec::new())))
                    .collect(),
            ),
        ));
    }
    (
        g.x_common,
        g.x_env,
        g.x_logging,
        g.x_deploy,
        g.x_health,
        g.app_image_anchored,
    ) = anchors;
    if !g.secrets.is_empty() {
        top.push(("secrets".into(), Y::Map(std::mem::take(&mut g.secrets))));
    }
    if !g.configs.is_empty() {
        top.push(("configs".into(), Y::Map(std::mem::take(&mut g.configs))));
    }
    render(&top)
}

fn override_service(g: &mut Gen<'_>, index: usize) -> Vec<(String, Y)> {
    let mut m: Vec<(String, Y)> = Vec::new();
    let keys = g.services[index].keys.clone();
    let has = |k: &str| keys.iter().any(|key| key == k);
    let arch = &ARCHETYPES[g.services[index].arch];
    let name = g.services[index].name.clone();
    let port = arch.port;

    let resettable: Vec<&str> = [
        "ports",
        "environment",
        "volumes",
        "labels",
        "command",
        "depends_on",
        "healthcheck",
        "cap_add",
    ]
    .into_iter()
    .filter(|k| has(k))
    .collect();
    let mut handled: Vec<String> = Vec::new();
    if !resettable.is_empty() && g.on("reset-tag", 35) {
        let key = g.rng.pick(&resettable);
        let value = match key {
            "ports" | "volumes" | "depends_on" | "cap_add" => {
                Y::Tag("!reset", Box::new(Y::Seq(Vec::new())))
            }
            "environment" | "labels" => Y::Tag("!reset", Box::new(Y::Map(Vec::new()))),
            "healthcheck" => Y::Tag("!reset", Box::new(Y::Map(Vec::new()))),
            _ => Y::Tag("!reset", Box::new(plain("null"))),
        };
        handled.push(key.to_owned());
        m.push((key.to_owned(), value));
    }
    let overridable: Vec<&str> = ["ports", "environment", "volumes", "command"]
        .into_iter()
        .filter(|k| has(k) && !handled.iter().any(|h| h == k))
        .collect();
    if !overridable.is_empty() && g.on("override-tag", 35) {
        let key = g.rng.pick(&overridable);
        let value = match key {
            "ports" if port > 0 => {
                let published = g.host_port();
                Y::Seq(vec![dq(&format!("{published}:{port}"))])
            }
            "environment" => map(vec![("LOG_LEVEL", plain("debug"))]),
            "volumes" => Y::Seq(vec![plain("./override-data:/data")]),
            _ => Y::Seq(vec![dq("sleep"), dq("infinity")]),
        };
        handled.push(key.to_owned());
        m.push((key.to_owned(), Y::Tag("!override", Box::new(value))));
    }
    let free = |k: &str, handled: &[String]| !handled.iter().any(|h| h == k);
    // compose refuses deploy limits that disagree with service-level ones.
    let service_limits = ["mem_limit", "cpus", "pids_limit", "mem_reservation"]
        .iter()
        .any(|k| has(k));

    if g.services[index].has_image && g.rng.chance(40) {
        let image = match arch.name {
            "web" => "nginx:1.27.1-alpine",
            "db" => "postgres:16.4-alpine",
            "cache" => "redis:7.4-alpine",
            _ => "ghcr.io/acme/api:1.5.0-rc1",
        };
        m.push(("image".into(), plain(image)));
    }
    if free("environment", &handled) && g.rng.chance(50) {
        let as_map = g.rng.chance(50);
        let tag = if as_map { "env-map" } else { "env-list" };
        if g.on(tag, 100) {
            let mut entries = env_entries(g, 2);
            entries.retain(|(k, ..)| k != "LOG_LEVEL");
            entries.push(("LOG_LEVEL".into(), plain("debug"), plain("LOG_LEVEL=debug")));
            let value = if as_map {
                Y::Map(entries.into_iter().map(|(k, v, _)| (k, v)).collect())
            } else {
                Y::Seq(entries.into_iter().map(|(_, _, i)| i).collect())
            };
            m.push(("environment".into(), value));
        }
    }
    if free("ports", &handled) && port > 0 && !has("network_mode") && g.rng.chance(35) {
        let ports = ports(g, port + 10);
        if !ports.is_empty() {
            m.push(("ports".into(), Y::Seq(ports)));
        }
    }
    if free("labels", &handled) && g.rng.chance(30) {
        if let Some(labels) = labels(g, &name) {
            m.push(("labels".into(), labels));
        }
    }
    if free("command", &handled) && g.rng.chance(25) {
        if g.on("command-list", 60) {
            m.push(("command".into(), command_list(arch)));
        } else if g.on("command-string", 100) {
            m.push(("command".into(), plain("npm run dev")));
        }
    }
    if free("volumes", &handled) && g.rng.chance(30) {
        let mounts_data = g.services[index]
            .targets
            .iter()
            .any(|t| t == "/var/lib/data");
        let mut vols = volumes(g, index);
        // A bind on a target the base mounts replaces that mount.
        if mounts_data && g.on("volumes-bind", 40) {
            vols.push(plain("./dev-data:/var/lib/data"));
        }
        if !vols.is_empty() {
            m.push(("volumes".into(), Y::Seq(vols)));
        }
    }
    if free("depends_on", &handled) && index > 0 && g.rng.chance(25) {
        let candidates: Vec<usize> = (0..index).filter(|&i| !g.services[i].profiled).collect();
        if !candidates.is_empty() {
            let pick = g.rng.pick(&candidates);
            if let Some(deps) = depends_on_value(g, &[pick]) {
                m.push(("depends_on".into(), deps));
            }
        }
    }
    if free("healthcheck", &handled) && g.services[index].healthcheck && g.rng.chance(30) {
        let interval = g.duration(&["15s", "20s"]);
        m.push((
            "healthcheck".into(),
            map(vec![("interval", interval), ("retries", plain("10"))]),
        ));
    }
    if has("deploy") && !service_limits && g.rng.chance(35) && g.on("deploy-resources", 100) {
        m.push((
            "deploy".into(),
            map(vec![(
                "resources",
                map(vec![("limits", map(vec![("memory", plain("1g"))]))]),
            )]),
        ));
    }
    if g.rng.chance(20) && g.on("restart", 100) {
        m.push(("restart".into(), plain("always")));
    }
    let taken = |m: &[(String, Y)], k: &str| m.iter().any(|(key, _)| key == k);
    if g.rng.chance(30) {
        let repeatable: Vec<(String, Y)> = g.services[index]
            .body
            .iter()
            .filter(|(k, v)| {
                [
                    "ports",
                    "volumes",
                    "labels",
                    "environment",
                    "dns",
                    "cap_add",
                    "cap_drop",
                    "secrets",
                    "configs",
                    "expose",
                    "tmpfs",
                    "env_file",
                    "devices",
                    "links",
                    "extra_hosts",
                    "sysctls",
                    "depends_on",
                    "networks",
                ]
                .contains(&k.as_str())
                    && !taken(&m, k)
                    && free(k, &handled)
                    && portable(v)
            })
            .cloned()
            .collect();
        if !repeatable.is_empty() {
            let pick = g.rng.below(repeatable.len());
            let (key, value) = repeatable[pick].clone();
            let tag = if key == "extra_hosts" {
                "extra-hosts-repeat"
            } else {
                "override-repeat"
            };
            if g.on(tag, 100) {
                m.push((key, value));
            }
        }
    }
    if g.on("nested-reset", 30) {
        let mut choices = Vec::new();
        for key in ["deploy", "build", "logging"] {
            if has(key) && !taken(&m, key) && free(key, &handled) {
                choices.push(key);
            }
        }
        if !choices.is_empty() {
            let key = g.rng.pick(&choices);
            let inner = match key {
                "deploy" => "resources",
                "build" => "args",
                _ => "options",
            };
            let reset = Y::Tag("!reset", Box::new(Y::Map(Vec::new())));
            m.push((key.to_owned(), map(vec![(inner, reset)])));
        }
    }
    if g.on("override-more", 40) {
        for _ in 0..g.rng.range(1, 3) {
            let key = g.rng.pick(&[
                "logging",
                "build",
                "deploy",
                "extra_hosts",
                "cap_add",
                "networks",
                "dns",
                "env_file",
                "healthcheck",
                "ulimits",
                "entrypoint",
                "expose",
                "tmpfs",
                "user",
                "stop_grace_period",
            ]);
            if taken(&m, key) || !free(key, &handled) {
                continue;
            }
            let value = match key {
                "logging" => {
                    if g.rng.chance(50) {
                        map(vec![("driver", plain("local"))])
                    } else {
                        map(vec![("options", map(vec![("max-size", dq("20m"))]))])
                    }
                }
                "build" if has("build") => match g.rng.below(3) {
                    0 => map(vec![("args", map(vec![("EXTRA_ARG", dq("1"))]))]),
                    1 => map(vec![("target", plain("dev"))]),
                    _ => map(vec![("dockerfile", plain("Dockerfile.dev"))]),
                },
                "deploy" if has("deploy") && !service_limits => {
                    if has("container_name") || has("scale") {
                        map(vec![(
                            "restart_policy",
                            map(vec![("condition", plain("any"))]),
                        )])
                    } else if g.rng.chance(50) {
                        map(vec![("replicas", plain("3"))])
                    } else {
                        map(vec![(
                            "resources",
                            map(vec![("reservations", map(vec![("memory", plain("64M"))]))]),
                        )])
                    }
                }
                "extra_hosts" => {
                    // A later file repeats the entry in the spelling it was
                    // first written in, unless mixing spellings.
                    let prior = g.metrics_host_colon;
                    let colon = match prior {
                        Some(colon) if g.on("extra-hosts-mixed", 50) => !colon,
                        Some(colon) => colon,
                        None => g.on("extra-hosts-repeat", 50),
                    };
                    g.metrics_host_colon = Some(colon);
                    if colon {
                        g.mark("extra-hosts-repeat");
                        Y::Seq(vec![dq("metrics.local:10.0.0.9")])
                    } else {
                        Y::Seq(vec![dq("metrics.local=10.0.0.9")])
                    }
                }
                "cap_add" => Y::Seq(vec![plain("SYS_PTRACE")]),
                "networks" if !g.networks.is_empty() && !has("network_mode") => {
                    if g.rng.chance(50) {
                        Y::Seq(vec![plain("backend")])
                    } else {
                        map(vec![(
                            "backend",
                            map(vec![(
                                "aliases",
                                Y::Seq(vec![plain(&format!("{name}.dev"))]),
                            )]),
                        )])
                    }
                }
                "dns" => Y::Seq(vec![plain("10.0.0.2")]),
                "env_file" => {
                    g.aux_file("override.env", "OVERRIDDEN=1\nLOG_LEVEL=trace\n");
                    plain("./override.env")
                }
                "healthcheck" if g.services[index].healthcheck => {
                    map(vec![("test", Y::Seq(vec![dq("CMD"), dq("true")]))])
                }
                "ulimits" => map(vec![("nofile", plain("65536"))]),
                "entrypoint" => Y::Seq(vec![dq("/usr/bin/tini"), dq("--")]),
                "expose" => Y::Seq(vec![dq("9200")]),
                "tmpfs" => plain("/var/tmp"),
                "user" => plain("root"),
                "stop_grace_period" => g.duration(&["20s", "1m30s"]),
                _ => continue,
            };
            m.push((key.to_owned(), value));
        }
    }
    m
}
