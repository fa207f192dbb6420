//! The logical → physical database map that makes SWAPDB O(1).
//!
//! Databases are part of the stored key identity, so SWAPDB swaps two entries of this map instead of
//! moving keys. The map is persisted in `<dir>/dbmap` (one physical number per logical database, as
//! decimal text separated by spaces), written to a temporary file, fsynced and renamed over the old one,
//! so a crash leaves either the old or the new map. Readers hold the server's command lock (shared) and
//! SWAPDB holds it exclusively, so a command never sees a half-applied swap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};

/// File name inside the data directory.
pub const DBMAP_FILE: &str = "dbmap";

/// The map.
pub struct DbMap {
    path: PathBuf,
    map: Vec<AtomicU16>,
    reverse: Vec<AtomicU16>,
}

impl DbMap {
    /// Loads `<dir>/dbmap`, or starts with the identity map; extends a shorter map with identity entries.
    pub fn open(dir: &Path, databases: u16) -> anyhow::Result<DbMap> {
        let path = dir.join(DBMAP_FILE);
        let mut map: Vec<u16> = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .split_whitespace()
                .map(|n| n.parse::<u16>())
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("{}: not a database map: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        };
        let mut sorted = map.clone();
        sorted.sort_unstable();
        if sorted.iter().enumerate().any(|(i, &n)| usize::from(n) != i) {
            anyhow::bail!("{}: not a permutation of database numbers", path.display());
        }
        while map.len() < usize::from(databases) {
            map.push(map.len() as u16);
        }
        let mut reverse = vec![0u16; map.len()];
        for (logical, &physical) in map.iter().enumerate() {
            reverse[usize::from(physical)] = logical as u16;
        }
        Ok(DbMap {
            path,
            map: map.into_iter().map(AtomicU16::new).collect(),
            reverse: reverse.into_iter().map(AtomicU16::new).collect(),
        })
    }

    /// The physical database of logical database `db`.
    pub fn physical(&self, db: u16) -> u16 {
        self.map.get(usize::from(db)).map_or(db, |p| p.load(Ordering::Acquire))
    }

    /// The logical database currently backed by physical database `db`.
    pub fn logical(&self, db: u16) -> u16 {
        self.reverse.get(usize::from(db)).map_or(db, |l| l.load(Ordering::Acquire))
    }

    /// Swaps two logical databases and persists the map. Call with the command lock held exclusively.
    pub fn swap(&self, a: u16, b: u16) -> std::io::Result<()> {
        let (Some(slot_a), Some(slot_b)) = (self.map.get(usize::from(a)), self.map.get(usize::from(b))) else {
            return Ok(());
        };
        let physical_a = slot_a.load(Ordering::Acquire);
        let physical_b = slot_b.load(Ordering::Acquire);
        let set = |pa: u16, pb: u16| {
            slot_a.store(pa, Ordering::Release);
            slot_b.store(pb, Ordering::Release);
            if let Some(r) = self.reverse.get(usize::from(pa)) {
                r.store(a, Ordering::Release);
            }
            if let Some(r) = self.reverse.get(usize::from(pb)) {
                r.store(b, Ordering::Release);
            }
        };
        set(physical_b, physical_a);
        if let Err(error) = self.persist() {
            set(physical_a, physical_b);
            return Err(error);
        }
        Ok(())
    }

    fn persist(&self) -> std::io::Result<()> {
        use std::io::Write;
        let text: Vec<String> = self.map.iter().map(|p| p.load(Ordering::Acquire).to_string()).collect();
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.join(" ").as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_persists() {
        let dir = tempfile::tempdir().unwrap();
        let map = DbMap::open(dir.path(), 4).unwrap();
        map.swap(0, 2).unwrap();
        assert_eq!(map.physical(0), 2);
        let reopened = DbMap::open(dir.path(), 16).unwrap();
        assert_eq!((reopened.physical(0), reopened.physical(2), reopened.physical(15)), (2, 0, 15));
        assert_eq!((reopened.logical(2), reopened.logical(0), reopened.logical(15)), (0, 2, 15));
    }
}
