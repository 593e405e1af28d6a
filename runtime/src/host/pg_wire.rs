//! PostgreSQL's binary wire forms of the types `spin:postgres@4.0.0` carries that tokio-postgres
//! has no Rust type for here: numeric (as base-10 text, every digit kept), date, time,
//! timestamp, timestamptz, interval, and ranges of int4, int8 and numeric.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_SECONDS: i64 = 946_684_800;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A parameter already in its wire form, for a parameter of type `ty` only: any other type is
/// refused when the statement binds it, rather than sent bytes the server would misread.
#[derive(Debug)]
pub struct Wire {
    ty: Type,
    bytes: Vec<u8>,
}

impl ToSql for Wire {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != self.ty {
            return Err(format!("a {} value cannot be a {ty} parameter", self.ty).into());
        }
        out.put_slice(&self.bytes);
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// A numeric, as base-10 text (`-12.50`, `NaN`).
#[derive(Debug, Clone, PartialEq)]
pub struct Numeric(pub String);

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.put_slice(&encode_numeric(&self.0)?);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode_numeric(raw).map(Numeric)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// PostgreSQL's numeric wire form of the decimal `text`: base-10,000 digit groups around the
/// point, with the number of digits after it kept as the display scale.
pub fn encode_numeric(text: &str) -> Result<Vec<u8>, BoxError> {
    let text = text.trim();
    let mut out = Vec::new();
    let special = match text.to_ascii_lowercase().as_str() {
        "nan" => Some(0xC000u16),
        "infinity" | "+infinity" => Some(0xD000),
        "-infinity" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        for field in [0u16, 0, sign, 0] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        return Ok(out);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !decimal(int) || !decimal(frac) {
        return Err(format!("`{text}` is not a decimal number").into());
    }
    let scale = u16::try_from(frac.len())
        .ok()
        .filter(|&scale| scale <= 0x3FFF)
        .ok_or("too many digits after the point")?;
    let int = int.trim_start_matches('0');
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = int
        .as_bytes()
        .chunks(4)
        .chain(frac.as_bytes().chunks(4))
        .map(|group| {
            group
                .iter()
                .fold(0i16, |n, digit| n * 10 + i16::from(digit - b'0'))
        })
        .collect();
    let mut weight =
        i16::try_from(int.len() / 4).map_err(|_| "too many digits before the point")? - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    let count = i16::try_from(groups.len()).map_err(|_| "too many digits")?;
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Ok(out)
}

/// The decimal text of PostgreSQL's numeric wire form, with its display scale.
pub fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let field = |i: usize| -> Result<[u8; 2], BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| "malformed numeric".into())
    };
    let count = i16::from_be_bytes(field(0)?);
    let weight = i16::from_be_bytes(field(1)?);
    let sign = u16::from_be_bytes(field(2)?);
    let scale = u16::from_be_bytes(field(3)?);
    match sign {
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        _ => {}
    }
    let groups = (0..usize::try_from(count).map_err(|_| "malformed numeric")?)
        .map(|i| Ok(i16::from_be_bytes(field(4 + i)?)))
        .collect::<Result<Vec<i16>, BoxError>>()?;
    let group = |index: i32| -> i16 {
        usize::try_from(index)
            .ok()
            .and_then(|i| groups.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for index in 0..=i32::from(weight) {
            let _ = if index == 0 {
                write!(text, "{}", group(index))
            } else {
                write!(text, "{:04}", group(index))
            };
        }
    }
    if scale > 0 {
        let mut frac = String::new();
        for k in 1..=(i32::from(scale) + 3) / 4 {
            let _ = write!(frac, "{:04}", group(i32::from(weight) + k));
        }
        frac.truncate(usize::from(scale));
        text.push('.');
        text.push_str(&frac);
    }
    Ok(text)
}

/// Days from 2000-01-01 to the civil date `(year, month, day)`.
pub fn days_from_date(year: i32, month: u8, day: u8) -> Result<i32, BoxError> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("{year}-{month}-{day} is not a date").into());
    }
    // Howard Hinnant's days-from-civil, shifted from 1970 to 2000 (10,957 days).
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 - 10_957;
    i32::try_from(days).map_err(|_| "the date is out of range".into())
}

/// Microseconds since midnight of `(hour, minute, second, nanosecond)`.
pub fn micros_from_time(hour: u8, minute: u8, second: u8, nanos: u32) -> Result<i64, BoxError> {
    if hour > 24 || minute > 59 || second > 60 || nanos >= 1_000_000_000 {
        return Err(format!("{hour}:{minute}:{second}.{nanos:09} is not a time").into());
    }
    Ok(
        ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1_000_000
            + i64::from(nanos / 1000),
    )
}

/// A date parameter.
pub fn date(year: i32, month: u8, day: u8) -> Result<Wire, BoxError> {
    Ok(Wire {
        ty: Type::DATE,
        bytes: days_from_date(year, month, day)?.to_be_bytes().to_vec(),
    })
}

/// A time (without time zone) parameter.
pub fn time(hour: u8, minute: u8, second: u8, nanos: u32) -> Result<Wire, BoxError> {
    Ok(Wire {
        ty: Type::TIME,
        bytes: micros_from_time(hour, minute, second, nanos)?
            .to_be_bytes()
            .to_vec(),
    })
}

/// A timestamp (without time zone) parameter.
pub fn datetime(
    (year, month, day, hour, minute, second, nanos): (i32, u8, u8, u8, u8, u8, u32),
) -> Result<Wire, BoxError> {
    let micros = i64::from(days_from_date(year, month, day)?) * MICROS_PER_DAY
        + micros_from_time(hour, minute, second, nanos)?;
    Ok(Wire {
        ty: Type::TIMESTAMP,
        bytes: micros.to_be_bytes().to_vec(),
    })
}

/// A timestamptz parameter: seconds since the Unix epoch.
pub fn timestamp(unix_seconds: i64) -> Result<Wire, BoxError> {
    let micros = unix_seconds
        .checked_sub(POSTGRES_EPOCH_SECONDS)
        .and_then(|seconds| seconds.checked_mul(1_000_000))
        .ok_or("the timestamp is out of range")?;
    Ok(Wire {
        ty: Type::TIMESTAMPTZ,
        bytes: micros.to_be_bytes().to_vec(),
    })
}

/// Seconds since the Unix epoch of a timestamptz's wire form (microseconds since 2000).
pub fn unix_seconds(raw: &[u8]) -> Option<i64> {
    let micros = i64::from_be_bytes(raw.try_into().ok()?);
    Some(micros.div_euclid(1_000_000) + POSTGRES_EPOCH_SECONDS)
}

/// An interval parameter: microseconds, days and months, as PostgreSQL keeps them apart.
pub fn interval(micros: i64, days: i32, months: i32) -> Wire {
    let mut bytes = micros.to_be_bytes().to_vec();
    bytes.extend_from_slice(&days.to_be_bytes());
    bytes.extend_from_slice(&months.to_be_bytes());
    Wire {
        ty: Type::INTERVAL,
        bytes,
    }
}

/// `(micros, days, months)` of an interval's wire form.
pub fn decode_interval(raw: &[u8]) -> Option<(i64, i32, i32)> {
    Some((
        i64::from_be_bytes(raw.get(0..8)?.try_into().ok()?),
        i32::from_be_bytes(raw.get(8..12)?.try_into().ok()?),
        i32::from_be_bytes(raw.get(12..16)?.try_into().ok()?),
    ))
}

/// One end of a range: its value's wire form and whether it is included. `None`: unbounded.
pub type Bound = Option<(Vec<u8>, bool)>;

const RANGE_EMPTY: u8 = 0x01;
const RANGE_LOWER_INCLUSIVE: u8 = 0x02;
const RANGE_UPPER_INCLUSIVE: u8 = 0x04;
const RANGE_LOWER_INFINITE: u8 = 0x08;
const RANGE_UPPER_INFINITE: u8 = 0x10;

/// A range parameter of type `ty` (int4range, int8range, numrange).
pub fn range(ty: Type, lower: Bound, upper: Bound) -> Wire {
    let mut flags = 0;
    let mut bytes = vec![0];
    for (bound, inclusive, infinite) in [
        (&lower, RANGE_LOWER_INCLUSIVE, RANGE_LOWER_INFINITE),
        (&upper, RANGE_UPPER_INCLUSIVE, RANGE_UPPER_INFINITE),
    ] {
        match bound {
            None => flags |= infinite,
            Some((value, included)) => {
                if *included {
                    flags |= inclusive;
                }
                bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
                bytes.extend_from_slice(value);
            }
        }
    }
    bytes[0] = flags;
    Wire { ty, bytes }
}

/// The bounds of a range's wire form; an empty range has none, like one unbounded both ways
/// (`None` for a malformed one).
pub fn decode_range(raw: &[u8]) -> Option<(Bound, Bound)> {
    let (&flags, mut rest) = raw.split_first()?;
    if flags & RANGE_EMPTY != 0 {
        return Some((None, None));
    }
    let mut bound = |inclusive: u8, infinite: u8| -> Option<Bound> {
        if flags & infinite != 0 {
            return Some(None);
        }
        let length = usize::try_from(i32::from_be_bytes(rest.get(0..4)?.try_into().ok()?)).ok()?;
        let value = rest.get(4..4 + length)?.to_vec();
        rest = &rest[4 + length..];
        Some(Some((value, flags & inclusive != 0)))
    };
    let lower = bound(RANGE_LOWER_INCLUSIVE, RANGE_LOWER_INFINITE)?;
    let upper = bound(RANGE_UPPER_INCLUSIVE, RANGE_UPPER_INFINITE)?;
    Some((lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_round_trip_with_every_digit() {
        for text in [
            "0",
            "12345",
            "-12.50",
            "0.0005",
            "0.00000001",
            "10000",
            "100",
            "123456789012345678901234567890.123456789",
            "NaN",
        ] {
            let wire = encode_numeric(text).unwrap();
            assert_eq!(decode_numeric(&wire).unwrap(), text, "{text}");
        }
        // 12345 is the groups 1, 2345 at weight 1, as PostgreSQL sends it.
        assert_eq!(
            encode_numeric("12345").unwrap(),
            [0, 2, 0, 1, 0, 0, 0, 0, 0, 1, 0x09, 0x29]
        );
        assert!(encode_numeric("1e5").is_err());
        assert!(encode_numeric("").is_err());
        assert!(encode_numeric("1.2.3").is_err());
    }

    #[test]
    fn dates_count_days_from_2000() {
        assert_eq!(days_from_date(2000, 1, 1).unwrap(), 0);
        assert_eq!(days_from_date(1999, 12, 31).unwrap(), -1);
        assert_eq!(days_from_date(2000, 3, 1).unwrap(), 60);
        assert_eq!(days_from_date(2026, 11, 25).unwrap(), 9_825);
        assert!(days_from_date(2020, 13, 1).is_err());
        assert_eq!(
            micros_from_time(13, 5, 9, 250_000).unwrap(),
            ((13 * 60 + 5) * 60 + 9) * 1_000_000 + 250
        );
        assert!(micros_from_time(25, 0, 0, 0).is_err());
    }

    #[test]
    fn ranges_carry_their_bounds() {
        let wire = range(
            Type::INT4_RANGE,
            Some((5i32.to_be_bytes().to_vec(), true)),
            None,
        );
        assert_eq!(
            decode_range(&wire.bytes),
            Some((Some((5i32.to_be_bytes().to_vec(), true)), None))
        );
        assert_eq!(decode_range(&[RANGE_EMPTY]), Some((None, None)));
        assert_eq!(decode_range(&[0, 0, 0]), None);
    }
}
