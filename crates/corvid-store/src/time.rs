//! Timestamps as RavenDB writes them: UTC, seven fractional digits (`2026-11-23T19:05:50.2788050Z`).

use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time, in 100-nanosecond ticks since the Unix epoch (RavenDB's resolution).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Returns the current time.
    pub fn now() -> Timestamp {
        let ticks = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(it) => (it.as_nanos() / 100) as i64,
            Err(it) => -((it.duration().as_nanos() / 100) as i64),
        };
        Timestamp(ticks)
    }

    /// The whole seconds of `time` (the Unix epoch for a time before it).
    pub fn from_system_time(time: SystemTime) -> Timestamp {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |it| it.as_secs());
        Timestamp(secs as i64 * 10_000_000)
    }

    /// Its UTC calendar date and time of day, to the second.
    pub fn utc(self) -> UtcTime {
        let secs = self.0.div_euclid(10_000_000);
        let days = secs.div_euclid(86_400);
        let sec_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: (sec_of_day / 3600) as u32,
            minute: (sec_of_day / 60 % 60) as u32,
            second: (sec_of_day % 60) as u32,
            // 1970-01-01 was a Thursday.
            weekday: ((days + 3).rem_euclid(7)) as u32,
        }
    }

    /// Formats as ISO 8601 with seven fractional digits and a `Z`.
    pub fn to_iso(self) -> String {
        let ticks_per_sec = 10_000_000i64;
        let secs = self.0.div_euclid(ticks_per_sec);
        let frac = self.0.rem_euclid(ticks_per_sec);
        let days = secs.div_euclid(86_400);
        let sec_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:07}Z",
            sec_of_day / 3600,
            (sec_of_day / 60) % 60,
            sec_of_day % 60
        )
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fffffff][Z]`; returns `None` for anything else.
    pub fn parse_iso(text: &str) -> Option<Timestamp> {
        let text = text.strip_suffix('Z').unwrap_or(text);
        let (date, time) = text.split_once('T')?;
        let mut date_parts = date.split('-');
        let year: i64 = date_parts.next()?.parse().ok()?;
        let month: u32 = date_parts.next()?.parse().ok()?;
        let day: u32 = date_parts.next()?.parse().ok()?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, frac),
            None => (time, ""),
        };
        let mut time_parts = hms.split(':');
        let hour: i64 = time_parts.next()?.parse().ok()?;
        let minute: i64 = time_parts.next()?.parse().ok()?;
        let second: i64 = time_parts.next()?.parse().ok()?;
        let in_range = (0..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && (0..24).contains(&hour)
            && (0..60).contains(&minute)
            && (0..=60).contains(&second);
        if !in_range || time_parts.next().is_some() {
            return None;
        }
        let mut frac_ticks = 0i64;
        for (idx, digit) in frac.chars().take(7).enumerate() {
            let digit = digit.to_digit(10)? as i64;
            frac_ticks += digit * 10i64.pow(6 - idx as u32);
        }
        // With the ranges checked above none of this can overflow.
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(Timestamp(secs * 10_000_000 + frac_ticks))
    }
}

/// A UTC calendar date and time of day (what HTTP and AWS dates are made of).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 is Monday, 6 Sunday.
    pub weekday: u32,
}

// Howard Hinnant's civil-from-days algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_seven_fraction_digits() {
        assert_eq!(Timestamp(0).to_iso(), "1970-01-01T00:00:00.0000000Z");
        let ts = Timestamp::parse_iso("2026-11-23T19:05:50.2788050Z").unwrap();
        assert_eq!(ts.to_iso(), "2026-11-23T19:05:50.2788050Z");
        let leap = Timestamp::parse_iso("2024-02-29T23:59:59.1Z").unwrap();
        assert_eq!(leap.to_iso(), "2024-02-29T23:59:59.1000000Z");
    }

    #[test]
    fn utc_parts_have_the_weekday() {
        let at =
            Timestamp::from_system_time(UNIX_EPOCH + std::time::Duration::from_secs(1_764_958_962));
        let utc = at.utc();
        assert_eq!((utc.year, utc.month, utc.day), (2025, 12, 5));
        assert_eq!(
            (utc.hour, utc.minute, utc.second, utc.weekday),
            (18, 22, 42, 4)
        );
        assert_eq!(Timestamp(0).utc().weekday, 3, "1970-01-01 was a Thursday");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse_iso("9999999999999-01-01T00:00:00.0000000Z").is_none());
        assert!(Timestamp::parse_iso("2024-01-01T00:00:99999999999999999Z").is_none());
        assert!(Timestamp::parse_iso("2024-01-01T-5:00:00Z").is_none());
        assert!(Timestamp::parse_iso("yesterday").is_none());
        assert!(Timestamp::parse_iso("2024-13-01T00:00:00Z").is_none());
        assert!(Timestamp::parse_iso("").is_none());
    }

    #[test]
    fn now_round_trips() {
        let now = Timestamp::now();
        assert_eq!(Timestamp::parse_iso(&now.to_iso()), Some(now));
    }
}
