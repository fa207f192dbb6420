//! File access behind a trait, so that crash and fault tests run in-process and deterministically.
//!
//! [`RealFs`] is the operating system. [`CrashFs`] keeps, per file, the bytes a reader sees now (`live`) and
//! the bytes that would survive a power cut (`durable`): a write becomes durable only at the file's `sync`,
//! and a create, rename or remove only at `sync_dir` of its directory. [`CrashFs::crash`] rebuilds the
//! files as a crash could leave them: every unsynced write may be kept, dropped or torn, independently.
//! It can also fail the Nth write or sync, to test poisoning and full disks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// An open file: positional reads and writes, length, durability.
#[allow(clippy::len_without_is_empty)]
pub trait FileHandle: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`; a short file is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every earlier write to this file durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Starts writing the range's dirty pages to the disk without waiting for them (a hint, where the
    /// backend supports it: a later [`FileHandle::sync`] then has less left to wait for). Durability
    /// still comes only from `sync`.
    fn start_writeback(&self, _offset: u64, _len: u64) {}
    /// A read-only memory map of the file as it is now, where the backend supports it. Only for files
    /// that are never truncated below what is read through the map while it lives (chunk files).
    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
}

/// The operations the engine performs on a directory tree.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens a file for reading and writing, creating it when `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>>;
    /// Opens an existing file for reading only.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>>;
    /// True if the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Atomically renames a file (replacing the target).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    /// Makes creates, renames and removes in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive advisory lock on `path` (created if missing), held until the returned guard is
    /// dropped; `None` if another holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn std::any::Any + Send + Sync>>>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile(std::fs::File);

impl FileHandle for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else { return };
        // SAFETY: sync_file_range only reads the arguments; the descriptor is ours and open. Errors are
        // ignored: this is a hint, the later fdatasync reports any write error.
        unsafe { libc::sync_file_range(self.0.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    }
    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        if self.0.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: the engine maps only chunk files, which it appends to and never truncates below a
        // committed length while a map is alive; reads through the map stay within that length. Another
        // process truncating the file would fault this one: the directory lock keeps other writers out.
        let map = unsafe { memmap2::MmapOptions::new().map(&self.0)? };
        Ok(Some(map))
    }
}

impl FileSystem for RealFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)?;
        Ok(Arc::new(RealFile(file)))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(RealFile(std::fs::File::open(path)?)))
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn std::any::Any + Send + Sync>>> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(Box::new(file)));
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(err)
        }
    }
}

/// An unsynced change to one file.
#[derive(Clone)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
}

#[derive(Default)]
struct CrashState {
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    live_names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    writes: u64,
    syncs: u64,
    fail_write_at: Option<u64>,
    fail_sync_at: Option<u64>,
    fail_kind: Option<io::ErrorKind>,
    locks: std::collections::BTreeSet<PathBuf>,
    generation: u64,
}

/// An in-memory file system that can forget unsynced writes, as a power cut would. See the module docs.
#[derive(Clone, Default)]
pub struct CrashFs {
    state: Arc<Mutex<CrashState>>,
}

impl fmt::Debug for CrashFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CrashFs")
    }
}

fn apply(data: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { offset, data: bytes } => {
            let start = *offset as usize;
            let end = start + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[start..end].copy_from_slice(bytes);
        }
        PendingOp::SetLen(len) => data.resize(*len as usize, 0),
    }
}

impl CrashFs {
    /// A new, empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, CrashState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates a power cut: every unsynced write is independently kept, dropped, or torn (a prefix kept),
    /// driven by `random` (called with a bound, returning a value below it); unsynced directory changes are
    /// lost. Handles opened before the crash must not be used afterwards.
    pub fn crash(&self, random: &mut dyn FnMut(u64) -> u64) {
        let mut state = self.lock();
        let durable_names = state.durable_names.clone();
        let mut survivors = HashMap::new();
        for id in durable_names.values() {
            if let Some(inode) = state.inodes.get(id) {
                let mut data = inode.durable.clone();
                for op in &inode.pending {
                    match random(3) {
                        0 => {}
                        1 => apply(&mut data, op),
                        _ => match op {
                            PendingOp::Write { offset, data: bytes } if !bytes.is_empty() => {
                                let keep = random(bytes.len() as u64) as usize;
                                apply(&mut data, &PendingOp::Write { offset: *offset, data: bytes[..keep].to_vec() });
                            }
                            other => apply(&mut data, other),
                        },
                    }
                }
                survivors.insert(*id, Inode { live: data.clone(), durable: data, pending: Vec::new() });
            }
        }
        state.inodes = survivors;
        state.live_names = durable_names;
        state.generation += 1;
        state.locks.clear();
        state.fail_write_at = None;
        state.fail_sync_at = None;
    }

    /// An independent copy of the whole file system (live and durable images), for tests that try many
    /// corruptions of one state.
    pub fn fork(&self) -> CrashFs {
        let state = self.lock();
        let copy = CrashState {
            next_inode: state.next_inode,
            inodes: state.inodes.clone(),
            live_names: state.live_names.clone(),
            durable_names: state.durable_names.clone(),
            generation: state.generation,
            ..Default::default()
        };
        CrashFs { state: Arc::new(Mutex::new(copy)) }
    }

    /// Makes the write with this 1-based number (counted from now) fail, and every later one.
    pub fn fail_writes_after(&self, writes_from_now: u64, kind: io::ErrorKind) {
        let mut state = self.lock();
        state.fail_write_at = Some(state.writes + writes_from_now);
        state.fail_kind = Some(kind);
    }

    /// Makes the sync with this 1-based number (counted from now) fail, and every later one.
    pub fn fail_syncs_after(&self, syncs_from_now: u64) {
        let mut state = self.lock();
        state.fail_sync_at = Some(state.syncs + syncs_from_now);
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.fail_write_at = None;
        state.fail_sync_at = None;
    }

    /// The live bytes of a file (for tests that corrupt files).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        let id = state.live_names.get(path)?;
        state.inodes.get(id).map(|inode| inode.live.clone())
    }

    /// Replaces a file's bytes, live and durable at once (for tests that corrupt files).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut state = self.lock();
        if let Some(id) = state.live_names.get(path).copied() {
            if let Some(inode) = state.inodes.get_mut(&id) {
                inode.live = bytes.to_vec();
                inode.durable = bytes.to_vec();
                inode.pending.clear();
            }
        }
    }

    /// Every file's path, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock().live_names.keys().cloned().collect()
    }
}

struct CrashFile {
    fs: CrashFs,
    inode: u64,
    writable: bool,
    generation: u64,
}

impl CrashFile {
    /// The file system's state, unless a crash happened since this handle was opened.
    fn state(&self) -> io::Result<MutexGuard<'_, CrashState>> {
        let state = self.fs.lock();
        if state.generation != self.generation {
            return Err(io::Error::other("handle opened before a simulated crash"));
        }
        Ok(state)
    }

    fn check_write(state: &mut CrashState) -> io::Result<()> {
        state.writes += 1;
        match state.fail_write_at {
            Some(at) if state.writes >= at => {
                Err(io::Error::new(state.fail_kind.unwrap_or(io::ErrorKind::Other), "injected write failure"))
            }
            _ => Ok(()),
        }
    }
}

impl FileHandle for CrashFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.state()?;
        let inode = state.inodes.get(&self.inode).ok_or_else(|| io::Error::other("stale handle"))?;
        let start = offset as usize;
        let end = start.checked_add(buf.len()).ok_or_else(|| io::Error::other("offset overflow"))?;
        if end > inode.live.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"));
        }
        buf.copy_from_slice(&inode.live[start..end]);
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only handle"));
        }
        let mut state = self.state()?;
        Self::check_write(&mut state)?;
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("stale handle"))?;
        let op = PendingOp::Write { offset, data: buf.to_vec() };
        apply(&mut inode.live, &op);
        inode.pending.push(op);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let state = self.state()?;
        let inode = state.inodes.get(&self.inode).ok_or_else(|| io::Error::other("stale handle"))?;
        Ok(inode.live.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state()?;
        Self::check_write(&mut state)?;
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("stale handle"))?;
        let op = PendingOp::SetLen(len);
        apply(&mut inode.live, &op);
        inode.pending.push(op);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut state = self.state()?;
        state.syncs += 1;
        if let Some(at) = state.fail_sync_at {
            if state.syncs >= at {
                // Like Linux after a failed fsync: the dirty data may be gone and the error is reported once.
                return Err(io::Error::other("injected fsync failure"));
            }
        }
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("stale handle"))?;
        inode.durable = inode.live.clone();
        inode.pending.clear();
        Ok(())
    }
}

impl FileSystem for CrashFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        let mut state = self.lock();
        let id = match state.live_names.get(path) {
            Some(id) => *id,
            None if create => {
                state.next_inode += 1;
                let id = state.next_inode;
                state.inodes.insert(id, Inode::default());
                state.live_names.insert(path.to_path_buf(), id);
                id
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))),
        };
        let generation = state.generation;
        Ok(Arc::new(CrashFile { fs: self.clone(), inode: id, writable: true, generation }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let state = self.lock();
        let id = *state
            .live_names
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))?;
        let generation = state.generation;
        Ok(Arc::new(CrashFile { fs: self.clone(), inode: id, writable: false, generation }))
    }
    fn exists(&self, path: &Path) -> bool {
        let state = self.lock();
        state.live_names.contains_key(path) || state.live_names.keys().any(|name| name.starts_with(path))
    }
    fn remove_dir(&self, _path: &Path) -> io::Result<()> {
        // Directories are only path prefixes here.
        Ok(())
    }
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        // Directories exist implicitly as path prefixes and are treated as durable at once.
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        let mut names: Vec<String> = state
            .live_names
            .keys()
            .filter_map(|path| path.strip_prefix(dir).ok())
            .filter_map(|rest| rest.components().next())
            .map(|first| first.as_os_str().to_string_lossy().into_owned())
            .collect();
        names.dedup();
        Ok(names)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let id = state
            .live_names
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} not found", from.display())))?;
        state.live_names.insert(to.to_path_buf(), id);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state
            .live_names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display())))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let in_dir = |path: &Path| path.parent() == Some(dir);
        state.durable_names.retain(|path, _| !in_dir(path));
        let live: Vec<(PathBuf, u64)> =
            state.live_names.iter().filter(|(path, _)| in_dir(path)).map(|(p, id)| (p.clone(), *id)).collect();
        state.durable_names.extend(live);
        Ok(())
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn std::any::Any + Send + Sync>>> {
        let mut state = self.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        let generation = state.generation;
        Ok(Some(Box::new(CrashLock { fs: self.clone(), path: path.to_path_buf(), generation })))
    }
}

struct CrashLock {
    fs: CrashFs,
    path: PathBuf,
    generation: u64,
}

impl Drop for CrashLock {
    fn drop(&mut self) {
        let mut state = self.fs.lock();
        if state.generation == self.generation {
            state.locks.remove(&self.path);
        }
    }
}
