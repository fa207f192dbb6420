//! The committed command table (`src/cmd/table.rs`) must match what `commands/*.json` generates.
//! `VELO_BLESS=1 cargo test codegen` rewrites it.

use std::path::Path;

#[test]
fn command_table_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files =
        velo::cmd::codegen::load(&root.join("commands")).unwrap_or_else(|e| panic!("invalid command file: {e}"));
    let generated = velo::cmd::codegen::generate(&files);
    let path = root.join("src/cmd/table.rs");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("VELO_BLESS").is_some() {
        if committed != generated {
            std::fs::write(&path, &generated).unwrap();
        }
        return;
    }
    assert!(committed == generated, "src/cmd/table.rs is stale: run `VELO_BLESS=1 cargo test codegen` and commit it");
}
