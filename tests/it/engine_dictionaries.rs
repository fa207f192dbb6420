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
    // Stored costs include what a value pays beyond its cell's header and key: a location and a segment
    // record out of line (no dictionary: about 100-byte values), nothing more inline (with the dictionary
    // they shrink under 64 bytes).
    let stored = user_family["stored_bytes"].as_u64().unwrap();
    let with_dict = user_family["dict_bytes"].as_u64().unwrap();
    assert!(stored > 300 * 16 && stored < raw * 3 / 4, "{report}");
    assert!(with_dict < raw / 2 && with_dict < stored, "{report}");
    let gain = user_family["gain"].as_f64().unwrap();
    assert!((gain - (1.0 - with_dict as f64 / stored as f64)).abs() < 1e-9, "{report}");
    assert_eq!(user_family["dictionary_bytes"], 4096, "{report}");
    assert!(!Path::new(&dir.path().join("dict-00000002.vdct")).exists(), "no --install: nothing written");
    let (code, report) = velo_json(&["train-dict", "--dir", d, "--family", "user", "--install"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["families"][0]["installed_id"], 2, "{report}");
    // bigkeys names each family's active dictionary, as VELO FAMILIES does.
    let (code, report) = velo_json(&["bigkeys", "--dir", d]);
    assert_eq!(code, 0, "{report}");
    let user_row = report["families"].as_array().expect("families").iter().find(|f| f["family"] == "\"user\"").cloned();
    let user_row = user_row.expect("user family");
    assert_eq!(user_row["dictionary"], 2, "{report}");
    assert!(user_row["dictionary_bytes"].as_u64().unwrap() > 0, "{report}");
    let ratio = user_row["stored_bytes"].as_f64().unwrap() / user_row["raw_bytes"].as_f64().unwrap();
    assert!((user_row["ratio"].as_f64().unwrap() - ratio).abs() < 1e-9, "{report}");
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
    // Per-family figures: VELO FAMILIES and INFO's velo section.
    let reply = String::from_utf8_lossy(&conn.cmd(&["VELO", "FAMILIES"])).into_owned();
    assert!(reply.starts_with('*'), "{reply}");
    assert!(reply.contains("$6\r\nfamily\r\n$4\r\nuser\r\n"), "{reply}");
    assert!(reply.contains("$10\r\ndictionary\r\n:2\r\n"), "{reply}");
    assert!(reply.contains(&format!("$6\r\nwrites\r\n:{n}\r\n")), "every SET counted: {reply}");
    assert!(reply.contains("$20\r\ndictionary_installed\r\n:1\r\n"), "{reply}");
    assert!(reply.contains("$24\r\nratio_without_dictionary\r\n$5\r\n0."), "{reply}");
    assert!(reply.contains("$21\r\nratio_with_dictionary\r\n$5\r\n0."), "{reply}");
    assert!(conn.cmd(&["VELO", "FAMILIES", "x"]).starts_with(b"-ERR"));
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "velo"])).into_owned();
    assert!(info.contains("dictionaries:1\r\n"), "{info}");
    assert!(info.contains("dict_trained:1\r\n"), "{info}");
    let line = info.lines().find(|l| l.starts_with("dict_family") && l.contains(":name=user,")).expect("user line");
    assert!(line.contains(&format!(",writes={n},")) && line.contains(",dictionary=2,"), "{line}");
    // bigkeys online shows the family's dictionary as VELO FAMILIES names it.
    let (code, online) = velo_json(&["bigkeys", "--host", "127.0.0.1", "--port", &server.port.to_string()]);
    assert_eq!(code, 0, "{online}");
    let row = online["families"].as_array().expect("families").iter().find(|f| f["family"] == "\"user\"").cloned();
    let row = row.expect("user family");
    assert_eq!(row["dictionary"], 2, "{online}");
    assert!((1..=4096).contains(&row["dictionary_bytes"].as_u64().unwrap()), "{online}");
    // The directory is held: train-dict may read it but not install into it.
    let out = crate::tools_fixtures::velo(&["train-dict", "--dir", server.dir.to_str().unwrap(), "--all", "--install"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&server.pid().to_string()), "{stderr}");
}

/// A user record, four times longer for one key in four (so that values are both inline and in segments).
fn user_value(i: u64) -> Vec<u8> {
    if i % 4 == 0 {
        [user(i), user(i + 1), user(i + 2), user(i + 3)].concat()
    } else {
        user(i)
    }
}

fn write_users(engine: &Engine, range: std::ops::Range<u64>) {
    for i in range {
        let expiry = (i % 10 == 0).then_some(velo::engine::system_clock_ms() + 3_600_000);
        engine.set(0, format!("user:{i}").as_bytes(), ValueKind::String, &user_value(i), expiry).expect("set");
    }
}

fn check_users(engine: &Engine, range: std::ops::Range<u64>) {
    for i in range {
        let entry = engine.get(0, format!("user:{i}").as_bytes()).expect("get").expect("present");
        assert_eq!(entry.value.to_vec(), user_value(i), "user:{i}");
        assert_eq!(entry.expire_at_ms.is_some(), i % 10 == 0, "user:{i} keeps its expiry");
    }
}

/// A dictionary trained on user records of another shape, as a retraining after drift would make.
fn drifted_user_dictionary() -> Vec<u8> {
    let samples: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!(r#"{{"uid":{i},"tier":"gold","region":"eu-{}","v":2}}"#, i % 7).into_bytes())
        .collect();
    zstd::dict::from_samples(&samples, 4096).expect("trains")
}

/// Two dictionaries of one family (values on disk, in pages and segments, and in the WAL name the first):
/// dictionary compaction re-encodes them, removes the first file, and every value reads back, also after
/// a restart; `velo check` agrees.
#[test]
fn dictionary_compaction_reencodes_and_removes_the_retired_dictionary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 2);
    write_users(&engine, 0..600);
    engine.checkpoint().expect("checkpoint");
    write_users(&engine, 600..700); // these stay in the WAL and memtable
    assert_eq!(engine.install_dictionary(b"user", drifted_user_dictionary()).expect("install"), 3);
    write_users(&engine, 700..800);
    assert_eq!(engine.dictionaries().retired(), vec![2]);
    let families = engine.dictionaries().families();
    let family = families.iter().find(|f| f.family == b"user").expect("user family listed");
    assert_eq!((family.dictionary, family.retired.clone()), (Some(3), vec![2]));
    assert_eq!(family.writes, 800, "every write counted once: {family:?}");
    assert!(family.stored_bytes < family.raw_bytes, "{family:?}");
    let report = engine.compact_dictionaries().expect("compact");
    assert_eq!(report.retired, vec![2]);
    assert_eq!(report.removed, vec![2], "{report:?}");
    assert!(report.recoded >= 600, "{report:?}");
    assert_eq!(report.references.get(&2), None, "{report:?}");
    assert_eq!(report.deferred, None);
    assert!(!dir.path().join("dict-00000002.vdct").exists());
    assert!(dir.path().join("dict-00000003.vdct").exists());
    assert!(engine.dictionaries().get(2).is_none());
    check_users(&engine, 0..800);
    let families = engine.dictionaries().families();
    let family = families.iter().find(|f| f.family == b"user").expect("user family listed");
    assert_eq!((family.dictionary, family.retired.len(), family.writes), (Some(3), 0, 800), "{family:?}");
    // Nothing left to do: a second pass removes nothing and re-encodes nothing.
    let again = engine.compact_dictionaries().expect("compact");
    assert_eq!((again.recoded, again.removed.len()), (0, 0), "{again:?}");
    engine.close().expect("close");

    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(engine.dictionaries().list().iter().map(|d| d.id).collect::<Vec<_>>(), vec![3]);
    check_users(&engine, 0..800);
    // The next install gets a fresh id: ids are never reused.
    assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 4);
    drop(engine);
    let (code, report) = velo_json(&["check", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["stats"]["dictionaries"], 2, "{report}");
}

/// SET encodes its value before locking the slot (`Engine::encode_value`); a dictionary installed in
/// between (which retires the one the encoding used) makes `set_encoded` encode it again under the lock, so
/// no write names a retired dictionary, which dictionary compaction relies on. Without an install the
/// encoding is kept.
#[test]
fn a_value_encoded_off_the_lock_before_an_install_names_the_new_dictionary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 2);
    let set = |key: &str, encoded, i| {
        let mut slot = engine.lock_key(key.as_bytes());
        slot.set_encoded(0, key.as_bytes(), ValueKind::String, &user(i), encoded, None).expect("set");
        slot.commit().expect("commit");
    };
    let stale = engine.encode_value(ValueKind::String, b"user:1", &user(1));
    assert_eq!(stale.dictionary(), Some(2));
    let kept = engine.encode_value(ValueKind::String, b"user:2", &user(2));
    set("user:2", kept, 2);
    // A retraining on the same kind of records: the new dictionary pays for these values too.
    assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 3);
    set("user:1", stale, 1);
    let fresh = engine.encode_value(ValueKind::String, b"user:3", &user(3));
    assert_eq!(fresh.dictionary(), Some(3));
    set("user:3", fresh, 3);
    read_all(&engine, 1..4);
    // The pass re-encodes only user:2 (written while 2 was active); user:1 already names 3.
    let report = engine.compact_dictionaries().expect("compact");
    assert_eq!((report.retired.clone(), report.recoded, report.removed.clone()), (vec![2], 1, vec![2]), "{report:?}");
    assert_eq!(report.references.get(&3), Some(&3), "{report:?}");
    read_all(&engine, 1..4);
}

/// A failing write or fsync at any point of dictionary compaction, then a power cut: every value still
/// reads back (no value names a missing dictionary), and the next pass finishes the job.
#[test]
fn dictionary_compaction_interrupted_at_any_write_loses_nothing() {
    use std::sync::Arc;
    use velo::engine::io::CrashFs;
    use velo::engine::FsyncPolicy;
    let crash_options = |fs: &CrashFs| EngineOptions {
        slot_count: Some(2),
        fsync: FsyncPolicy::No,
        segment_size: 1024,
        background_sync: false,
        fs: Arc::new(fs.clone()),
        ..EngineOptions::default()
    };
    let probe = CrashFs::new();
    {
        let engine = Engine::open("/data", crash_options(&probe)).expect("open");
        engine.install_dictionary(b"user", train_user_dictionary()).expect("install");
        write_users(&engine, 0..300);
        engine.checkpoint().expect("checkpoint");
        write_users(&engine, 300..350);
        engine.install_dictionary(b"user", drifted_user_dictionary()).expect("install");
        engine.sync().expect("sync");
    }
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound.max(1)
    };
    let (mut failed, mut kept, mut gone) = (0, 0, 0);
    // About 350 WAL writes (one per value re-encoded) and 30 fsyncs make a whole pass.
    for step in 1..34u64 {
        for fail_sync in [false, true] {
            let fs = probe.fork();
            let engine = Engine::open("/data", crash_options(&fs)).expect("open");
            if fail_sync {
                fs.fail_syncs_after(step);
            } else {
                fs.fail_writes_after(step * 11, std::io::ErrorKind::Other);
            }
            let outcome = engine.compact_dictionaries();
            if outcome.is_err() {
                failed += 1;
            }
            drop(engine);
            fs.crash(&mut random);
            let engine = Engine::open("/data", crash_options(&fs)).expect("reopen after the cut");
            check_users(&engine, 0..350);
            if fs.read_file(std::path::Path::new("/data/dict-00000002.vdct")).is_some() {
                kept += 1;
            } else {
                gone += 1;
            }
            let report = engine.compact_dictionaries().expect("the next pass");
            assert_eq!(report.deferred, None, "step {step}");
            assert!(fs.read_file(std::path::Path::new("/data/dict-00000002.vdct")).is_none(), "step {step}");
            check_users(&engine, 0..350);
            drop(engine);
            let engine = Engine::open("/data", crash_options(&fs)).expect("reopen");
            check_users(&engine, 0..350);
        }
    }
    assert!(failed > 0 && kept > 0, "failures exercised ({failed} failed, {kept} kept, {gone} removed)");
}

/// `velo train-dict --from-parquet`: samples one column of a Parquet file as a family, reports it, and
/// installs the dictionary into a stopped directory before a load.
#[test]
fn train_dict_from_parquet_column() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parquet/events-v1.parquet");
    let expected = std::fs::read_to_string(file.with_extension("expected.jsonl")).expect("expected rows");
    let payloads = expected
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()?["payload"].as_str().map(str::len))
        .filter(|len| (16..=65536).contains(len))
        .count();
    let f = file.to_str().unwrap();
    let (code, report) =
        velo_json(&["train-dict", "--from-parquet", f, "--column", "payload", "--family", "evt", "--size", "2048"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["families"].as_array().map(Vec::len), Some(1), "{report}");
    let family = &report["families"][0];
    assert_eq!(family["family"], "evt");
    assert_eq!(family["values"], payloads as u64, "{report}");
    assert!(family["dictionary_bytes"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(family["installed_id"], serde_json::Value::Null);

    let out =
        crate::tools_fixtures::velo(&["train-dict", "--from-parquet", f, "--column", "nosuch", "--family", "evt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"nosuch\""), "{out:?}");
    let out = crate::tools_fixtures::velo(&["train-dict", "--from-parquet", f, "--column", "payload"]);
    assert_eq!(out.status.code(), Some(2), "--family is required with --from-parquet");

    let dir = tempfile::tempdir().expect("tempdir");
    Engine::open(dir.path(), options()).expect("create").close().expect("close");
    let d = dir.path().to_str().unwrap();
    let args = ["train-dict", "--from-parquet", f, "--column", "payload", "--family", "evt", "--dir", d, "--install"];
    let (code, report) = velo_json(&args);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["families"][0]["installed_id"], 2, "{report}");
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(engine.dictionaries().active(b"evt").map(|d| d.id), Some(2));
}

/// Every segment of the directory's chunk files, in file and offset order, decoded with `map`.
fn segments(dir: &Path, map: Option<&velo::engine::dictionary::DictionaryMap>) -> Vec<velo::engine::segment::Segment> {
    let mut out = Vec::new();
    let mut files: Vec<_> = walk(dir).into_iter().filter(|p| p.to_string_lossy().ends_with(".dat")).collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).expect("read chunk file");
        let mut offset = velo::engine::format::FILE_HEADER_LEN;
        while offset < bytes.len() {
            let Ok(Some(segment)) = velo::engine::segment::decode_segment(&bytes[offset..], &path, offset as u64, map)
            else {
                break;
            };
            offset += segment.encoded_len();
            out.push(segment);
        }
    }
    out
}

/// The families of the records of every segment in the directory's chunk files.
fn segment_families(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let rules = velo::engine::family::FamilyRules::default();
    segments(dir, None)
        .iter()
        .map(|segment| {
            let records = velo::engine::segment::records(&segment.payload, segment.record_count).expect("records");
            let mut families: Vec<Vec<u8>> = records.iter().map(|(_, r)| rules.family_of(r.key).to_vec()).collect();
            families.dedup();
            families
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A checkpoint packs segment records grouped by key family (and chunk compaction keeps them grouped): of
/// three families written interleaved, a segment holds one family, except where one family's records end
/// and the next one's begin. Every value reads back, also after a restart, and `velo check` is clean.
#[test]
fn checkpoint_packs_segments_grouped_by_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let value = |family: &str, i: u64| format!("{family}-{i}-{}", "x".repeat(150 + (i % 50) as usize)).into_bytes();
    let families = ["user", "event", "session"];
    let one_slot = || EngineOptions { slot_count: Some(1), ..options() };
    {
        let engine = Engine::open(dir.path(), one_slot()).expect("open");
        for round in 0..2 {
            for i in 0..600u64 {
                let family = families[(i % 3) as usize];
                let bytes = value(family, i + round);
                engine.set(0, format!("{family}:{i}").as_bytes(), ValueKind::String, &bytes, None).expect("set");
            }
            engine.checkpoint().expect("checkpoint");
        }
        engine.close().expect("close");
    }
    let segments = segment_families(dir.path());
    assert!(segments.len() >= 20, "{} segments", segments.len());
    let mixed = segments.iter().filter(|families| families.len() > 1).count();
    // Two checkpoints (and whatever compaction moved), each with two family boundaries.
    assert!(mixed <= 6, "{mixed} of {} segments mix families", segments.len());
    assert!(segments.iter().all(|families| families.len() <= 2));
    let engine = Engine::open(dir.path(), one_slot()).expect("reopen");
    for i in 0..600u64 {
        let family = families[(i % 3) as usize];
        let entry = engine.get(0, format!("{family}:{i}").as_bytes()).expect("get").expect("present");
        assert_eq!(entry.value.to_vec(), value(family, i + 1));
    }
    drop(engine);
    let (code, report) = velo_json(&["check", "--dir", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{report}");
}

/// The segments of every chunk file: (dictionary, envelope codecs of its records), decoded with `map`.
fn segment_codecs(dir: &Path, map: &velo::engine::dictionary::DictionaryMap) -> Vec<(Option<u32>, Vec<u8>)> {
    segments(dir, Some(map))
        .iter()
        .map(|segment| {
            let records = velo::engine::segment::records(&segment.payload, segment.record_count).expect("records");
            (segment.dictionary, records.iter().map(|(_, r)| r.envelope[1]).collect())
        })
        .collect()
}

/// With a dictionary installed, a checkpoint compresses the family's segments with it and stores the
/// values it compressed one by one raw inside them (the chunk files far smaller than without it); they
/// read back, also after a restart, `velo check` and `inspect-segment` know the layout, and
/// dictionary compaction moves every value out of the retired dictionary's segments before removing it.
#[test]
fn segments_are_compressed_with_their_familys_dictionary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    {
        let plain = Engine::open(plain_dir.path(), options()).expect("open");
        write_users(&plain, 0..800);
        plain.close().expect("close");
        let engine = Engine::open(dir.path(), options()).expect("open");
        assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 2);
        write_users(&engine, 0..800);
        engine.close().expect("close");
    }
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    check_users(&engine, 0..800);
    let segments = segment_codecs(dir.path(), &engine.dictionaries());
    assert!(!segments.is_empty());
    assert!(segments.iter().all(|(dict, _)| *dict == Some(2)), "{segments:?}");
    assert!(segments.iter().all(|(_, codecs)| codecs.iter().all(|&c| c == 0)), "raw envelopes: {segments:?}");
    let chunk_bytes = |dir: &Path| -> u64 {
        walk(dir).iter().filter(|p| p.to_string_lossy().ends_with(".dat")).map(|p| p.metadata().unwrap().len()).sum()
    };
    let (with_dict, without) = (chunk_bytes(dir.path()), chunk_bytes(plain_dir.path()));
    assert!(with_dict * 10 < without * 9, "chunk files: {with_dict} bytes with the dictionary, {without} without");
    drop(engine);
    let (code, report) = velo_json(&["check", "--dir", d]);
    assert_eq!(code, 0, "{report}");
    let chunk = walk(dir.path()).into_iter().find(|p| p.to_string_lossy().ends_with(".dat")).expect("a chunk file");
    let slot = chunk.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).expect("slot");
    let out = crate::tools_fixtures::velo(&[
        "inspect-segment",
        "--dir",
        d,
        "--slot",
        slot.trim_start_matches("slot-"),
        "--file",
        chunk.file_name().and_then(|n| n.to_str()).expect("name"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("zstd with dictionary 2"), "{text}{}", String::from_utf8_lossy(&out.stderr));

    // A new dictionary retires the first: dictionary compaction moves the values out of its segments.
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(engine.install_dictionary(b"user", drifted_user_dictionary()).expect("install"), 3);
    let report = engine.compact_dictionaries().expect("compact");
    assert_eq!(report.removed, vec![2], "{report:?}");
    assert!(report.recoded >= 200, "{report:?}");
    check_users(&engine, 0..800);
    drop(engine);
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    check_users(&engine, 0..800);
    drop(engine);
    // Dead segments of the removed dictionary remain until chunk compaction; `velo check` does not hold
    // them against the directory.
    let (code, report) = velo_json(&["check", "--dir", d]);
    assert_eq!(code, 0, "{report}");
    // Without the active dictionary's file, the live values in its segments are reported unreadable.
    std::fs::remove_file(dir.path().join("dict-00000003.vdct")).expect("remove");
    let (code, report) = velo_json(&["check", "--dir", d]);
    assert_ne!(code, 0, "{report}");
    assert!(report.to_string().contains("segment is compressed with dictionary 3, which is missing"), "{report}");
}

/// The offline tools decode values compressed with the directory's dictionaries: `inspect-bucket
/// --values` shows them (it used to print `<undecodable>` for every such value) and `bigkeys` counts them.
#[test]
fn inspect_values_decode_with_the_directorys_dictionaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    {
        let engine = Engine::open(dir.path(), options()).expect("open");
        assert_eq!(engine.install_dictionary(b"user", train_user_dictionary()).expect("install"), 2);
        write_users(&engine, 0..40);
        engine.close().expect("close");
    }
    for i in [1u64, 4, 7] {
        let key = format!("user:{i}");
        let (code, report) = velo_json(&["inspect-bucket", "--dir", d, "--key", &key, "--values"]);
        assert_eq!(code, 0, "{report}");
        let text = report.to_string();
        let shown = String::from_utf8_lossy(&user(i)[..40]).replace('"', "\\\\\\\"");
        assert!(!text.contains("undecodable"), "{key}: {text}");
        assert!(text.contains(&format!("u{i}@example.com")), "{key}: the value is shown: {shown} in {text}");
    }
    let (code, report) = velo_json(&["bigkeys", "--dir", d]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["totals"]["keys"], 40, "{report}");
}
