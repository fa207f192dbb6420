//! Cooperative interruption of long walks over split collections (reading a collection whole, walking a
//! chain or tree to free it), so that a command reading millions of elements stops soon after its client
//! has gone or the server began shutting down.
//!
//! The walks are deep in this module's types, far from the command's context, so the server installs a
//! *hook* for the length of one command ([`with_hook`], a thread-local: a command runs on one thread) and
//! the walks call [`check`] once per part they read. The hook itself is cheap (the server's throttles its
//! real checks to one every few milliseconds). Without a hook (offline tools, EXEC's queued commands,
//! write commands that may already have written) [`check`] never interrupts.

use std::cell::Cell;
use std::ptr::NonNull;

use super::{ElementError, Result};

/// Says whether the running command must stop: `Some(reason)` (e.g. "the client is gone") if so.
pub type Hook<'a> = dyn Fn() -> Option<&'static str> + 'a;

thread_local! {
    /// The hook of the command running on this thread, if any.
    static HOOK: Cell<Option<NonNull<Hook<'static>>>> = const { Cell::new(None) };
}

/// Runs `work` with `hook` installed (nested calls install theirs for their own length). `None` runs
/// `work` with no hook, so that nothing inside it is interrupted.
pub fn with_hook<R>(hook: Option<&Hook<'_>>, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<NonNull<Hook<'static>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOOK.with(|cell| cell.set(self.0));
        }
    }
    // SAFETY: only the lifetime is erased; the pointer is removed again (by `Restore`, also on unwind)
    // before `with_hook` returns, so it is never used after the borrow of `hook` ends.
    let erased =
        hook.map(|hook| unsafe { std::mem::transmute::<NonNull<Hook<'_>>, NonNull<Hook<'static>>>(hook.into()) });
    let _restore = Restore(HOOK.with(|cell| cell.replace(erased)));
    work()
}

/// Called by the walks once per part: `Err(Interrupted)` when the installed hook says to stop.
pub fn check() -> Result<()> {
    let hook = HOOK.with(Cell::get);
    match hook {
        None => Ok(()),
        // SAFETY: a hook in the cell is alive: `with_hook` removes it before its borrow ends.
        Some(hook) => match unsafe { hook.as_ref() }() {
            None => Ok(()),
            Some(reason) => Err(ElementError::Interrupted(reason)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_nest_and_are_removed() {
        assert!(check().is_ok());
        let stop = || Some("stop");
        let go = || None;
        with_hook(Some(&stop), || {
            assert!(matches!(check(), Err(ElementError::Interrupted("stop"))));
            with_hook(None, || assert!(check().is_ok()));
            with_hook(Some(&go), || assert!(check().is_ok()));
            assert!(check().is_err());
        });
        assert!(check().is_ok());
    }
}
