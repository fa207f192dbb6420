//! `velo completions SHELL` (print a completion script) and the hidden `velo generate` (write every
//! completion script and man page under `completions/` and `man/`), both generated from the clap
//! definition in `main.rs`, so they can never disagree with the flags. `tests/it/tools_codegen.rs` fails
//! when the committed copies are stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Command};
use clap_complete::Shell;

use super::output;

/// Flags of `velo completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Flags of the hidden `velo generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where to write `completions/` and `man/` (the repository root when blessing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// The shells completions are generated for.
pub const SHELLS: [Shell; 5] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell];

/// One shell's completion script.
pub fn completion(shell: Shell, mut command: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "velo", &mut out);
    out
}

/// Every generated file: path relative to the output root, and its bytes.
pub fn files(command: Command) -> Result<Vec<(PathBuf, Vec<u8>)>, std::io::Error> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let name = clap_complete::Generator::file_name(&shell, "velo");
        files.push((Path::new("completions").join(name), completion(shell, command.clone())));
    }
    let mut command = command;
    command.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    files.push((PathBuf::from("man/velo.1"), page));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("velo-{}", sub.get_name());
        // clap names are &'static str without its `string` feature; this process ends right after.
        let leaked: &'static str = name.clone().leak();
        let sub = sub.clone().name(leaked).bin_name(format!("velo {}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        files.push((PathBuf::from(format!("man/{name}.1")), page));
    }
    Ok(files)
}

/// Runs `velo completions`.
pub fn run_completions(args: CompletionsArgs, command: Command) -> ExitCode {
    output::print(&String::from_utf8_lossy(&completion(args.shell, command)));
    ExitCode::SUCCESS
}

/// Runs `velo generate`.
pub fn run_generate(args: GenerateArgs, command: Command) -> ExitCode {
    let files = match files(command) {
        Ok(files) => files,
        Err(err) => return output::fail("generate", err),
    };
    for (relative, bytes) in files {
        let path = args.out.join(&relative);
        if let Some(parent) = path.parent() {
            if let Err(err) = std::fs::create_dir_all(parent) {
                return output::fail("generate", format!("{}: {err}", parent.display()));
            }
        }
        if let Err(err) = std::fs::write(&path, bytes) {
            return output::fail("generate", format!("{}: {err}", path.display()));
        }
    }
    ExitCode::SUCCESS
}
