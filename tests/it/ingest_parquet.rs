//! `velo ingest-parquet` end to end: every fixture of fixtures/parquet loaded through the binary in each
//! value mode and read back through the engine (or redis-server), compared with its `*.expected.jsonl`;
//! every corrupt fixture fails with one line and exit 2; nulls, duplicates, dry runs, existing keys, TTLs,
//! and the online form against redis-server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;
use velo::cmd::collection;
use velo::engine::{Engine, EngineOptions, ValueKind};
use velo::types::hash::HashValue;

use crate::support::resp::{parse, Value as Resp};
use crate::support::{RedisServer, TestServer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parquet").join(name)
}

fn ingest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velo")).arg("ingest-parquet").args(args).output().expect("run velo")
}

fn ingest_into(dir: &Path, file: &str, extra: &[&str]) -> Output {
    let path = fixture(file);
    let mut args = vec![path.to_str().unwrap(), "--dir", dir.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    ingest(&args)
}

fn expected_rows(name: &str) -> Vec<serde_json::Map<String, Json>> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines().map(|line| serde_json::from_str::<Json>(line).unwrap().as_object().unwrap().clone()).collect()
}

/// The column names in schema order, from an expected file's first line (serde_json's map sorts keys).
fn column_order(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let Some(line) = text.lines().next() else { return Vec::new() };
    let row = serde_json::from_str::<Json>(line).unwrap();
    let mut names: Vec<String> = row.as_object().unwrap().keys().cloned().collect();
    names.sort_by_key(|name| line.find(&format!("\"{name}\":")).unwrap());
    names
}

/// The text form the loader gives a JSON scalar (key columns, `--value`).
fn text_of(value: &Json) -> Vec<u8> {
    match value {
        Json::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

/// Every live key of db 0 with its value, read through the engine (hashes materialised even when split).
struct Stored {
    strings: HashMap<Vec<u8>, (Vec<u8>, Option<u64>)>,
    hashes: HashMap<Vec<u8>, (Vec<(Vec<u8>, Vec<u8>)>, Option<u64>)>,
}

fn read_dir(dir: &Path) -> Stored {
    read_dir_at(dir, None)
}

/// Reads everything stored, with the engine's clock frozen at `now_ms` when given: keys whose short TTLs
/// ran out while a slow (loaded) machine ran the tool are still read, with their expiry.
fn read_dir_at(dir: &Path, now_ms: Option<u64>) -> Stored {
    let mut options = EngineOptions { read_only: true, background_sync: false, ..EngineOptions::default() };
    if let Some(now) = now_ms {
        options.clock = std::sync::Arc::new(move || now);
    }
    let engine = Engine::open(dir, options).expect("open data directory");
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        let page = engine.scan(Some(0), cursor, 1000).unwrap();
        keys.extend(page.keys.into_iter().map(|(_, key)| key));
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    let mut stored = Stored { strings: HashMap::new(), hashes: HashMap::new() };
    for key in keys {
        let entry = engine.get(0, &key).unwrap().unwrap();
        match entry.kind {
            ValueKind::String => {
                stored.strings.insert(key, (entry.value.to_vec(), entry.expire_at_ms));
            }
            ValueKind::Hash => {
                let mut guard = engine.lock_key(&key);
                let (hash, expire) = collection::load::<HashValue>(&mut guard, 0, &key).unwrap().unwrap();
                let pairs = hash.pairs().iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                stored.hashes.insert(key, (pairs, expire));
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    stored
}

/// JSON equality where numbers compare by value (the loader writes 100.0 where Python wrote 100.0 or 100).
fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                x.as_f64() == y.as_f64()
            } else {
                x.to_string() == y.to_string()
            }
        }
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> =
        text.bytes().filter(|b| *b != b'=').map(|b| ALPHABET.iter().position(|a| *a == b).unwrap() as u32).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn is_binary_column(name: &str) -> bool {
    name == "avatar" || name.starts_with("fsb_")
}

/// Whether a stored hash field (text form) is the expected JSON value.
fn field_matches(column: &str, expected: &Json, stored: &[u8]) -> bool {
    match expected {
        Json::String(s) if is_binary_column(column) => base64_decode(s) == stored,
        Json::String(s) => s.as_bytes() == stored,
        other => serde_json::from_slice::<Json>(stored).is_ok_and(|parsed| json_eq(other, &parsed)),
    }
}

/// The expected store of a file loaded with `key_column`: last row wins, rows with a null key left out.
fn expected_by_key(rows: &[serde_json::Map<String, Json>], key_column: &str) -> HashMap<Vec<u8>, usize> {
    let mut out = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        if !row[key_column].is_null() {
            out.insert(text_of(&row[key_column]), index);
        }
    }
    out
}

const READABLE: &[(&str, &str, &str)] = &[
    // (file, key column, a value column for --value)
    ("users.parquet", "id", "name"),
    ("users-zstd.parquet", "id", "name"),
    ("users-gzip.parquet", "id", "name"),
    ("users-uncompressed.parquet", "id", "name"),
    ("users-lz4.parquet", "id", "name"),
    ("events-v1.parquet", "key", "payload"),
    ("events-v2.parquet", "key", "payload"),
    ("wide.parquet", "i64_03", "lstr_16"),
    ("empty.parquet", "key", "value"),
    ("nulls.parquet", "key", "value"),
    ("duplicates.parquet", "key", "value"),
    ("more-types.parquet", "id", "name"),
];

fn expected_name(file: &str) -> String {
    file.replace(".parquet", ".expected.jsonl")
}

#[test]
fn every_readable_fixture_loads_as_json_objects() {
    for (file, key, _) in READABLE {
        let dir = tempfile::tempdir().unwrap();
        let output = ingest_into(dir.path(), file, &["--key", key, "--value-json", "--max-errors", "10"]);
        let rows = expected_rows(&expected_name(file));
        let null_keys = rows.iter().filter(|r| r[*key].is_null()).count();
        assert_eq!(output.status.code(), Some(if null_keys > 0 { 1 } else { 0 }), "{file}: {output:?}");
        let expected = expected_by_key(&rows, key);
        let stored = read_dir(dir.path());
        assert_eq!(stored.strings.len(), expected.len(), "{file}: key count");
        for (k, index) in &expected {
            let (value, expire) = &stored.strings[k];
            assert_eq!(*expire, None);
            let text = std::str::from_utf8(value).unwrap();
            let parsed: Json = serde_json::from_str(text).unwrap();
            assert!(json_eq(&parsed, &Json::Object(rows[*index].clone())), "{file}: row {index}: {text}");
            // Keys in schema order.
            let order = column_order(&expected_name(file));
            let positions: Vec<usize> = order.iter().map(|n| text.find(&format!("\"{n}\":")).unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{file}: {text}");
        }
    }
}

#[test]
fn every_readable_fixture_loads_as_hashes() {
    for (file, key, _) in READABLE {
        let dir = tempfile::tempdir().unwrap();
        let output = ingest_into(dir.path(), file, &["--key", key, "--value-hash", "--max-errors", "10"]);
        let rows = expected_rows(&expected_name(file));
        let expected = expected_by_key(&rows, key);
        // A row whose every column is null cannot be a hash; none of the fixtures has one besides null keys.
        let rejected = rows.iter().filter(|r| r[*key].is_null()).count();
        assert_eq!(output.status.code(), Some(if rejected > 0 { 1 } else { 0 }), "{file}: {output:?}");
        let stored = read_dir(dir.path());
        assert_eq!(stored.hashes.len(), expected.len(), "{file}: key count");
        for (k, index) in &expected {
            let (pairs, _) = &stored.hashes[k];
            let row = &rows[*index];
            let order = column_order(&expected_name(file));
            let want: Vec<(&String, &Json)> =
                order.iter().map(|name| (name, &row[name])).filter(|(_, v)| !v.is_null()).collect();
            assert_eq!(pairs.len(), want.len(), "{file}: row {index}: null fields are left out");
            for ((field, value), (name, expected)) in pairs.iter().zip(want) {
                assert_eq!(field, name.as_bytes(), "{file}: field order");
                assert!(field_matches(name, expected, value), "{file}: row {index} {name}: {value:?} vs {expected}");
            }
        }
    }
}

#[test]
fn every_readable_fixture_loads_one_column_as_strings() {
    for (file, key, value_column) in READABLE {
        let dir = tempfile::tempdir().unwrap();
        let output = ingest_into(dir.path(), file, &["--key", key, "--value", value_column, "--max-errors", "10"]);
        let rows = expected_rows(&expected_name(file));
        let stored = read_dir(dir.path());
        // Rows with a null key or a null value are rejected; of the others the last row per key wins.
        let mut expected = HashMap::new();
        let mut rejected = 0;
        for row in &rows {
            if row[*key].is_null() || row[*value_column].is_null() {
                rejected += 1;
            } else {
                expected.insert(text_of(&row[*key]), text_of(&row[*value_column]));
            }
        }
        assert_eq!(output.status.code(), Some(if rejected > 0 { 1 } else { 0 }), "{file}: {output:?}");
        let got: HashMap<Vec<u8>, Vec<u8>> = stored.strings.into_iter().map(|(k, (v, _))| (k, v)).collect();
        assert_eq!(got, expected, "{file}");
    }
}

#[test]
fn big_values_load_whole() {
    let dir = tempfile::tempdir().unwrap();
    let output = ingest_into(dir.path(), "big-values.parquet", &["--key", "key", "--value", "value"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = read_dir(dir.path());
    let rows = expected_rows("big-values.expected.jsonl");
    assert_eq!(stored.strings.len(), rows.len());
    for row in rows {
        let (value, _) = &stored.strings[row["key"].as_str().unwrap().as_bytes()];
        assert_eq!(value.len() as u64, row["value_len"].as_u64().unwrap());
        let text = std::str::from_utf8(value).unwrap();
        assert!(text.starts_with(row["value_prefix"].as_str().unwrap()));
    }
}

#[test]
fn corrupt_files_fail_with_one_line_naming_them() {
    let cases = [
        ("truncated.parquet", "truncated"),
        ("bad-magic.parquet", "found \"PARX\""),
        ("bad-footer-length.parquet", "footer length 1048576"),
        ("garbage.parquet", "not a Parquet file"),
        ("csv-disguised.parquet", "starts with \"key,\""),
        ("bad-page-header.parquet", "row group 2, column \"value\""),
        // A codec Parquet allows that this build does not read (fixtures/parquet/gen_brotli.py).
        ("users-brotli.parquet", "row group 0, column \"key\": codec BROTLI is not supported"),
    ];
    for (file, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let output = ingest_into(&target, file, &["--key", "key", "--value", "value"]);
        assert_eq!(output.status.code(), Some(2), "{file}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
        assert!(stderr.contains(file) && stderr.contains(says), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        // Nothing half-written: bad-page-header's first two row groups decode fine, yet no key is there.
        if target.exists() {
            assert!(read_dir(&target).strings.is_empty(), "{file}");
        }
    }
}

#[test]
fn null_keys_are_reported_and_nothing_is_written_without_max_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = ingest_into(dir.path(), "nulls.parquet", &["--key", "key", "--value-json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    for row in [5, 21, 33] {
        assert!(stderr.contains(&format!("nulls.parquet: row {row}: key is null")), "{stderr}");
    }
    assert!(read_dir(dir.path()).strings.is_empty(), "nothing written over --max-errors 0");
    // Under --max-errors the other 37 rows load; the null values of rows 9 and 30 are JSON null, and the
    // empty key of row 12 is a key.
    let output = ingest_into(dir.path(), "nulls.parquet", &["--key", "key", "--value-json", "--max-errors", "3"]);
    assert_eq!(output.status.code(), Some(1));
    let stored = read_dir(dir.path());
    assert_eq!(stored.strings.len(), 37);
    assert!(stored.strings.contains_key(&b""[..]));
}

#[test]
fn duplicates_last_first_and_error() {
    let rows = expected_rows("duplicates.expected.jsonl");
    let last: Vec<Json> = std::fs::read_to_string(fixture("duplicates.last-wins.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let output = ingest_into(dir.path(), "duplicates.parquet", &["--key", "key", "--value", "value", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    // Loaded in one pass (empty directory, last wins): the counts still come from the duplicate detection.
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["files"][0]["keys_written"], 24);
    assert_eq!(summary["files"][0]["rows_superseded"], 76);
    assert_eq!(summary["rows_rejected"], 0);
    let stored = read_dir(dir.path());
    assert_eq!(stored.strings.len(), 24);
    for row in &last {
        let (value, _) = &stored.strings[row["key"].as_str().unwrap().as_bytes()];
        assert_eq!(value, row["value"].as_str().unwrap().as_bytes());
    }

    let dir = tempfile::tempdir().unwrap();
    let output =
        ingest_into(dir.path(), "duplicates.parquet", &["--key", "key", "--value", "value", "--on-duplicate", "first"]);
    assert_eq!(output.status.code(), Some(0));
    let stored = read_dir(dir.path());
    let mut first = HashMap::new();
    for row in &rows {
        first.entry(row["key"].as_str().unwrap().as_bytes().to_vec()).or_insert(row["value"].as_str().unwrap());
    }
    assert_eq!(stored.strings.len(), first.len());
    for (key, value) in first {
        assert_eq!(stored.strings[&key].0, value.as_bytes());
    }

    let dir = tempfile::tempdir().unwrap();
    let path = fixture("duplicates.parquet");
    let output = ingest(&[
        path.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--key",
        "key",
        "--value",
        "value",
        "--on-duplicate",
        "error",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rows_rejected"], 76);
    assert_eq!(summary["written"], false);
    assert_eq!(summary["rejections"].as_array().unwrap().len(), 20);
    assert_eq!(summary["rejections"][0]["row"], 8);
    assert!(summary["rejections"][0]["reason"].as_str().unwrap().contains("first at row"));
    assert!(read_dir(dir.path()).strings.is_empty());
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("users.parquet");
    let output = ingest(&[
        path.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--key",
        "id",
        "--value-hash",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["written"], false);
    assert_eq!(summary["files"][0]["keys_written"], 1000);
    let stored = read_dir(dir.path());
    assert!(stored.hashes.is_empty() && stored.strings.is_empty());
    // A directory that did not exist is not created by a run that writes nothing: a dry run, too many
    // rejected rows, or a row group that fails to decode.
    let parent = tempfile::tempdir().unwrap();
    let new_dir = parent.path().join("new");
    for (file, extra) in [
        ("users.parquet", &["--key", "id", "--value-hash", "--dry-run"][..]),
        ("nulls.parquet", &["--key", "key", "--value-json"][..]),
    ] {
        let output = ingest_into(&new_dir, file, extra);
        assert_ne!(output.status.code(), Some(2), "{output:?}");
        assert!(!new_dir.exists(), "{file} {extra:?} left {}", new_dir.display());
    }
    // A run that writes creates it.
    let output = ingest_into(&new_dir, "users.parquet", &["--key", "id", "--value-hash"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(read_dir(&new_dir).hashes.len(), 1000);
}

#[test]
fn existing_keys_fail_skip_or_replace() {
    let dir = tempfile::tempdir().unwrap();
    let load = |extra: &[&str]| {
        let mut args = vec!["--key", "key", "--value", "value"];
        args.extend_from_slice(extra);
        ingest_into(dir.path(), "duplicates.parquet", &args)
    };
    assert_eq!(load(&[]).status.code(), Some(0));
    let again = load(&[]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(stderr.contains("already exists") && stderr.contains("--on-existing"), "{stderr}");
    assert_eq!(load(&["--on-existing", "skip", "--on-duplicate", "first"]).status.code(), Some(0));
    assert_eq!(read_dir(dir.path()).strings[&b"dup:00"[..]].0, b"v098", "skip leaves the existing value");
    assert_eq!(load(&["--on-existing", "replace", "--on-duplicate", "first"]).status.code(), Some(0));
    assert_eq!(read_dir(dir.path()).strings[&b"dup:00"[..]].0, b"v000", "replace overwrites");
}

#[test]
fn ttl_column_in_milliseconds_and_key_templates() {
    let dir = tempfile::tempdir().unwrap();
    let before = velo::engine::system_clock_ms();
    let output = ingest_into(
        dir.path(),
        "events-v1.parquet",
        &[
            "--key-template",
            "{kind}/{key}",
            "--key-prefix",
            "e:",
            "--value",
            "payload",
            "--ttl-col",
            "ttl_ms",
            "--ttl-unit",
            "ms",
        ],
    );
    let after = velo::engine::system_clock_ms();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = read_dir_at(dir.path(), Some(before));
    let rows = expected_rows("events-v1.expected.jsonl");
    assert_eq!(stored.strings.len(), rows.len());
    for row in rows {
        let key = format!("e:{}/{}", row["kind"].as_str().unwrap(), row["key"].as_str().unwrap());
        let (_, expire) = stored.strings[key.as_bytes()];
        match row["ttl_ms"].as_u64() {
            None => assert_eq!(expire, None, "null TTL: no expiry"),
            Some(ttl) => {
                let at = expire.unwrap();
                assert!(at >= before + ttl && at <= after + ttl, "{key}");
            }
        }
    }
}

/// A duration column is a TTL in its own unit: `--ttl-unit` applies to integer columns only.
#[test]
fn a_duration_column_is_a_ttl_in_its_own_unit() {
    let dir = tempfile::tempdir().unwrap();
    let before = velo::engine::system_clock_ms();
    let output = ingest_into(
        dir.path(),
        "more-types.parquet",
        &["--key", "id", "--value", "name", "--ttl-col", "ttl", "--ttl-unit", "s"],
    );
    let after = velo::engine::system_clock_ms();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = read_dir_at(dir.path(), Some(before));
    let rows = expected_rows("more-types.expected.jsonl");
    assert_eq!(stored.strings.len(), rows.len());
    for row in rows {
        let (_, expire) = stored.strings[row["id"].to_string().as_bytes()];
        match row["ttl"].as_u64() {
            None => assert_eq!(expire, None, "null TTL: no expiry"),
            Some(ttl_ms) => {
                let at = expire.unwrap();
                assert!(at >= before + ttl_ms && at <= after + ttl_ms, "{row:?}: expires at {at}");
            }
        }
    }
    // A column of another type is refused before anything is read.
    let output = ingest_into(dir.path(), "more-types.parquet", &["--key", "id", "--value", "name", "--ttl-col", "d32"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TTL column \"d32\"") && stderr.contains("an integer or a duration"), "{stderr}");
}

#[test]
fn a_directory_held_by_a_server_names_its_pid() {
    let server = TestServer::start();
    let path = fixture("duplicates.parquet");
    let output =
        ingest(&[path.to_str().unwrap(), "--dir", server.dir.to_str().unwrap(), "--key", "key", "--value", "value"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&format!("pid {}", server.pid())) && stderr.contains("--host"), "{stderr}");
}

fn resp_call(port: u16, args: &[&[u8]]) -> Resp {
    let mut conn = crate::support::Conn::connect(port);
    let reply = conn.cmd_bytes(args);
    parse(&reply).unwrap().0
}

#[test]
fn online_into_redis_matches_offline_into_velo() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("users.parquet");
    let port = redis.port.to_string();
    let args = ["--key-template", "user:{id}", "--value-hash", "--ttl", "1000"];
    let mut online = vec![path.to_str().unwrap(), "--host", "127.0.0.1", "--port", &port, "--quiet"];
    online.extend_from_slice(&args);
    let output = ingest(&online);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let output = ingest_into(dir.path(), "users.parquet", &args);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = read_dir(dir.path());
    assert_eq!(stored.hashes.len(), 1000);
    for (key, (pairs, expire)) in &stored.hashes {
        assert!(expire.is_some());
        let Resp::Agg(_, Some(items)) = resp_call(redis.port, &[b"HGETALL", key]) else { panic!("HGETALL") };
        let remote: Vec<Vec<u8>> = items
            .into_iter()
            .map(|item| match item {
                Resp::Blob(_, Some(bytes)) => bytes,
                other => panic!("{other:?}"),
            })
            .collect();
        let local: Vec<Vec<u8>> = pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
        assert_eq!(remote, local, "{}", String::from_utf8_lossy(key));
        let Resp::Line(_, ttl) = resp_call(redis.port, &[b"TTL", key]) else { panic!("TTL") };
        let ttl: i64 = String::from_utf8(ttl).unwrap().parse().unwrap();
        assert!((990..=1000).contains(&ttl), "{ttl}");
    }
    // Loading again with --on-existing fail stops before writing; replace rewrites.
    assert_eq!(ingest(&online).status.code(), Some(2));
    online.extend_from_slice(&["--on-existing", "replace"]);
    assert_eq!(ingest(&online).status.code(), Some(0));
}

#[test]
fn large_hashes_are_stored_split_as_hset_would() {
    // big-values rows are 100 KB–900 KB: as hashes they pass the 32 KiB split threshold, so they are
    // written in the split form; read back through the collection code they are whole.
    let dir = tempfile::tempdir().unwrap();
    let output = ingest_into(dir.path(), "big-values.parquet", &["--key", "key", "--value-hash"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let options = EngineOptions { read_only: true, background_sync: false, ..EngineOptions::default() };
    let engine = Engine::open(dir.path(), options).unwrap();
    for row in expected_rows("big-values.expected.jsonl") {
        let key = row["key"].as_str().unwrap().as_bytes();
        let header = engine.get(0, key).unwrap().unwrap();
        assert!(velo::elements::is_split(&header.value), "stored split");
        let mut guard = engine.lock_key(key);
        let (hash, _) = collection::load::<HashValue>(&mut guard, 0, key).unwrap().unwrap();
        assert_eq!(hash.get(b"key").map(|v| v.to_vec()), Some(key.to_vec()));
        assert_eq!(hash.get(b"value").unwrap().len() as u64, row["value_len"].as_u64().unwrap());
    }
}

/// `--expire-at-col`: an epoch-number column in `--ttl-unit`, and a timestamp column whose instants are
/// past (every row rejected, named, nothing written).
#[test]
fn absolute_expiry_from_epoch_numbers_and_past_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    // `id` is 10000000000 + about 7 per row: seconds in the 2280s.
    let output = ingest_into(dir.path(), "users.parquet", &["--key", "id", "--value", "name", "--expire-at-col", "id"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stored = read_dir(dir.path());
    let rows = expected_rows("users.expected.jsonl");
    assert_eq!(stored.strings.len(), rows.len());
    for row in &rows {
        let id = row["id"].as_u64().unwrap();
        let (value, expire) = &stored.strings[id.to_string().as_bytes()];
        assert_eq!(value, row["name"].as_str().unwrap().as_bytes());
        assert_eq!(*expire, Some(id * 1000), "id {id}");
    }

    // `created_at` is 2015-2025: in the past, so every row is rejected with its reason.
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("users.parquet");
    let output = ingest(&[
        path.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--key",
        "id",
        "--value",
        "name",
        "--expire-at-col",
        "created_at",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["rows_rejected"], 1000);
    assert_eq!(summary["written"], false);
    assert!(summary["rejections"][0]["reason"].as_str().unwrap().contains("in the past"), "{summary}");
    assert!(read_dir(dir.path()).strings.is_empty());
}

/// `--columns` picks the JSON object's members, `--db` the database; keys over the engine's limit are
/// rejected rows naming file, row and sizes; a float column is no TTL (exit 2, one line).
#[test]
fn columns_db_key_limit_and_an_unusable_ttl_column() {
    let dir = tempfile::tempdir().unwrap();
    let output = ingest_into(
        dir.path(),
        "users.parquet",
        &["--key", "id", "--value-json", "--columns", "name,age", "--db", "3"],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(read_dir(dir.path()).strings.is_empty(), "nothing in db 0");
    let engine =
        Engine::open(dir.path(), EngineOptions { read_only: true, background_sync: false, ..EngineOptions::default() })
            .unwrap();
    for row in expected_rows("users.expected.jsonl") {
        let key = row["id"].as_u64().unwrap().to_string();
        let entry = engine.get(3, key.as_bytes()).unwrap().unwrap();
        let object: Json = serde_json::from_slice(&entry.value).unwrap();
        let mut names: Vec<&String> = object.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(names, ["age", "name"], "{object}");
        let text = std::str::from_utf8(&entry.value).unwrap();
        assert!(text.find("\"name\":") < text.find("\"age\":"), "columns in order: {text}");
        assert_eq!(object["name"], row["name"]);
        assert_eq!(object["age"], row["age"]);
    }
    drop(engine);

    let dir = tempfile::tempdir().unwrap();
    let prefix = "x".repeat(velo::engine::page::MAX_KEY_LEN);
    let output = ingest_into(dir.path(), "users.parquet", &["--key", "id", "--value", "name", "--key-prefix", &prefix]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("users.parquet: row 0: key is"), "{stderr}");
    assert!(stderr.contains(&format!("over the limit of {}", velo::engine::page::MAX_KEY_LEN)), "{stderr}");
    // The first 20 are printed, all are counted.
    assert_eq!(stderr.lines().filter(|l| l.contains(": row ")).count(), 20, "{stderr}");
    assert!(read_dir(dir.path()).strings.is_empty());

    let output = ingest_into(dir.path(), "users.parquet", &["--key", "id", "--value", "name", "--ttl-col", "score"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("users.parquet") && stderr.contains("\"score\""), "{stderr}");
}

/// PATH as a directory (every `*.parquet` in it, sorted) and as a glob.
#[test]
fn inputs_by_directory_and_glob() {
    let temp = tempfile::tempdir().unwrap();
    let inputs = temp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for name in ["users-zstd.parquet", "users.parquet", "users-gzip.parquet"] {
        std::fs::copy(fixture(name), inputs.join(name)).unwrap();
    }
    std::fs::write(inputs.join("notes.txt"), "not an input").unwrap();
    let files_of = |summary: &Json| -> Vec<String> {
        summary["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| Path::new(f["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let target = temp.path().join("a");
    let output = ingest(&[
        inputs.to_str().unwrap(),
        "--dir",
        target.to_str().unwrap(),
        "--key",
        "id",
        "--value",
        "name",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(files_of(&summary), ["users-gzip.parquet", "users-zstd.parquet", "users.parquet"], "{summary}");

    let pattern = inputs.join("users-*.parquet");
    let output = ingest(&[
        pattern.to_str().unwrap(),
        "--dir",
        target.to_str().unwrap(),
        "--key",
        "id",
        "--value",
        "name",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let summary: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(files_of(&summary), ["users-gzip.parquet", "users-zstd.parquet"]);
    // The same 1000 ids in both files: the last file's rows win, each key written once.
    assert_eq!(read_dir(&target).strings.len(), 1000);
}

/// The online forms with `--password` (ingest-parquet, then bigkeys counting what it loaded) against a
/// Velo server with `requirepass`; without the password both fail with one line and exit 2.
#[test]
fn online_forms_authenticate_with_password() {
    let server = TestServer::start();
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["CONFIG", "SET", "requirepass", "secret"]), b"+OK\r\n");
    let path = fixture("users.parquet");
    let port = server.port.to_string();
    let base = [path.to_str().unwrap(), "--host", "127.0.0.1", "--port", &port, "--key", "id", "--value", "name"];
    let denied = ingest(&base);
    assert_eq!(denied.status.code(), Some(2), "{denied:?}");
    assert_eq!(String::from_utf8_lossy(&denied.stderr).lines().count(), 1, "{denied:?}");
    let mut with_password = base.to_vec();
    with_password.extend_from_slice(&["--password", "secret", "--quiet"]);
    let output = ingest(&with_password);
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    let bigkeys = |extra: &[&str]| {
        let mut args = vec!["bigkeys", "--host", "127.0.0.1", "--port", &port, "--json"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_velo")).args(&args).env_remove("VELO_PASSWORD").output().unwrap()
    };
    let denied = bigkeys(&[]);
    assert_eq!(denied.status.code(), Some(2), "{denied:?}");
    let output = bigkeys(&["--password", "secret"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["totals"]["keys"], 1000, "{report}");
}
