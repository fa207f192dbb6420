//! Server configuration: `velo serve` flags plus an optional config file, validated once into [`Config`].
//!
//! The config file uses Redis's syntax: one `name value...` per line (Redis's quoting), `#` comments.
//! Every Redis 7.0 parameter is accepted ([`params`] is the table), and Velo's own (`port 7379`,
//! `fsync always`, `page-cache 64mb`). A flag given on the command line wins over the file; the file wins
//! over the defaults. Any bad value is reported as one line naming the setting, and `velo` exits with
//! status 2.

pub mod params;

use std::path::PathBuf;

use crate::engine::FsyncPolicy;
/// `velo serve` flags. Every flag is optional so that a config file can supply it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Config file (Redis syntax: `name value` per line); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP port [default: 7379]; 0 picks a free port (printed at startup).
    #[arg(long)]
    pub port: Option<String>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    pub bind: Option<String>,
    /// Data directory [default: ./velo-data].
    #[arg(long)]
    pub dir: Option<String>,
    /// Internal slots of a new data directory (power of two, 1..=1024) [default: 8].
    #[arg(long)]
    pub slots: Option<String>,
    /// WAL durability: always, everysec or no [default: everysec].
    #[arg(long)]
    pub fsync: Option<String>,
    /// Key-bucket page cache size, e.g. 64mb [default: 64mb].
    #[arg(long)]
    pub page_cache: Option<String>,
    /// Value cache size, e.g. 64mb [default: 64mb].
    #[arg(long)]
    pub value_cache: Option<String>,
    /// Maximum simultaneous clients [default: 10000].
    #[arg(long)]
    pub maxclients: Option<String>,
    /// Number of databases [default: 16].
    #[arg(long)]
    pub databases: Option<String>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Threads serving connections; 0 (the default) means one per CPU core.
    #[arg(long)]
    pub worker_threads: Option<String>,
    /// File name of RDB snapshots (SAVE, BGSAVE) in the data directory [default: dump.rdb]. Redis 7.0
    /// protects it from CONFIG SET, so it is set here or in the config file.
    #[arg(long)]
    pub dbfilename: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Config file, if any (CONFIG REWRITE writes it).
    pub config_file: Option<PathBuf>,
    /// TCP port.
    pub port: u16,
    /// Listen address (the first of `bind`).
    pub bind: String,
    /// Data directory.
    pub dir: PathBuf,
    /// Slot count for a new directory (`None`: default for new, whatever an existing one has).
    pub slots: Option<u32>,
    /// WAL durability.
    pub fsync: FsyncPolicy,
    /// Page cache bytes.
    pub page_cache_bytes: usize,
    /// Value cache bytes.
    pub value_cache_bytes: usize,
    /// Maximum clients.
    pub maxclients: usize,
    /// Number of databases.
    pub databases: u16,
    /// Log level.
    pub log_level: String,
    /// RDB snapshot file name (in `dir`).
    pub dbfilename: String,
    /// Runtime worker threads (`velo-worker-threads`); 0: one per CPU core.
    pub worker_threads: usize,
    /// Every parameter's value (the fields above are typed copies of some of them).
    pub params: params::Values,
}

/// Parses a size: bytes, or with a `kb`/`mb`/`gb` (1024-based) or `k`/`m`/`g` (1000-based) suffix, as Redis.
pub fn parse_size(text: &str) -> Option<usize> {
    params::parse_memory(text.trim()).and_then(|n| usize::try_from(n).ok())
}

/// Splits a config file line into words with Redis's quoting rules.
fn split_line(line: &str) -> Option<Vec<String>> {
    let words = crate::resp::decode::split_args(line.as_bytes())?;
    Some(words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect())
}

/// The files an `include` line names: the path itself, or, when its file name has glob characters, the
/// files of its directory matching it, in name order (none is not an error, as in Redis).
fn included_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let path = PathBuf::from(pattern);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?', '[']) {
        return Ok(vec![path]);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {} for include: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| crate::glob::matches(name.as_bytes(), entry.file_name().as_encoded_bytes(), false))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// True for a `user default ...` config line whose rules leave the default user as Velo has it: enabled,
/// no password, every key, channel and command (`requirepass` sets its password).
fn is_open_default_user(values: &[String]) -> bool {
    const OPEN: &[&str] = &["on", "nopass", "~*", "&*", "+@all", "allkeys", "allchannels", "allcommands"];
    matches!(values.split_first(), Some((user, rules)) if user == "default"
        && rules.iter().all(|rule| OPEN.iter().any(|open| rule.eq_ignore_ascii_case(open))))
}

impl Config {
    /// Reads the config file (if any), applies the flags over it, and validates everything.
    pub fn load(args: &ServeArgs) -> Result<Config, String> {
        let mut config = Config {
            config_file: args.config.clone(),
            port: 7379,
            bind: "127.0.0.1".into(),
            dir: PathBuf::from("./velo-data"),
            slots: None,
            fsync: FsyncPolicy::EverySec,
            page_cache_bytes: 64 << 20,
            value_cache_bytes: 64 << 20,
            maxclients: 10000,
            databases: 16,
            log_level: "info".into(),
            dbfilename: "dump.rdb".into(),
            worker_threads: 0,
            params: params::Values::default(),
        };
        if let Some(path) = &args.config {
            // `save` lines add up (Redis's file semantics); the first one replaces the default.
            let mut saves: Option<Vec<String>> = None;
            config.load_file(path, &mut saves, 0)?;
        }
        let flags = [
            ("port", &args.port),
            ("bind", &args.bind),
            ("dir", &args.dir),
            ("slots", &args.slots),
            ("fsync", &args.fsync),
            ("page-cache", &args.page_cache),
            ("value-cache", &args.value_cache),
            ("maxclients", &args.maxclients),
            ("databases", &args.databases),
            ("log-level", &args.log_level),
            ("dbfilename", &args.dbfilename),
            ("velo-worker-threads", &args.worker_threads),
        ];
        for (name, value) in flags {
            if let Some(value) = value {
                config.set(name, value)?;
            }
        }
        if config.tls_enabled() {
            return Err("Velo has no TLS: tls-port must be 0 and tls-replication, tls-cluster 'no'".into());
        }
        Ok(config)
    }

    /// Reads one config file: `include` lines read other files in place (a glob pattern in the file name
    /// reads the matching files in name order, as Redis 7.0), a `user default` line is accepted when it
    /// describes the only user Velo has (what Redis's CONFIG REWRITE writes without ACL users), and every
    /// other line sets a parameter.
    fn load_file(
        &mut self,
        path: &std::path::Path,
        saves: &mut Option<Vec<String>>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 16 {
            return Err(format!("{}: includes nested too deep", path.display()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        for (number, line) in text.lines().enumerate() {
            let at = |message: String| format!("{}:{}: {message}", path.display(), number + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_line(line).ok_or_else(|| at("unbalanced quotes".into()))?;
            let Some((name, values)) = words.split_first() else { continue };
            if name.eq_ignore_ascii_case("include") {
                let [pattern] = values else { return Err(at("wrong number of arguments for 'include'".into())) };
                for file in included_files(pattern).map_err(at)? {
                    self.load_file(&file, saves, depth + 1)?;
                }
                continue;
            }
            if name.eq_ignore_ascii_case("user") {
                if !is_open_default_user(values) {
                    return Err(at("ACL users are not supported yet: only 'user default on nopass ~* &* +@all' \
                                   (the default user, what Velo has) is accepted"
                        .into()));
                }
                continue;
            }
            let name = name.to_ascii_lowercase().replace('_', "-");
            let name = if params::lookup(&name).is_some() { name } else { words[0].to_ascii_lowercase() };
            let Some(found) = params::lookup(&name) else {
                return Err(at(format!("unknown setting '{name}'")));
            };
            if found.param.name == "save" {
                let list = saves.get_or_insert_with(Vec::new);
                if values.len() == 1 && values[0].is_empty() {
                    list.clear();
                } else {
                    list.extend(values.iter().cloned());
                }
                self.set("save", &list.join(" ")).map_err(at)?;
                continue;
            }
            if !found.param.multi_arg() && values.len() != 1 {
                return Err(at(format!("wrong number of arguments for '{name}'")));
            }
            self.set(&name, &values.join(" ")).map_err(at)?;
        }
        Ok(())
    }

    /// True when a TLS listener or TLS links are asked for (`tls-port`, `tls-replication`, `tls-cluster`):
    /// Velo has no TLS, so CONFIG SET refuses them as Redis refuses them without a usable certificate.
    pub fn tls_enabled(&self) -> bool {
        self.params.int("tls-port") != 0 || self.params.flag("tls-replication") || self.params.flag("tls-cluster")
    }

    /// Sets one parameter from text, validating it, and updates the typed fields (config file and flags:
    /// the error names the setting and the value).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_param(name, value).map_err(|e| {
            if e.starts_with("unknown parameter") {
                e
            } else {
                format!("invalid value for {name}: '{value}' ({e})")
            }
        })
    }

    /// Sets one parameter from text, validating it, and updates the typed fields; the error is Redis's
    /// CONFIG SET text.
    pub fn set_param(&mut self, name: &str, value: &str) -> Result<(), String> {
        let bad = |why: &str| why.to_string();
        let mut params = self.params.clone();
        params.set(name, value)?;
        let canonical = params::lookup(name).map(|f| f.param.name).unwrap_or_default();
        match canonical {
            "port" => self.port = params.int("port") as u16,
            "bind" => {
                let first = params.get("bind").unwrap_or_default().split(' ').next().unwrap_or_default().to_string();
                let first = if first == "*" { "0.0.0.0".to_string() } else { first };
                first.parse::<std::net::IpAddr>().map_err(|_| bad("expected an IP address"))?;
                self.bind = first;
            }
            "dir" if value.is_empty() => return Err(bad("expected a directory")),
            "dir" => self.dir = PathBuf::from(value),
            "slots" => self.slots = params.get("slots").and_then(|s| s.parse().ok()),
            "appendfsync" => {
                self.fsync = params.get("appendfsync").unwrap_or_default().parse().map_err(|e: String| bad(&e))?
            }
            "page-cache" => self.page_cache_bytes = params.uint("page-cache") as usize,
            "value-cache" => self.value_cache_bytes = params.uint("value-cache") as usize,
            "velo-worker-threads" => self.worker_threads = params.uint("velo-worker-threads") as usize,
            "maxclients" => self.maxclients = params.uint("maxclients") as usize,
            "databases" => {
                let n = params.int("databases");
                if !(1..=1024).contains(&n) {
                    return Err(bad("Velo supports 1..=1024 databases"));
                }
                self.databases = n as u16;
            }
            "log-level" => self.log_level = params.get("log-level").unwrap_or_default().to_string(),
            "dbfilename" => {
                let name = params.get("dbfilename").unwrap_or_default();
                if name.is_empty() || name.contains('/') {
                    return Err(bad("expected a file name, not a path"));
                }
                self.dbfilename = name.to_string();
            }
            _ => {}
        }
        self.params = params;
        Ok(())
    }

    /// A parameter's current value as text (by name or alias).
    pub fn get(&self, name: &str) -> Option<String> {
        let value = self.params.get(name)?;
        Some(if name.eq_ignore_ascii_case("notify-keyspace-events") {
            params::events_shown(value)
        } else {
            value.to_string()
        })
    }

    /// The config file text CONFIG REWRITE writes, given the file's present text: comments and the lines
    /// of parameters are kept in place (with their new values), parameters set away from their defaults
    /// that the file lacks are appended; Velo's listening and storage settings are always written.
    pub fn rewrite_file_text(&self, old: &str) -> String {
        const SIGNATURE: &str = "# Generated by CONFIG REWRITE";
        const ALWAYS: &[&str] = &["port", "bind", "dir", "databases", "appendfsync"];
        let lines_of = |param: &'static params::Param| -> Vec<String> {
            let value = self.params.get(param.name).unwrap_or_default();
            match param.kind {
                params::Kind::Save if value.is_empty() => vec!["save \"\"".into()],
                params::Kind::Save => {
                    let words: Vec<&str> = value.split(' ').collect();
                    words.chunks(2).map(|pair| format!("save {}", pair.join(" "))).collect()
                }
                params::Kind::ClientOutputBufferLimit => {
                    let words: Vec<&str> = value.split(' ').collect();
                    words.chunks(4).map(|c| format!("client-output-buffer-limit {}", c.join(" "))).collect()
                }
                _ if param.multi_arg() && !value.is_empty() => vec![format!("{} {value}", param.name)],
                _ => vec![format!("{} {}", param.name, quote(value))],
            }
        };
        let mut out = Vec::new();
        let mut written = std::collections::HashSet::new();
        for line in old.lines() {
            let trimmed = line.trim();
            if trimmed == SIGNATURE {
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                out.push(line.to_string());
                continue;
            }
            let found = split_line(trimmed).and_then(|w| w.first().and_then(|name| params::lookup(name)));
            let Some(found) = found else {
                out.push(line.to_string());
                continue;
            };
            if written.insert(found.param.name) {
                out.extend(lines_of(found.param));
            }
        }
        let mut appended = Vec::new();
        for param in params::PARAMS {
            if written.contains(param.name) {
                continue;
            }
            let value = self.params.get(param.name).unwrap_or_default();
            if value != param.default || ALWAYS.contains(&param.name) {
                appended.extend(lines_of(param));
            }
        }
        if !appended.is_empty() {
            out.push(SIGNATURE.to_string());
            out.extend(appended);
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }
}

/// Quotes a value for the config file when it needs it (empty, spaces, quotes, control bytes).
fn quote(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\') {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults_and_validate() {
        let args = ServeArgs { port: Some("0".into()), fsync: Some("always".into()), ..Default::default() };
        let config = Config::load(&args).unwrap();
        assert_eq!((config.port, config.fsync, config.databases), (0, FsyncPolicy::Always, 16));
        let bad = ServeArgs { slots: Some("3".into()), ..Default::default() };
        assert_eq!(
            Config::load(&bad).unwrap_err(),
            "invalid value for slots: '3' (argument must be a power of two between 1 and 1024)"
        );
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("velo.conf");
        let old = "# comment\nport 9999\ndatabases 4\nsave 100 1\nsave 50 2\nhash-max-ziplist-entries 3\n";
        std::fs::write(&path, old).unwrap();
        let args = ServeArgs { config: Some(path.clone()), port: Some("1234".into()), ..Default::default() };
        let mut config = Config::load(&args).unwrap();
        assert_eq!((config.port, config.databases), (1234, 4));
        assert_eq!(config.get("save").as_deref(), Some("100 1 50 2"));
        assert_eq!(config.get("hash-max-listpack-entries").as_deref(), Some("3"));
        config.set("requirepass", "a b\"c").unwrap();
        let text = config.rewrite_file_text(old);
        assert!(
            text.starts_with("# comment\nport 1234\ndatabases 4\nsave 100 1\nsave 50 2\nhash-max-listpack-entries 3\n")
        );
        assert!(text.contains("# Generated by CONFIG REWRITE\n"), "{text}");
        assert!(text.contains("requirepass \"a b\\\"c\"\n"), "{text}");
        std::fs::write(&path, &text).unwrap();
        let again = Config::load(&ServeArgs { config: Some(path), ..Default::default() }).unwrap();
        assert_eq!(again.get("requirepass").as_deref(), Some("a b\"c"));
        assert_eq!(again.get("save").as_deref(), Some("100 1 50 2"));
        assert_eq!(again.port, 1234);
    }
}
