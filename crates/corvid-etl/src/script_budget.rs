//! The memory all ETL script runtimes of a server may take together (issue 18: 20 tasks' runtimes
//! held 900 MiB between them). Each runtime is created with a grant from the budget, which
//! becomes its QuickJS memory limit and returns to the budget when the runtime's thread ends:
//! the sum of the limits, and so of what the runtimes can hold, stays within the budget.
//!
//! A process's main runtime always gets at least [`MIN_GRANT_BYTES`], so a task never stalls
//! for want of memory (the budget can then be exceeded by that much per process); a helper
//! runtime that would split large batches is only started when the budget has room for it.

use std::sync::{Arc, Mutex, PoisonError};

/// The least a process's main runtime is given, whatever the budget has left: enough for the
/// runtime, the prelude and a document of a few hundred KiB.
pub const MIN_GRANT_BYTES: usize = 4 * 1024 * 1024;

/// The shared budget; clones share it.
#[derive(Debug, Clone)]
pub struct ScriptMemoryBudget {
    total: usize,
    available: Arc<Mutex<usize>>,
}

/// Bytes taken from the budget, given back on drop.
#[derive(Debug)]
pub struct ScriptMemoryGrant {
    budget: ScriptMemoryBudget,
    taken: usize,
    /// The runtime's memory limit: `taken`, or [`MIN_GRANT_BYTES`] for a main runtime the
    /// budget could not cover.
    pub bytes: usize,
}

impl ScriptMemoryBudget {
    pub fn new(total: usize) -> ScriptMemoryBudget {
        ScriptMemoryBudget {
            total,
            available: Arc::new(Mutex::new(total)),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not granted to any runtime now.
    pub fn available(&self) -> usize {
        *self
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A grant for a process's main runtime: up to `wanted`, at least [`MIN_GRANT_BYTES`].
    pub fn grant_main(&self, wanted: usize) -> ScriptMemoryGrant {
        let taken = self.take(wanted);
        ScriptMemoryGrant {
            budget: self.clone(),
            taken,
            bytes: taken.max(MIN_GRANT_BYTES.min(wanted)),
        }
    }

    /// A grant for a helper runtime: up to `wanted`, or nothing when less than
    /// [`MIN_GRANT_BYTES`] is left.
    pub fn grant_helper(&self, wanted: usize) -> Option<ScriptMemoryGrant> {
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *available < MIN_GRANT_BYTES.min(wanted) {
            return None;
        }
        let taken = wanted.min(*available);
        *available -= taken;
        Some(ScriptMemoryGrant {
            budget: self.clone(),
            taken,
            bytes: taken,
        })
    }

    fn take(&self, wanted: usize) -> usize {
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let taken = wanted.min(*available);
        *available -= taken;
        taken
    }
}

impl Drop for ScriptMemoryGrant {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *available += self.taken;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn grants_never_exceed_the_budget_except_the_main_minimum() {
        let budget = ScriptMemoryBudget::new(40 * MIB);
        let first = budget.grant_main(16 * MIB);
        let helper = budget.grant_helper(16 * MIB).unwrap();
        assert_eq!((first.bytes, helper.bytes), (16 * MIB, 16 * MIB));
        // 8 MiB left: a helper gets what is left, the next one nothing.
        let second_helper = budget.grant_helper(16 * MIB).unwrap();
        assert_eq!(second_helper.bytes, 8 * MIB);
        assert!(budget.grant_helper(16 * MIB).is_none());
        // A main runtime still gets the minimum.
        let starved = budget.grant_main(16 * MIB);
        assert_eq!(starved.bytes, MIN_GRANT_BYTES);
        assert_eq!(budget.available(), 0);
        drop((first, helper, second_helper, starved));
        assert_eq!(budget.available(), 40 * MIB);
    }
}
