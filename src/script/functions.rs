//! Function libraries (FUNCTION LOAD and friends): parsing a library's `#!lua name=` line, running its
//! code with the load API so that it registers functions, the library registry, FUNCTION DUMP/RESTORE
//! payloads in Redis 7.0's format, and the file in the data directory that keeps libraries across
//! restarts.
//!
//! Payload (as Redis's DUMP payloads): for each library the RDB opcode 245 (`FUNCTION2`) and its code as
//! an RDB string, then the RDB version (10) as 2 bytes little-endian, then the CRC-64 (Jones, Redis's)
//! of everything before it, 8 bytes little-endian. Velo writes codes uncompressed; it reads LZF-compressed
//! strings too (Redis compresses codes that shrink).
//!
//! File `<dir>/functions` (docs/format.md): `VELOFUNC`, version u32 LE (1), CRC-32 u32 LE of the payload,
//! then a FUNCTION DUMP payload. Written to `functions.tmp`, fsynced, renamed, directory fsynced.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mlua::{Function, Lua, Value, Variadic};

use super::vm::Vm;
use super::ScriptFlags;

/// The file name in the data directory.
pub const FILE_NAME: &str = "functions";
const MAGIC: &[u8; 8] = b"VELOFUNC";
const FILE_VERSION: u32 = 1;
/// The RDB version Redis 7.0 writes.
const RDB_VERSION: u16 = 10;
const OPCODE_FUNCTION2: u8 = 245;
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// One registered function.
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// `description`, if given.
    pub description: Option<Bytes>,
    /// Its flags.
    pub flags: ScriptFlags,
    /// The callback.
    pub callback: Function,
}

/// One library.
pub struct Library {
    /// Its name.
    pub name: String,
    /// The code as loaded (with its `#!` line).
    pub code: Bytes,
    /// Its functions by name.
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// Functions registered by the library being loaded (app data of the interpreter while loading).
#[derive(Default)]
struct Pending(Vec<FunctionInfo>);

/// The libraries, their interpreter and where they are kept.
pub struct Functions {
    /// The interpreter all libraries live in.
    pub vm: Vm,
    /// Libraries by name.
    pub libraries: BTreeMap<String, Library>,
    /// Function name (lower-cased: names are case-insensitive) → library name.
    pub index: HashMap<String, String>,
    path: Option<PathBuf>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// `redis.register_function` (while FUNCTION LOAD runs the library code).
pub fn register_function(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    let fail = |message: &str| -> mlua::Result<(bool, Value)> {
        Ok((false, Value::Table(super::convert::error_table(lua, message)?)))
    };
    if lua.app_data_ref::<Pending>().is_none() {
        return fail("redis.register_function can only be called on FUNCTION LOAD command");
    }
    let (name, description, callback, flags) = match args.len() {
        1 => {
            let Value::Table(table) = &args[0] else {
                return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let (mut name, mut description, mut callback, mut flags) = (None, None, None, ScriptFlags(0));
            for pair in table.clone().pairs::<Value, Value>() {
                let (key, value) = pair?;
                let key = match &key {
                    Value::String(s) => s.to_string_lossy().to_ascii_lowercase(),
                    Value::Integer(_) | Value::Number(_) => super::vm::number_of(&key).unwrap_or(0.0).to_string(),
                    _ => return fail("named argument key given to redis.register_function is not a string"),
                };
                match key.as_str() {
                    "function_name" => match lua.coerce_string(value)? {
                        Some(s) => name = Some(s.to_string_lossy()),
                        None => {
                            return fail("function_name argument given to redis.register_function must be a string")
                        }
                    },
                    "description" => match lua.coerce_string(value)? {
                        Some(s) => description = Some(Bytes::copy_from_slice(&s.as_bytes())),
                        None => return fail("description argument given to redis.register_function must be a string"),
                    },
                    "callback" => match value {
                        Value::Function(f) => callback = Some(f),
                        _ => return fail("callback argument given to redis.register_function must be a function"),
                    },
                    "flags" => {
                        let Value::Table(list) = value else {
                            return fail(
                                "flags argument to redis.register_function must be a table representing function flags",
                            );
                        };
                        for item in list.sequence_values::<Value>() {
                            let found = match lua.coerce_string(item?)? {
                                Some(s) => ScriptFlags::named(s.to_string_lossy().to_ascii_lowercase().as_bytes()),
                                None => None,
                            };
                            match found {
                                Some(flag) => flags.0 |= flag.0,
                                None => return fail("unknown flag given"),
                            }
                        }
                    }
                    _ => return fail("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return fail("redis.register_function must get a function name argument");
            };
            let Some(callback) = callback else {
                return fail("redis.register_function must get a callback argument");
            };
            (name, description, callback, flags)
        }
        2 => {
            let Some(name) = lua.coerce_string(args[0].clone())? else {
                return fail("first argument to redis.register_function must be a string");
            };
            let Value::Function(callback) = &args[1] else {
                return fail("second argument to redis.register_function must be a function");
            };
            (name.to_string_lossy(), None, callback.clone(), ScriptFlags(0))
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return fail(BAD_NAME);
    }
    let mut pending = lua.app_data_mut::<Pending>().expect("checked above");
    if pending.0.iter().any(|f| f.name == name) {
        return fail("Function already exists in the library");
    }
    pending.0.push(FunctionInfo { name, description, flags, callback });
    Ok((true, Value::Nil))
}

impl Functions {
    /// The libraries kept in `dir` (none if the file does not exist).
    pub fn open(dir: &Path) -> anyhow::Result<Functions> {
        let mut functions = Functions::empty()?;
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let payload = read_file(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                functions
                    .restore(&payload, RestorePolicy::Flush)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(anyhow::anyhow!("cannot read {}: {error}", path.display())),
        }
        functions.path = Some(path);
        Ok(functions)
    }

    fn empty() -> anyhow::Result<Functions> {
        let vm = Vm::new().map_err(|e| anyhow::anyhow!("cannot create the Lua interpreter: {e}"))?;
        Ok(Functions { vm, libraries: BTreeMap::new(), index: HashMap::new(), path: None })
    }

    /// Writes the libraries to the data directory (after every change).
    pub fn persist(&self) -> Result<(), String> {
        let Some(path) = &self.path else { return Ok(()) };
        let payload = self.dump();
        let mut bytes = Vec::with_capacity(payload.len() + 16);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FILE_VERSION.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// FUNCTION LOAD: the library's name.
    pub fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (name, skip) = metadata(code)?;
        let old = self.libraries.get(&name);
        if old.is_some() && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let library = self.create(&name, code, skip)?;
        for function in library.functions.keys() {
            if self.index.get(&function.to_ascii_lowercase()).is_some_and(|owner| *owner != name) {
                return Err(format!("Function {function} already exists"));
            }
        }
        self.unlink(&name);
        self.link(library);
        Ok(name)
    }

    fn unlink(&mut self, name: &str) -> Option<Library> {
        let library = self.libraries.remove(name)?;
        for function in library.functions.keys() {
            self.index.remove(&function.to_ascii_lowercase());
        }
        Some(library)
    }

    fn link(&mut self, library: Library) {
        for function in library.functions.keys() {
            self.index.insert(function.to_ascii_lowercase(), library.name.clone());
        }
        self.libraries.insert(library.name.clone(), library);
    }

    /// Runs a library's code to collect its functions.
    fn create(&self, name: &str, code: &Bytes, skip: usize) -> Result<Library, String> {
        let vm = &self.vm;
        let chunk = vm
            .compile(&code[skip..], "@user_function", &vm.function_env)
            .map_err(|message| format!("Error compiling function: {message}"))?;
        vm.lua.set_app_data(Pending::default());
        let _ = vm.set_loading.call::<()>(true);
        let ran: mlua::Result<(bool, Value)> = super::vm::with_load_deadline(|| vm.runner.call((chunk,)));
        let _ = vm.set_loading.call::<()>(false);
        vm.after_run();
        let pending = vm.lua.remove_app_data::<Pending>().unwrap_or_default();
        match ran {
            Ok((true, _)) => {}
            Ok((false, error)) => {
                let message = match &error {
                    Value::Table(t) => t.raw_get::<Option<String>>("err").ok().flatten().unwrap_or_default(),
                    other => format!("{other:?}"),
                };
                return Err(format!("Error registering functions: {message}"));
            }
            Err(error) => return Err(format!("Error registering functions: {error}")),
        }
        if pending.0.is_empty() {
            return Err("No functions registered".into());
        }
        let functions = pending.0.into_iter().map(|f| (f.name.clone(), f)).collect();
        Ok(Library { name: name.to_string(), code: code.clone(), functions })
    }

    /// FUNCTION DELETE.
    pub fn delete(&mut self, name: &str) -> bool {
        self.unlink(name).is_some()
    }

    /// FUNCTION FLUSH: no libraries, a fresh interpreter.
    pub fn flush(&mut self) -> Result<(), String> {
        self.vm = Vm::new().map_err(|e| format!("cannot create the Lua interpreter: {e}"))?;
        self.libraries.clear();
        self.index.clear();
        Ok(())
    }

    /// The function named `name`: its callback, flags and library.
    /// Names are case-insensitive, as in Redis's function dictionary.
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        let library = self.index.get(&name.to_ascii_lowercase())?;
        let functions = &self.libraries.get(library)?.functions;
        functions.get(name).or_else(|| functions.values().find(|f| f.name.eq_ignore_ascii_case(name)))
    }

    /// Every library's code, by name (what an RDB file carries).
    pub fn codes(&self) -> Vec<Bytes> {
        self.libraries.values().map(|library| library.code.clone()).collect()
    }

    /// FUNCTION DUMP's payload.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for library in self.libraries.values() {
            out.push(OPCODE_FUNCTION2);
            write_length(&mut out, library.code.len() as u64);
            out.extend_from_slice(&library.code);
        }
        out.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = CRC64.checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// FUNCTION RESTORE.
    pub fn restore(&mut self, payload: &[u8], policy: RestorePolicy) -> Result<(), String> {
        if payload.len() < 10 {
            return Err("DUMP payload version or checksum are wrong".into());
        }
        let (body, footer) = payload.split_at(payload.len() - 10);
        let version = u16::from_le_bytes([footer[0], footer[1]]);
        let crc = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
        if version > RDB_VERSION || (crc != 0 && CRC64.checksum(&payload[..payload.len() - 8]) != crc) {
            return Err("DUMP payload version or checksum are wrong".into());
        }
        let codes = payload_codes(body)?;
        let mut libraries: Vec<Library> = Vec::new();
        for code in &codes {
            let (name, skip) = metadata(code)?;
            if libraries.iter().any(|l| l.name == name) {
                return Err(format!("Library {name} already exists"));
            }
            libraries.push(self.create(&name, code, skip)?);
        }
        match policy {
            RestorePolicy::Flush => {
                self.libraries.clear();
                self.index.clear();
            }
            RestorePolicy::Append | RestorePolicy::Replace => {
                for library in &libraries {
                    if self.libraries.contains_key(&library.name) && policy == RestorePolicy::Append {
                        return Err(format!("Library {} already exists", library.name));
                    }
                }
                let replaced: Vec<&str> = libraries.iter().map(|l| l.name.as_str()).collect();
                for library in &libraries {
                    for function in library.functions.keys() {
                        if let Some(owner) = self.index.get(&function.to_ascii_lowercase()) {
                            if !replaced.contains(&owner.as_str()) {
                                return Err(format!("Function {function} already exists"));
                            }
                        }
                    }
                }
                for name in replaced {
                    self.unlink(name);
                }
            }
        }
        for library in libraries {
            self.link(library);
        }
        Ok(())
    }
}

/// FUNCTION RESTORE's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Add; fail on a name that exists.
    Append,
    /// Add; replace libraries of the same name.
    Replace,
    /// Drop everything first.
    Flush,
}

/// A library's `#!<engine> name=<name>` line: its name and where the code after that line starts (at
/// its `\n`, keeping line numbers).
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    // Split as Redis splits it (`sdssplitargs`): `name="foo"` is `name=foo`; unbalanced quotes are invalid.
    let Some(parts) = crate::resp::decode::split_args(&code[..end]) else {
        return Err("Invalid library metadata".into());
    };
    let parts: Vec<String> = parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let Some(engine) = parts.first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = engine.get(2..).unwrap_or_default();
    let mut name = None;
    for part in &parts[1..] {
        if part.get(..5).is_some_and(|prefix| prefix.eq_ignore_ascii_case("name=")) {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, end))
}

/// An RDB length.
fn write_length(out: &mut Vec<u8>, len: u64) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// An RDB length, or the special encoding number (`Err`) of an encoded string.
fn read_length(bytes: &[u8], at: &mut usize) -> Option<Result<u64, u8>> {
    let first = *bytes.get(*at)?;
    *at += 1;
    Some(match first >> 6 {
        0 => Ok(u64::from(first & 0x3f)),
        1 => {
            let second = *bytes.get(*at)?;
            *at += 1;
            Ok((u64::from(first & 0x3f) << 8) | u64::from(second))
        }
        2 if first == 0x80 => {
            let raw = bytes.get(*at..*at + 4)?;
            *at += 4;
            Ok(u64::from(u32::from_be_bytes(raw.try_into().ok()?)))
        }
        2 if first == 0x81 => {
            let raw = bytes.get(*at..*at + 8)?;
            *at += 8;
            Ok(u64::from_be_bytes(raw.try_into().ok()?))
        }
        3 => Err(first & 0x3f),
        _ => return None,
    })
}

/// An RDB string: raw, integer-encoded or LZF-compressed.
fn read_string(bytes: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    match read_length(bytes, at)? {
        Ok(len) => {
            let len = usize::try_from(len).ok()?;
            let raw = bytes.get(*at..at.checked_add(len)?)?;
            *at += len;
            Some(raw.to_vec())
        }
        Err(0) => {
            let v = *bytes.get(*at)? as i8;
            *at += 1;
            Some(v.to_string().into_bytes())
        }
        Err(1) => {
            let raw = bytes.get(*at..*at + 2)?;
            *at += 2;
            Some(i16::from_le_bytes(raw.try_into().ok()?).to_string().into_bytes())
        }
        Err(2) => {
            let raw = bytes.get(*at..*at + 4)?;
            *at += 4;
            Some(i32::from_le_bytes(raw.try_into().ok()?).to_string().into_bytes())
        }
        Err(3) => {
            let compressed_len = usize::try_from(read_length(bytes, at)?.ok()?).ok()?;
            let len = usize::try_from(read_length(bytes, at)?.ok()?).ok()?;
            let compressed = bytes.get(*at..at.checked_add(compressed_len)?)?;
            *at += compressed_len;
            lzf_decompress(compressed, len)
        }
        Err(_) => None,
    }
}

/// LZF decompression (the format of liblzf, which Redis uses for RDB strings).
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..run + 2 {
                let byte = out[start + k];
                out.push(byte);
            }
        }
    }
    (out.len() == len).then_some(out)
}

/// The library codes of a payload's body (before its version and CRC).
fn payload_codes(body: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut codes = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let opcode = body[at];
        at += 1;
        if opcode != OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        let code = read_string(body, &mut at).ok_or("failed loading the given functions payload")?;
        codes.push(Bytes::from(code));
    }
    Ok(codes)
}

/// The library codes kept in `dir` (none without the file), read without an interpreter: what
/// `velo rdb-dump` writes into an RDB file.
pub fn codes_in_dir(dir: &Path) -> Result<Vec<Bytes>, String> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let payload = read_file(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let body = payload.len().checked_sub(10).map(|end| &payload[..end]).ok_or("functions payload too short")?;
    payload_codes(body).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adds libraries (codes read from an RDB file) to those kept in `dir`, each checked by running it as
/// FUNCTION LOAD REPLACE does: a library of the same name is replaced, a function name another library
/// owns is an error. Returns how many were loaded.
pub fn add_to_dir(dir: &Path, codes: &[Bytes]) -> Result<usize, String> {
    if codes.is_empty() {
        return Ok(0);
    }
    let mut functions = Functions::open(dir).map_err(|e| e.to_string())?;
    for code in codes {
        functions.load(code, true)?;
    }
    functions.persist()?;
    Ok(codes.len())
}

fn read_file(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("not a Velo functions file".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FILE_VERSION {
        return Err(format!("unsupported functions file version {version}"));
    }
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    let payload = &bytes[16..];
    if crc32fast::hash(payload) != crc {
        return Err("functions file checksum mismatch".into());
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0u64, 63, 64, 16383, 16384, 1 << 40] {
            let mut out = Vec::new();
            write_length(&mut out, len);
            let mut at = 0;
            assert_eq!(read_length(&out, &mut at), Some(Ok(len)));
            assert_eq!(at, out.len());
        }
    }

    #[test]
    fn lzf_literal_and_backref() {
        // literal "abc" then a back reference of length 3 at distance 3: "abcabc".
        let input = [2, b'a', b'b', b'c', 0x20, 2];
        assert_eq!(lzf_decompress(&input, 6).as_deref(), Some(&b"abcabc"[..]));
    }
}
