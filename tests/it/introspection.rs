//! Introspection and client features (CLIENT SETINFO/PAUSE/TRACKING/CACHING/..., WAIT, SLOWLOG, LATENCY,
//! MEMORY, MONITOR, RESET): single-connection scripts compared byte for byte with redis-server 7.0 in
//! RESP2 and RESP3, and multi-client scenarios run on both servers with their replies and pushed
//! messages compared (timestamps, ports and durations normalised).
//!
//! A scenario is a list of steps, each addressed to a numbered client (connected on first use):
//! - `N: CMD ...` sends a command and records its reply;
//! - `N! CMD ...` sends a command and reads its reply without recording it (replies that differ by
//!   nature: HELLO's server version, ids);
//! - `N> CMD ...` sends a command without reading (a command that blocks or is held);
//! - `N<` reads one reply (or pushed message) and records it;
//! - `N?` records that nothing arrives for 300 ms;
//! - `blocked K` waits until INFO reports K blocked clients.
//!
//! `$N` in a command is replaced by client N's id.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::differential::compare as compare_script;
use crate::support::resp::{command, parse, show, Value};
use crate::support::{Conn, RedisServer, TestServer};

fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}

/// The blocked_clients figure of INFO.
fn blocked_clients(conn: &mut Conn) -> usize {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "clients"])).into_owned();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients has blocked_clients")
}

/// Replaces what differs between two runs by nature: MONITOR's timestamp and client port.
fn normalise(reply: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&reply).into_owned();
    if let Some(at) = text.find("tracking-redir-broken\r\n:") {
        // The id of the client that went away.
        return format!("{}ID\r\n", &text[..at + "tracking-redir-broken\r\n:".len()]).into_bytes();
    }
    if let Some(rest) = text.strip_prefix('+') {
        if let Some((stamp, after)) = rest.split_once(' ') {
            if stamp.contains('.') && stamp.chars().all(|c| c.is_ascii_digit() || c == '.') && after.starts_with('[') {
                let (client, args) = after.split_once(']').expect("monitor line has ]");
                let db = client.trim_start_matches('[').split(' ').next().unwrap_or_default();
                return format!("+T [{db} ADDR]{args}").into_bytes();
            }
        }
    }
    reply
}

/// Runs a scenario on the server at `port`; the recorded replies.
fn run(port: u16, script: &[&str]) -> Vec<Vec<u8>> {
    let mut control = Conn::connect(port);
    assert_eq!(control.cmd(&["FLUSHALL"]), b"+OK\r\n");
    let mut clients: BTreeMap<usize, (Conn, String)> = BTreeMap::new();
    let mut replies = Vec::new();
    for step in script {
        if let Some(count) = step.strip_prefix("blocked ") {
            let count: usize = count.parse().expect("blocked count");
            let deadline = Instant::now() + Duration::from_secs(10);
            while blocked_clients(&mut control) != count {
                assert!(Instant::now() < deadline, "port {port}: expected {count} blocked clients");
                std::thread::sleep(Duration::from_millis(2));
            }
            continue;
        }
        let split = step.find([':', '>', '<', '!', '?']).expect("step has a client number");
        let n: usize = step[..split].trim().parse().expect("client number");
        if let std::collections::btree_map::Entry::Vacant(entry) = clients.entry(n) {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(10));
            let id = String::from_utf8_lossy(&conn.cmd(&["CLIENT", "ID"])).trim_matches([':', '\r', '\n']).to_string();
            entry.insert((conn, id));
        }
        let ids: BTreeMap<usize, String> = clients.iter().map(|(n, (_, id))| (*n, id.clone())).collect();
        let (conn, _) = clients.get_mut(&n).expect("connected above");
        match step.as_bytes()[split] {
            b'<' => {
                let reply = conn.read_reply();
                assert!(!reply.is_empty(), "port {port}: nothing for `{step}` (step {})", replies.len());
                replies.push(normalise(reply));
                continue;
            }
            b'?' => {
                conn.set_timeout(Duration::from_millis(300));
                let reply = conn.read_reply();
                conn.set_timeout(Duration::from_secs(10));
                assert!(reply.is_empty(), "port {port}: `{step}` expected nothing, got {}", show(&reply));
                replies.push(b"(nothing)".to_vec());
                continue;
            }
            _ => {}
        }
        let mut text = step[split + 1..].trim().to_string();
        for (m, id) in ids.iter().rev() {
            text = text.replace(&format!("${m}"), id);
        }
        let args = velo::resp::decode::split_args(text.as_bytes()).expect("step parses");
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        conn.send(&command(&args));
        match step.as_bytes()[split] {
            b':' => {
                let reply = conn.read_reply();
                assert!(!reply.is_empty(), "port {port}: no reply for `{step}`");
                replies.push(normalise(reply));
            }
            b'!' => assert!(!conn.read_reply().is_empty(), "port {port}: no reply for `{step}`"),
            _ => {}
        }
    }
    replies
}

/// Runs a scenario on redis-server and on Velo and asserts equal recordings (steps: see [`run`]).
pub(crate) fn compare(redis: &RedisServer, velo: &TestServer, name: &str, script: &[&str]) {
    eprintln!("{name}: redis on port {}, velo on port {}", redis.port, velo.port);
    let expected = run(redis.port, script);
    let actual = run(velo.port, script);
    let recording: Vec<&&str> = script
        .iter()
        .filter(|s| s.find([':', '>', '<', '!', '?']).is_some_and(|at| matches!(s.as_bytes()[at], b':' | b'<' | b'?')))
        .collect();
    assert_eq!(expected.len(), actual.len());
    for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
        assert!(
            want == got,
            "{name}, step `{}`:\n  redis: {}\n  velo:  {}",
            recording.get(i).map_or("?", |s| s),
            show(want),
            show(got)
        );
    }
}

#[test]
fn single_connection_replies_match_redis() {
    let (redis, velo) = servers();
    compare_script(
        &redis,
        &velo,
        "wait",
        &["WAIT 0 0", "WAIT -1 0", "WAIT 1 10", "WAIT x 0", "WAIT 0 -1", "WAIT 0 abc", "MULTI", "WAIT 5 0", "EXEC"],
    );
    compare_script(
        &redis,
        &velo,
        "slowlog",
        &[
            "SLOWLOG HELP",
            "SLOWLOG RESET",
            "SLOWLOG LEN",
            "SLOWLOG GET",
            "SLOWLOG GET -2",
            "SLOWLOG GET abc",
            "SLOWLOG GET 1 2",
            "SLOWLOG LEN 1",
            "SLOWLOG FOO",
            "~CONFIG GET slowlog-*",
            "CONFIG SET slowlog-log-slower-than -2",
            "CONFIG SET slowlog-log-slower-than abc",
            "CONFIG SET slowlog-max-len -1",
            "CONFIG SET slowlog-max-len 64 slowlog-log-slower-than 5000",
            "~CONFIG GET slowlog-*",
            "CONFIG SET slowlog-max-len 128 slowlog-log-slower-than 10000",
        ],
    );
    compare_script(
        &redis,
        &velo,
        "latency",
        &[
            "LATENCY HELP",
            "LATENCY RESET",
            "LATENCY LATEST",
            "LATENCY HISTORY command",
            "LATENCY DOCTOR",
            "LATENCY GRAPH command",
            "LATENCY HISTOGRAM nosuchcommand",
            "LATENCY FOO",
            "CONFIG GET latency-monitor-threshold",
            "CONFIG SET latency-monitor-threshold -1",
        ],
    );
    compare_script(
        &redis,
        &velo,
        "memory",
        &[
            "MEMORY HELP",
            "MEMORY USAGE nokey",
            "SET k v",
            "MEMORY USAGE k SAMPLES -1",
            "MEMORY USAGE k SAMPLES x",
            "MEMORY USAGE k FOO",
            "MEMORY USAGE k SAMPLES",
            "MEMORY USAGE nokey SAMPLES 0",
            "MEMORY PURGE",
            "MEMORY FOO",
        ],
    );
    compare_script(
        &redis,
        &velo,
        "tracking",
        &[
            "CLIENT TRACKINGINFO",
            "CLIENT GETREDIR",
            "CLIENT CACHING yes",
            "CLIENT TRACKING maybe",
            "CLIENT TRACKING on FOO",
            "CLIENT TRACKING on PREFIX a",
            "CLIENT TRACKING on BCAST OPTIN",
            "CLIENT TRACKING on OPTIN OPTOUT",
            "CLIENT TRACKING on REDIRECT 999999",
            "CLIENT TRACKING on REDIRECT abc",
            "CLIENT TRACKING on BCAST PREFIX ab PREFIX a",
            "CLIENT TRACKING on BCAST PREFIX a PREFIX b NOLOOP",
            "CLIENT TRACKINGINFO",
            "CLIENT TRACKING on BCAST PREFIX abc",
            "CLIENT TRACKING on PREFIX c",
            "CLIENT TRACKING on",
            "CLIENT GETREDIR",
            "CLIENT TRACKING off",
            "CLIENT TRACKING on OPTIN",
            "CLIENT TRACKING on OPTOUT",
            "CLIENT CACHING no",
            "CLIENT CACHING yes",
            "CLIENT TRACKINGINFO",
            "CLIENT CACHING maybe",
            "CLIENT TRACKINGINFO",
            "GET x",
            "CLIENT TRACKINGINFO",
            "CLIENT TRACKING off",
            "CLIENT TRACKING on OPTOUT",
            "CLIENT CACHING no",
            "CLIENT TRACKINGINFO",
            "RESET",
            "CLIENT TRACKINGINFO",
        ],
    );
    compare_script(
        &redis,
        &velo,
        "pause",
        &[
            "CLIENT PAUSE abc",
            "CLIENT PAUSE -1",
            "CLIENT PAUSE 10 FOO",
            "CLIENT PAUSE abc FOO",
            "CLIENT PAUSE 10 WRITE ALL",
            "CLIENT PAUSE 0",
            "CLIENT PAUSE 0 WRITE",
            "CLIENT UNPAUSE",
            "SET k v",
        ],
    );
    compare_script(&redis, &velo, "monitor in multi", &["MULTI", "MONITOR", "EXEC", "PING"]);
}

#[test]
fn client_setinfo_and_client_list_fields() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["CLIENT", "SETINFO", "lib-name", "redis-py"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["CLIENT", "SETINFO", "LIB-VER", "5.0.1"]), b"+OK\r\n");
    assert_eq!(
        conn.cmd(&["CLIENT", "SETINFO", "lib-name", "a b"]),
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(conn.cmd(&["CLIENT", "SETINFO", "lib-nam", "x"]), b"-ERR Unrecognized option 'lib-nam'\r\n");
    assert_eq!(
        conn.cmd(&["CLIENT", "SETINFO", "lib-name"]),
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    let info = String::from_utf8(conn.cmd(&["CLIENT", "INFO"])).unwrap();
    assert!(info.contains(" lib-name=redis-py lib-ver=5.0.1\n"), "{info}");
    // The request being run is in the query buffer, its arguments in argv-mem (as Redis shows them).
    assert!(info.contains(" qbuf=26 "), "{info}");
    assert!(info.contains(" argv-mem=10 "), "{info}");
    assert_eq!(conn.cmd(&["CLIENT", "SETINFO", "lib-ver", ""]), b"+OK\r\n");
    let info = String::from_utf8(conn.cmd(&["CLIENT", "INFO"])).unwrap();
    assert!(info.contains(" lib-name=redis-py lib-ver=\n"), "{info}");
    assert_eq!(conn.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["SET", "key", "value"]), b"+QUEUED\r\n");
    let mut other = velo.connect();
    let list = String::from_utf8(other.cmd(&["CLIENT", "LIST"])).unwrap();
    // 3 + 3 + 5 bytes of arguments and a pointer for each.
    assert!(list.contains(" multi=1 ") && list.contains(" multi-mem=35 "), "{list}");
    // Each connection shows its own socket descriptor; nothing is queued beyond the output buffer.
    let lines: Vec<&str> = list.lines().filter(|line| line.contains(" fd=")).collect();
    let fds: Vec<i64> = lines
        .iter()
        .map(|line| line.split(" fd=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap())
        .collect();
    // (The start-up probe's connection may still be listed while it closes: at least these two.)
    let distinct: std::collections::HashSet<i64> = fds.iter().copied().collect();
    assert!(fds.len() >= 2 && fds.iter().all(|fd| *fd > 2) && distinct.len() == fds.len(), "{list}");
    assert!(lines.iter().all(|line| line.contains(" oll=0 ")), "{list}");

    // Redis 7.0's fields, in its order, then 7.2's lib-name and lib-ver.
    let redis = RedisServer::start();
    let mut reference = Conn::connect(redis.port);
    let redis_line = String::from_utf8(reference.cmd(&["CLIENT", "INFO"])).unwrap();
    let field_names = |line: &str| -> Vec<String> {
        line.lines()
            .nth(1)
            .unwrap_or_default()
            .split(' ')
            .filter_map(|field| field.split_once('=').map(|(name, _)| name.to_string()))
            .collect()
    };
    let mut want = field_names(&redis_line);
    want.extend(["lib-name".to_string(), "lib-ver".to_string()]);
    assert_eq!(field_names(&list), want);
}

#[test]
fn wait_blocks_for_its_timeout_and_is_unblocked_as_in_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "wait",
        &[
            "1> WAIT 1 0",
            "blocked 1",
            "0: CLIENT UNBLOCK $1",
            "1<",
            "1> WAIT 1 0",
            "blocked 1",
            "0: CLIENT UNBLOCK $1 ERROR",
            "1<",
            "1> WAIT 2 50",
            "1<",
        ],
    );
    // A waiting client that disconnects is no longer blocked.
    let mut waiting = velo.connect();
    waiting.send(&command(&[b"WAIT", b"1", b"0"]));
    let mut control = velo.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(&mut control) != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(waiting);
    while blocked_clients(&mut control) != 0 {
        assert!(Instant::now() < deadline, "a disconnected WAIT client stays blocked");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The argument arrays and client names of SLOWLOG GET (ids, times, durations and addresses vary).
fn slowlog_entries(conn: &mut Conn) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
    let reply = conn.cmd(&["SLOWLOG", "GET", "-1"]);
    let (Value::Agg(_, Some(entries)), _) = parse(&reply).expect("a reply") else { panic!("{}", show(&reply)) };
    entries
        .into_iter()
        .map(|entry| {
            let Value::Agg(_, Some(fields)) = entry else { panic!("entry") };
            assert_eq!(fields.len(), 6);
            let Value::Agg(_, Some(argv)) = &fields[3] else { panic!("argv") };
            let argv = argv
                .iter()
                .map(|arg| match arg {
                    Value::Blob(_, Some(bytes)) => bytes.clone(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let Value::Blob(_, Some(name)) = &fields[5] else { panic!("name") };
            (argv, name.clone())
        })
        .collect()
}

#[test]
fn slowlog_records_commands_as_redis() {
    let (redis, velo) = servers();
    let mut results = Vec::new();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["SLOWLOG", "RESET"]);
        conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        conn.cmd(&["CLIENT", "SETNAME", "logger"]);
        conn.cmd(&["SET", "key", &"x".repeat(200)]);
        let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut args = vec!["DEL"];
        args.extend(many.iter().map(String::as_str));
        conn.cmd(&args);
        conn.cmd(&["HELLO", "2", "AUTH", "default", "secret"]);
        conn.cmd(&["MULTI"]);
        conn.cmd(&["INCR", "n"]);
        conn.cmd(&["EXEC"]);
        conn.cmd(&["CONFIG", "SET", "slowlog-max-len", "5"]);
        let entries = slowlog_entries(&mut conn);
        assert_eq!(conn.cmd(&["SLOWLOG", "LEN"]), b":5\r\n");
        conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        conn.cmd(&["PING"]);
        let after_disable = conn.cmd(&["SLOWLOG", "LEN"]);
        assert_eq!(conn.cmd(&["SLOWLOG", "RESET"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["SLOWLOG", "LEN"]), b":0\r\n");
        conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "10000", "slowlog-max-len", "128"]);
        results.push((entries, after_disable));
    }
    assert_eq!(results[0], results[1]);
    let (entries, _) = &results[1];
    // Newest first; EXEC is not logged (its commands are); HELLO's credentials are redacted.
    assert_eq!(entries[0].0[..2], [b"CONFIG".to_vec(), b"SET".to_vec()]);
    assert!(entries.iter().any(|(argv, _)| argv.len() == 5 && argv[3] == b"(redacted)"));
    assert!(entries.iter().all(|(_, name)| name == b"logger"));
}

#[test]
fn slowlog_trims_arguments_as_redis() {
    let (redis, velo) = servers();
    let mut results = Vec::new();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        conn.cmd(&["SLOWLOG", "RESET"]);
        conn.cmd(&["SET", "key", &"x".repeat(200)]);
        let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut args = vec!["DEL"];
        args.extend(many.iter().map(String::as_str));
        conn.cmd(&args);
        conn.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
        results.push(slowlog_entries(&mut conn));
    }
    assert_eq!(results[0], results[1]);
    let del = &results[1][0].0;
    assert_eq!(del.len(), 32);
    assert_eq!(del[31], b"... (10 more arguments)".to_vec());
}

#[test]
fn monitor_shows_other_clients_commands_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "monitor",
        &[
            "1: MONITOR",
            "2: SET k \"a b\\n\\\"c\\x00\\xff\"",
            "1<",
            "2: SELECT 1",
            "1<",
            "2: GET k",
            "1<",
            "2: MULTI",
            "1<",
            "2: INCR x",
            "2: EXEC",
            "1<",
            "1<",
            "2! HELLO 2 AUTH default secret",
            "1<",
            "2: CONFIG GET maxclients",
            "2: NOSUCHCOMMAND",
            "2: PING",
            "1<",
            "1: GET k",
            "1: PING",
            "1<",
            "1: MONITOR",
            "1?",
            "1: RESET",
            "2: PING",
            "1?",
        ],
    );
}

#[test]
fn tracking_sends_invalidations_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "default mode, RESP3",
        &[
            "1! HELLO 3",
            "1: CLIENT TRACKING on",
            "1: GET k",
            "1: MGET a b",
            "2: SET k 1",
            "1<",
            "2: SET k 2",
            "1?",
            "2: MSET a 1 b 2",
            "1<",
            "1<",
            "1: GET k",
            "1: SET k 3",
            "1<",
            "1: CLIENT TRACKING on NOLOOP",
            "1: GET k",
            "1: SET k 4",
            "1?",
            "1: GET k",
            "2: FLUSHALL",
            "1<",
        ],
    );
    compare(
        &redis,
        &velo,
        "redirect to a RESP2 subscriber",
        &[
            "3: SUBSCRIBE __redis__:invalidate",
            "1: CLIENT TRACKING on REDIRECT $3",
            "1! CLIENT GETREDIR",
            "1: GET k",
            "2: SET k 1",
            "3<",
            "1?",
            "1: CLIENT TRACKING on BCAST REDIRECT $3",
            "1: CLIENT TRACKING off",
            "1: CLIENT TRACKING on BCAST PREFIX a REDIRECT $3",
            "2: MSET ab 1 b 2 aa 3",
            "3<",
            "2: FLUSHDB",
            "3<",
        ],
    );
    compare(
        &redis,
        &velo,
        "bcast and optin, RESP3",
        &[
            "1! HELLO 3",
            "1: CLIENT TRACKING on BCAST PREFIX user: PREFIX job:",
            "2: MSET user:1 a job:2 b other c",
            "1<",
            "1<",
            "2: SET other d",
            "1?",
            "1: CLIENT TRACKING off",
            "1: CLIENT TRACKING on OPTIN",
            "1: GET a",
            "1: CLIENT CACHING yes",
            "1: GET b",
            "2: MSET a 1 b 2",
            "1<",
            "1: CLIENT TRACKING off",
            "1: CLIENT TRACKING on OPTOUT",
            "1: CLIENT CACHING no",
            "1: GET a",
            "1: GET b",
            "2: MSET a 1 b 2",
            "1<",
            "1: RESET",
            "2: MSET a 1 b 2",
            "1?",
        ],
    );
    compare(
        &redis,
        &velo,
        "optin caching across EXEC with a script",
        &[
            "1! HELLO 3",
            "1: CLIENT TRACKING on OPTIN",
            "1: CLIENT CACHING yes",
            "1: MULTI",
            "1: EVAL \"return redis.call('get',KEYS[1])\" 1 a",
            "1: GET b",
            "1: EXEC",
            "2: SET b 1",
            "1<",
            "2: SET a 1",
            "1<",
            "1?",
            // Caching applied to the whole transaction; the next command is not tracked.
            "1: GET c",
            "2: SET c 1",
            "1?",
        ],
    );
    compare(
        &redis,
        &velo,
        "broken redirect",
        &[
            "1! HELLO 3",
            "3: PING",
            "1: CLIENT TRACKING on REDIRECT $3",
            "1: GET k",
            "3: QUIT",
            // (the server frees the client once its reply is written)
            "1?",
            "2: SET k 1",
            "1<",
            "1! CLIENT TRACKINGINFO",
        ],
    );
}

#[test]
fn pause_holds_writes_or_everything_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "pause write",
        &[
            "1: SET k v",
            "0: CLIENT PAUSE 100000 WRITE",
            "1: GET k",
            "1: PING",
            "1> SET k w",
            "blocked 1",
            "1?",
            "2> PUBLISH ch m",
            "2?",
            "3: MULTI",
            "3: GET k",
            "3> EXEC",
            "3<",
            "4: MULTI",
            "4> INCR n",
            "4?",
            "0: CLIENT UNPAUSE",
            "1<",
            "2<",
            "4<",
            "4: EXEC",
            "0: CLIENT PAUSE 100000 WRITE",
            "5: MULTI",
            "5: GET k",
            "0: CLIENT UNPAUSE",
            "5: INCR n",
            "0: CLIENT PAUSE 100000 WRITE",
            "5> EXEC",
            "5?",
            "0: CLIENT UNPAUSE",
            "5<",
            "1: GET k",
        ],
    );
    compare(
        &redis,
        &velo,
        "pause all",
        &["1: PING", "2: PING", "0: CLIENT PAUSE 1500 ALL", "1> GET k", "1?", "2> CLIENT UNPAUSE", "2?", "1<", "2<"],
    );
    // A pause with a timeout ends by itself.
    for port in [redis.port, velo.port] {
        let mut control = Conn::connect(port);
        let mut writer = Conn::connect(port);
        assert_eq!(control.cmd(&["CLIENT", "PAUSE", "300", "WRITE"]), b"+OK\r\n");
        let began = Instant::now();
        assert_eq!(writer.cmd(&["SET", "k", "v"]), b"+OK\r\n");
        let waited = began.elapsed();
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(5), "{port}: {waited:?}");
    }
}

#[test]
fn latency_events_and_histograms() {
    let (redis, velo) = servers();
    let mut shapes = Vec::new();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["LATENCY", "RESET"]);
        conn.cmd(&["CONFIG", "RESETSTAT"]);
        // A command slow enough on both servers (DEBUG is disabled in redis-server by default).
        let items: Vec<String> = (0..10_000).map(|i| format!("item-{i}")).collect();
        for _ in 0..30 {
            let mut args = vec!["RPUSH", "list"];
            args.extend(items.iter().map(String::as_str));
            conn.cmd(&args);
        }
        assert_eq!(conn.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]), b"+OK\r\n");
        conn.cmd(&["LRANGE", "list", "0", "-1"]);
        let latest = conn.cmd(&["LATENCY", "LATEST"]);
        let (Value::Agg(_, Some(events)), _) = parse(&latest).expect("reply") else { panic!() };
        assert_eq!(events.len(), 1, "{}", show(&latest));
        let Value::Agg(_, Some(fields)) = &events[0] else { panic!() };
        assert_eq!(fields[0], Value::Blob(b'$', Some(b"command".to_vec())));
        let history = conn.cmd(&["LATENCY", "HISTORY", "command"]);
        assert!(history.starts_with(b"*1\r\n*2\r\n:") || history.starts_with(b"*2\r\n*2\r\n:"), "{}", show(&history));
        let doctor = String::from_utf8_lossy(&conn.cmd(&["LATENCY", "DOCTOR"])).into_owned();
        // One spike from LRANGE; on a loaded machine a later command (LATENCY LATEST or HISTORY itself) can
        // pass the 1 ms threshold too, in another second, on either server.
        assert!(
            doctor.contains("1. command: 1 latency spikes") || doctor.contains("1. command: 2 latency spikes"),
            "{doctor}"
        );
        let graph = String::from_utf8_lossy(&conn.cmd(&["LATENCY", "GRAPH", "command"])).into_owned();
        assert!(graph.contains("command - high "), "{graph}");
        assert_eq!(conn.cmd(&["LATENCY", "RESET", "command", "nosuch"]), b":1\r\n");
        conn.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "0"]);
        conn.cmd(&["SET", "a", "1"]);
        conn.cmd(&["SET", "a", "2"]);
        conn.cmd(&["HELLO", "3"]);
        let histogram = conn.cmd(&["LATENCY", "HISTOGRAM", "set", "config"]);
        let (Value::Agg(b'%', Some(map)), _) = parse(&histogram).expect("reply") else { panic!() };
        // set, then config|set and config|resetstat (calls counted; bucket bounds depend on timing).
        let names: Vec<Value> = map.iter().step_by(2).cloned().collect();
        let Value::Agg(_, Some(set)) = &map[1] else { panic!() };
        shapes.push((names.len(), names[0].clone(), set[0].clone(), set[1].clone(), set[2].clone()));
    }
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[1].3, Value::Line(b':', b"2".to_vec()));
}

#[test]
fn memory_usage_reports_stored_bytes() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    conn.cmd(&["SET", "key", "value"]);
    // The compact cell header (tag, key length, 6-byte sequence, inline value length: 11 bytes), the key,
    // the 2-byte envelope header and the value.
    assert_eq!(conn.cmd(&["MEMORY", "USAGE", "key"]), b":21\r\n");
    assert_eq!(conn.cmd(&["MEMORY", "USAGE", "key", "SAMPLES", "0"]), b":21\r\n");
    // An expiry adds 8 bytes to the header; a value stored out of line (in a segment) has no length in
    // it: 9 bytes.
    conn.cmd(&["SET", "ex", "value", "EX", "100"]);
    assert_eq!(conn.cmd(&["MEMORY", "USAGE", "ex"]), b":28\r\n");
    conn.cmd(&["SET", "long", &"x".repeat(100)]);
    assert_eq!(conn.cmd(&["MEMORY", "USAGE", "long"]), b":115\r\n");
    conn.cmd(&["SELECT", "1"]);
    conn.cmd(&["SET", "key", "value"]);
    assert_eq!(conn.cmd(&["MEMORY", "USAGE", "key"]), b":23\r\n");
    // A hash split into parts counts its elements' bytes.
    let fields: Vec<String> = (0..5000).map(|i| format!("field-{i}")).collect();
    let mut args = vec!["HSET", "big"];
    for field in &fields {
        args.push(field);
        args.push("0123456789");
    }
    conn.cmd(&args);
    let reply = String::from_utf8(conn.cmd(&["MEMORY", "USAGE", "big"])).unwrap();
    let bytes: u64 = reply.trim_start_matches(':').trim().parse().unwrap();
    assert!(bytes > 5000 * 20, "{bytes}");
    let stats = conn.cmd(&["MEMORY", "STATS"]);
    let text = String::from_utf8_lossy(&stats);
    for field in
        ["peak.allocated", "total.allocated", "keys.count", "db.0", "dataset.percentage", "fragmentation.bytes"]
    {
        assert!(text.contains(field), "{field} missing: {text}");
    }
    assert_eq!(conn.cmd(&["MEMORY", "MALLOC-STATS"]), b"$45\r\nStats not supported for the current allocator\r\n");
    let doctor = String::from_utf8_lossy(&conn.cmd(&["MEMORY", "DOCTOR"])).into_owned();
    assert!(doctor.contains("Sam"), "{doctor}");
}

#[test]
fn slowlog_reports_a_blocking_command_once_served() {
    let (redis, velo) = servers();
    for port in [redis.port, velo.port] {
        let mut control = Conn::connect(port);
        control.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        control.cmd(&["SLOWLOG", "RESET"]);
        let blpops = |conn: &mut Conn| slowlog_entries(conn).iter().filter(|(argv, _)| argv[0] == b"BLPOP").count();
        let mut waiter = Conn::connect(port);
        waiter.send(&command(&[b"BLPOP", b"mylist", b"0"]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while blocked_clients(&mut control) != 1 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(blpops(&mut control), 0, "port {port}");
        control.cmd(&["LPUSH", "mylist", "1"]);
        assert_eq!(waiter.read_reply(), b"*2\r\n$6\r\nmylist\r\n$1\r\n1\r\n");
        assert_eq!(blpops(&mut control), 1, "port {port}");
        // A wait that times out is not logged.
        assert_eq!(waiter.cmd(&["BLPOP", "mylist", "0.01"]), b"*-1\r\n");
        assert_eq!(blpops(&mut control), 1, "port {port}");
        control.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "10000"]);
    }
}

/// Keys that expire (by the active cycle, or found on access) invalidate as any change does, NOLOOP
/// included (Redis signals them as modified by no client); FLUSHDB sends the null invalidation.
#[test]
fn tracking_invalidates_expired_keys_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "expiry, RESP3",
        &[
            "2: SET k v PX 100",
            "1! HELLO 3",
            "1: CLIENT TRACKING on",
            "1: GET k",
            // Nobody touches k: the active cycle expires it.
            "3?",
            "1<",
            "2: SET k v PX 100",
            "1: GET k",
            "3?",
            // Found expired on access, or by the active cycle meanwhile: one invalidation either way.
            "2: GET k",
            "1<",
            "1: CLIENT TRACKING on NOLOOP",
            "1: SET j v PX 100",
            "1: GET j",
            "3?",
            "1<",
            "1: CLIENT TRACKING off",
            "1: CLIENT TRACKING on BCAST PREFIX b",
            "2: SET bk v PX 100",
            "1<",
            "3?",
            "1<",
        ],
    );
    compare(
        &redis,
        &velo,
        "expiry, RESP2 redirect",
        &[
            "3: SUBSCRIBE __redis__:invalidate",
            "1: CLIENT TRACKING on REDIRECT $3",
            "2: SET k v PX 100",
            "1: GET k",
            "4?",
            "3<",
            "2: FLUSHDB",
            "3<",
            "1?",
        ],
    );
}

/// INFO's tracking figures: clients, remembered keys and (key, client) items, BCAST prefixes; keys stay
/// remembered after their clients stop tracking until they change, and FLUSHALL forgets them.
#[test]
fn tracking_info_fields_as_redis() {
    fn figures(conn: &mut Conn) -> String {
        let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "everything"])).into_owned();
        info.lines().filter(|l| l.starts_with("tracking_")).collect::<Vec<_>>().join(" ")
    }
    let (redis, velo) = servers();
    let mut runs = Vec::new();
    for port in [redis.port, velo.port] {
        let mut out = Vec::new();
        let mut c1 = Conn::connect(port);
        let mut c2 = Conn::connect(port);
        let mut c3 = Conn::connect(port);
        let mut writer = Conn::connect(port);
        writer.cmd(&["FLUSHALL"]);
        out.push(figures(&mut writer));
        c1.cmd(&["HELLO", "3"]);
        c1.cmd(&["CLIENT", "TRACKING", "on"]);
        c1.cmd(&["GET", "a"]);
        c1.cmd(&["MGET", "a", "b", "c"]);
        c2.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "y"]);
        c3.cmd(&["HELLO", "3"]);
        c3.cmd(&["CLIENT", "TRACKING", "on"]);
        c3.cmd(&["GET", "a"]);
        out.push(figures(&mut writer));
        c2.cmd(&["CLIENT", "TRACKING", "off"]);
        out.push(figures(&mut writer));
        writer.cmd(&["SET", "a", "1"]);
        out.push(figures(&mut writer));
        // The invalidation pushes first, then the replies.
        assert!(show(&c1.read_reply()).contains("invalidate"));
        assert!(show(&c3.read_reply()).contains("invalidate"));
        c1.cmd(&["CLIENT", "TRACKING", "off"]);
        c3.cmd(&["CLIENT", "TRACKING", "off"]);
        out.push(figures(&mut writer));
        writer.cmd(&["SET", "b", "1"]);
        out.push(figures(&mut writer));
        writer.cmd(&["FLUSHALL"]);
        out.push(figures(&mut writer));
        runs.push(out);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0][1].contains("tracking_total_items:4"), "{:?}", runs[0]);
}

/// A client blocked in XREADGROUP when its group is destroyed (NOGROUP), destroyed and created again
/// (served from the new group), its stream deleted, replaced or flushed (UNBLOCKED), or its consumer
/// deleted (still waiting): Redis 7.0's replies byte for byte, RESP2 and RESP3.
#[test]
fn xreadgroup_blocked_when_its_group_or_stream_goes_as_redis() {
    let (redis, velo) = servers();
    for hello in ["2! HELLO 2", "2! HELLO 3"] {
        let mut script: Vec<String> = vec![hello.to_string()];
        for (key, action) in [
            ("s1", vec!["XGROUP DESTROY s1 g"]),
            ("s2", vec!["MULTI", "XGROUP DESTROY s2 g", "XGROUP CREATE s2 g 0", "EXEC"]),
            ("s3", vec!["MULTI", "DEL s3", "XADD s3 2-1 f v", "XGROUP CREATE s3 g 0", "EXEC"]),
            ("s4", vec!["DEL s4"]),
            ("s5", vec!["SET s5 v"]),
            ("s6", vec!["RENAME s6 t6"]),
            ("s7", vec!["FLUSHALL"]),
        ] {
            script.push(format!("1: XADD {key} 1-1 f v"));
            script.push(format!("1: XGROUP CREATE {key} g $"));
            script.push(format!("2> XREADGROUP GROUP g c BLOCK 0 STREAMS {key} >"));
            script.push("blocked 1".into());
            script.extend(action.iter().map(|command| format!("1: {command}")));
            script.push("2<".into());
            script.push("blocked 0".into());
        }
        // Deleting the consumer does not end the wait.
        script.extend(
            [
                "1: XADD s8 1-1 f v",
                "1: XGROUP CREATE s8 g $",
                "2> XREADGROUP GROUP g c BLOCK 0 STREAMS s8 >",
                "blocked 1",
                "1: XGROUP DELCONSUMER s8 g c",
                "2?",
                "1: XADD s8 2-1 f v",
                "2<",
            ]
            .map(String::from),
        );
        let script: Vec<&str> = script.iter().map(String::as_str).collect();
        compare(&redis, &velo, hello, &script);
    }
}
