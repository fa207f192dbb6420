//! MONITOR: the clients that watch every command, and the line each command becomes.
//!
//! As Redis 7.0 (`replicationFeedMonitors`), a command is shown after it ran, in the database the client
//! has selected *after* it (so `SELECT 1` shows `[1 ...]`), as
//! `+<unix seconds>.<microseconds> [<db> <ip:port>] "arg" "arg" ...` with each argument escaped as
//! `sdscatrepr` does. Administrative commands (the `ADMIN` flag: MONITOR, CONFIG, DEBUG, SHUTDOWN, ...)
//! are never shown; arguments carrying secrets (HELLO's AUTH) are shown as `(redacted)`. Inside MULTI
//! the queued commands are shown when EXEC runs them, then EXEC.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::client::ClientHandle;
use crate::resp::Reply;

/// The monitoring clients.
#[derive(Default)]
pub struct Monitors {
    clients: Mutex<Vec<Arc<ClientHandle>>>,
    count: AtomicUsize,
}

impl Monitors {
    /// Adds a monitor (once).
    pub fn add(&self, handle: Arc<ClientHandle>) {
        let mut clients = self.lock();
        if !clients.iter().any(|c| c.id == handle.id) {
            clients.push(handle);
        }
        self.count.store(clients.len(), Ordering::Release);
    }

    /// Removes a monitor; true if it was one.
    pub fn remove(&self, id: u64) -> bool {
        let mut clients = self.lock();
        let before = clients.len();
        clients.retain(|c| c.id != id);
        self.count.store(clients.len(), Ordering::Release);
        before != clients.len()
    }

    /// True if anyone monitors (cheap: checked after every command).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Sends `argv`, run by `addr` in database `db`, to every monitor.
    pub fn feed(&self, db: u16, addr: &str, argv: &[Bytes]) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let line = format_line(now.as_secs(), now.subsec_micros(), db, addr, argv);
        let clients = self.lock().clone();
        for client in clients {
            client.push(Reply::simple(line.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The monitor line (without `+` and CRLF).
pub fn format_line(secs: u64, micros: u32, db: u16, addr: &str, argv: &[Bytes]) -> String {
    let mut line = format!("{secs}.{micros:06} [{db} {addr}]");
    for arg in argv {
        line.push(' ');
        repr(arg, &mut line);
    }
    line
}

/// Appends `bytes` quoted and escaped as Redis's `sdscatrepr`.
pub fn repr(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

/// `argv` with secrets replaced by `(redacted)`, as Redis shows them to MONITOR and SLOWLOG (its
/// `redactClientCommandArgument` calls): HELLO's `AUTH username password`, AUTH's arguments, MIGRATE's
/// `AUTH password` / `AUTH2 username password`, the values of CONFIG SET's sensitive parameters
/// (`masteruser`, `masterauth`, `requirepass`) and every argument of ACL SETUSER.
pub fn redacted(argv: &[Bytes]) -> std::borrow::Cow<'_, [Bytes]> {
    let Some(name) = argv.first() else {
        return std::borrow::Cow::Borrowed(argv);
    };
    let is = |arg: &Bytes, word: &str| arg.eq_ignore_ascii_case(word.as_bytes());
    let secret = Bytes::from_static(b"(redacted)");
    let mut out = argv.to_vec();
    if is(name, "hello") {
        let mut index = 2;
        while index < out.len() {
            if is(&out[index], "AUTH") && index + 2 < out.len() {
                out[index + 1] = secret.clone();
                out[index + 2] = secret.clone();
                index += 3;
            } else if is(&out[index], "SETNAME") {
                index += 2;
            } else {
                index += 1;
            }
        }
    } else if is(name, "auth") && out.len() <= 3 {
        for arg in out.iter_mut().skip(1) {
            *arg = secret.clone();
        }
    } else if is(name, "migrate") {
        // Options start after `host port key db timeout`; Redis stops redacting where it stops parsing.
        let mut index = 6;
        while index < out.len() {
            let more = out.len() - 1 - index;
            if is(&out[index], "COPY") || is(&out[index], "REPLACE") {
                index += 1;
            } else if is(&out[index], "AUTH") && more >= 1 {
                out[index + 1] = secret.clone();
                index += 2;
            } else if is(&out[index], "AUTH2") && more >= 2 {
                out[index + 1] = secret.clone();
                out[index + 2] = secret.clone();
                index += 3;
            } else {
                break;
            }
        }
    } else if is(name, "config") && out.get(1).is_some_and(|sub| is(sub, "SET")) {
        let mut index = 2;
        while index + 1 < out.len() {
            if ["masteruser", "masterauth", "requirepass"].iter().any(|p| is(&out[index], p)) {
                out[index + 1] = secret.clone();
            }
            index += 2;
        }
    } else if is(name, "acl") && out.get(1).is_some_and(|sub| is(sub, "SETUSER")) && out.len() >= 3 {
        for arg in out.iter_mut().skip(2) {
            *arg = secret.clone();
        }
    } else {
        return std::borrow::Cow::Borrowed(argv);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_as_sdscatrepr() {
        let argv = vec![Bytes::from("set"), Bytes::from("k\"\\"), Bytes::from(&b"a\r\n\t\x07\x08\x00\xff b"[..])];
        assert_eq!(
            format_line(1339518083, 107412, 0, "127.0.0.1:60866", &argv),
            r#"1339518083.107412 [0 127.0.0.1:60866] "set" "k\"\\" "a\r\n\t\a\b\x00\xff b""#
        );
    }

    #[test]
    fn hello_auth_is_redacted() {
        let argv: Vec<Bytes> =
            ["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"].iter().map(|s| Bytes::from(*s)).collect();
        let shown = redacted(&argv).into_owned();
        let shown: Vec<&[u8]> = shown.iter().map(|b| b.as_ref()).collect();
        assert_eq!(shown, [&b"HELLO"[..], b"3", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"n"]);
    }

    fn words(argv: &[&str]) -> Vec<String> {
        let argv: Vec<Bytes> = argv.iter().map(|s| Bytes::from(s.to_string())).collect();
        redacted(&argv).iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn auth_migrate_config_and_acl_secrets_are_redacted() {
        assert_eq!(words(&["auth", "p"]), ["auth", "(redacted)"]);
        assert_eq!(words(&["AUTH", "u", "p"]), ["AUTH", "(redacted)", "(redacted)"]);
        assert_eq!(
            words(&["migrate", "h", "1", "k", "9", "5000", "COPY", "AUTH", "p", "AUTH2", "u", "p"]),
            ["migrate", "h", "1", "k", "9", "5000", "COPY", "AUTH", "(redacted)", "AUTH2", "(redacted)", "(redacted)"]
        );
        // Parsing (and redaction) stops at KEYS.
        assert_eq!(words(&["migrate", "h", "1", "", "9", "5", "KEYS", "AUTH", "x"])[8], "x");
        assert_eq!(
            words(&["config", "set", "maxmemory", "1", "masterauth", "s", "requirepass", "t"]),
            ["config", "set", "maxmemory", "1", "masterauth", "(redacted)", "requirepass", "(redacted)"]
        );
        assert_eq!(words(&["acl", "setuser", "u", "+get"]), ["acl", "setuser", "(redacted)", "(redacted)"]);
        assert_eq!(words(&["get", "auth"]), ["get", "auth"]);
    }
}
