//! UTC timestamps with microsecond precision, in Glance's text form
//! (`YYYY-MM-DDTHH:MM:SS.ffffff`, no zone suffix), without a date-time crate.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time: microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an ISO 8601 date-time")
    }
}

impl std::error::Error for ParseError {}

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    /// Builds a timestamp from microseconds since the epoch.
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// The calendar year of this timestamp.
    pub fn year(self) -> i64 {
        civil_from_days(self.0.div_euclid(MICROS_PER_SEC * SECS_PER_DAY)).0
    }

    /// Parses ISO 8601 as Glance accepts it: a date (`2011-04-12`), optionally followed by `T` or a
    /// space and `HH:MM[:SS[.fraction]]`, optionally followed by `Z` or an offset (`+02:00`,
    /// `-0530`). A time without a zone is UTC. The result is normalised to UTC.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let b = s.trim().as_bytes();
        let mut p = Cursor { b, i: 0 };
        let year = p.digits(4)?;
        p.expect(b'-')?;
        let month = p.digits(2)?;
        p.expect(b'-')?;
        let day = p.digits(2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(ParseError);
        }
        let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
        let mut offset_secs = 0;
        if p.more() {
            if !(p.eat(b'T') || p.eat(b't') || p.eat(b' ')) {
                return Err(ParseError);
            }
            hour = p.digits(2)?;
            p.expect(b':')?;
            minute = p.digits(2)?;
            if p.eat(b':') {
                second = p.digits(2)?;
                if p.eat(b'.') || p.eat(b',') {
                    let start = p.i;
                    let mut scale = 100_000;
                    while let Some(d) = p.digit() {
                        micros += d * scale;
                        scale /= 10;
                    }
                    if p.i == start {
                        return Err(ParseError);
                    }
                }
            }
            if hour > 23 || minute > 59 || second > 59 {
                return Err(ParseError);
            }
            if p.eat(b'Z') || p.eat(b'z') {
            } else if let Some(sign) = p.peek().filter(|c| *c == b'+' || *c == b'-') {
                p.i += 1;
                let oh = p.digits(2)?;
                p.eat(b':');
                let om = p.digits(2)?;
                if oh > 23 || om > 59 {
                    return Err(ParseError);
                }
                offset_secs = (oh * 3600 + om * 60) * if sign == b'-' { -1 } else { 1 };
            }
        }
        if p.more() {
            return Err(ParseError);
        }
        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
        let t = Timestamp(secs * MICROS_PER_SEC + micros);
        // An offset can carry 9999-12-31 into year 10000, which the 4-digit format cannot write
        // back (found by the registry_image_body fuzz target's author).
        if !(0..=9999).contains(&t.year()) {
            return Err(ParseError);
        }
        Ok(t)
    }
}

impl Timestamp {
    /// The text [`Display`](fmt::Display) writes, in a fixed buffer and without the formatting
    /// machinery (every record shown formats two or three); `None` outside the years 0–9999,
    /// whose text is not 26 bytes long.
    pub fn glance_bytes(&self) -> Option<[u8; 26]> {
        let days = self.0.div_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let rem = self.0.rem_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let secs = rem / MICROS_PER_SEC;
        let mut out = *b"0000-00-00T00:00:00.000000";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, secs / 3600);
        put(14, 2, secs / 60 % 60);
        put(17, 2, secs % 60);
        put(20, 6, rem % MICROS_PER_SEC);
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    /// Glance's format: `%Y-%m-%dT%H:%M:%S.%f`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.glance_bytes() {
            if let Ok(text) = std::str::from_utf8(&text) {
                return f.write_str(text);
            }
        }
        Formatted(*self).fmt(f)
    }
}

/// A timestamp written through the formatting machinery: any year, and the reference the fast
/// path is tested against.
struct Formatted(Timestamp);

impl fmt::Display for Formatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0 .0.div_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let rem = self.0 .0.rem_euclid(MICROS_PER_SEC * SECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = rem / MICROS_PER_SEC;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
            y,
            m,
            d,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            rem % MICROS_PER_SEC
        )
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn more(&self) -> bool {
        self.i < self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(ParseError)
        }
    }
    fn digit(&mut self) -> Option<i64> {
        let c = self.peek().filter(u8::is_ascii_digit)?;
        self.i += 1;
        Some(i64::from(c - b'0'))
    }
    fn digits(&mut self, n: usize) -> Result<i64, ParseError> {
        let mut v = 0;
        for _ in 0..n {
            v = v * 10 + self.digit().ok_or(ParseError)?;
        }
        Ok(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> String {
        Timestamp::parse(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "ERR".into())
    }

    #[test]
    fn formats_in_glance_style() {
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000"
        );
        assert_eq!(
            Timestamp::from_micros(1_462_916_115_123_456).to_string(),
            "2016-05-10T21:35:15.123456"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999"
        );
    }

    #[test]
    fn the_fixed_buffer_text_is_the_formatted_text() {
        let formatted = |t: Timestamp| Formatted(t).to_string();
        let year_10000 = Timestamp::parse("9999-12-31T23:59:59.999999").unwrap().0 + 1;
        let year_0 = Timestamp::parse("0000-01-01T00:00:00").unwrap().0;
        for micros in [0, -1, 1, 1_462_916_115_123_456, year_0, year_10000 - 1]
            .into_iter()
            .chain((0..2000).map(|i| i * 86_399_999_937 + 12_345))
        {
            let t = Timestamp::from_micros(micros);
            let fast = t.glance_bytes().expect("a year within 0-9999");
            assert_eq!(std::str::from_utf8(&fast).unwrap(), formatted(t));
            assert_eq!(t.to_string(), formatted(t));
        }
        for micros in [year_10000, year_0 - 1, i64::MIN / 2, i64::MAX / 2] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(t.glance_bytes(), None, "{micros}");
            assert_eq!(t.to_string(), formatted(t));
        }
    }

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            ts("2016-05-10T21:35:15.000000"),
            "2016-05-10T21:35:15.000000"
        );
        assert_eq!(ts("2016-05-10T21:35:15"), "2016-05-10T21:35:15.000000");
        assert_eq!(ts("2016-05-10 21:35"), "2016-05-10T21:35:00.000000");
        assert_eq!(ts("2016-05-10"), "2016-05-10T00:00:00.000000");
        assert_eq!(ts("2016-05-10T21:35:15.5Z"), "2016-05-10T21:35:15.500000");
        assert_eq!(
            ts("2016-05-10T21:35:15+02:00"),
            "2016-05-10T19:35:15.000000"
        );
        assert_eq!(ts("2016-05-10T21:35:15-0130"), "2016-05-10T23:05:15.000000");
        assert_eq!(ts("2000-02-29T00:00:00"), "2000-02-29T00:00:00.000000");
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "x",
            "2016-5-10",
            "2016-13-01",
            "2016-02-30",
            "2015-02-29",
            "2016-05-10T25:00",
            "2016-05-10T21:35:15.",
            "2016-05-10T21:35:15+2",
            "2016-05-10Tx",
            "2016-05-10T21:35junk",
        ] {
            assert_eq!(ts(bad), "ERR", "{bad:?} should be rejected");
        }
    }

    #[test]
    fn offsets_cannot_leave_the_four_digit_years() {
        assert_eq!(ts("9999-12-31T23:59-0100"), "ERR");
        assert_eq!(ts("0000-01-01T00:00+0100"), "ERR");
        assert_eq!(ts("9999-12-31T23:59+0100"), "9999-12-31T22:59:00.000000");
    }

    #[test]
    fn display_then_parse_round_trips() {
        for micros in [
            0,
            1,
            -1,
            951_782_400_000_000,
            4_102_444_799_999_999,
            -2_208_988_800_000_000,
        ] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
        }
    }
}
