//! What every offline tool shares: exit codes, one-line errors, `--json` documents, tables sized to the
//! terminal, progress bars on a terminal only, `NO_COLOR`, and a quiet exit on a closed pipe
//! (`velo check ... | head`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Exit code: nothing found.
pub const OK: u8 = 0;
/// Exit code: damage (or what the tool looks for) found.
pub const FINDINGS: u8 = 1;
/// Exit code: bad usage or an I/O error (clap's own usage errors exit 2 too).
pub const ERROR: u8 = 2;

/// Prints a one-line error on stderr and returns exit code 2.
pub fn fail(tool: &str, message: impl std::fmt::Display) -> ExitCode {
    let text = message.to_string().replace('\n', " ");
    eprintln!("velo {tool}: error: {text}");
    ExitCode::from(ERROR)
}

/// True when colours may be used on stdout: a terminal and no `NO_COLOR` (<https://no-color.org>).
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Writes `text` to stdout; a closed pipe ends the process quietly with exit code 0.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(err) = result {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("velo: error: writing output: {err}");
        std::process::exit(ERROR as i32);
    }
}

/// Prints one JSON document (pretty, newline-terminated).
pub fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => print(&(text + "\n")),
        Err(err) => {
            eprintln!("velo: error: encoding JSON: {err}");
            std::process::exit(ERROR as i32);
        }
    }
}

/// A table with a header row, sized to the terminal (wrapping long cells) when stdout is one.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    if std::io::stdout().is_terminal() {
        table.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        table.set_content_arrangement(ContentArrangement::Disabled);
    }
    if !color() {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| Cell::new(h).add_attribute(Attribute::Bold)));
    table
}

/// A cell coloured red when colours are on (damage), plain otherwise.
pub fn bad_cell(text: impl ToString) -> Cell {
    let cell = Cell::new(text.to_string());
    if color() {
        cell.fg(Color::Red)
    } else {
        cell
    }
}

/// A progress bar on stderr when it is a terminal, hidden otherwise (`len` 0: a spinner).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = if len == 0 { ProgressBar::new_spinner() } else { ProgressBar::new(len) };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    let template =
        if len == 0 { "{spinner} {msg} {pos} {elapsed}" } else { "{msg} [{bar:40}] {percent}% {elapsed} (eta {eta})" };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Human-readable byte count (binary units), as in the tables.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
