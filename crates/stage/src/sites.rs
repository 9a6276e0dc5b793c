//! Stage sites: where each stage's guard is opened (file, and module path for [`stage!`]
//! guards), recorded while CPU profiles ask for it so they can name stage frames.
//!
//! [`stage!`]: crate::stage!

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

use crate::labels::MAX_LABELS;
use crate::pass_mode::{switch, HEAP_MODE, SITE_CAPTURE};

/// Where a guard is being opened, as the guard's caller knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    /// `file!()` of the call.
    pub(crate) file: &'static str,
    /// `module_path!()` of the call, for guards opened with [`stage!`](crate::stage!).
    pub(crate) module: Option<&'static str>,
}

struct Sites {
    sites: [(&'static str, Caller); MAX_LABELS],
    len: usize,
}

const NO_CALLER: Caller = Caller {
    file: "",
    module: None,
};

static STAGE_SITES: Mutex<Sites> = Mutex::new(Sites {
    sites: [("", NO_CALLER); MAX_LABELS],
    len: 0,
});

thread_local! {
    /// Stage names this thread already recorded (by address), so capture costs a short scan
    /// per stage entry instead of a lock.
    static SITES_SEEN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn record_site(stage: &'static str, caller: Caller) {
    let key = stage.as_ptr() as usize;
    let known = SITES_SEEN
        .try_with(|seen| {
            let mut seen = seen.borrow_mut();
            if seen.contains(&key) {
                true
            } else {
                seen.push(key);
                false
            }
        })
        .unwrap_or(false);
    if known {
        return;
    }
    let mut s = STAGE_SITES.lock().unwrap_or_else(PoisonError::into_inner);
    let len = s.len;
    if len < MAX_LABELS && !s.sites[..len].iter().any(|(n, _)| *n == stage) {
        s.sites[len] = (stage, caller);
        s.len += 1;
    }
}

/// Where a stage's guard is opened: the source file and module of its stage function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageSite {
    /// Stage name.
    pub stage: &'static str,
    /// Source file of the guard's call, as `file!()` spells it (`crates/engine/src/recall.rs`).
    pub file: &'static str,
    /// Module path of the guard's call (`agent_memory::recall`) when it was opened with
    /// [`stage!`](crate::stage!); `None` for [`stage()`](crate::stage()), which cannot know it.
    pub module: Option<&'static str>,
}

/// Turns on (or off) recording of where each stage is opened. CPU profiles use it to name a
/// stage function's frame (`agent_memory::recall::rerank`) and to tell it from a same-named
/// function elsewhere, since release builds name inlined and DWARF-resolved frames without
/// their path.
pub fn capture_stage_sites(on: bool) {
    switch(&HEAP_MODE, SITE_CAPTURE, on);
}

/// Stage sites recorded since the process started (first site per stage name).
pub fn stage_sites() -> Vec<StageSite> {
    let s = STAGE_SITES.lock().unwrap_or_else(PoisonError::into_inner);
    s.sites[..s.len]
        .iter()
        .map(|&(stage, c)| StageSite {
            stage,
            file: c.file,
            module: c.module,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage;

    #[test]
    fn stage_sites_name_the_file_and_module_of_the_guard_while_capturing() {
        {
            let _s = stage("test_site_off");
        }
        capture_stage_sites(true);
        {
            let _s = stage("test_site_on");
        }
        {
            let _s = crate::stage!("test_site_macro");
        }
        capture_stage_sites(false);
        let sites = stage_sites();
        assert!(sites.iter().all(|s| s.stage != "test_site_off"));
        let on = sites.iter().find(|s| s.stage == "test_site_on").unwrap();
        assert_eq!(on.file, file!());
        assert_eq!(on.module, None, "stage() cannot know its caller's module");
        let mac = sites.iter().find(|s| s.stage == "test_site_macro").unwrap();
        assert_eq!(mac.file, file!());
        assert_eq!(mac.module, Some("perfcheck_stage::sites::tests"));
    }
}
