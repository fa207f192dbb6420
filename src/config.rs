//! Server configuration: `velo serve` flags plus an optional config file, validated once into [`Config`].
//!
//! The config file uses Redis's syntax: one `name value` per line, `#` comments. Its names are the flag
//! names without dashes' prefix (`port 7379`, `fsync always`, `page-cache 64mb`). A flag given on the
//! command line wins over the file; the file wins over the defaults. Any bad value is reported as one
//! line naming the setting, and `velo` exits with status 2.

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
    /// File name of RDB snapshots (SAVE, BGSAVE) in the data directory [default: dump.rdb].
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
    /// Listen address.
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
}

/// The settings, in the order CONFIG REWRITE writes them.
pub const SETTINGS: &[&str] = &[
    "port",
    "bind",
    "dir",
    "slots",
    "fsync",
    "page-cache",
    "value-cache",
    "maxclients",
    "databases",
    "log-level",
    "dbfilename",
];

/// Parses a size: bytes, or with a `kb`/`mb`/`gb` (1024-based) or `k`/`m`/`g` (1000-based) suffix, as Redis.
pub fn parse_size(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let number: usize = digits.parse().ok()?;
    let unit = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(unit)
}

impl Config {
    /// Reads the config file (if any), applies the flags over it, and validates everything.
    pub fn load(args: &ServeArgs) -> Result<Config, String> {
        let mut values: Vec<(String, String)> = Vec::new();
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let name = name.to_ascii_lowercase().replace('_', "-");
                if !SETTINGS.contains(&name.as_str()) {
                    return Err(format!("{}:{}: unknown setting '{name}'", path.display(), number + 1));
                }
                values.push((name, value.trim().trim_matches('"').to_string()));
            }
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
        ];
        for (name, value) in flags {
            if let Some(value) = value {
                values.push((name.to_string(), value.clone()));
            }
        }
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
        };
        for (name, value) in values {
            config.set(&name, &value)?;
        }
        Ok(config)
    }

    /// Sets one setting from text, validating it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let bad = |expected: &str| format!("invalid value for {name}: '{value}' ({expected})");
        match name {
            "port" => self.port = value.parse().map_err(|_| bad("expected a port number 0..65535"))?,
            "bind" => {
                value.parse::<std::net::IpAddr>().map_err(|_| bad("expected an IP address"))?;
                self.bind = value.to_string();
            }
            "dir" if !value.is_empty() => self.dir = PathBuf::from(value),
            "dir" => return Err(bad("expected a directory")),
            "slots" => {
                let slots: u32 = value.parse().map_err(|_| bad("expected a power of two 1..=1024"))?;
                if !slots.is_power_of_two() || slots > 1024 {
                    return Err(bad("expected a power of two 1..=1024"));
                }
                self.slots = Some(slots);
            }
            "fsync" => self.fsync = value.parse().map_err(|_| bad("expected always, everysec or no"))?,
            "page-cache" => {
                self.page_cache_bytes = parse_size(value).ok_or_else(|| bad("expected a size like 64mb"))?
            }
            "value-cache" => {
                self.value_cache_bytes = parse_size(value).ok_or_else(|| bad("expected a size like 64mb"))?
            }
            "maxclients" => {
                self.maxclients =
                    value.parse().ok().filter(|&n: &usize| n >= 1).ok_or_else(|| bad("expected a number >= 1"))?
            }
            "databases" => {
                self.databases = value
                    .parse()
                    .ok()
                    .filter(|&n: &u16| (1..=1024).contains(&n))
                    .ok_or_else(|| bad("expected a number 1..=1024"))?
            }
            "dbfilename" if !value.is_empty() && !value.contains('/') => self.dbfilename = value.to_string(),
            "dbfilename" => return Err(bad("expected a file name, not a path")),
            "log-level" => {
                let level = value.to_ascii_lowercase();
                if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                    return Err(bad("expected error, warn, info, debug or trace"));
                }
                self.log_level = level;
            }
            _ => return Err(format!("unknown setting '{name}'")),
        }
        Ok(())
    }

    /// A setting's current value as text.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "port" => self.port.to_string(),
            "bind" => self.bind.clone(),
            "dir" => self.dir.display().to_string(),
            "slots" => self.slots.map(|s| s.to_string()).unwrap_or_default(),
            "fsync" => self.fsync.to_string(),
            "page-cache" => self.page_cache_bytes.to_string(),
            "value-cache" => self.value_cache_bytes.to_string(),
            "maxclients" => self.maxclients.to_string(),
            "databases" => self.databases.to_string(),
            "log-level" => self.log_level.clone(),
            "dbfilename" => self.dbfilename.clone(),
            _ => return None,
        })
    }

    /// The config file text CONFIG REWRITE writes.
    pub fn to_file_text(&self) -> String {
        let mut text = String::from("# Written by CONFIG REWRITE.\n");
        for name in SETTINGS {
            if let Some(value) = self.get(name).filter(|v| !v.is_empty()) {
                text.push_str(&format!("{name} {value}\n"));
            }
        }
        text
    }
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
        assert_eq!(Config::load(&bad).unwrap_err(), "invalid value for slots: '3' (expected a power of two 1..=1024)");
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("velo.conf");
        std::fs::write(&path, "# comment\nport 9999\ndatabases 4\n").unwrap();
        let args = ServeArgs { config: Some(path), port: Some("1234".into()), ..Default::default() };
        let config = Config::load(&args).unwrap();
        assert_eq!((config.port, config.databases), (1234, 4));
        let reparsed: Vec<_> = config.to_file_text().lines().skip(1).map(str::to_string).collect();
        assert!(reparsed.contains(&"port 1234".to_string()));
    }
}
