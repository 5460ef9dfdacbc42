//! Where configuration values come from: the key table, environment variables, flags, the
//! file, and the checks that name a bad value's key and source.

use super::*;

/// What a key holds, for parsing environment variables and checking ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Address,
    Bool,
    /// An integer from `.0` to `.1` inclusive.
    Integer(u64, u64),
    /// Container ids: `0,1,2` in the environment.
    Ids,
    /// Segment store specs separated by spaces in the environment (see [`parse_store_spec`]).
    Stores,
}

const COUNT: Kind = Kind::Integer(1, u32::MAX as u64);
const POSITIVE: Kind = Kind::Integer(1, i64::MAX as u64);
const ANY: Kind = Kind::Integer(0, i64::MAX as u64);

/// Every key that environment variables and flags can set (all but `version`), by path.
pub const KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Text),
    ("containers", COUNT),
    ("token_signing_key", Kind::Text),
    ("segment_store.listen", Kind::Address),
    ("segment_store.owned_containers", Kind::Ids),
    ("segment_store.tier2_dir", Kind::Text),
    ("segment_store.cache_budget_bytes", ANY),
    ("segment_store.max_append_bytes", POSITIVE),
    ("segment_store.max_unstored_bytes", POSITIVE),
    ("segment_store.max_in_flight_bytes", POSITIVE),
    ("segment_store.chunk_target_bytes", POSITIVE),
    ("segment_store.chunk_max_age_ms", ANY),
    ("segment_store.flush_interval_ms", POSITIVE),
    ("segment_store.checkpoint_log_bytes", POSITIVE),
    ("segment_store.read_ahead_bytes", ANY),
    ("segment_store.log_max_file_bytes", POSITIVE),
    ("segment_store.log_max_batch_bytes", POSITIVE),
    ("segment_store.log_max_batch_delay_us", ANY),
    ("controller.grpc", Kind::Address),
    ("controller.rest", Kind::Address),
    ("controller.autoscale", Kind::Bool),
    ("controller.autoscale_interval_ms", POSITIVE),
    ("controller.autoscale_cooldown_ms", ANY),
    ("controller.retention_interval_ms", POSITIVE),
    ("controller.watermark_interval_ms", POSITIVE),
    ("controller.transaction_sweep_interval_ms", POSITIVE),
    ("controller.token_lifetime_secs", POSITIVE),
    ("controller.password_file", Kind::Text),
    ("controller.segment_stores", Kind::Stores),
];

/// `PRAVAHA_` and the key path in upper snake case, sections joined by `_`:
/// `segment_store.listen` is `PRAVAHA_SEGMENT_STORE_LISTEN`.
pub fn env_name(key: &str) -> String {
    format!("PRAVAHA_{}", key.replace('.', "_").to_uppercase())
}

/// Where a value came from, for error messages and `pravaha config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => write!(f, "built-in default"),
            Self::File(path) => write!(f, "config file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Values given on the command line: key, flag, value.
#[derive(Default)]
pub struct Flags(Vec<(&'static str, &'static str, Result<toml::Value, String>)>);

impl Flags {
    /// Records `value` for `key` when the flag was given.
    pub fn set<T: Serialize>(&mut self, key: &'static str, flag: &'static str, value: Option<&T>) {
        debug_assert!(KEYS.iter().any(|(known, _)| *known == key), "{key}");
        if let Some(value) = value {
            let value = toml::Value::try_from(value).map_err(|error| error.to_string());
            self.0.push((key, flag, value));
        }
    }
}

/// A configuration and where each of its values came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    sources: BTreeMap<String, Source>,
}

impl Loaded {
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// An error about `key` that names where its value came from.
    fn problem(&self, key: &str, message: &str) -> anyhow::Error {
        anyhow!("{key} ({}) {message}", self.source(key))
    }
}

/// Builds the configuration: defaults, then the file (`config_flag`, else the file named by
/// `PRAVAHA_CONFIG`), then environment variables (read through `env`), then `flags`.
pub fn load(
    config_flag: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    flags: &Flags,
) -> anyhow::Result<Loaded> {
    let path = config_flag
        .map(Path::to_path_buf)
        .or_else(|| env(CONFIG_ENV).map(PathBuf::from));
    let mut table = toml::Table::new();
    let mut sources = BTreeMap::new();
    if let Some(path) = path {
        table = read_file(&path)?;
        for key in std::iter::once("version").chain(KEYS.iter().map(|(key, _)| *key)) {
            if lookup(&table, key).is_some() {
                sources.insert(key.to_owned(), Source::File(path.clone()));
            }
        }
    }
    for (key, kind) in KEYS {
        let name = env_name(key);
        if let Some(raw) = env(&name) {
            let value = parse_env(*kind, &raw)
                .with_context(|| format!("invalid {key} in environment variable {name}"))?;
            insert(&mut table, key, value);
            sources.insert((*key).to_owned(), Source::Env(name));
        }
    }
    for (key, flag, value) in &flags.0 {
        let value = value
            .clone()
            .map_err(|error| anyhow!("invalid {key} in flag {flag}: {error}"))?;
        insert(&mut table, key, value);
        sources.insert((*key).to_owned(), Source::Flag(flag));
    }
    let config: Config = toml::Value::Table(table)
        .try_into()
        .context("combining the configuration sources")?;
    let loaded = Loaded { config, sources };
    validate(&loaded)?;
    Ok(loaded)
}

/// Parses the file as a [`Config`] first, for errors that name the key, line and column.
fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str::<Config>(&text)
        .with_context(|| format!("invalid config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// The value at a dotted key path (`section.leaf` or `leaf`).
pub fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (section, leaf) = key.split_once('.').unwrap_or(("", key));
    let table = match section {
        "" => table,
        section => table.get(section)?.as_table()?,
    };
    table.get(leaf)
}

fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    let Some((section, leaf)) = key.split_once('.') else {
        table.insert(key.to_owned(), value);
        return;
    };
    let section = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    // The file was parsed as a `Config`, so a section is always a table.
    if let toml::Value::Table(section) = section {
        section.insert(leaf.to_owned(), value);
    }
}

fn parse_env(kind: Kind, raw: &str) -> anyhow::Result<toml::Value> {
    Ok(match kind {
        Kind::Text => raw.into(),
        Kind::Address => raw
            .parse::<SocketAddr>()
            .map_err(|_| anyhow!("{raw:?} is not an IP:PORT address"))?
            .to_string()
            .into(),
        Kind::Bool => match raw {
            "true" | "1" => true.into(),
            "false" | "0" => false.into(),
            _ => bail!("{raw:?} is not true, false, 1 or 0"),
        },
        Kind::Integer(min, max) => {
            let value: u64 = raw
                .parse()
                .map_err(|_| anyhow!("{raw:?} is not an integer"))?;
            check_range(value, min, max)?;
            toml::Value::Integer(i64::try_from(value).expect("max is at most i64::MAX"))
        }
        Kind::Ids => parse_ids(raw)?.into(),
        Kind::Stores => {
            let stores = raw
                .split_whitespace()
                .map(parse_store_spec)
                .collect::<anyhow::Result<Vec<_>>>()?;
            toml::Value::try_from(stores)?
        }
    })
}

fn check_range(value: u64, min: u64, max: u64) -> anyhow::Result<()> {
    if value < min || value > max {
        bail!("{value} is out of range {min}..={max}");
    }
    Ok(())
}

/// Container ids separated by commas: `0,1,2`.
pub fn parse_ids(raw: &str) -> anyhow::Result<Vec<u32>> {
    raw.split(',')
        .map(|id| {
            id.trim()
                .parse()
                .map_err(|_| anyhow!("{id:?} is not a container id"))
        })
        .collect()
}

/// A segment store for the controller: `ADDRESS[@HOST[:PORT]][/IDS]`, e.g.
/// `10.0.0.5:12345@store-1.example.com/0,1`: connect to the address, tell clients the host and
/// port (default: the address), own the containers listed (default: all).
pub fn parse_store_spec(spec: &str) -> anyhow::Result<SegmentStoreEntry> {
    let (rest, containers) = match spec.split_once('/') {
        Some((rest, ids)) => (rest, Some(parse_ids(ids)?)),
        None => (spec, None),
    };
    let (address, advertised) = match rest.split_once('@') {
        Some((address, advertised)) => (address, Some(advertised)),
        None => (rest, None),
    };
    let address = address
        .parse()
        .map_err(|_| anyhow!("{address:?} in segment store {spec:?} is not an IP:PORT address"))?;
    let (advertised_host, advertised_port) = match advertised {
        None => (None, None),
        Some(advertised) => {
            let (host, port) = split_host_port(advertised).ok_or_else(|| {
                anyhow!("{advertised:?} in segment store {spec:?} is not HOST[:PORT]")
            })?;
            (Some(host.to_owned()), port)
        }
    };
    Ok(SegmentStoreEntry {
        address,
        advertised_host,
        advertised_port,
        containers,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (host, rest) = bracketed.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    let port = port.map(str::parse).transpose().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// Checks what the types alone do not: ranges, container ids, ownership, the version.
fn validate(loaded: &Loaded) -> anyhow::Result<()> {
    let config = &loaded.config;
    let problem = |key: &str, message: String| loaded.problem(key, &message);
    if config.version != VERSION {
        let message = format!(
            "is {}; this pravaha reads version {VERSION}",
            config.version
        );
        return Err(problem("version", message));
    }
    let tree = toml::Value::try_from(config).context("serializing the configuration")?;
    let tree = tree
        .as_table()
        .context("the configuration is not a table")?;
    for (key, kind) in KEYS {
        if let (Kind::Integer(min, max), Some(toml::Value::Integer(value))) =
            (kind, lookup(tree, key))
        {
            let value = u64::try_from(*value).unwrap_or(0);
            check_range(value, *min, *max).map_err(|error| problem(key, error.to_string()))?;
        }
    }
    if config.token_signing_key.as_deref() == Some("") {
        return Err(problem("token_signing_key", "must not be empty".into()));
    }
    if let Some(ids) = &config.segment_store.owned_containers {
        check_ids(loaded, "segment_store.owned_containers", ids)?;
    }
    let stores = &config.controller.segment_stores;
    for ids in stores
        .iter()
        .filter_map(|store| store.containers.as_deref())
    {
        check_ids(loaded, "controller.segment_stores", ids)?;
    }
    if !stores.is_empty() {
        config
            .segment_stores()
            .map_err(|error| problem("controller.segment_stores", error.to_string()))?;
    }
    Ok(())
}

/// Container ids must exist.
fn check_ids(loaded: &Loaded, key: &str, ids: &[u32]) -> anyhow::Result<()> {
    let containers = loaded.config.containers;
    if ids.is_empty() {
        return Err(loaded.problem(key, "names no container"));
    }
    match ids.iter().find(|id| **id >= containers) {
        Some(id) => {
            let source = loaded.source("containers");
            let message = format!("names container {id}, but containers = {containers} ({source})");
            Err(loaded.problem(key, &message))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_every_field_once() {
        let config = Config {
            token_signing_key: Some("key".into()),
            segment_store: SegmentStoreSettings {
                owned_containers: Some(vec![0]),
                tier2_dir: Some("tier2".into()),
                ..SegmentStoreSettings::default()
            },
            controller: ControllerSettings {
                segment_stores: vec![parse_store_spec("127.0.0.1:1").unwrap()],
                password_file: Some("passwd".into()),
                ..ControllerSettings::default()
            },
            ..Config::default()
        };
        let toml::Value::Table(tree) = toml::Value::try_from(&config).unwrap() else {
            panic!("a struct serializes as a table")
        };
        let mut leaves = Vec::new();
        for (name, value) in &tree {
            match value.as_table() {
                Some(section) => leaves.extend(section.keys().map(|leaf| format!("{name}.{leaf}"))),
                None => leaves.push(name.clone()),
            }
        }
        let mut keys: Vec<String> = KEYS.iter().map(|(key, _)| (*key).to_owned()).collect();
        keys.push("version".into());
        leaves.sort();
        keys.sort();
        assert_eq!(leaves, keys);
        let mut names: Vec<String> = KEYS.iter().map(|(key, _)| env_name(key)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
        assert_eq!(
            env_name("segment_store.listen"),
            "PRAVAHA_SEGMENT_STORE_LISTEN"
        );
    }

    #[test]
    fn segment_store_specs() {
        let plain = parse_store_spec("10.0.0.5:12345").unwrap();
        assert_eq!((plain.advertised_host, plain.containers), (None, None));
        let full = parse_store_spec("10.0.0.5:12345@store-1.example.com:23456/0,2").unwrap();
        assert_eq!(full.advertised_host.as_deref(), Some("store-1.example.com"));
        assert_eq!(full.advertised_port, Some(23456));
        assert_eq!(full.containers, Some(vec![0, 2]));
        let node = full.node();
        assert_eq!(
            (node.advertised_host.as_str(), node.advertised_port),
            ("store-1.example.com", 23456)
        );
        let v6 = parse_store_spec("[::1]:12345@[::1]").unwrap();
        assert_eq!(
            (v6.advertised_host.as_deref(), v6.advertised_port),
            (Some("::1"), None)
        );
        for bad in [
            "store:12345",
            "10.0.0.5:12345@",
            "10.0.0.5:12345/x",
            "10.0.0.5:1@h:p",
        ] {
            assert!(parse_store_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_value_comes_from_the_last_source_that_sets_it() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let text = "containers = 2\ndata_dir = \"file\"\n[controller]\ngrpc = \"127.0.0.1:1\"\n";
        std::fs::write(file.path(), text).unwrap();
        let env = |name: &str| match name {
            "PRAVAHA_DATA_DIR" => Some("env".to_owned()),
            "PRAVAHA_CONTROLLER_GRPC" => Some("127.0.0.1:2".to_owned()),
            _ => None,
        };
        let mut flags = Flags::default();
        flags.set("controller.grpc", "--grpc", Some(&"127.0.0.1:3"));
        let loaded = load(Some(file.path()), env, &flags).unwrap();
        assert_eq!(loaded.config.containers, 2);
        assert_eq!(loaded.config.data_dir, PathBuf::from("env"));
        assert_eq!(loaded.config.controller.grpc.port(), 3);
        assert_eq!(
            loaded.source("containers"),
            Source::File(file.path().into())
        );
        assert_eq!(
            loaded.source("data_dir"),
            Source::Env("PRAVAHA_DATA_DIR".into())
        );
        assert_eq!(loaded.source("controller.grpc"), Source::Flag("--grpc"));
        assert_eq!(loaded.source("controller.rest"), Source::Default);
    }
}
