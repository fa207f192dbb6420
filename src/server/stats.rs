//! Server counters for INFO (stats, commandstats) and CONFIG RESETSTAT.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::cmd::table::COMMAND_COUNT;

/// Calls, time and failures of one command.
#[derive(Default)]
pub struct CommandStats {
    /// Calls.
    pub calls: AtomicU64,
    /// Total microseconds.
    pub usec: AtomicU64,
    /// Rejected before running (arity, unknown subcommand, ...).
    pub rejected: AtomicU64,
    /// Ran and returned an error.
    pub failed: AtomicU64,
}

/// Every counter.
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused by maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands processed.
    pub commands: AtomicU64,
    /// Bytes read from clients.
    pub net_input: AtomicU64,
    /// Bytes written to clients.
    pub net_output: AtomicU64,
    /// Keys removed by the active-expire cycle.
    pub expired_keys: AtomicU64,
    /// Reads that found their key.
    pub keyspace_hits: AtomicU64,
    /// Reads that did not.
    pub keyspace_misses: AtomicU64,
    /// Error replies sent.
    pub error_replies: AtomicU64,
    /// Pub/sub messages published.
    pub pubsub_messages: AtomicU64,
    /// Per command, indexed by `CommandSpec::id`.
    pub commands_by_id: Vec<CommandStats>,
    /// Error replies by prefix (`ERR`, `WRONGTYPE`, ...), for INFO errorstats.
    pub errors_by_prefix: Mutex<BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            net_input: AtomicU64::new(0),
            net_output: AtomicU64::new(0),
            expired_keys: AtomicU64::new(0),
            keyspace_hits: AtomicU64::new(0),
            keyspace_misses: AtomicU64::new(0),
            error_replies: AtomicU64::new(0),
            pubsub_messages: AtomicU64::new(0),
            commands_by_id: (0..COMMAND_COUNT).map(|_| CommandStats::default()).collect(),
            errors_by_prefix: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A keyspace read hit or miss.
    pub fn hit(&self, found: bool) {
        Self::bump(if found { &self.keyspace_hits } else { &self.keyspace_misses });
    }

    /// Counts an error reply under its prefix (the text up to the first space).
    pub fn error(&self, text: &str) {
        Self::bump(&self.error_replies);
        let prefix = text.split(' ').next().unwrap_or("ERR").to_string();
        *self.errors_by_prefix.lock().unwrap_or_else(|p| p.into_inner()).entry(prefix).or_insert(0) += 1;
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for counter in [
            &self.connections,
            &self.rejected_connections,
            &self.commands,
            &self.net_input,
            &self.net_output,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.error_replies,
            &self.pubsub_messages,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.errors_by_prefix.lock().unwrap_or_else(|p| p.into_inner()).clear();
        for command in &self.commands_by_id {
            for counter in [&command.calls, &command.usec, &command.rejected, &command.failed] {
                counter.store(0, Ordering::Relaxed);
            }
        }
    }
}
