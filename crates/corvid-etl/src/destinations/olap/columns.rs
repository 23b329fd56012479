//! The types of an OLAP file's columns: which type a column of script values gets, and each
//! value written in a column's type.
//!
//! A file's first columns are Corvid's own: the document id column (`_id` unless the task's
//! `DocumentIdColumn` says otherwise; STRING, not null), `_lastModifiedTime` (TIMESTAMP in
//! microseconds, UTC-adjusted, not null: the document's last modification, or for a delete
//! row the deletion time) and, when the task emits deletes, `_deleted` (BOOLEAN, not null,
//! false on every put row). The script's members follow in the order they are first seen
//! across the rows; a row without a member has null there.
//!
//! A script column's type is decided by the first batch written to the file, from the
//! batch's non-null values:
//! - all whole numbers (within ±2^53, as JavaScript has them) → INT64;
//! - all booleans → BOOLEAN;
//! - numbers with a fraction (or beyond ±2^53), alone or with whole numbers →
//!   DECIMAL(38, s) (Decimal128), where s is the most fractional digits of any value, when
//!   s ≤ 18 and every value fits in 38 digits at that scale; else DOUBLE. Decimals keep the
//!   number exactly as JavaScript prints it (`0.1` is 0.1, not 0.1000000000000000055…);
//! - all strings that are ISO-8601 date-times → TIMESTAMP (microseconds, UTC-adjusted).
//!   Accepted: `2024-01-02T03:04:05`, with a fraction of 1 to 9 digits (RavenDB writes 7),
//!   ending in `Z`, in an offset `+hh:mm`/`-hh:mm`, or in nothing (taken as UTC); and a plain
//!   date `2024-01-02` (its midnight UTC). Digits below the microsecond are dropped. A
//!   JavaScript `Date` reaches us as its JSON, a quoted ISO string, and counts as that string;
//! - other strings → STRING;
//! - objects and arrays → STRING holding their JSON text (`{"a":1}`): nested values are JSON
//!   text, not Parquet nested types;
//! - values of different kinds (strings and numbers, say) → STRING, each value as its text:
//!   numbers as written, booleans `true`/`false`, JSON as its text;
//! - a column with no non-null value in the first batch → STRING (nullable; every reader
//!   takes it, and any later value fits it as text).
//!
//! A later batch fits the file when every value can be written in the file's type without
//! loss: whole numbers into DECIMAL or DOUBLE, decimals with fewer fractional digits into a
//! larger scale (still within 38 digits), anything into STRING (as its text), null into
//! anything. A column the file lacks fits only when it is null in every row (a reader of the
//! file then sees what the batch said: nothing); one with a value does not fit, nor does a
//! value of another type (a string into INT64, a decimal with too many fractional digits).
//! The writer then refuses the batch and the caller starts a new file.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_schema::{DataType, TimeUnit};
use corvid_script::LoadedValue;
use corvid_store::Timestamp;

/// The precision of every DECIMAL column: the most a Decimal128 holds.
pub(crate) const DECIMAL_PRECISION: u8 = 38;
/// The largest scale a DECIMAL column gets; numbers with more fractional digits are DOUBLE.
pub(crate) const MAX_DECIMAL_SCALE: u8 = 18;
/// The time zone of TIMESTAMP columns: Parquet's "adjusted to UTC".
const UTC: &str = "UTC";

/// The type of a column in an OLAP file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Int64,
    Boolean,
    /// DECIMAL(38, scale).
    Decimal {
        scale: u8,
    },
    Double,
    /// Microseconds since the Unix epoch, UTC-adjusted.
    Timestamp,
    String,
}

impl ColumnType {
    /// Returns the type a new file gives a column holding `values`, or `None` when every value
    /// is null (the caller decides; a new file makes it STRING).
    pub(crate) fn infer(values: &[&LoadedValue]) -> Option<ColumnType> {
        let mut seen = SeenKinds::default();
        for value in values {
            seen.add(value);
        }
        seen.column_type()
    }

    /// The Arrow type the column is written as.
    pub(crate) fn data_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Decimal { scale } => {
                DataType::Decimal128(DECIMAL_PRECISION, scale_i8(scale))
            }
            ColumnType::Double => DataType::Float64,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::String => DataType::Utf8,
        }
    }

    /// Returns `values` as an array of this type, or `None` when one of them cannot be written
    /// in it without loss.
    pub(crate) fn array(self, values: &[&LoadedValue]) -> Option<ArrayRef> {
        let n_values = values.len();
        let array: ArrayRef = match self {
            ColumnType::Int64 => {
                let mut builder = Int64Builder::with_capacity(n_values);
                for value in values {
                    match value {
                        LoadedValue::Null => builder.append_null(),
                        LoadedValue::Int(it) => builder.append_value(*it),
                        _ => return None,
                    }
                }
                Arc::new(builder.finish())
            }
            ColumnType::Boolean => {
                let mut builder = BooleanBuilder::with_capacity(n_values);
                for value in values {
                    match value {
                        LoadedValue::Null => builder.append_null(),
                        LoadedValue::Bool(it) => builder.append_value(*it),
                        _ => return None,
                    }
                }
                Arc::new(builder.finish())
            }
            ColumnType::Decimal { scale } => {
                let mut builder =
                    Decimal128Builder::with_capacity(n_values).with_data_type(self.data_type());
                for value in values {
                    match value {
                        LoadedValue::Null => builder.append_null(),
                        LoadedValue::Int(it) => builder.append_value(int_unscaled(*it, scale)?),
                        LoadedValue::Number(text) => {
                            builder.append_value(DecimalText::parse(text)?.unscaled(scale)?);
                        }
                        _ => return None,
                    }
                }
                Arc::new(builder.finish())
            }
            ColumnType::Double => {
                let mut builder = Float64Builder::with_capacity(n_values);
                for value in values {
                    match value {
                        LoadedValue::Null => builder.append_null(),
                        LoadedValue::Int(it) => builder.append_value(int_as_f64(*it)?),
                        // The text is the shortest round-trip form of a double: parsing gives
                        // that double back exactly.
                        LoadedValue::Number(text) => builder.append_value(text.parse().ok()?),
                        _ => return None,
                    }
                }
                Arc::new(builder.finish())
            }
            ColumnType::Timestamp => {
                let mut builder =
                    TimestampMicrosecondBuilder::with_capacity(n_values).with_timezone(UTC);
                for value in values {
                    match ValueKind::of(value) {
                        ValueKind::Null => builder.append_null(),
                        ValueKind::Text(text) => builder.append_value(parse_timestamp(&text)?),
                        _ => return None,
                    }
                }
                Arc::new(builder.finish())
            }
            ColumnType::String => {
                let mut builder = StringBuilder::with_capacity(n_values, 16 * n_values);
                for value in values {
                    match value_text(value) {
                        Some(text) => builder.append_value(text),
                        None => builder.append_null(),
                    }
                }
                Arc::new(builder.finish())
            }
        };
        Some(array)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Int64 => f.write_str("Int64"),
            ColumnType::Boolean => f.write_str("Boolean"),
            ColumnType::Decimal { scale } => write!(f, "Decimal({DECIMAL_PRECISION},{scale})"),
            ColumnType::Double => f.write_str("Double"),
            ColumnType::Timestamp => f.write_str("Timestamp(Microsecond, UTC)"),
            ColumnType::String => f.write_str("String"),
        }
    }
}

/// Returns a Corvid timestamp (100-ns ticks) in microseconds, rounded down.
pub(crate) fn timestamp_micros(timestamp: Timestamp) -> i64 {
    timestamp.0.div_euclid(10)
}

/// Parses an ISO-8601 date-time (or a plain date) into microseconds since the Unix epoch, UTC;
/// returns `None` for anything else (see the module doc for what is accepted).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|it| it.iter().all(u8::is_ascii_digit))
    };
    let date_shape = digits_at(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits_at(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits_at(8..10);
    if !date_shape {
        return None;
    }
    let year: i64 = text[0..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..10].parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if bytes.len() == 10 {
        let ticks = Timestamp::parse_iso(&format!("{text}T00:00:00"))?;
        return Some(timestamp_micros(ticks));
    }
    let time_shape = bytes.get(10) == Some(&b'T')
        && digits_at(11..13)
        && bytes.get(13) == Some(&b':')
        && digits_at(14..16)
        && bytes.get(16) == Some(&b':')
        && digits_at(17..19);
    if !time_shape {
        return None;
    }
    let hour: u32 = text[11..13].parse().ok()?;
    let minute: u32 = text[14..16].parse().ok()?;
    let second: u32 = text[17..19].parse().ok()?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let n_digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if n_digits == 0 || n_digits > 9 {
            return None;
        }
        fraction = &after_dot[..n_digits];
        rest = &after_dot[n_digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        b"" | b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|it| it.is_ascii_digit()) =>
        {
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (hours * 60 + minutes)
        }
        _ => return None,
    };
    // corvid-store's parser does the calendar arithmetic (it reads at most 7 fractional
    // digits, RavenDB's ticks); the shape and ranges were checked above.
    let fraction_ticks = &fraction[..fraction.len().min(7)];
    // The text up to the last digit read is what corvid-store parses: `.` and the fraction
    // follow the seconds, so no copy is needed.
    let parsed_len = if fraction_ticks.is_empty() {
        19
    } else {
        20 + fraction_ticks.len()
    };
    let local = Timestamp::parse_iso(&text[..parsed_len])?;
    Some(timestamp_micros(local) - offset_minutes * 60 * 1_000_000)
}

/// Returns a value as a STRING column holds it, or `None` for null.
pub(crate) fn value_text(value: &LoadedValue) -> Option<Cow<'_, str>> {
    Some(match value {
        LoadedValue::Null => return None,
        LoadedValue::Bool(true) => Cow::Borrowed("true"),
        LoadedValue::Bool(false) => Cow::Borrowed("false"),
        LoadedValue::Int(it) => Cow::Owned(it.to_string()),
        LoadedValue::Number(text) | LoadedValue::String(text) => Cow::Borrowed(text.as_str()),
        LoadedValue::Json(json) => match json_string(json) {
            Some(text) => Cow::Owned(text),
            None => Cow::Borrowed(json.as_str()),
        },
    })
}

/// What kinds of values a column holds, for [`ColumnType::infer`].
#[derive(Debug, Default)]
struct SeenKinds {
    bool: bool,
    int: bool,
    /// A number with a fraction or beyond ±2^53.
    number: bool,
    /// A number that is not plain decimal text (never from corvid-script; DOUBLE if any).
    number_not_decimal: bool,
    text: bool,
    /// A string that is not a date-time.
    text_not_timestamp: bool,
    /// An object or an array.
    json: bool,
    /// The most fractional digits of any number.
    max_scale: usize,
    /// The most integer digits of any number, leading zeros left out.
    max_integer_digits: usize,
}

impl SeenKinds {
    fn add(&mut self, value: &LoadedValue) {
        match ValueKind::of(value) {
            ValueKind::Null => {}
            ValueKind::Bool => self.bool = true,
            ValueKind::Int(it) => {
                self.int = true;
                self.max_integer_digits = self.max_integer_digits.max(n_digits(it));
            }
            ValueKind::Number(text) => {
                self.number = true;
                match DecimalText::parse(text) {
                    Some(decimal) => {
                        self.max_scale = self.max_scale.max(decimal.fraction.len());
                        self.max_integer_digits =
                            self.max_integer_digits.max(decimal.integer.len());
                    }
                    None => self.number_not_decimal = true,
                }
            }
            ValueKind::Text(text) => {
                self.text = true;
                // Once one string is not a date-time the column is STRING: parse no more.
                if !self.text_not_timestamp && parse_timestamp(&text).is_none() {
                    self.text_not_timestamp = true;
                }
            }
            ValueKind::Json => self.json = true,
        }
    }

    fn column_type(&self) -> Option<ColumnType> {
        let numeric = self.int || self.number;
        let n_kinds = [self.bool, numeric, self.text, self.json]
            .iter()
            .filter(|it| **it)
            .count();
        if n_kinds == 0 {
            return None;
        }
        if n_kinds > 1 || self.json {
            return Some(ColumnType::String);
        }
        if self.bool {
            return Some(ColumnType::Boolean);
        }
        if self.text {
            return Some(if self.text_not_timestamp {
                ColumnType::String
            } else {
                ColumnType::Timestamp
            });
        }
        if !self.number {
            return Some(ColumnType::Int64);
        }
        let fits_decimal = !self.number_not_decimal
            && self.max_scale <= usize::from(MAX_DECIMAL_SCALE)
            && self.max_integer_digits + self.max_scale <= usize::from(DECIMAL_PRECISION);
        Some(match u8::try_from(self.max_scale) {
            Ok(scale) if fits_decimal => ColumnType::Decimal { scale },
            _ => ColumnType::Double,
        })
    }
}

/// A value as type inference sees it.
enum ValueKind<'a> {
    Null,
    Bool,
    Int(i64),
    Number(&'a str),
    /// A string, or the JSON of a string (how a `Date` arrives).
    Text(Cow<'a, str>),
    /// An object or an array.
    Json,
}

impl ValueKind<'_> {
    fn of(value: &LoadedValue) -> ValueKind<'_> {
        match value {
            LoadedValue::Null => ValueKind::Null,
            LoadedValue::Bool(_) => ValueKind::Bool,
            LoadedValue::Int(it) => ValueKind::Int(*it),
            LoadedValue::Number(text) => ValueKind::Number(text),
            LoadedValue::String(text) => ValueKind::Text(Cow::Borrowed(text)),
            LoadedValue::Json(json) => match json_string(json) {
                Some(text) => ValueKind::Text(Cow::Owned(text)),
                None => ValueKind::Json,
            },
        }
    }
}

/// A number's plain decimal text (`-12.034`), split into its digits.
#[derive(Debug, PartialEq, Eq)]
struct DecimalText<'a> {
    negative: bool,
    /// The integer part without leading zeros (empty for `0.5`).
    integer: &'a str,
    /// The fractional part without trailing zeros.
    fraction: &'a str,
}

impl<'a> DecimalText<'a> {
    /// Splits `-?digits(.digits)?`; returns `None` for anything else (an exponent, say).
    fn parse(text: &'a str) -> Option<DecimalText<'a>> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (unsigned, None),
        };
        let all_digits = |it: &str| !it.is_empty() && it.bytes().all(|byte| byte.is_ascii_digit());
        if !all_digits(integer) || fraction.is_some_and(|it| !all_digits(it)) {
            return None;
        }
        Some(DecimalText {
            negative,
            integer: integer.trim_start_matches('0'),
            fraction: fraction.unwrap_or("").trim_end_matches('0'),
        })
    }

    /// The number times 10^scale, or `None` when it has more fractional digits than `scale`
    /// or does not fit in 38 digits.
    fn unscaled(&self, scale: u8) -> Option<i128> {
        let scale = usize::from(scale);
        if self.fraction.len() > scale
            || self.integer.len() + scale > usize::from(DECIMAL_PRECISION)
        {
            return None;
        }
        // At most 38 digits: always within an i128.
        let mut unscaled: i128 = 0;
        for byte in self.integer.bytes().chain(self.fraction.bytes()) {
            unscaled = unscaled * 10 + i128::from(byte - b'0');
        }
        unscaled *= 10i128.pow((scale - self.fraction.len()) as u32);
        Some(if self.negative { -unscaled } else { unscaled })
    }
}

/// A whole number times 10^scale, or `None` when that needs more than 38 digits.
fn int_unscaled(value: i64, scale: u8) -> Option<i128> {
    if n_digits(value) + usize::from(scale) > usize::from(DECIMAL_PRECISION) {
        return None;
    }
    Some(i128::from(value) * 10i128.pow(u32::from(scale)))
}

/// A whole number as a double, or `None` beyond ±2^53 where a double would round it.
fn int_as_f64(value: i64) -> Option<f64> {
    const EXACT: u64 = 1 << 53;
    if value.unsigned_abs() > EXACT {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(value as f64)
}

/// The number of decimal digits of a whole number, leading zeros left out (0 has none).
fn n_digits(value: i64) -> usize {
    match value.unsigned_abs().checked_ilog10() {
        Some(log) => log as usize + 1,
        None => 0,
    }
}

/// The string a JSON text holds, when it is a JSON string (a `Date`, a `String` object).
fn json_string(json: &str) -> Option<String> {
    if !json.starts_with('"') {
        return None;
    }
    serde_json::from_str(json).ok()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A scale as Arrow spells it; scales are at most [`MAX_DECIMAL_SCALE`].
fn scale_i8(scale: u8) -> i8 {
    debug_assert!(scale <= MAX_DECIMAL_SCALE);
    i8::try_from(scale).unwrap_or(i8::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn int(value: i64) -> LoadedValue {
        LoadedValue::Int(value)
    }

    pub(crate) fn number(text: &str) -> LoadedValue {
        LoadedValue::Number(text.to_owned())
    }

    pub(crate) fn string(text: &str) -> LoadedValue {
        LoadedValue::String(text.to_owned())
    }

    pub(crate) fn json(text: &str) -> LoadedValue {
        LoadedValue::Json(text.to_owned())
    }

    /// The inferred type of a column holding `values`, as the test endpoint shows it.
    fn check_infer(values: &[LoadedValue], expect: &str) {
        let refs: Vec<&LoadedValue> = values.iter().collect();
        let inferred =
            ColumnType::infer(&refs).map_or("(all null)".to_owned(), |it| it.to_string());
        assert_eq!(inferred, expect, "values {values:?}");
    }

    #[test]
    fn infers_each_type_from_the_non_null_values() {
        check_infer(&[int(1), LoadedValue::Null, int(-7)], "Int64");
        check_infer(
            &[LoadedValue::Bool(true), LoadedValue::Bool(false)],
            "Boolean",
        );
        check_infer(&[int(1), number("2.5"), number("-0.125")], "Decimal(38,3)");
        check_infer(&[number("0.1")], "Decimal(38,1)");
        check_infer(&[number("18014398509481984")], "Decimal(38,0)");
        check_infer(&[number("0.0000000000000000001")], "Double");
        check_infer(&[number(&format!("{}.5", "9".repeat(37)))], "Decimal(38,1)");
        check_infer(&[number(&format!("{}.5", "9".repeat(38)))], "Double");
        check_infer(&[number("1e300")], "Double");
        check_infer(
            &[string("2024-01-02T03:04:05.1234567Z"), string("2024-01-02")],
            "Timestamp(Microsecond, UTC)",
        );
        check_infer(
            &[json("\"2024-01-02T03:04:05.123Z\"")],
            "Timestamp(Microsecond, UTC)",
        );
        check_infer(&[string("2024-01-02T03:04:05Z"), string("soon")], "String");
        check_infer(&[json("{\"a\":1}"), json("[1,2]")], "String");
        check_infer(&[string("a"), int(1)], "String");
        check_infer(&[int(1), LoadedValue::Bool(true)], "String");
        check_infer(&[LoadedValue::Null, LoadedValue::Null], "(all null)");
        check_infer(&[], "(all null)");
    }

    #[test]
    fn parses_iso_date_times_as_microseconds_utc() {
        // 2024-01-02T03:04:05Z is 1704164645 seconds after the epoch.
        let base = 1_704_164_645_000_000i64;
        let check = |text: &str, expect: Option<i64>| {
            assert_eq!(parse_timestamp(text), expect, "{text}");
        };
        check("2024-01-02T03:04:05Z", Some(base));
        check("2024-01-02T03:04:05", Some(base));
        check("2024-01-02T03:04:05.1234567Z", Some(base + 123_456));
        check("2024-01-02T03:04:05.123456789Z", Some(base + 123_456));
        check(
            "2024-01-02T03:04:05.5+01:30",
            Some(base + 500_000 - 90 * 60 * 1_000_000),
        );
        check(
            "2024-01-02T03:04:05-02:00",
            Some(base + 2 * 3600 * 1_000_000),
        );
        check(
            "2024-01-02",
            Some(base - (3 * 3600 + 4 * 60 + 5) * 1_000_000),
        );
        check("1969-12-31T23:59:59.9999999Z", Some(-1));
        check("2024-02-29", Some(1_709_164_800_000_000));
        check("2023-02-29", None);
        check("2024-13-01", None);
        check("2024-01-02T24:00:00Z", None);
        check("2024-01-02T03:04:60Z", None);
        check("2024-01-02T03:04Z", None);
        check("2024-01-02T03:04:05.Z", None);
        check("2024-01-02T03:04:05.1234567890Z", None);
        check("2024-01-02T03:04:05+0100", None);
        check("2024-01-02 03:04:05", None);
        check("2024-1-2", None);
        check("", None);
        check("2024-01-02T03:04:05Zjunk", None);
    }

    #[test]
    fn decimals_keep_their_digits_and_refuse_what_does_not_fit() {
        let unscaled = |text: &str, scale: u8| DecimalText::parse(text)?.unscaled(scale);
        assert_eq!(unscaled("12.5", 2), Some(1250));
        assert_eq!(unscaled("-0.125", 3), Some(-125));
        assert_eq!(unscaled("007.50", 1), Some(75));
        assert_eq!(unscaled("0.125", 2), None);
        assert_eq!(unscaled(&"9".repeat(38), 0), Some(10i128.pow(38) - 1));
        assert_eq!(unscaled(&"9".repeat(37), 2), None);
        assert_eq!(DecimalText::parse("1e5"), None);
        assert_eq!(DecimalText::parse("-"), None);
        assert_eq!(DecimalText::parse("1."), None);
        assert_eq!(DecimalText::parse(".5"), None);
        assert_eq!(int_unscaled(-42, 3), Some(-42_000));
        assert_eq!(
            int_unscaled(i64::MAX, 18),
            Some(i128::from(i64::MAX) * 10i128.pow(18))
        );
        assert_eq!(int_unscaled(i64::MAX, 20), None);
        assert_eq!(int_as_f64(1 << 53), Some(9_007_199_254_740_992.0));
        assert_eq!(int_as_f64((1 << 53) + 1), None);
    }

    #[test]
    fn arrays_refuse_values_that_do_not_fit_the_type() {
        let fits = |column_type: ColumnType, values: &[LoadedValue]| {
            let refs: Vec<&LoadedValue> = values.iter().collect();
            column_type.array(&refs).is_some()
        };
        assert!(fits(
            ColumnType::Decimal { scale: 2 },
            &[int(3), number("1.5"), LoadedValue::Null]
        ));
        assert!(!fits(ColumnType::Decimal { scale: 2 }, &[number("1.125")]));
        assert!(fits(
            ColumnType::Double,
            &[int(3), number("0.0000000000000000001")]
        ));
        assert!(!fits(ColumnType::Int64, &[number("1.5")]));
        assert!(!fits(ColumnType::Int64, &[string("1")]));
        assert!(!fits(ColumnType::Boolean, &[int(1)]));
        assert!(!fits(ColumnType::Timestamp, &[string("yesterday")]));
        assert!(fits(
            ColumnType::Timestamp,
            &[json("\"2024-01-02T03:04:05.123Z\"")]
        ));
        assert!(fits(
            ColumnType::String,
            &[
                int(1),
                number("2.5"),
                LoadedValue::Bool(false),
                json("{}"),
                string("x")
            ]
        ));
    }

    #[test]
    fn values_as_text_are_as_written() {
        let text = |value: &LoadedValue| value_text(value).map(Cow::into_owned);
        assert_eq!(text(&int(-3)), Some("-3".to_owned()));
        assert_eq!(text(&number("0.1")), Some("0.1".to_owned()));
        assert_eq!(text(&LoadedValue::Bool(true)), Some("true".to_owned()));
        assert_eq!(text(&json("{\"a\":[1]}")), Some("{\"a\":[1]}".to_owned()));
        assert_eq!(text(&json("\"2024-01-02\"")), Some("2024-01-02".to_owned()));
        assert_eq!(text(&LoadedValue::Null), None);
    }
}
