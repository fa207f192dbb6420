//! The committed command table (`src/cmd/table.rs`) and command list (`docs/commands.md`) must match what
//! `commands/*.json` generates. `VELO_BLESS=1 cargo test codegen` rewrites them.

use std::path::Path;

#[test]
fn command_table_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files =
        velo::cmd::codegen::load(&root.join("commands")).unwrap_or_else(|e| panic!("invalid command file: {e}"));
    let outputs = [
        ("src/cmd/table.rs", velo::cmd::codegen::generate(&files)),
        ("docs/commands.md", velo::cmd::codegen::generate_docs(&files)),
    ];
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
