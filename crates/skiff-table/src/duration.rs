//! Ages as kube-apiserver prints them: apimachinery's `duration.HumanDuration` and the
//! printers' `translateTimestampSince`/`translateTimestampUntil`. The current time is always
//! passed in; nothing here reads the clock.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Renders a duration with 2-3 significant figures, exactly like apimachinery's
/// `HumanDuration`: `90s`, `5m10s`, `150m`, `3h30m`, `30h`, `3d4h`, `400d`, `2y10d`, `9y`.
/// Slightly negative durations (clock skew under two seconds) read `0s`; more negative ones
/// `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    // Go's `int(d.Seconds())` truncates towards zero.
    let seconds = d.whole_seconds();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            dy => format!("{}y{dy}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp (`metav1.Time` or `MicroTime`); `None` for null, missing,
/// unparseable values and Go's zero time, which Kubernetes treats as unset.
pub(crate) fn parse_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(v?.as_str()?, &Rfc3339).ok()?;
    (t.year() > 1).then_some(t)
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
pub(crate) fn since(v: Option<&Value>, now: OffsetDateTime) -> String {
    match parse_time(v) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_owned(),
    }
}

/// `translateTimestampUntil`: the time left until a timestamp, `<unknown>` when unset.
pub(crate) fn until(v: Option<&Value>, now: OffsetDateTime) -> String {
    match parse_time(v) {
        Some(t) => human_duration(t - now),
        None => "<unknown>".to_owned(),
    }
}
