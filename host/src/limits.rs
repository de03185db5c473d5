//! The limits on what guests and clients hand the host: the size of every
//! text by its kind, and the range of delays. Each rule is decided here, in
//! one place, for the client, the runtime and the sandbox alike.
//!
//! | text or value | default | setting |
//! |---|---|---|
//! | payload (input, output, event data, custom status) | 1 MiB | `max_payload_bytes` |
//! | name (orchestration, activity, event, version) | 256 bytes | `max_name_bytes` |
//! | instance id (client, child, detached) | 256 bytes | `max_instance_id_bytes` |
//! | error text (orchestration or activity error, cancel reason) | 64 KiB | `max_error_bytes` |
//! | log line (cut, not refused) | 16 KiB | `max_log_line_bytes` |
//! | delay (timer, delayed start) | 100 years | [`MAX_DELAY_MS`], fixed |
//!
//! Sizes count bytes of UTF-8.

use std::borrow::Cow;
use std::fmt;

/// Largest payload (input, output, event data, custom status) accepted by
/// default: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Longest orchestration, activity or event name, or version, accepted by
/// default: 256 bytes.
pub const DEFAULT_MAX_NAME_BYTES: usize = 256;

/// Longest instance id accepted by default: 256 bytes.
pub const DEFAULT_MAX_INSTANCE_ID_BYTES: usize = 256;

/// Longest error text (an orchestration's or an activity's error, a cancel
/// reason) accepted by default: 64 KiB.
pub const DEFAULT_MAX_ERROR_BYTES: usize = 64 << 10;

/// Longest log line kept by default: 16 KiB. Longer lines are cut, with a
/// marker, rather than refused.
pub const DEFAULT_MAX_LOG_LINE_BYTES: usize = 16 << 10;

/// Longest delay of a timer or a delayed start: 100 years of 365.25 days,
/// in milliseconds. Fire times stay far inside what the store keeps (a
/// signed 64-bit count of milliseconds since the Unix epoch).
pub const MAX_DELAY_MS: u64 = 36_525 * 24 * 60 * 60 * 1000;

/// The kinds of text the host bounds; each kind has its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TextKind {
    /// An input, output, event's data or custom status.
    Payload,
    /// An orchestration, activity or event name, or a version.
    Name,
    /// An instance id.
    InstanceId,
    /// An error text or a cancel reason.
    Error,
    /// A log line.
    LogLine,
}

impl TextKind {
    /// The name of the setting that holds this kind's limit (a field of
    /// `SandboxLimits` and of [`TextLimits`]), for error messages.
    pub fn setting(self) -> &'static str {
        match self {
            TextKind::Payload => "max_payload_bytes",
            TextKind::Name => "max_name_bytes",
            TextKind::InstanceId => "max_instance_id_bytes",
            TextKind::Error => "max_error_bytes",
            TextKind::LogLine => "max_log_line_bytes",
        }
    }
}

/// The size limit of each kind of text, in bytes of UTF-8.
///
/// One set is stored in the store, shared by every client and runtime of
/// it (see [`settle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextLimits {
    /// Largest payload: input, output, event data, custom status.
    pub max_payload_bytes: usize,
    /// Longest orchestration, activity or event name, or version.
    pub max_name_bytes: usize,
    /// Longest instance id.
    pub max_instance_id_bytes: usize,
    /// Longest error text or cancel reason.
    pub max_error_bytes: usize,
    /// Longest log line; longer ones are cut.
    pub max_log_line_bytes: usize,
}

impl Default for TextLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_name_bytes: DEFAULT_MAX_NAME_BYTES,
            max_instance_id_bytes: DEFAULT_MAX_INSTANCE_ID_BYTES,
            max_error_bytes: DEFAULT_MAX_ERROR_BYTES,
            max_log_line_bytes: DEFAULT_MAX_LOG_LINE_BYTES,
        }
    }
}

impl TextLimits {
    /// The limit of `kind`, in bytes.
    pub fn limit(&self, kind: TextKind) -> usize {
        match kind {
            TextKind::Payload => self.max_payload_bytes,
            TextKind::Name => self.max_name_bytes,
            TextKind::InstanceId => self.max_instance_id_bytes,
            TextKind::Error => self.max_error_bytes,
            TextKind::LogLine => self.max_log_line_bytes,
        }
    }

    /// Refuse `value`, described as `what` (say "activity name"), if it is
    /// longer than the limit of `kind`.
    pub fn check(&self, kind: TextKind, what: &'static str, value: &str) -> Result<(), TooLarge> {
        let limit = self.limit(kind);
        if value.len() <= limit {
            return Ok(());
        }
        let shown = matches!(kind, TextKind::Name | TextKind::InstanceId);
        Err(TooLarge {
            what,
            preview: shown.then(|| preview(value)),
            size: value.len(),
            limit,
            setting: kind.setting(),
        })
    }

    /// `value` cut to the limit of `kind` if longer, ending with a marker
    /// that says how long it was. The marker fits within the limit too,
    /// unless the limit is smaller than the marker.
    pub fn truncate<'a>(&self, kind: TextKind, value: &'a str) -> Cow<'a, str> {
        self.cut(kind, value, value.len())
    }

    /// Like [`truncate`](Self::truncate), for a text of which only the start,
    /// `value`, was kept: `size` is how long the whole text was.
    pub(crate) fn cut<'a>(&self, kind: TextKind, value: &'a str, size: usize) -> Cow<'a, str> {
        let limit = self.limit(kind);
        if size <= limit && value.len() <= limit {
            return Cow::Borrowed(value);
        }
        let marker = format!(
            "… [cut: {size} bytes, more than the limit of {limit} bytes ({})]",
            kind.setting()
        );
        let mut end = limit.saturating_sub(marker.len()).min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Cow::Owned(format!("{}{marker}", &value[..end]))
    }
}

impl TextLimits {
    /// These limits, each no looser than `outer`'s: a component's own size
    /// limits may only be stricter than the store's, which every client and
    /// runtime shares (a looser one would let a guest hand over what a
    /// client may not, and what the store was configured to refuse).
    pub fn within(&self, outer: &TextLimits) -> TextLimits {
        TextLimits {
            max_payload_bytes: self.max_payload_bytes.min(outer.max_payload_bytes),
            max_name_bytes: self.max_name_bytes.min(outer.max_name_bytes),
            max_instance_id_bytes: self.max_instance_id_bytes.min(outer.max_instance_id_bytes),
            max_error_bytes: self.max_error_bytes.min(outer.max_error_bytes),
            max_log_line_bytes: self.max_log_line_bytes.min(outer.max_log_line_bytes),
        }
    }
}

/// What a runtime starting on a store does with the text limits: the
/// limits it runs under, and whether it writes them to the store.
///
/// The store holds one set of limits (`stored`), which every client reads
/// on each call and every runtime adopts when it starts, so a client and
/// the runtimes cannot disagree. A runtime whose limits (`configured`)
/// differ from the defaults was configured on purpose: it writes them,
/// replacing the stored set, and clients follow at once. A runtime left
/// at the defaults adopts the stored set, or the defaults when none is
/// stored. (Runtimes already running keep the limits they started with
/// until restarted; configure every runtime of a store alike, or set the
/// limits once with `HistoryStore::set_text_limits`.)
pub fn settle(stored: Option<TextLimits>, configured: TextLimits) -> (TextLimits, bool) {
    if configured != TextLimits::default() {
        return (configured, stored != Some(configured));
    }
    (stored.unwrap_or_default(), false)
}

/// Bytes of a name or id shown in the error that refuses it.
const PREVIEW_BYTES: usize = 32;

/// A text longer than its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct TooLarge {
    /// What the text is ("activity name", say).
    pub what: &'static str,
    /// The start of a name or id, to recognise it by; `None` for payloads,
    /// errors and log lines, whose content stays out of error messages.
    pub preview: Option<String>,
    /// Its size in bytes.
    pub size: usize,
    /// The limit in bytes.
    pub limit: usize,
    /// The setting that holds the limit.
    pub setting: &'static str,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)?;
        if let Some(preview) = &self.preview {
            write!(f, " {preview:?}")?;
        }
        write!(
            f,
            " is {} bytes, more than the limit of {} bytes ({})",
            self.size, self.limit, self.setting
        )
    }
}

/// The start of `value`, cut at [`PREVIEW_BYTES`] with a marker.
fn preview(value: &str) -> String {
    if value.len() <= PREVIEW_BYTES {
        return value.to_string();
    }
    let mut end = PREVIEW_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// A delay longer than [`MAX_DELAY_MS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} of {delay_ms} ms is out of range: the maximum is {max_ms} ms (100 years)",
    max_ms = MAX_DELAY_MS
)]
#[non_exhaustive]
pub struct DelayOutOfRange {
    /// What the delay is for ("timer delay", say).
    pub what: &'static str,
    /// The delay asked for, in milliseconds.
    pub delay_ms: u64,
}

/// Refuse `delay_ms`, described as `what`, if it is longer than
/// [`MAX_DELAY_MS`].
pub fn check_delay(what: &'static str, delay_ms: u64) -> Result<(), DelayOutOfRange> {
    if delay_ms <= MAX_DELAY_MS {
        return Ok(());
    }
    Err(DelayOutOfRange { what, delay_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_runtime_writes_its_limits_and_a_default_one_adopts_the_stored() {
        let small = TextLimits {
            max_payload_bytes: 10,
            ..TextLimits::default()
        };
        let other = TextLimits {
            max_name_bytes: 5,
            ..TextLimits::default()
        };
        // Nothing stored: defaults, nothing written.
        assert_eq!(
            settle(None, TextLimits::default()),
            (TextLimits::default(), false)
        );
        // Configured: written, whatever was stored, unless it is stored already.
        assert_eq!(settle(None, small), (small, true));
        assert_eq!(settle(Some(other), small), (small, true));
        assert_eq!(settle(Some(small), small), (small, false));
        // Left at the defaults: the stored set wins.
        assert_eq!(settle(Some(small), TextLimits::default()), (small, false));
    }

    #[test]
    fn a_components_limits_within_the_stores_take_the_stricter_of_each() {
        let component = TextLimits {
            max_payload_bytes: 10,
            max_name_bytes: 1000,
            max_instance_id_bytes: 3,
            max_error_bytes: 1 << 30,
            max_log_line_bytes: 5,
        };
        let store = TextLimits::default();
        let within = component.within(&store);
        assert_eq!(
            within,
            TextLimits {
                max_payload_bytes: 10,
                max_name_bytes: 256,
                max_instance_id_bytes: 3,
                max_error_bytes: 64 << 10,
                max_log_line_bytes: 5,
            }
        );
        // Looser than the store: the store's, whatever the component asked.
        let loose = TextLimits {
            max_payload_bytes: usize::MAX,
            max_name_bytes: usize::MAX,
            max_instance_id_bytes: usize::MAX,
            max_error_bytes: usize::MAX,
            max_log_line_bytes: usize::MAX,
        };
        assert_eq!(loose.within(&store), store);
        assert_eq!(store.within(&store), store);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let limits = TextLimits::default();
        assert_eq!(limits.limit(TextKind::Payload), 1 << 20);
        assert_eq!(limits.limit(TextKind::Name), 256);
        assert_eq!(limits.limit(TextKind::InstanceId), 256);
        assert_eq!(limits.limit(TextKind::Error), 64 * 1024);
        assert_eq!(limits.limit(TextKind::LogLine), 16 * 1024);
        assert_eq!(MAX_DELAY_MS, 3_155_760_000_000);
    }

    #[test]
    fn a_text_at_its_limit_passes_and_one_byte_more_names_the_limit() {
        let limits = TextLimits::default();
        let at = "n".repeat(256);
        assert_eq!(limits.check(TextKind::Name, "activity name", &at), Ok(()));
        let over = "n".repeat(257);
        let err = limits
            .check(TextKind::Name, "activity name", &over)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "activity name \"{}…\" is 257 bytes, more than the limit of 256 bytes (max_name_bytes)",
                "n".repeat(32)
            )
        );
        assert_eq!((err.size, err.limit), (257, 256));
    }

    #[test]
    fn each_kind_is_held_to_its_own_limit() {
        let limits = TextLimits {
            max_payload_bytes: 5,
            max_name_bytes: 4,
            max_instance_id_bytes: 3,
            max_error_bytes: 2,
            max_log_line_bytes: 1,
        };
        let kinds = [
            (TextKind::Payload, 5, "max_payload_bytes"),
            (TextKind::Name, 4, "max_name_bytes"),
            (TextKind::InstanceId, 3, "max_instance_id_bytes"),
            (TextKind::Error, 2, "max_error_bytes"),
            (TextKind::LogLine, 1, "max_log_line_bytes"),
        ];
        for (kind, limit, setting) in kinds {
            assert!(limits.check(kind, "x", &"x".repeat(limit)).is_ok());
            let err = limits.check(kind, "x", &"x".repeat(limit + 1)).unwrap_err();
            assert_eq!(err.setting, setting);
        }
    }

    #[test]
    fn only_names_and_ids_are_shown() {
        let limits = TextLimits {
            max_payload_bytes: 1,
            max_name_bytes: 1,
            max_instance_id_bytes: 1,
            max_error_bytes: 1,
            max_log_line_bytes: 1,
        };
        let shown = |kind| {
            let err = limits.check(kind, "it", "secret").unwrap_err();
            err.to_string().contains("\"secret\"")
        };
        assert!(shown(TextKind::Name));
        assert!(shown(TextKind::InstanceId));
        assert!(!shown(TextKind::Payload));
        assert!(!shown(TextKind::Error));
        assert!(!shown(TextKind::LogLine));
        // A preview is cut on a character boundary.
        let err = limits
            .check(TextKind::Name, "it", &"é".repeat(40))
            .unwrap_err();
        assert_eq!(err.preview, Some(format!("{}…", "é".repeat(16))));
    }

    #[test]
    fn sizes_count_bytes_not_characters() {
        let limits = TextLimits {
            max_name_bytes: 4,
            ..TextLimits::default()
        };
        // Three characters, six bytes.
        assert!(limits.check(TextKind::Name, "event name", "äöü").is_err());
    }

    #[test]
    fn long_log_lines_are_cut_with_a_marker_within_the_limit() {
        let limits = TextLimits::default();
        let short = "hello";
        assert!(matches!(
            limits.truncate(TextKind::LogLine, short),
            Cow::Borrowed("hello")
        ));
        let long = "é".repeat(20_000);
        let cut = limits.truncate(TextKind::LogLine, &long);
        assert!(cut.len() <= 16 * 1024, "{}", cut.len());
        assert!(cut.starts_with("éé"));
        assert!(
            cut.ends_with(
                "[cut: 40000 bytes, more than the limit of 16384 bytes (max_log_line_bytes)]"
            ),
            "{}",
            &cut[cut.len() - 100..]
        );
    }

    #[test]
    fn a_text_kept_in_part_reports_its_whole_size() {
        let limits = TextLimits {
            max_log_line_bytes: 100,
            ..TextLimits::default()
        };
        let kept = "k".repeat(100);
        let cut = limits.cut(TextKind::LogLine, &kept, 5000);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.contains("cut: 5000 bytes"), "{cut}");
        assert_eq!(limits.cut(TextKind::LogLine, "short", 5), "short");
    }

    #[test]
    fn a_limit_smaller_than_the_marker_keeps_only_the_marker() {
        let limits = TextLimits {
            max_log_line_bytes: 3,
            ..TextLimits::default()
        };
        let cut = limits.truncate(TextKind::LogLine, "abcdef");
        assert!(cut.starts_with("… [cut: 6 bytes"), "{cut}");
    }

    #[test]
    fn delays_up_to_a_hundred_years_pass() {
        assert_eq!(check_delay("timer delay", 0), Ok(()));
        assert_eq!(check_delay("timer delay", MAX_DELAY_MS), Ok(()));
        let err = check_delay("timer delay", u64::MAX).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("timer delay of 18446744073709551615 ms is out of range"),
            "{text}"
        );
        assert!(
            text.contains("the maximum is 3155760000000 ms (100 years)"),
            "{text}"
        );
        assert!(check_delay("start delay", MAX_DELAY_MS + 1).is_err());
    }

    #[test]
    fn the_latest_fire_time_fits_the_store() {
        // A delay at the limit from a clock far in the future still fits i64.
        let year_3000_ms: u64 = 32_503_680_000_000;
        assert!(year_3000_ms + MAX_DELAY_MS < i64::MAX as u64);
    }
}
