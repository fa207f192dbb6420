//! Trained dictionaries in the engine: values written before and after a dictionary is installed all read
//! back exactly (also after a restart and through checkpoints), the background trainer installs one from
//! sampled writes, a damaged dictionary file is named by the open and by `velo check`, and `velo
//! train-dict` trains from a stopped directory.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use velo::engine::{Engine, EngineOptions, ValueKind};

use crate::tools_fixtures::velo_json;

fn options() -> EngineOptions {
    EngineOptions { slot_count: Some(2), background_sync: false, ..EngineOptions::default() }
}

/// A JSON-ish user record of about 100 bytes.
fn user(i: u64) -> Vec<u8> {
    let plans = ["free", "pro", "team", "enterprise"];
    let cities = ["Berlin", "Lisbon", "Austin", "Osaka", "Nairobi"];
    format!(
        r#"{{"id":{i},"name":"user{}","email":"u{i}@example.com","plan":"{}","city":"{}","active":{}}}"#,
        i * 7919 % 100_003,
        plans[(i % 4) as usize],
        cities[(i % 5) as usize],
        i % 3 == 0
    )
    .into_bytes()
}

fn train_user_dictionary() -> Vec<u8> {
    let samples: Vec<Vec<u8>> = (100_000..102_000).map(user).collect();
    zstd::dict::from_samples(&samples, 8192).expect("trains")
}

fn read_all(engine: &Engine, range: std::ops::Range<u64>) {
    for i in range {
        let entry = engine.get(0, format!("user:{i}").as_bytes()).expect("get").expect("present");
        assert_eq!(entry.value.to_vec(), user(i), "user:{i}");
        assert_eq!(entry.kind, ValueKind::String);
    }
}

#[test]
fn values_before_and_after_install_read_back_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let engine = Engine::open(dir.path(), options()).expect("open");
        for i in 0..500 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        }
        engine.checkpoint().expect("checkpoint");
        let id = engine.install_dictionary(b"user", train_user_dictionary()).expect("install");
        assert_eq!(id, 2);
        for i in 500..1000 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        }
        // Keys of another family are untouched by the dictionary.
        engine.set(0, b"event:1", ValueKind::String, &user(1), None).expect("set");
        read_all(&engine, 0..1000);
        engine.checkpoint().expect("checkpoint");
        read_all(&engine, 0..1000);
        // Half of them rewritten with the dictionary, some still unflushed in the WAL at close.
        for i in 0..100 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        }
        let stats = engine.stats();
        assert!(stats.total(|s| s.stored_value_bytes) * 2 < stats.total(|s| s.raw_value_bytes) * 2);
        engine.sync().expect("sync");
        drop(engine); // no checkpoint: recovery replays the WAL with the dictionary loaded
    }
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(engine.dictionaries().list().len(), 1);
    read_all(&engine, 0..1000);
    assert_eq!(engine.get(0, b"event:1").expect("get").map(|e| e.value.to_vec()), Some(user(1)));
    // A second dictionary for the family gets a new id; the old one stays for the values that use it.
    assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 3);
    engine.set(0, b"user:5", ValueKind::String, &user(5), None).expect("set");
    read_all(&engine, 0..1000);
    engine.close().expect("close");

    let (code, report) = velo_json(&["check", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stats"]["dictionaries"], 2, "{report}");
}

#[test]
fn damaged_dictionary_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let engine = Engine::open(dir.path(), options()).expect("open");
        engine.install_dictionary(b"user", train_user_dictionary()).expect("install");
        for i in 0..300 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        }
        engine.close().expect("close");
    }
    let path = dir.path().join("dict-00000002.vdct");
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.len() - 100;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let err = Engine::open(dir.path(), options()).err().expect("open must fail");
    assert!(err.to_string().contains("dict-00000002.vdct"), "{err}");
    let (code, report) = velo_json(&["check", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    let findings = report["findings"].as_array().expect("findings");
    assert!(findings.iter().any(|f| f["file"].as_str().is_some_and(|p| p.ends_with("dict-00000002.vdct"))), "{report}");
    assert!(
        findings.iter().any(|f| f["what"].as_str().is_some_and(|w| w.contains("uses dictionary 2"))),
        "values that need it are named too: {report}"
    );
}

#[test]
fn background_trainer_installs_a_dictionary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let sampler = engine.dictionaries();
    let settings = &sampler.sampler().settings;
    settings.min_samples.store(500, Ordering::Relaxed);
    settings.sample_every.store(1, Ordering::Relaxed);
    settings.dict_size.store(4096, Ordering::Relaxed);
    // These records are so alike that whole-segment compression beats any per-value dictionary on disk:
    // accept the dictionary anyway (the trade an operator makes for cheaper cold reads).
    settings.min_gain_pct.store(-400, Ordering::Relaxed);
    settings.enabled.store(true, Ordering::Relaxed);
    engine.start_dictionary_training();
    let mut i = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.dictionaries().active(b"user").is_none() {
        assert!(Instant::now() < deadline, "no dictionary trained: {:?}", sampler.sampler().counts());
        for _ in 0..200 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = i;
    for _ in 0..500 {
        engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        i += 1;
    }
    read_all(&engine, 0..i);
    let envelope_codec = velo::engine::envelope::dictionary_id(&engine.dictionaries().encode(
        ValueKind::String,
        b"user:1",
        &user(1),
        Default::default(),
    ));
    assert_eq!(envelope_codec, Some(2), "new writes use the trained dictionary");
    assert!(before > 0);
    drop(engine);
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    read_all(&engine, 0..i);
}

#[test]
fn train_dict_tool_trains_and_installs() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let engine = Engine::open(dir.path(), options()).expect("open");
        for i in 0..3000 {
            engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user(i), None).expect("set");
        }
        engine.close().expect("close");
    }
    let d = dir.path().to_str().unwrap();
    let (code, report) = velo_json(&["train-dict", "--dir", d, "--all", "--size", "4096"]);
    assert_eq!(code, 0, "{report}");
    let families = report["families"].as_array().expect("families");
    let user_family = families.iter().find(|f| f["family"] == "user").expect("user family");
    assert_eq!(user_family["samples"], 3000);
    let raw = user_family["raw_bytes"].as_u64().unwrap();
    assert_eq!(user_family["held_out"], 300);
    assert!(user_family["dict_bytes"].as_u64().unwrap() < raw / 2, "{report}");
    assert!(user_family["stored_bytes"].as_u64().unwrap() < raw / 2, "{report}");
    assert_eq!(user_family["dictionary_bytes"], 4096, "{report}");
    assert!(!Path::new(&dir.path().join("dict-00000002.vdct")).exists(), "no --install: nothing written");
    let (code, report) = velo_json(&["train-dict", "--dir", d, "--family", "user", "--install"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["families"][0]["installed_id"], 2, "{report}");
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(engine.dictionaries().active(b"user").map(|d| d.id), Some(2));
    read_all(&engine, 0..3000);
}

#[test]
fn server_trains_in_the_background_and_install_is_refused_while_it_runs() {
    let server = crate::support::server::TestServer::start();
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["CONFIG", "GET", "velo-dict-training"]), b"*2\r\n$18\r\nvelo-dict-training\r\n$3\r\nyes\r\n");
    for (name, value) in [("velo-dict-min-samples", "200"), ("velo-dict-size", "4096"), ("velo-dict-min-gain", "-400")]
    {
        assert_eq!(conn.cmd(&["CONFIG", "SET", name, value]), b"+OK\r\n", "{name}");
    }
    assert!(conn.cmd(&["CONFIG", "SET", "velo-dict-min-gain", "101"]).starts_with(b"-ERR"));
    let dict_file = server.dir.join("dict-00000002.vdct");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while !dict_file.exists() {
        assert!(Instant::now() < deadline, "no dictionary trained");
        for _ in 0..200 {
            let value = String::from_utf8(user(n)).unwrap();
            assert_eq!(conn.cmd(&["SET", &format!("user:{n}"), &value]), b"+OK\r\n");
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..300 {
        let value = String::from_utf8(user(n)).unwrap();
        assert_eq!(conn.cmd(&["SET", &format!("user:{n}"), &value]), b"+OK\r\n");
        n += 1;
    }
    for i in 0..n {
        let value = user(i);
        let mut expected = format!("${}\r\n", value.len()).into_bytes();
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(conn.cmd(&["GET", &format!("user:{i}")]), expected, "user:{i}");
    }
    // The directory is held: train-dict may read it but not install into it.
    let out = crate::tools_fixtures::velo(&["train-dict", "--dir", server.dir.to_str().unwrap(), "--all", "--install"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&server.pid().to_string()), "{stderr}");
}
