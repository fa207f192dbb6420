//! `velo bigkeys` offline (files of a data directory, split collections counted from their headers) and
//! online (SCAN/TYPE/MEMORY USAGE/length commands) against redis-server and against Velo itself.

use serde_json::Value;

use crate::support::server::{RedisServer, TestServer};
use crate::tools_fixtures::{velo, velo_json, Healthy};

fn type_report<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

fn family<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == name)
        .unwrap_or_else(|| panic!("no family {name} in {report}"))
}

#[test]
fn offline_finds_the_largest_keys_and_family_sizes() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let (code, report) = velo_json(&["bigkeys", "--dir", dir, "--top", "2"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["source"], "offline");
    let strings = type_report(&report, "string");
    assert_eq!(strings["top_by_bytes"][0]["key"], "\"blob:big\"");
    assert!(strings["top_by_bytes"][0]["stored_bytes"].as_u64().unwrap() > 20_000);
    assert_eq!(strings["top_by_bytes"][0]["raw_bytes"], 20_000 + 8);
    assert_eq!(strings["top_by_bytes"].as_array().unwrap().len(), 2);
    let hashes = type_report(&report, "hash");
    assert_eq!(hashes["keys"], 2);
    assert_eq!(hashes["top_by_elements"][0]["key"], "\"h:large\"");
    assert_eq!(hashes["top_by_elements"][0]["elements"], 40);
    assert_eq!(hashes["top_by_elements"][1]["elements"], 3);
    assert_eq!(hashes["elements"], 43);
    // 200 user keys (one newer version only in the WAL counts once), raw = key + value bytes.
    let users = family(&report, "\"user\"");
    assert_eq!(users["keys"], 200);
    let raw: u64 = (0..200)
        .map(|n: u64| format!("user:{n}").len() as u64 + if n == 1 { 5 } else { format!("u{n}").len() as u64 })
        .sum();
    assert_eq!(users["raw_bytes"], raw);
    assert_eq!(family(&report, "\"doc\"")["keys"], 60);
    assert_eq!(family(&report, "\"wal\"")["keys"], 5);
    assert_eq!(report["totals"]["keys"], 270);
    // --db restricts to one database.
    let (_, report) = velo_json(&["bigkeys", "--dir", dir, "--db", "1"]);
    assert_eq!(report["totals"]["keys"], 1);
    assert_eq!(type_report(&report, "string")["top_by_bytes"][0]["key"], "\"odd\\n\\\"key\\\"\\xff\"");
    let out = velo(&["bigkeys", "--dir", dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("largest by stored bytes") && text.contains("key families"), "{text}");
}

/// Fills a server with known keys: a large hash, list, set and sorted set (split in Velo), strings.
fn fill(port: u16) {
    let mut conn = crate::support::resp::Conn::connect(port);
    for chunk in 0..10 {
        let mut args = vec!["HSET".to_string(), "big:hash".into()];
        for i in 0..100 {
            args.push(format!("field:{}", chunk * 100 + i));
            args.push(format!("value-{}", chunk * 100 + i));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        conn.cmd(&refs);
    }
    let items: Vec<String> = (0..700).map(|i| format!("item-{i}")).collect();
    let mut args = vec!["RPUSH", "big:list"];
    args.extend(items.iter().map(String::as_str));
    conn.cmd(&args);
    let mut args = vec!["SADD", "big:set"];
    args.extend(items.iter().map(String::as_str));
    conn.cmd(&args);
    let mut zargs = vec!["ZADD".to_string(), "big:zset".into()];
    for (i, item) in items.iter().enumerate().take(600) {
        zargs.push(i.to_string());
        zargs.push(item.clone());
    }
    let refs: Vec<&str> = zargs.iter().map(String::as_str).collect();
    conn.cmd(&refs);
    conn.cmd(&["HSET", "small:hash", "a", "1"]);
    conn.cmd(&["SET", "str:big", &"x".repeat(5000)]);
    for n in 0..50 {
        conn.cmd(&["SET", &format!("str:{n}"), "v"]);
    }
    conn.cmd(&["SET", "plain", "1"]);
}

fn assert_known_largest(report: &Value) {
    assert_eq!(type_report(report, "hash")["top_by_elements"][0]["key"], "\"big:hash\"");
    assert_eq!(type_report(report, "hash")["top_by_elements"][0]["elements"], 1000);
    assert_eq!(type_report(report, "list")["top_by_elements"][0]["elements"], 700);
    assert_eq!(type_report(report, "set")["top_by_elements"][0]["elements"], 700);
    assert_eq!(type_report(report, "zset")["top_by_elements"][0]["elements"], 600);
    assert_eq!(type_report(report, "string")["top_by_bytes"][0]["key"], "\"str:big\"");
    assert_eq!(type_report(report, "string")["keys"], 52);
    assert_eq!(family(report, "\"str\"")["keys"], 51);
    assert_eq!(family(report, "\"big\"")["keys"], 4);
    assert_eq!(family(report, "\"\"")["keys"], 1);
    assert_eq!(report["totals"]["keys"], 57);
}

#[test]
fn split_collections_counted_offline_and_online_against_velo() {
    let temp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(temp.path(), &[]);
    fill(server.port);
    let (code, online) = velo_json(&["bigkeys", "--host", "127.0.0.1", "--port", &server.port.to_string()]);
    assert_eq!(code, 0, "{online}");
    assert_eq!(online["source"], "online");
    assert_known_largest(&online);
    let notes = online["notes"].to_string();
    assert!(notes.contains("MEMORY USAGE"), "{notes}");
    // Offline beside the running server (the newest writes are still in the WAL).
    let (code, offline) = velo_json(&["bigkeys", "--dir", temp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{offline}");
    assert_known_largest(&offline);
    server.terminate();
    let (code, offline) = velo_json(&["bigkeys", "--dir", temp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{offline}");
    assert_known_largest(&offline);
    let hash = &type_report(&offline, "hash")["top_by_elements"][0];
    assert_eq!(hash["split"], true, "{hash}");
    // The parts are counted: raw bytes hold every field and value.
    let fields: u64 = (0..1000).map(|i| format!("field:{i}").len() as u64 + format!("value-{i}").len() as u64).sum();
    assert!(hash["raw_bytes"].as_u64().unwrap() >= fields, "{hash}");
    assert!(hash["stored_bytes"].as_u64().unwrap() > 1000, "{hash}");
    assert_eq!(type_report(&offline, "hash")["top_by_elements"][1]["split"], false);
}

#[test]
fn online_against_redis_server() {
    let redis = RedisServer::start();
    fill(redis.port);
    let (code, report) =
        velo_json(&["bigkeys", "--host", "127.0.0.1", "--port", &redis.port.to_string(), "--top", "3"]);
    assert_eq!(code, 0, "{report}");
    assert_known_largest(&report);
    assert!(report["notes"].to_string().contains("MEMORY USAGE (SAMPLES 0)"), "{}", report["notes"]);
    // MEMORY USAGE of a 5000-byte string is above its length.
    assert!(type_report(&report, "string")["top_by_bytes"][0]["stored_bytes"].as_u64().unwrap() > 5000);
    let out = velo(&["bigkeys", "--host", "127.0.0.1", "--port", &crate::support::server::free_port().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("velo bigkeys: error: connect to"));
}

/// The queue of segment records waiting to be read is bounded: with a bound of one record the chunk
/// files are read in many rounds during the page walk, and the report is the same (on the healthy
/// fixture and on a directory with split collections), as is a run on one thread per slot.
#[test]
fn a_bounded_need_queue_gives_the_same_report() {
    let fixture = Healthy::new();
    let temp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(temp.path(), &[]);
    fill(server.port);
    server.terminate();
    for dir in [fixture.dir.as_path(), temp.path()] {
        let data = velo::inspect::DataDir::open(dir).unwrap();
        let whole = velo::inspect::bigkeys::offline(&data, None, 3, 50, &|_| {}).unwrap();
        let rounds = velo::inspect::bigkeys::offline_with_budget(&data, None, 3, 50, &|_| {}, 1).unwrap();
        assert!(whole.problems.is_empty(), "{:?}", whole.problems);
        assert_eq!(serde_json::to_value(&whole).unwrap(), serde_json::to_value(&rounds).unwrap(), "{}", dir.display());
    }
}
