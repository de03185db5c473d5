//! Stable error codes: each failure a guest can cause starts its reason with
//! one, in brackets (`[DX001] nondeterministic orchestration: ...`), so users
//! can search for it whatever the rest of the text says. The README's
//! "Error codes" section lists them; a code, once given, keeps its meaning.

use std::fmt;

/// The code of a guest-caused failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// DX001: the code made a different decision than its history records.
    Nondeterminism,
    /// DX002: the orchestration waited on or cancelled a task it never created.
    UnknownTask,
    /// DX003: the orchestration waited on nothing that could ever finish.
    WaitNeverEnds,
    /// DX004: a text the guest handed over exceeded its limit.
    TooLarge,
    /// DX005: a delay the guest asked for is out of range.
    DelayOutOfRange,
    /// DX006: the guest ran longer than its CPU budget.
    BudgetExceeded,
    /// DX007: the guest tried to grow its memory past the limit.
    MemoryLimit,
    /// DX008: the guest trapped (a panic, an out-of-bounds access, a stack
    /// overflow, an unreachable instruction).
    Trap,
    /// DX009: the guest called `exit`.
    Exit,
    /// DX010: an activity called the orchestration context.
    NoContext,
    /// DX011: an orchestration called the activity context.
    NoActivityContext,
    /// DX012: the guest tried to grow its memory past its component's
    /// memory budget (all its sandboxes together).
    MemoryBudget,
    /// DX013: the execution's history would grow past its limit.
    HistoryLimit,
    /// DX014: the orchestration asked for a retry policy the host cannot follow.
    InvalidRetryPolicy,
}

impl ErrorCode {
    /// Every code, in order.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Nondeterminism,
        ErrorCode::UnknownTask,
        ErrorCode::WaitNeverEnds,
        ErrorCode::TooLarge,
        ErrorCode::DelayOutOfRange,
        ErrorCode::BudgetExceeded,
        ErrorCode::MemoryLimit,
        ErrorCode::Trap,
        ErrorCode::Exit,
        ErrorCode::NoContext,
        ErrorCode::NoActivityContext,
        ErrorCode::MemoryBudget,
        ErrorCode::HistoryLimit,
        ErrorCode::InvalidRetryPolicy,
    ];

    /// The code as it appears in messages, without brackets: `DX001`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Nondeterminism => "DX001",
            ErrorCode::UnknownTask => "DX002",
            ErrorCode::WaitNeverEnds => "DX003",
            ErrorCode::TooLarge => "DX004",
            ErrorCode::DelayOutOfRange => "DX005",
            ErrorCode::BudgetExceeded => "DX006",
            ErrorCode::MemoryLimit => "DX007",
            ErrorCode::Trap => "DX008",
            ErrorCode::Exit => "DX009",
            ErrorCode::NoContext => "DX010",
            ErrorCode::NoActivityContext => "DX011",
            ErrorCode::MemoryBudget => "DX012",
            ErrorCode::HistoryLimit => "DX013",
            ErrorCode::InvalidRetryPolicy => "DX014",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_distinct_and_numbered_in_order() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), codes.len());
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(*code, format!("DX{:03}", i + 1));
        }
    }

    #[test]
    fn the_readme_lists_every_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let section = readme
            .split("## Error codes")
            .nth(1)
            .unwrap_or_else(|| panic!("the README has no \"Error codes\" section"));
        for code in ErrorCode::ALL {
            assert!(
                section.contains(&format!("`{code}`")),
                "the README's Error codes section does not list {code}"
            );
        }
    }
}
