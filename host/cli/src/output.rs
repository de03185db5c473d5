//! Tables for people, JSON for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use duroxide::{InstanceStatus, OrchestrationStatus};
use serde_json::{Value, json};

/// A table with `header`.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header);
    table
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A status as JSON: `{"status": "Completed", "output": ...}`.
pub fn status_json(status: &OrchestrationStatus) -> Value {
    match status {
        OrchestrationStatus::NotFound => json!({"status": "NotFound"}),
        OrchestrationStatus::Pending => json!({"status": "Pending"}),
        OrchestrationStatus::Running => json!({"status": "Running"}),
        OrchestrationStatus::Completed { output } => {
            json!({"status": "Completed", "output": output})
        }
        OrchestrationStatus::Failed { error } => json!({"status": "Failed", "error": error}),
        OrchestrationStatus::Cancelled { reason } => {
            json!({"status": "Cancelled", "reason": reason})
        }
    }
}

/// Parses a state name given on the command line.
pub fn parse_status(text: &str) -> Option<InstanceStatus> {
    let mut chars = text.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let name: String = std::iter::once(first)
        .chain(chars.map(|c| c.to_ascii_lowercase()))
        .collect();
    InstanceStatus::parse(&name)
}

/// Milliseconds since the epoch as a UTC time, `2026-01-02 03:04:05`.
pub fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let (y, mo, d) = civil_from_days(days as i64);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}")
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The first 12 hex digits of a digest.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn states_parse_in_any_case() {
        assert_eq!(parse_status("running"), Some(InstanceStatus::Running));
        assert_eq!(parse_status("FAILED"), Some(InstanceStatus::Failed));
        assert_eq!(parse_status("nope"), None);
    }
}
