//! Gives the QuickJS callbacks access to the caller's [`ScriptHost`] for the length of one call.
//!
//! rquickjs requires callbacks to be `'static`, but the host is a borrowed `&mut dyn ScriptHost`.
//! A scoped thread-local holds that borrow only while a script call runs on this thread.

use scoped_tls_hkt::scoped_thread_local;

use crate::document::ScriptHost;

scoped_thread_local!(static mut HOST: for<'a> &'a mut (dyn ScriptHost + 'a));

/// Runs `f` with `host` reachable through [`with_host`].
pub(crate) fn enter<R>(host: &mut dyn ScriptHost, f: impl FnOnce() -> R) -> R {
    HOST.set(host, f)
}

/// Runs `f` with the host of the enclosing [`enter`], or returns `None` outside of one.
pub(crate) fn with_host<R>(f: impl FnOnce(&mut dyn ScriptHost) -> R) -> Option<R> {
    if !HOST.is_set() {
        return None;
    }
    Some(HOST.with(|host| f(host)))
}
