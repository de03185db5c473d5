//! The limit on one execution's history: a turn that would grow it past
//! its component's `max_history_events` fails the execution instead of
//! appending its events.

use crate::sandbox::GuestFault;

/// Whether a turn may append `appended` events to a history of `before`
/// events under a limit of `limit`; if not, the fault its execution fails
/// with. The failure's own event is the one event allowed past the limit,
/// so the execution still ends with its reason in its history.
pub(crate) fn check(before: u64, appended: usize, limit: u64) -> Result<(), GuestFault> {
    let events = before.saturating_add(appended as u64);
    if events <= limit {
        return Ok(());
    }
    Err(GuestFault::HistoryLimit { events, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_up_to_the_limit_grows_and_one_event_more_fails_naming_it() {
        assert!(check(0, 10, 10).is_ok());
        assert!(check(9, 1, 10).is_ok());
        assert!(check(10, 0, 10).is_ok());
        let fault = check(9, 2, 10).unwrap_err();
        assert_eq!(
            fault.to_string(),
            "[DX013] the execution would hold 11 history events, more than the limit of 10 (max_history_events)"
        );
        assert!(check(u64::MAX, 5, u64::MAX).is_ok());
    }
}
