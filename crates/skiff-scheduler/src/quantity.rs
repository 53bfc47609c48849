//! Kubernetes resource quantities (`"100m"`, `"1"`, `"2Gi"`, `"500Mi"`, `"1e3"`, `"1.5"`) as
//! integers: [`milli_value`] for CPU (millicores) and [`value`] for everything counted in
//! whole units (bytes, pods, extended resources). Both round up, as `resource.Quantity` does.

use thiserror::Error;

/// Why a quantity string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}"
)]
pub struct QuantityError(pub String);

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2` (the mantissa carries no decimal point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    negative: bool,
    mantissa: i128,
    exp10: i32,
    exp2: u32,
}

fn parse(text: &str) -> Result<Parsed, QuantityError> {
    let error = || QuantityError(text.to_owned());
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(error());
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let mut mantissa: i128 = 0;
    let mut exp10: i32 = 0;
    for (i, c) in whole.chars().chain(fraction.chars()).enumerate() {
        let digit = i128::from(c as u8 - b'0');
        if mantissa > i128::MAX / 100 {
            // Too many digits to matter: keep the magnitude, drop the precision (rounding up).
            if i < whole.len() {
                exp10 += 1;
            }
            if digit > 0 {
                mantissa += 1;
            }
            continue;
        }
        mantissa = mantissa * 10 + digit;
        if i >= whole.len() {
            exp10 -= 1;
        }
    }
    let (extra10, exp2) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E']).ok_or_else(error)?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            (exponent.parse::<i32>().map_err(|_| error())?, 0)
        }
    };
    Ok(Parsed {
        negative,
        mantissa,
        exp10: exp10.saturating_add(extra10),
        exp2,
    })
}

/// `mantissa × 10^exp10 × 2^exp2 × 10^scale`, rounded up (away from zero for positive values,
/// as Kubernetes rounds), saturating at `i64` bounds.
fn scaled(parsed: Parsed, scale: i32) -> i64 {
    let Parsed {
        negative,
        mantissa,
        exp10,
        exp2,
    } = parsed;
    if mantissa == 0 {
        return 0;
    }
    let exp10 = exp10.saturating_add(scale);
    let saturated = if negative { i64::MIN } else { i64::MAX };
    let mut value = mantissa;
    for _ in 0..exp2 {
        value = match value.checked_mul(2) {
            Some(v) => v,
            None => return saturated,
        };
    }
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = match value.checked_mul(10) {
                Some(v) if v <= i128::from(i64::MAX) => v,
                _ => return saturated,
            };
        }
    } else {
        let mut divisor: i128 = 1;
        for _ in 0..(-exp10) {
            if divisor > value {
                // Smaller than one unit: rounds up to one (or down to zero when negative).
                return if negative { 0 } else { 1 };
            }
            divisor *= 10;
        }
        value = if negative {
            value / divisor
        } else {
            value / divisor + i128::from(value % divisor != 0)
        };
    }
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    if negative { -value } else { value }
}

/// The quantity in thousandths (`"100m"` → 100, `"2"` → 2000), rounded up.
pub fn milli_value(text: &str) -> Result<i64, QuantityError> {
    parse(text).map(|p| scaled(p, 3))
}

/// The quantity in whole units (`"2Gi"` → 2147483648, `"100m"` → 1), rounded up.
pub fn value(text: &str) -> Result<i64, QuantityError> {
    parse(text).map(|p| scaled(p, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_values() {
        for (text, expected) in [
            ("100m", 100),
            ("1", 1000),
            ("0.5", 500),
            (".5", 500),
            ("1.5", 1500),
            ("2", 2000),
            ("0", 0),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("1k", 1_000_000),
            ("250u", 1),
            ("1n", 1),
            ("1500000n", 2),
            ("+3", 3000),
            ("-100m", -100),
            ("1Ki", 1_024_000),
            (" 4 ", 4000),
        ] {
            assert_eq!(milli_value(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn whole_values() {
        for (text, expected) in [
            ("2Gi", 2 * 1024 * 1024 * 1024),
            ("500Mi", 500 * 1024 * 1024),
            ("1Ki", 1024),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 128_974_848),
            ("1.5Gi", 1_610_612_736),
            ("110", 110),
            ("100m", 1),
            ("1e3", 1000),
            ("1E+2", 100),
            ("0.1", 1),
            ("8Ei", i64::MAX),
            ("1Ei", 1 << 60),
            ("100000000000000000000", i64::MAX),
            ("1e100", i64::MAX),
        ] {
            assert_eq!(value(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn invalid_quantities() {
        for text in [
            "", "m", "1.2.3", "abc", "1x", "1KiB", "1e", "1e+", "Gi", "1 Gi", ".",
        ] {
            assert!(value(text).is_err(), "{text}");
        }
    }
}
