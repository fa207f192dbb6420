//! The committed command table (`src/cmd/table.rs`) and command list (`docs/commands.md`) must match what
//! `commands/*.json` and `commands/redis/` (Redis 7.0's commands, Velo's status for those it lacks)
//! generate. `VELO_BLESS=1 cargo test --test it codegen` rewrites them.

use std::path::Path;

#[test]
fn command_table_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files =
        velo::cmd::codegen::load(&root.join("commands")).unwrap_or_else(|e| panic!("invalid command file: {e}"));
    let (reference, status) = velo::cmd::reference::load(&root.join("commands/redis")).unwrap();
    let docs = velo::cmd::reference::generate_docs(&files, &reference, &status)
        .unwrap_or_else(|e| panic!("commands/redis/status.json does not match the command table:\n{e}"));
    let outputs = [("src/cmd/table.rs", velo::cmd::codegen::generate(&files)), ("docs/commands.md", docs)];
    for (relative, generated) in outputs {
        let path = root.join(relative);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if std::env::var_os("VELO_BLESS").is_some() {
            if committed != generated {
                std::fs::write(&path, &generated).unwrap();
            }
            continue;
        }
        assert!(committed == generated, "{relative} is stale: run `VELO_BLESS=1 cargo test codegen` and commit it");
    }
}

/// The key-spec forms parse, and a movable one without the MOVABLE_KEYS flag is refused.
#[test]
fn key_spec_forms_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let write = |specs: &str, flags: &str| {
        let text = format!(
            r#"{{"name": "X", "summary": "", "complexity": "", "group": "generic", "since": "1", "velo_since": "1",
               "arity": -2, "function": "generic::del", "command_flags": [{flags}], "acl_categories": [],
               "key_specs": [{specs}]}}"#
        );
        std::fs::write(dir.path().join("x.json"), text).unwrap();
        velo::cmd::codegen::load(dir.path())
    };
    let movable = r#""WRITE", "MOVABLE_KEYS""#;
    assert!(write(r#"{"first": 1, "last": 1, "step": 1}, {"numkeys": 2}"#, movable).is_ok());
    assert!(write(r#"{"keyword": "STORE", "from": 3}"#, movable).is_ok());
    assert!(write(r#"{"keyword": "STREAMS", "from": 1, "keys": "half"}"#, movable).is_ok());
    assert!(write(r#"{"parser": "sort"}"#, movable).is_ok());
    assert!(write(r#"{"numkeys": 2}"#, r#""WRITE""#).unwrap_err().contains("MOVABLE_KEYS"));
    assert!(write(r#"{"keyword": "store", "from": 3}"#, movable).is_err());
    assert!(write(r#"{"keyword": "STORE", "from": 3, "keys": "all"}"#, movable).is_err());
    assert!(write(r#"{"parser": "nosuch"}"#, movable).is_err());
    assert!(write(r#"{"numkeys": 0}"#, movable).is_err());
    assert!(write(r#"{"first": 1, "last": 1, "step": 1}, {"first": 2, "last": -1, "step": 2}"#, movable).is_err());
    let generated = velo::cmd::codegen::generate(&[]);
    assert!(!generated.contains("KeyFinder"), "no finder import without finders");
}

/// The reference check fails on each kind of drift: a Velo command Redis 7.0 lacks that is not a listed
/// extension, a Redis command with no status, a planned/n.a. status for a command Velo has, stale entries.
#[test]
fn reference_check_catches_drift() {
    use velo::cmd::reference::{check, load, Missing};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = velo::cmd::codegen::load(&root.join("commands")).unwrap();
    let (reference, status) = load(&root.join("commands/redis")).unwrap();
    check(&files, &reference, &status).unwrap();
    assert!(reference.commands.len() >= 200, "the reference lists Redis 7.0's commands");

    let mut extra = files.clone();
    let mut fake = files.iter().find(|f| f.name == "GET").unwrap().clone();
    fake.name = "VELO.NOSUCH".into();
    extra.push(fake);
    assert!(check(&extra, &reference, &status).unwrap_err().contains("VELO.NOSUCH: a Velo command absent"));

    let mut no_status = status.clone();
    no_status.missing.remove("FAILOVER");
    assert!(check(&files, &reference, &no_status)
        .unwrap_err()
        .contains("FAILOVER: a Redis 7.0 command with no status"));
    // A container's status covers its subcommands.
    let mut no_acl = status.clone();
    no_acl.missing.remove("ACL");
    let err = check(&files, &reference, &no_acl).unwrap_err();
    assert!(err.contains("ACL WHOAMI: a Redis 7.0 command with no status"), "{err}");

    let mut wrong = status.clone();
    wrong.missing.insert("GET".into(), Missing { status: "planned".into(), note: "x".into() });
    assert!(check(&files, &reference, &wrong).unwrap_err().contains("GET: marked planned/n/a"));
    let mut wrong = status.clone();
    wrong.missing.insert("NOSUCH".into(), Missing { status: "n/a".into(), note: "x".into() });
    assert!(check(&files, &reference, &wrong).unwrap_err().contains("NOSUCH: in status.json but not a Redis 7.0"));
    let mut wrong = status.clone();
    wrong.missing.get_mut("PFDEBUG").unwrap().status = "later".into();
    assert!(check(&files, &reference, &wrong).is_err());
    let mut wrong = status.clone();
    wrong.extensions.insert("GET".into(), "x".into());
    assert!(check(&files, &reference, &wrong)
        .unwrap_err()
        .contains("GET: listed as an extension but Redis 7.0 has it"));
    let mut wrong = status.clone();
    wrong.extensions.insert("BF.NOSUCH".into(), "x".into());
    assert!(check(&files, &reference, &wrong).unwrap_err().contains("BF.NOSUCH: listed as an extension but Velo"));
}
