//! `velo rdb-dump` on a directory a running server holds: the server writes the file of one instant and
//! sends it over its own protocol (REPLCONF rdb-only, SYNC: `server::fullsync`), found through the
//! `ADDRESS` file it keeps in the data directory. The received file is checked (CRC64) and rewritten
//! with the tool's filters (`--db`, `--match`, `--no-compression`), which also gives the summary; with
//! none of them it is checked, counted and moved into place as it is (the rewrite would only re-encode
//! the same keys).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rdb::export::{DumpError, DumpSummary};
use crate::rdb::read::{Item, RdbReader};
use crate::rdb::write::{RdbWriter, Shape};

use super::rdb_dump::RdbDumpArgs;

/// The file in a data directory that names where its server listens (`host:port`).
pub const ADDRESS_FILE: &str = "ADDRESS";

/// Why a live dump failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveDumpError {
    /// The server's address is unknown (a server older than this tool, or the file was removed).
    #[error("no {ADDRESS_FILE} file names its address")]
    NoAddress,
    /// Talking to the server failed.
    #[error("{address}: {what}")]
    Server {
        /// Where.
        address: String,
        /// What happened.
        what: String,
    },
    /// The received file is damaged.
    #[error("the server's RDB: {0}")]
    Rdb(String),
    /// Writing the output failed.
    #[error("{0}")]
    Dump(#[from] DumpError),
}

/// Asks the server holding `args.dir` for its RDB and writes it (filtered) to `args.output`.
pub fn dump(args: &RdbDumpArgs) -> Result<DumpSummary, LiveDumpError> {
    let address = std::fs::read_to_string(args.dir.join(ADDRESS_FILE)).map_err(|_| LiveDumpError::NoAddress)?;
    let address = address.trim().to_string();
    let received = receive(&address, args.password.as_deref(), &args.dir)
        .map_err(|what| LiveDumpError::Server { address: address.clone(), what })?;
    let result = rewrite(&received, args);
    let _ = std::fs::remove_file(&received);
    result
}

/// Fetches the server's RDB into a temporary file in the data directory; returns its path.
fn receive(address: &str, password: Option<&str>, dir: &Path) -> Result<PathBuf, String> {
    let stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut request = |args: &[&str]| -> Result<(), String> {
        let mut frame = format!("*{}\r\n", args.len());
        for arg in args {
            frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        writer.write_all(frame.as_bytes()).map_err(|e| e.to_string())
    };
    if let Some(password) = password {
        request(&["AUTH", password])?;
        expect_ok(&mut reader, "AUTH")?;
    }
    request(&["REPLCONF", "capa", "eof"])?;
    expect_ok(&mut reader, "REPLCONF capa")?;
    request(&["REPLCONF", "rdb-only", "1"])?;
    expect_ok(&mut reader, "REPLCONF rdb-only")?;
    request(&["SYNC"])?;
    // Newlines may come first while the server waits for a running BGSAVE.
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| format!("SYNC: {e}"))? == 0 {
            return Err("SYNC: the server closed the connection".into());
        }
    }
    let line = line.trim_end();
    let path = dir.join(format!(".rdb-dump.tmp-{}", std::process::id()));
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?);
    let copied = if let Some(mark) = line.strip_prefix("$EOF:") {
        copy_until_mark(&mut reader, &mut file, mark.as_bytes())
    } else if let Some(length) = line.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
        let copied = std::io::copy(&mut (&mut reader).take(length), &mut file).map_err(|e| e.to_string());
        match copied {
            Ok(n) if n == length => Ok(()),
            Ok(n) => Err(format!("the transfer ended after {n} of {length} bytes")),
            Err(error) => Err(error),
        }
    } else {
        Err(format!("SYNC: {line}"))
    };
    let flushed = file.flush().map_err(|e| e.to_string());
    if let Err(error) = copied.and(flushed) {
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    Ok(path)
}

fn expect_ok(reader: &mut impl BufRead, what: &str) -> Result<(), String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("{what}: {e}"))?;
    match line.trim_end() {
        "+OK" => Ok(()),
        other => Err(format!("{what}: {}", other.strip_prefix('-').unwrap_or(other))),
    }
}

/// Copies everything up to the closing `mark` (the EOF framing) into `out`.
fn copy_until_mark(reader: &mut impl BufRead, out: &mut impl Write, mark: &[u8]) -> Result<(), String> {
    // Bytes that may be the start of the mark are held back until more arrive.
    let mut held: Vec<u8> = Vec::new();
    loop {
        let chunk = reader.fill_buf().map_err(|e| e.to_string())?;
        if chunk.is_empty() {
            return Err("the server closed the connection before the end of the file".into());
        }
        held.extend_from_slice(chunk);
        let used = chunk.len();
        reader.consume(used);
        if held.ends_with(mark) {
            let body = held.len() - mark.len();
            return out.write_all(held.get(..body).unwrap_or_default()).map_err(|e| e.to_string());
        }
        let keep = mark.len().min(held.len());
        let flush = held.len() - keep;
        out.write_all(held.get(..flush).unwrap_or_default()).map_err(|e| e.to_string())?;
        held.drain(..flush);
    }
}

/// Reads the received file (checking it) and writes the keys the filters select to the output.
fn rewrite(received: &Path, args: &RdbDumpArgs) -> Result<DumpSummary, LiveDumpError> {
    let file = std::fs::File::open(received).map_err(|e| LiveDumpError::Rdb(e.to_string()))?;
    // SAFETY: the file is this tool's own temporary file, which nothing else writes.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| LiveDumpError::Rdb(e.to_string()))?;
    let to_stdout = args.output == "-";
    let target = PathBuf::from(&args.output);
    let tmp = target.with_file_name(format!(
        ".{}.tmp-{}",
        target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    if !to_stdout && args.dbs.is_empty() && args.pattern.is_none() && !args.no_compression {
        // Nothing to filter or re-encode: the server's file (checked, counted) is the output.
        let summary = count(&map)?;
        drop(map);
        place(received, &target, &tmp)?;
        return Ok(summary);
    }
    let out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(DumpError::Io)?))
    };
    let written = filter(&map, args, out);
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&tmp);
            }
            return Err(error);
        }
    };
    if !to_stdout {
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(DumpError::Io)?;
        std::fs::rename(&tmp, &target).map_err(DumpError::Io)?;
    }
    Ok(summary)
}

/// Checks an RDB file through (CRC64 included) and counts its keys per database and type.
fn count(input: &[u8]) -> Result<DumpSummary, LiveDumpError> {
    let damaged = |error: crate::rdb::RdbError| LiveDumpError::Rdb(error.to_string());
    let mut reader = RdbReader::new(input).map_err(damaged)?;
    let mut summary = DumpSummary::default();
    while let Some(item) = reader.next().map_err(damaged)? {
        if let Item::Key(record) = item {
            let Ok(db) = u16::try_from(record.db) else { continue };
            *summary.written.entry(db).or_default().entry(record.value.type_name()).or_default() += 1;
        }
    }
    summary.bytes = input.len() as u64;
    Ok(summary)
}

/// Moves the received file to `target` (renamed when both are on one file system, else copied to `tmp`
/// beside the target first), made durable, so `target` is either its previous content or the whole file.
fn place(received: &Path, target: &Path, tmp: &Path) -> Result<(), LiveDumpError> {
    let durable = |path: &Path| std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(DumpError::Io);
    durable(received)?;
    if std::fs::rename(received, target).is_err() {
        let copied = std::fs::copy(received, tmp).map_err(DumpError::Io).and_then(|_| durable(tmp));
        if let Err(error) = copied {
            let _ = std::fs::remove_file(tmp);
            return Err(error.into());
        }
        std::fs::rename(tmp, target).map_err(DumpError::Io)?;
    }
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn filter(input: &[u8], args: &RdbDumpArgs, out: Box<dyn Write>) -> Result<DumpSummary, LiveDumpError> {
    let damaged = |error: crate::rdb::RdbError| LiveDumpError::Rdb(error.to_string());
    let mut reader = RdbReader::new(input).map_err(damaged)?;
    let mut writer = RdbWriter::new(out, !args.no_compression).map_err(DumpError::Io)?;
    let mut summary = DumpSummary::default();
    let mut current_db = None;
    while let Some(item) = reader.next().map_err(damaged)? {
        match item {
            Item::Function(code) => writer.function(&code).map_err(DumpError::Io)?,
            Item::Key(record) => {
                let Ok(db) = u16::try_from(record.db) else { continue };
                if !args.dbs.is_empty() && !args.dbs.contains(&db) {
                    continue;
                }
                if let Some(pattern) = &args.pattern {
                    if !crate::glob::matches(pattern.as_bytes(), &record.key, false) {
                        continue;
                    }
                }
                if current_db != Some(db) {
                    writer.select_db(u64::from(db), 0, 0).map_err(DumpError::Io)?;
                    current_db = Some(db);
                }
                let expire = record.expire_ms.and_then(|at| u64::try_from(at).ok());
                // Each key in the encoding the server wrote (OBJECT ENCODING's), not one chosen again.
                let shape = Shape::of_rdb_type(input.get(record.offset as usize).copied().unwrap_or(0));
                writer.key_shaped(&record.key, &record.value, expire, shape).map_err(DumpError::Io)?;
                *summary.written.entry(db).or_default().entry(record.value.type_name()).or_default() += 1;
            }
            _ => {}
        }
    }
    summary.bytes = writer.written() + 9;
    writer.finish().map_err(DumpError::Io)?.flush().map_err(DumpError::Io)?;
    Ok(summary)
}
