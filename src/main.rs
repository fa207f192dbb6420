//! The `velo` binary: one clap command line, one subcommand per tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use velo::config::{Config, ServeArgs};

/// Velo: a Redis-compatible key-value server whose data lives on disk.
#[derive(Debug, Parser)]
#[command(name = "velo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the RESP server on a data directory.
    ///
    /// Example: `velo serve --port 7379 --dir ./velo-data --fsync everysec`, then `redis-cli -p 7379`.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("velo: error: {message}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("velo={}", config.log_level)));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match velo::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("velo: error: {error:#}");
            ExitCode::from(1)
        }
    }
}
