//! Heap labels: the stage or component each thread's new allocations are attributed to in
//! attributing heap passes, and the component guard.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use crate::pass_mode::{HEAP_ATTRIBUTE, HEAP_MODE, SITE_CAPTURE};
use crate::sites::{record_site, Caller};

/// Most distinct labels (stages and components) one heap pass can tell apart; more share the
/// last one, [`OVERFLOW_LABEL`].
pub const MAX_LABELS: usize = 64;
/// Label of allocations made outside every stage and component.
pub const UNLABELLED: &str = "(no stage)";
/// Label shared by the labels past [`MAX_LABELS`].
pub const OVERFLOW_LABEL: &str = "(other labels)";
/// Marks a guard that did not change the thread's label.
pub(crate) const NO_LABEL: u8 = u8::MAX;

thread_local! {
    /// The label new allocations of this thread are attributed to, in attributing heap passes.
    static HEAP_LABEL: Cell<u8> = const { Cell::new(0) };
}

struct LabelNames {
    names: [&'static str; MAX_LABELS],
    len: usize,
}

static LABEL_NAMES: Mutex<LabelNames> = Mutex::new(LabelNames {
    names: [""; MAX_LABELS],
    len: 0,
});

/// The id of `name`, registering it on first use. A fixed array: never allocates, so it is
/// safe to call from stage guards in the middle of a heap pass.
pub(crate) fn label_id(name: &'static str) -> u8 {
    let mut l = LABEL_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if l.len == 0 {
        l.names[0] = UNLABELLED;
        l.names[MAX_LABELS - 1] = OVERFLOW_LABEL;
        l.len = 1;
    }
    let len = l.len;
    if let Some(i) = l.names[..len].iter().position(|n| *n == name) {
        return i as u8;
    }
    if len < MAX_LABELS - 1 {
        l.names[len] = name;
        l.len += 1;
        len as u8
    } else {
        (MAX_LABELS - 1) as u8
    }
}

pub(crate) fn label_name(id: usize) -> &'static str {
    let l = LABEL_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    match l.names.get(id) {
        Some(n) if !n.is_empty() => n,
        _ => UNLABELLED,
    }
}

#[inline]
pub(crate) fn current_label() -> u8 {
    HEAP_LABEL.try_with(Cell::get).unwrap_or(0)
}

/// Number of labels registered so far (the unlabelled one included).
pub(crate) fn label_count() -> usize {
    LABEL_NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len
}

/// Puts this thread back on the unlabelled label (at the end of a heap pass).
pub(crate) fn reset_label() {
    let _ = HEAP_LABEL.try_with(|l| l.set(0));
}

/// Sets this thread's label to `name` when an attributing heap pass is active, and records
/// the stage's source site when site capture is on; returns the label to restore, or
/// `NO_LABEL`.
#[inline]
pub(crate) fn push_label(name: &'static str, site: Option<Caller>) -> u8 {
    let mode = HEAP_MODE.load(Ordering::Relaxed);
    if mode == 0 {
        return NO_LABEL;
    }
    push_label_slow(name, site, mode)
}

#[cold]
#[inline(never)]
fn push_label_slow(name: &'static str, site: Option<Caller>, mode: u8) -> u8 {
    if mode & SITE_CAPTURE != 0 {
        if let Some(caller) = site {
            record_site(name, caller);
        }
    }
    if mode & HEAP_ATTRIBUTE == 0 {
        return NO_LABEL;
    }
    let id = label_id(name);
    HEAP_LABEL.try_with(|l| l.replace(id)).unwrap_or(NO_LABEL)
}

#[inline]
pub(crate) fn pop_label(prev: u8) {
    if prev != NO_LABEL {
        let _ = HEAP_LABEL.try_with(|l| l.set(prev));
    }
}

/// Guard of a named heap component; see [`component`].
#[must_use = "the component ends when this guard drops"]
pub struct ComponentGuard {
    prev_label: u8,
    _not_send: PhantomData<*const ()>,
}

/// Attributes the heap blocks this thread allocates, until the guard drops, to the component
/// `name` (for example `"recall_cache"`) in attributing heap passes; a no-op otherwise (one
/// relaxed load). Unlike [`stage`](crate::stage()) it records no time.
#[inline]
pub fn component(name: &'static str) -> ComponentGuard {
    ComponentGuard {
        prev_label: push_label(name, None),
        _not_send: PhantomData,
    }
}

impl Drop for ComponentGuard {
    #[inline]
    fn drop(&mut self) {
        pop_label(self.prev_label);
    }
}
