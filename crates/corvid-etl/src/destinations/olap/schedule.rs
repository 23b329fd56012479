//! `RunFrequency`: a five-field cron expression (minute, hour, day of month, month, day of
//! week), as RavenDB's NCrontab reads it, evaluated in UTC. Each field is `*`, a number, a
//! range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of those; months and days
//! of the week may be written by their three-letter English names, and day of week 7 is
//! Sunday as 0 is. When both day fields are restricted, a day matching either runs (the cron
//! rule). Checked when the task is saved, with the field at fault named.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corvid_store::Timestamp;

/// A parsed `RunFrequency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSchedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Both day fields restricted: a day runs when either matches.
    either_day: bool,
}

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl RunSchedule {
    /// Parses a cron expression; the error names the field at fault.
    pub fn parse(text: &str) -> Result<RunSchedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`RunFrequency` must be a cron expression of five fields (minute hour day-of-month month day-of-week), not `{text}`"
            ));
        }
        let mut masks = [0u64; 5];
        for (idx, field) in fields.iter().enumerate() {
            let (name, min, max) = FIELDS[idx];
            masks[idx] = parse_field(field, idx, min, max)
                .map_err(|reason| format!("`RunFrequency` {name} `{field}`: {reason}"))?;
        }
        // Day of week 7 is Sunday.
        if masks[4] & (1 << 7) != 0 {
            masks[4] = (masks[4] | 1) & !(1 << 7);
        }
        Ok(RunSchedule {
            minutes: masks[0],
            hours: masks[1],
            days_of_month: masks[2],
            months: masks[3],
            days_of_week: masks[4],
            either_day: !fields[2].starts_with('*') && !fields[4].starts_with('*'),
        })
    }

    /// The first minute strictly after `after` that the schedule runs at, within about five
    /// years (`None` for an expression that never matches, such as the 31st of February).
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let secs = after.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let mut minute = secs / 60 + 1;
        let last = minute + 5 * 366 * 24 * 60;
        while minute < last {
            let time = Timestamp(minute as i64 * 60 * 10_000_000).utc();
            if !self.day_matches(&time) {
                // To the next midnight.
                minute = (minute / (24 * 60) + 1) * 24 * 60;
                continue;
            }
            if self.hours & (1 << time.hour) == 0 {
                minute = (minute / 60 + 1) * 60;
                continue;
            }
            if self.minutes & (1 << time.minute) != 0 {
                return Some(UNIX_EPOCH + Duration::from_secs(minute * 60));
            }
            minute += 1;
        }
        None
    }

    fn day_matches(&self, time: &corvid_store::UtcTime) -> bool {
        if self.months & (1 << time.month) == 0 {
            return false;
        }
        let by_month_day = self.days_of_month & (1 << time.day) != 0;
        // `UtcTime` counts from Monday (0); cron from Sunday (0).
        let by_week_day = self.days_of_week & (1 << ((time.weekday + 1) % 7)) != 0;
        if self.either_day {
            by_month_day || by_week_day
        } else {
            by_month_day && by_week_day
        }
    }
}

fn parse_field(field: &str, idx: usize, min: u32, max: u32) -> Result<u64, String> {
    let mut mask = 0u64;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|it| *it > 0)
                    .ok_or_else(|| format!("`{step}` is not a step (a whole number from 1)"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, if idx == 4 { 6 } else { max })
        } else {
            match range.split_once('-') {
                Some((from, to)) => (value(from, idx, min, max)?, value(to, idx, min, max)?),
                None => {
                    let at = value(range, idx, min, max)?;
                    // `5/15` means from 5 to the end, every 15.
                    (at, if part.contains('/') { max } else { at })
                }
            }
        };
        if from > to {
            return Err(format!("the range `{range}` runs backwards"));
        }
        let mut at = from;
        while at <= to {
            mask |= 1 << at;
            at += step;
        }
    }
    Ok(mask)
}

fn value(text: &str, idx: usize, min: u32, max: u32) -> Result<u32, String> {
    let names: &[&str] = match idx {
        3 => &MONTHS,
        4 => &DAYS,
        _ => &[],
    };
    if let Some(position) = names.iter().position(|it| it.eq_ignore_ascii_case(text)) {
        return Ok(position as u32 + if idx == 3 { 1 } else { 0 });
    }
    match text.parse::<u32>() {
        Ok(it) if (min..=max).contains(&it) => Ok(it),
        _ => Err(format!("`{text}` is not a value from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(iso: &str) -> SystemTime {
        let ticks = Timestamp::parse_iso(iso).expect("a date").0;
        UNIX_EPOCH + Duration::from_secs((ticks / 10_000_000) as u64)
    }

    fn next(expression: &str, after: &str) -> String {
        let schedule = RunSchedule::parse(expression).expect("valid");
        let next = schedule.next_after(at(after)).expect("a next run");
        Timestamp::from_system_time(next).to_iso()
    }

    #[test]
    fn next_runs_follow_cron_rules() {
        assert_eq!(
            next("* * * * *", "2026-12-05T10:00:30Z"),
            "2026-12-05T10:01:00.0000000Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-12-05T10:15:00Z"),
            "2026-12-05T10:30:00.0000000Z"
        );
        assert_eq!(
            next("0 3 * * *", "2026-12-05T10:00:00Z"),
            "2026-12-06T03:00:00.0000000Z"
        );
        assert_eq!(
            next("30 2 1 * *", "2026-12-05T10:00:00Z"),
            "2027-01-01T02:30:00.0000000Z"
        );
        // 2026-12-05 is a Saturday: the next Monday (1) and Sunday (7 = 0).
        assert_eq!(
            next("0 0 * * MON", "2026-12-05T10:00:00Z"),
            "2026-12-07T00:00:00.0000000Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-05T10:00:00Z"),
            "2026-12-06T00:00:00.0000000Z"
        );
        // Both day fields restricted: either matches (the 10th, or a Sunday).
        assert_eq!(
            next("0 0 10 * 0", "2026-12-05T10:00:00Z"),
            "2026-12-06T00:00:00.0000000Z"
        );
        assert_eq!(
            next("0 12 29 feb *", "2026-12-05T10:00:00Z"),
            "2028-02-29T12:00:00.0000000Z"
        );
        assert_eq!(
            next("5-10/5,45 9-17 * * 1-5", "2026-12-07T09:06:00Z"),
            "2026-12-07T09:10:00.0000000Z"
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (expression, expected) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute `60`"),
            ("* 24 * * *", "hour `24`"),
            ("* * 0 * *", "day of month `0`"),
            ("* * * 13 *", "month `13`"),
            ("* * * * 8", "day of week `8`"),
            ("*/0 * * * *", "step"),
            ("10-5 * * * *", "backwards"),
            ("every * * * *", "minute `every`"),
        ] {
            let error = RunSchedule::parse(expression).expect_err(expression);
            assert!(error.contains(expected), "{expression}: {error}");
        }
        let never = RunSchedule::parse("0 0 31 2 *").expect("valid");
        assert_eq!(never.next_after(at("2026-12-05T10:00:00Z")), None);
    }
}
