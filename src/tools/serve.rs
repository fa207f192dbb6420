//! `velo serve`: validate the configuration, set up logging, run the server until shutdown.

use std::process::ExitCode;

use crate::config::{Config, ServeArgs};

/// Runs `velo serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("velo: error: {message}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("velo={}", config.log_level)));
    // Colour codes only on a terminal and without NO_COLOR: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    super::huge_pages::start();
    super::c_heap::release_large_blocks();
    match crate::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("velo: error: {error:#}");
            ExitCode::from(1)
        }
    }
}
