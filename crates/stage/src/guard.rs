//! Stage guards: entering a named stage on this thread until the guard drops.

use std::marker::PhantomData;
use std::panic::Location;

use crate::labels::{pop_label, push_label};
use crate::recorder::{enter_stage, exit_stage};
use crate::sites::Caller;

/// Enters a stage like [`stage()`](crate::stage()) and records the calling module's path
/// (`module_path!()`), so CPU profiles name the stage's function (`agent_memory::recall::rerank`)
/// whatever crate or file it lives in. `let _s = perfcheck_stage::stage!("rerank");`
#[macro_export]
macro_rules! stage {
    ($name:expr) => {
        $crate::stage_in($name, ::core::module_path!())
    };
}

/// Guard of one active stage; the stage ends when it drops. `!Send` on purpose (see the crate
/// docs).
#[must_use = "the stage ends when this guard drops"]
pub struct StageGuard {
    active: bool,
    /// Heap label to restore on drop, or `NO_LABEL` outside attributing heap passes.
    prev_label: u8,
    _not_send: PhantomData<*const ()>,
}

/// Enters the stage `name` on this thread until the returned guard drops.
///
/// Use the canonical stage names of docs/ARCHITECTURE.md (`vector_search`, `persist`, ...).
/// Outside an operation this records nothing. Never hold the guard across an `.await`. Prefer
/// [`stage!`](crate::stage!), which also tells CPU profiles the stage function's module.
#[inline]
#[track_caller]
pub fn stage(name: &'static str) -> StageGuard {
    enter(
        name,
        Caller {
            file: Location::caller().file(),
            module: None,
        },
    )
}

/// [`stage()`] with the module path of the caller, which [`stage!`](crate::stage!) passes.
#[inline]
#[track_caller]
pub fn stage_in(name: &'static str, module: &'static str) -> StageGuard {
    enter(
        name,
        Caller {
            file: Location::caller().file(),
            module: Some(module),
        },
    )
}

#[inline]
fn enter(name: &'static str, caller: Caller) -> StageGuard {
    // Heap attribution works outside operations too (corpus loading has a stage).
    let prev_label = push_label(name, Some(caller));
    StageGuard {
        active: enter_stage(name),
        prev_label,
        _not_send: PhantomData,
    }
}

impl Drop for StageGuard {
    #[inline]
    fn drop(&mut self) {
        pop_label(self.prev_label);
        if self.active {
            exit_stage();
        }
    }
}
