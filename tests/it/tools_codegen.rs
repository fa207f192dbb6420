//! The committed shell completions (`completions/`) and man pages (`man/`) must match what the clap
//! definition generates (`velo generate`); `VELO_BLESS=1 cargo test --test it tools_codegen` rewrites
//! them. Also the command line's face: help, usage errors, `velo completions`, closed pipes.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::tools_fixtures::{velo, Healthy};

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["completions", "man"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                out.push((
                    format!("{dir}/{}", entry.file_name().to_string_lossy()),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn completions_and_man_pages_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = tempfile::tempdir().unwrap();
    let out = velo(&["generate", "--out", temp.path().to_str().unwrap()]);
    assert!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
    let generated = files_under(temp.path());
    assert!(
        generated.iter().any(|(name, _)| name == "man/velo-check.1"),
        "{:?}",
        generated.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    assert_eq!(generated.iter().filter(|(name, _)| name.starts_with("completions/")).count(), 5);
    if std::env::var_os("VELO_BLESS").is_some() {
        for dir in ["completions", "man"] {
            let _ = std::fs::remove_dir_all(root.join(dir));
        }
        let out = velo(&["generate", "--out", root.to_str().unwrap()]);
        assert!(out.status.success());
        return;
    }
    let committed = files_under(root);
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&generated),
        "completions/ or man/ is stale: run `VELO_BLESS=1 cargo test --test it tools_codegen` and commit"
    );
    for ((name, a), (_, b)) in committed.iter().zip(&generated) {
        assert!(a == b, "{name} is stale: run `VELO_BLESS=1 cargo test --test it tools_codegen` and commit it");
    }
}

#[test]
fn completions_subcommand_prints_the_committed_scripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "velo.bash"),
        ("zsh", "_velo"),
        ("fish", "velo.fish"),
        ("elvish", "velo.elv"),
        ("powershell", "_velo.ps1"),
    ] {
        let out = velo(&["completions", shell]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("inspect-bucket"), "{shell}");
        if std::env::var_os("VELO_BLESS").is_none() {
            assert_eq!(out.stdout, std::fs::read(root.join("completions").join(file)).unwrap(), "{shell}");
        }
    }
    assert_eq!(velo(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn help_lists_every_tool_and_usage_errors_exit_2() {
    let out = velo(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for tool in ["serve", "inspect-bucket", "inspect-segment", "check", "bigkeys", "completions"] {
        assert!(text.contains(tool), "{tool} missing from --help:\n{text}");
    }
    assert!(!text.contains("generate"), "the hidden generator shows in --help");
    for tool in ["inspect-bucket", "inspect-segment", "check", "bigkeys"] {
        assert!(velo(&[tool, "--help"]).status.success(), "{tool} --help");
        let out = velo(&[tool]);
        assert_eq!(out.status.code(), Some(2), "{tool} without flags");
    }
    // Both targets at once, and a bucket without a slot, are usage errors.
    assert_eq!(
        velo(&["inspect-bucket", "--dir", ".", "--key", "k", "--slot", "0", "--bucket", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(velo(&["inspect-bucket", "--dir", ".", "--bucket", "0"]).status.code(), Some(2));
    // Not a data directory: one line on stderr, exit 2.
    let temp = tempfile::tempdir().unwrap();
    let out = velo(&["check", "--dir", temp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("velo check: error: "), "{err}");
}

#[test]
fn closed_pipe_exits_quietly_and_no_color_means_no_escapes() {
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_velo"))
        .args(["inspect-segment", "--dir", dir, "--slot", "0", "--file", "1", "--values"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let damaged = fixture.copy("damaged");
    crate::tools_fixtures::flip(&damaged.join("slot-0/buckets"), 4096 + 40, 1);
    let out = velo(&["check", "--dir", damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.contains(&0x1b), "escape codes despite NO_COLOR");
}

/// The quoted names (`"name"`) in `docs/tools.md`'s section `## title` (up to the next `## `), its JSON
/// shapes and the prose that describes their parts.
fn documented_names(title: &str) -> std::collections::HashSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/tools.md")).unwrap();
    let start = doc.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("no section {title}"));
    let rest = &doc[start + 4..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    section
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(str::to_owned)
        .collect()
}

/// Every object key anywhere in a JSON document.
fn object_keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                out.insert(key.clone());
                object_keys(inner, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| object_keys(item, out)),
        _ => {}
    }
}

#[test]
fn every_json_field_the_tools_print_is_documented() {
    use crate::tools_fixtures::velo_json;
    let fixture = Healthy::new();
    let dir = fixture.dir.to_str().unwrap();
    let damaged = fixture.copy("damaged");
    crate::tools_fixtures::flip(&damaged.join("slot-0/buckets"), 4096 + 40, 1);
    let damaged = damaged.to_str().unwrap();
    let runs: [(&str, &[&str]); 9] = [
        ("inspect-bucket", &["inspect-bucket", "--dir", dir, "--key", "user:1", "--values"]),
        ("inspect-bucket", &["inspect-bucket", "--dir", dir, "--key", "doc:3", "--values"]),
        ("inspect-bucket", &["inspect-bucket", "--dir", dir, "--key", "blob:big"]),
        ("inspect-bucket", &["inspect-bucket", "--dir", dir, "--slot", "0", "--bucket", "0", "--values"]),
        ("inspect-segment", &["inspect-segment", "--dir", dir, "--slot", "0", "--file", "1", "--values"]),
        ("check", &["check", "--dir", dir]),
        ("check", &["check", "--dir", damaged]),
        ("bigkeys", &["bigkeys", "--dir", dir]),
        ("bigkeys", &["bigkeys", "--dir", damaged]),
    ];
    for (section, args) in runs {
        let documented = documented_names(section);
        let (_, report) = velo_json(args);
        let mut keys = std::collections::BTreeSet::new();
        object_keys(&report, &mut keys);
        let missing: Vec<&String> = keys.iter().filter(|k| !documented.contains(*k)).collect();
        assert!(missing.is_empty(), "{args:?} prints fields docs/tools.md §{section} does not name: {missing:?}");
    }
    // ingest-parquet's summary.
    let temp = tempfile::tempdir().unwrap();
    let parquet = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parquet/nulls.parquet");
    let target = temp.path().join("data");
    let (code, report) = velo_json(&[
        "ingest-parquet",
        parquet.to_str().unwrap(),
        "--dir",
        target.to_str().unwrap(),
        "--key",
        "key",
        "--value-json",
        "--max-errors",
        "5",
    ]);
    assert_eq!(code, 1, "{report}");
    let mut keys = std::collections::BTreeSet::new();
    object_keys(&report, &mut keys);
    let documented = documented_names("ingest-parquet");
    let missing: Vec<&String> = keys.iter().filter(|k| !documented.contains(*k)).collect();
    assert!(missing.is_empty(), "ingest-parquet --json prints fields docs/tools.md does not name: {missing:?}");
}
