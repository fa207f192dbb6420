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
