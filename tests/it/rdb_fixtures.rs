//! The RDB fixtures (`fixtures/rdb`, written by Redis 2.x to 7.0; see its README): every file restored
//! into a fresh engine and compared key by key with its manifest (produced by redis-server 7.0.15
//! loading the file); damaged copies (every truncation, thousands of random mutations) give errors,
//! never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use velo::engine::{Engine, EngineOptions};
use velo::rdb::load::{load_offline, LoadOptions};
use velo::rdb::read::{read_payload, Item, RdbReader};
use velo::rdb::{store, write, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rdb")
}

fn manifest(name: &str) -> Json {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).expect("manifest")).expect("manifest json")
}

fn b64(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        bits = bits << 6 | alphabet.iter().position(|a| *a == c).expect("base64") as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

fn bytes(json: &Json) -> Vec<u8> {
    match json {
        Json::String(text) => text.as_bytes().to_vec(),
        Json::Object(map) => b64(map["b64"].as_str().expect("b64")),
        other => panic!("not a byte string: {other}"),
    }
}

fn score(json: &Json) -> f64 {
    match json.as_str().expect("score text") {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        text => text.parse().expect("score"),
    }
}

fn id(text: &str) -> velo::types::stream::StreamId {
    let (ms, seq) = text.split_once('-').expect("id");
    velo::types::stream::StreamId::new(ms.parse().unwrap(), seq.parse().unwrap())
}

/// Equal sequences, or a failure naming the lengths and the first difference (not megabytes of both).
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], name: &str) {
    if let Some(at) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{name}: {} vs {} items; first difference at {at}: {:?} vs {:?}",
            got.len(),
            want.len(),
            got.get(at),
            want.get(at)
        );
    }
}

fn check_value(name: &str, expected: &Json, actual: &Value) {
    let value = &expected["value"];
    match (expected["type"].as_str().unwrap(), actual) {
        ("string", Value::String(got)) => assert_eq!(got.as_ref(), bytes(value), "{name}"),
        ("list", Value::List(got)) => {
            let want: Vec<Vec<u8>> = value.as_array().unwrap().iter().map(bytes).collect();
            same(&got.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), &want, name);
        }
        ("set", Value::Set(got)) => {
            let mut got: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
            got.sort();
            let mut want: Vec<Vec<u8>> = value.as_array().unwrap().iter().map(bytes).collect();
            want.sort();
            same(&got, &want, name);
        }
        ("hash", Value::Hash(got)) => {
            let mut got: Vec<(Vec<u8>, Vec<u8>)> = got.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            got.sort();
            let mut want: Vec<(Vec<u8>, Vec<u8>)> =
                value.as_array().unwrap().iter().map(|p| (bytes(&p[0]), bytes(&p[1]))).collect();
            want.sort();
            same(&got, &want, name);
        }
        ("zset", Value::SortedSet(got)) => {
            let want: Vec<(Vec<u8>, f64)> =
                value.as_array().unwrap().iter().map(|p| (bytes(&p[0]), score(&p[1]))).collect();
            let got: Vec<(Vec<u8>, f64)> = got.iter().map(|(m, s)| (m.to_vec(), *s)).collect();
            same(&got, &want, name);
        }
        ("stream", Value::Stream(got)) => {
            assert_eq!(got.len() as u64, value["length"].as_u64().unwrap(), "{name} length");
            assert_eq!(got.last_id, id(value["last_generated_id"].as_str().unwrap()), "{name}");
            assert_eq!(got.max_deleted_id, id(value["max_deleted_entry_id"].as_str().unwrap()), "{name}");
            assert_eq!(got.entries_added, value["entries_added"].as_u64().unwrap(), "{name}");
            assert_eq!(got.first_id(), id(value["recorded_first_entry_id"].as_str().unwrap()), "{name}");
            let entries: Vec<_> = got.entries.iter().collect();
            let want = value["entries"].as_array().unwrap();
            assert_eq!(entries.len(), want.len(), "{name} entries");
            for ((got_id, entry), want) in entries.iter().zip(want) {
                assert_eq!(**got_id, id(want[0].as_str().unwrap()), "{name}");
                let flat: Vec<Vec<u8>> = entry.fields.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]).collect();
                assert_eq!(flat, want[1].as_array().unwrap().iter().map(bytes).collect::<Vec<_>>(), "{name}");
            }
            let groups = value["groups"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert_eq!(got.groups.len(), groups.len(), "{name} groups");
            for want in groups {
                let group = &got.groups[bytes(&want["name"]).as_slice()];
                assert_eq!(group.last_id, id(want["last_delivered_id"].as_str().unwrap()), "{name}");
                assert_eq!(group.entries_read, want["entries_read"].as_u64(), "{name} entries_read");
                let pel: Vec<(String, Vec<u8>, u64)> =
                    group.pel.iter().map(|(i, p)| (i.to_string(), p.consumer.to_vec(), p.delivery_count)).collect();
                let want_pel: Vec<(String, Vec<u8>, u64)> = want["pending"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_str().unwrap().to_string(), bytes(&p[1]), p[2].as_u64().unwrap()))
                    .collect();
                assert_eq!(pel, want_pel, "{name} pending");
                let consumers: Vec<Vec<u8>> = group.consumers.keys().map(|c| c.to_vec()).collect();
                let want_consumers: Vec<Vec<u8>> =
                    want["consumers"].as_array().unwrap().iter().map(|c| bytes(&c["name"])).collect();
                assert_eq!(consumers, want_consumers, "{name} consumers");
            }
        }
        (kind, other) => panic!("{name}: expected a {kind}, restored {other:?}"),
    }
}

/// The value with its unordered parts (set members, hash fields, sorted-set members) sorted.
fn normalized(value: Value) -> Value {
    match value {
        Value::Set(mut members) => {
            members.sort();
            Value::Set(members)
        }
        Value::Hash(mut pairs) => {
            pairs.sort();
            Value::Hash(pairs)
        }
        Value::SortedSet(mut members) => {
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::SortedSet(members)
        }
        other => other,
    }
}

/// Restores `file` into a fresh engine and compares with `databases` of its manifest.
fn restore_and_compare(file: &str, entry: &Json) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineOptions::default()).unwrap();
    let data = std::fs::read(fixtures().join(file)).unwrap();
    let summary = load_offline(&engine, &[(file.to_string(), &data)], &LoadOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut total = 0;
    for (db, keys) in entry["databases"].as_object().unwrap() {
        let db: u16 = db.parse().unwrap();
        assert_eq!(engine.dbsize(db).unwrap(), keys.as_array().unwrap().len() as u64, "{file} db {db} size");
        for expected in keys.as_array().unwrap() {
            let key = bytes(&expected["key"]);
            let name = format!("{file} db {db} key {}", String::from_utf8_lossy(&key));
            let mut slot = engine.lock_key(&key);
            let (value, expire) =
                store::read(&mut slot, db, &key).unwrap().unwrap_or_else(|| panic!("{name}: missing"));
            drop(slot);
            assert_eq!(expire, expected["expire_at_ms"].as_u64(), "{name} expiry");
            let value = value.unwrap();
            check_value(&name, expected, &value);
            // What Velo would DUMP reads back as the same value (a stream's node layout may differ: the
            // writer leaves out deleted entries).
            let back = read_payload(&write::payload(&value)).unwrap().unwrap();
            match (&back, &value) {
                (Value::Stream(back), Value::Stream(value)) => {
                    assert_eq!(
                        back.entries.iter().map(|(i, e)| (i, &e.fields)).collect::<Vec<_>>(),
                        value.entries.iter().map(|(i, e)| (i, &e.fields)).collect::<Vec<_>>(),
                        "{name} payload"
                    );
                    assert_eq!(back.groups, value.groups, "{name} payload groups");
                    assert_eq!(
                        (back.last_id, back.max_deleted_id, back.entries_added),
                        (value.last_id, value.max_deleted_id, value.entries_added),
                        "{name} payload counters"
                    );
                }
                _ => assert_eq!(normalized(back), normalized(value), "{name} payload"),
            }
            total += 1;
        }
    }
    assert_eq!(summary.total_loaded(), total, "{file} loaded count");
    engine.close().unwrap();
}

#[test]
fn every_generated_fixture_matches_its_manifest() {
    let manifest = manifest("manifest.json");
    let files = manifest["files"].as_object().unwrap();
    assert!(files.len() >= 3);
    for (file, entry) in files {
        restore_and_compare(file, entry);
        if !entry["functions"].as_array().unwrap().is_empty() {
            let data = std::fs::read(fixtures().join(file)).unwrap();
            let mut reader = RdbReader::new(&data).unwrap();
            let mut functions = Vec::new();
            while let Some(item) = reader.next().unwrap() {
                if let Item::Function(code) = item {
                    functions.push(code);
                }
            }
            let want: Vec<Vec<u8>> =
                entry["functions"].as_array().unwrap().iter().map(|f| bytes(&f["library_code"])).collect();
            assert_eq!(functions.iter().map(|c| c.to_vec()).collect::<Vec<_>>(), want, "{file} functions");
        }
    }
}

#[test]
fn every_redis_test_asset_loads_as_redis_loads_it() {
    let manifest = manifest("tests-assets-manifest.json");
    for (file, entry) in manifest["files"].as_object().unwrap() {
        if !file.ends_with(".rdb") {
            continue;
        }
        if entry["loaded"].as_bool() == Some(false) {
            let dir = tempfile::tempdir().unwrap();
            let engine = Engine::open(dir.path(), EngineOptions::default()).unwrap();
            let data = std::fs::read(fixtures().join(file)).unwrap();
            let error = load_offline(&engine, &[(file.to_string(), &data)], &LoadOptions::default(), &mut |_| {})
                .expect_err(file);
            assert!(error.to_string().contains("at byte"), "{file}: {error}");
            assert!(error.to_string().contains("key:000000000091"), "{file}: {error}");
            assert_eq!(engine.dbsize(0).unwrap(), 0, "{file}: nothing written");
            continue;
        }
        restore_and_compare(file, entry);
    }
}

fn read_all(data: &[u8], reencode: bool) -> Result<usize, velo::rdb::RdbError> {
    let mut reader = RdbReader::new(data)?;
    let mut items = 0;
    while let Some(item) = reader.next()? {
        if let (true, Item::Key(record)) = (reencode, &item) {
            // A returned key is whole: its payload round-trips.
            read_payload(&write::payload(&record.value)).expect("re-encoded value reads back");
        }
        items += 1;
    }
    Ok(items)
}

fn all_fixture_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rdb") {
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Every truncation of the small files; of the large ones every truncation in their first and last 4
/// KiB and 2000 more spread over the rest (each read is O(size)).
#[test]
fn every_truncation_is_an_error() {
    let mut rng = SmallRng::seed_from_u64(11);
    for (name, data) in all_fixture_files() {
        let lens: Vec<usize> = if data.len() <= 8192 {
            (0..data.len()).collect()
        } else {
            (0..4096)
                .chain(data.len() - 4096..data.len())
                .chain((0..2000).map(|_| rng.gen_range(0..data.len())))
                .collect()
        };
        for len in lens {
            assert!(read_all(&data[..len], false).is_err(), "{name} truncated to {len} bytes read without error");
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let files = all_fixture_files();
    let mut errors = 0;
    let rounds = 4000;
    for round in 0..rounds {
        let (_, original) = &files[round % files.len()];
        let mut data = original.clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..data.len());
            match rng.gen_range(0..3) {
                0 => data[at] = rng.gen(),
                1 => data[at] ^= 1 << rng.gen_range(0..8),
                _ => {
                    data.remove(at);
                }
            }
        }
        if read_all(&data, true).is_err() {
            errors += 1;
        }
        // The same damage without the checksum's protection: zero the CRC so the decoders see it.
        if data.len() > 8 && original.len() == data.len() {
            let n = data.len();
            data[n - 8..].fill(0);
            let _ = read_all(&data, true);
        }
    }
    assert!(errors > rounds / 2, "only {errors} of {rounds} mutations were detected");
}

#[test]
fn payload_damage_is_an_error() {
    let value = Value::Hash((0..40).map(|i| (format!("f{i}").into(), format!("v{i}").into())).collect());
    let payload = write::payload(&value);
    for len in 0..payload.len() {
        assert!(read_payload(&payload[..len]).is_err(), "truncated payload of {len} bytes");
    }
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..2000 {
        let mut damaged = payload.clone();
        let at = rng.gen_range(0..damaged.len());
        damaged[at] ^= 1 << rng.gen_range(0..8);
        assert!(read_payload(&damaged).is_err());
    }
}

#[test]
fn failed_restore_into_a_new_directory_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = std::fs::read(fixtures().join("r7-alltypes.rdb")).unwrap();
    let damaged = tmp.path().join("damaged.rdb");
    std::fs::write(&damaged, &data[..data.len() - 100]).unwrap();
    let dir = tmp.path().join("data");
    let status = Command::new(env!("CARGO_BIN_EXE_velo"))
        .args(["rdb-restore"])
        .arg(&damaged)
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(String::from_utf8_lossy(&status.stderr).contains("at byte"));
    assert!(!dir.exists(), "a failed load into a new directory must not create it");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn existing_keys_stop_the_load_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let file = fixtures().join("r7-multidb.rdb");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_velo"))
            .arg("rdb-restore")
            .arg(&file)
            .arg("--dir")
            .arg(&dir)
            .arg("--json")
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let summary: Json = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["loaded"]["15"]["string"], 2);
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("14 key(s) already exist"));
    let skip = run(&["--on-existing", "skip"]);
    assert_eq!(skip.status.code(), Some(1));
    let summary: Json = serde_json::from_slice(&skip.stdout).unwrap();
    assert_eq!(summary["existing_skipped"], 14);
    let replace = run(&["--on-existing", "replace", "--db-map", "15:3"]);
    assert_eq!(replace.status.code(), Some(0), "{}", String::from_utf8_lossy(&replace.stderr));
    let summary: Json = serde_json::from_slice(&replace.stdout).unwrap();
    assert_eq!(summary["existing_replaced"], 12);
    assert_eq!(summary["loaded"]["3"]["string"], 2);
}
