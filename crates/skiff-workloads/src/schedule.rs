//! CronJob schedule arithmetic, pure and clock-free: parsing `spec.schedule` as upstream's
//! `cron.ParseStandard` accepts it (five fields, the `@yearly`…`@hourly` descriptors and
//! `@every <duration>`; a `TZ=`/`CRON_TZ=` prefix is refused in favour of `spec.timeZone`),
//! the most recent missed start time, and the Job name for a start time. The fields are
//! evaluated by the `croner` crate over `jiff` zoned times, so time zones and DST follow
//! the tz database.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp, Zoned};

/// Upstream's limit on missed start times before it warns (`TooManyMissedTimes`).
pub const TOO_MANY_MISSED: u64 = 100;

/// A parsed `spec.schedule`.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Five cron fields (or a descriptor that stands for them).
    Cron(Box<Cron>),
    /// `@every <duration>`: a constant delay (whole seconds, at least one).
    Every(Duration),
}

/// The most recent start time that is due, and how many were missed since the earliest
/// time considered (counting stops a little past [`TOO_MANY_MISSED`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The start time to run now.
    pub time: Timestamp,
    /// How many start times were due, including `time`.
    pub missed: u64,
}

impl Schedule {
    /// Parses a schedule as upstream's standard parser does.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.starts_with("TZ=") || text.starts_with("CRON_TZ=") {
            return Err(
                "CRON_TZ or TZ used in schedule is not supported, use spec.timeZone".into(),
            );
        }
        if let Some(every) = text.strip_prefix("@every ") {
            let delay = parse_go_duration(every.trim())?;
            let whole = Duration::from_secs(delay.as_secs().max(1));
            return Ok(Schedule::Every(whole));
        }
        let text = match text {
            "@midnight" => "@daily",
            other => other,
        };
        if text.split_whitespace().count() != 5 && !text.starts_with('@') {
            return Err(format!(
                "expected exactly 5 fields, found {}: {text}",
                text.split_whitespace().count()
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        parser
            .parse(text)
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|error| error.to_string())
    }

    /// The first start time strictly after `after`, in `zone`.
    pub fn next(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(delay) => {
                let whole = Timestamp::from_second(after.as_second()).ok()?;
                whole
                    .checked_add(SignedDuration::try_from(*delay).ok()?)
                    .ok()
            }
            Schedule::Cron(cron) => {
                let zoned = Zoned::new(after, zone.clone());
                cron.find_next_occurrence(&zoned, false)
                    .ok()
                    .map(|z| z.timestamp())
            }
        }
    }

    /// The latest start time at or before `at` that is after `after` (used to skip ahead
    /// over a long run of missed times).
    fn latest_at_or_before(
        &self,
        at: Timestamp,
        after: Timestamp,
        zone: &TimeZone,
    ) -> Option<Timestamp> {
        let found = match self {
            Schedule::Every(delay) => {
                let first = self.next(after, zone)?;
                let step = i64::try_from(delay.as_secs()).ok()?.max(1);
                let steps = (at.as_second() - first.as_second()).div_euclid(step);
                Timestamp::from_second(first.as_second() + steps * step).ok()?
            }
            Schedule::Cron(cron) => cron
                .find_previous_occurrence(&Zoned::new(at, zone.clone()), true)
                .ok()?
                .timestamp(),
        };
        (found > after).then_some(found)
    }

    /// The most recent start time due at `now`, looking at times after `earliest` (the last
    /// schedule time, or the CronJob's creation), as upstream's `mostRecentScheduleTime`:
    /// with a starting deadline, times older than `now - deadline` are not considered.
    pub fn most_recent_due(
        &self,
        earliest: Timestamp,
        now: Timestamp,
        starting_deadline_seconds: Option<i64>,
        zone: &TimeZone,
    ) -> Option<Due> {
        let mut earliest = earliest;
        if let Some(deadline) = starting_deadline_seconds
            && let Ok(limit) = Timestamp::from_second(now.as_second() - deadline)
            && limit > earliest
        {
            earliest = limit;
        }
        let first = self.next(earliest, zone)?;
        if first > now {
            return None;
        }
        let mut due = Due {
            time: first,
            missed: 1,
        };
        while let Some(next) = self.next(due.time, zone) {
            if next > now {
                break;
            }
            due.time = next;
            due.missed += 1;
            if due.missed > TOO_MANY_MISSED {
                if let Some(latest) = self.latest_at_or_before(now, due.time, zone) {
                    due.time = latest;
                    due.missed += 1;
                }
                break;
            }
        }
        Some(due)
    }
}

/// A Go `time.ParseDuration` string of whole units (`90s`, `1h30m`, `5m`, `1.5h`).
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}");
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// The name of the Job a CronJob starts for `scheduled`: `<cronjob>-<minutes since epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    #[test]
    fn standard_fields_and_descriptors_parse() {
        for ok in [
            "* * * * *",
            "*/1 * * * *",
            "0 9 * * 1-5",
            "30 2 1 JAN *",
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "@every 90s",
            "@every 1h30m",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "* * * *",
            "0 * * * * *",
            "61 * * * *",
            "TZ=UTC * * * * *",
            "CRON_TZ=Europe/Paris 0 * * * *",
            "@every",
            "@every 5x",
            "@sometimes",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_times_follow_the_fields() {
        let every_minute = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            every_minute.next(at("2026-01-01T10:00:30Z"), &utc()),
            Some(at("2026-01-01T10:01:00Z"))
        );
        assert_eq!(
            every_minute.next(at("2026-01-01T10:01:00Z"), &utc()),
            Some(at("2026-01-01T10:02:00Z"))
        );
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next(at("2026-01-01T10:00:00Z"), &utc()),
            Some(at("2026-01-01T11:00:00Z"))
        );
        let every = Schedule::parse("@every 90s").unwrap();
        assert_eq!(
            every.next(at("2026-01-01T10:00:00.5Z"), &utc()),
            Some(at("2026-01-01T10:01:30Z"))
        );
        // Weekdays only: Friday 2026-01-02 → Monday 2026-01-05.
        let weekdays = Schedule::parse("0 9 * * 1-5").unwrap();
        assert_eq!(
            weekdays.next(at("2026-01-02T09:00:00Z"), &utc()),
            Some(at("2026-01-05T09:00:00Z"))
        );
        // Day of month and day of week both restricted: either matches (cron's rule).
        let either = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(
            either.next(at("2026-01-01T00:00:00Z"), &utc()),
            Some(at("2026-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn time_zones_shift_the_wall_clock() {
        let nine = Schedule::parse("0 9 * * *").unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            nine.next(at("2026-01-01T00:00:00Z"), &paris),
            Some(at("2026-01-01T08:00:00Z"))
        );
        assert_eq!(
            nine.next(at("2026-07-01T00:00:00Z"), &paris),
            Some(at("2026-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn most_recent_due_counts_missed_times() {
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let created = at("2026-01-01T10:00:10Z");
        // Nothing due before the first minute.
        assert_eq!(
            every_minute.most_recent_due(created, at("2026-01-01T10:00:59Z"), None, &utc()),
            None
        );
        assert_eq!(
            every_minute.most_recent_due(created, at("2026-01-01T10:01:00Z"), None, &utc()),
            Some(Due {
                time: at("2026-01-01T10:01:00Z"),
                missed: 1
            })
        );
        assert_eq!(
            every_minute.most_recent_due(created, at("2026-01-01T10:05:30Z"), None, &utc()),
            Some(Due {
                time: at("2026-01-01T10:05:00Z"),
                missed: 5
            })
        );
        // A starting deadline ignores what is older than now - deadline.
        assert_eq!(
            every_minute.most_recent_due(created, at("2026-01-01T10:05:30Z"), Some(100), &utc()),
            Some(Due {
                time: at("2026-01-01T10:05:00Z"),
                missed: 2
            })
        );
        // The last schedule time itself is not due again.
        assert_eq!(
            every_minute.most_recent_due(
                at("2026-01-01T10:05:00Z"),
                at("2026-01-01T10:05:30Z"),
                None,
                &utc()
            ),
            None
        );
    }

    #[test]
    fn too_many_missed_times_still_find_the_latest() {
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let due = every_minute
            .most_recent_due(
                at("2026-01-01T00:00:00Z"),
                at("2026-01-02T00:00:30Z"),
                None,
                &utc(),
            )
            .unwrap();
        assert_eq!(due.time, at("2026-01-02T00:00:00Z"));
        assert!(due.missed > TOO_MANY_MISSED);
        let every = Schedule::parse("@every 1m").unwrap();
        let due = every
            .most_recent_due(
                at("2026-01-01T00:00:00Z"),
                at("2026-01-02T00:00:30Z"),
                None,
                &utc(),
            )
            .unwrap();
        assert_eq!(due.time, at("2026-01-02T00:00:00Z"));
        assert!(due.missed > TOO_MANY_MISSED);
    }

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        assert_eq!(
            job_name("hello", at("2026-01-01T10:01:00Z")),
            format!("hello-{}", at("2026-01-01T10:01:00Z").as_second() / 60)
        );
        assert_eq!(job_name("x", at("1970-01-01T01:00:00Z")), "x-60");
    }
}
