//! Enough of `resource.Quantity` to compare, add and print quantities, as the Pod QoS class,
//! LimitRange admission and ResourceQuota usage need.
//!
//! A quantity is parsed into an integer count of nano-units (the finest suffix, `n`); finer
//! fractions round up and values beyond the range saturate. That is exact for every quantity a
//! real pod spec carries.

use serde_json::Value;

/// A parsed quantity in nano-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity(i128);

impl Quantity {
    pub(crate) const ZERO: Quantity = Quantity(0);

    /// Parses a quantity from its JSON form: a string (`"100m"`, `"1Gi"`, `"1e3"`) or a number.
    pub(crate) fn from_json(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => parse(s),
            Value::Number(n) => parse(&n.to_string()),
            _ => None,
        }
    }

    pub(crate) fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(other.0))
    }

    /// A whole number of units.
    pub(crate) fn from_units(units: i64) -> Quantity {
        Quantity(i128::from(units).saturating_mul(NANO))
    }

    /// The value in nano-units.
    pub(crate) fn nanos(self) -> i128 {
        self.0
    }

    /// The canonical form `resource.Quantity.String()` prints: binary suffixes (`Ki`, `Mi`, ...)
    /// for a `binary` quantity that is a whole number of at least 1024, otherwise the largest
    /// decimal suffix (`n`, `u`, `m`, ``, `k`, `M`, ...) that keeps the mantissa whole.
    pub(crate) fn canonical(self, binary: bool) -> String {
        let (sign, magnitude) = if self.0 < 0 {
            ("-", self.0.unsigned_abs())
        } else {
            ("", self.0.unsigned_abs())
        };
        if magnitude == 0 {
            return "0".to_owned();
        }
        let nano = NANO.unsigned_abs();
        if binary && magnitude >= 1024 * nano && magnitude.is_multiple_of(nano) {
            let mut units = magnitude / nano;
            let mut power = 0;
            while units.is_multiple_of(1024) && power < 6 {
                units /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return format!("{sign}{units}{suffix}");
        }
        let (mut mantissa, mut exponent) = (magnitude, -9i32);
        while mantissa.is_multiple_of(10) && exponent < 18 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent.rem_euclid(3) != 0 {
            mantissa *= 10;
            exponent -= 1;
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        format!("{sign}{mantissa}{suffix}")
    }
}

/// Nano-units in one unit.
const NANO: i128 = 1_000_000_000;

/// A quantity as written in an object, remembering whether it was written with a binary
/// suffix (which `String()` keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) value: Quantity,
    pub(crate) binary: bool,
}

impl Written {
    /// Parses a JSON quantity, noting its format.
    pub(crate) fn from_json(v: &Value) -> Option<Written> {
        let value = Quantity::from_json(v)?;
        let binary = v.as_str().is_some_and(|s| s.trim_end().ends_with('i'));
        Some(Written { value, binary })
    }

    /// A whole number in decimal format (object counts).
    pub(crate) fn count(units: i64) -> Written {
        Written {
            value: Quantity::from_units(units),
            binary: false,
        }
    }

    /// The sum, in the format of `self` (as `Quantity.Add` keeps the receiver's format),
    /// unless `self` is zero.
    pub(crate) fn plus(self, other: Written) -> Written {
        Written {
            value: self.value.saturating_add(other.value),
            binary: if self.value == Quantity::ZERO {
                other.binary
            } else {
                self.binary
            },
        }
    }

    /// `resource.Quantity.String()`.
    pub(crate) fn canonical(self) -> String {
        self.value.canonical(self.binary)
    }
}

/// Parses `<sign><digits>[.<digits>]<suffix>`, the grammar of `resource.ParseQuantity`.
pub(crate) fn parse(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    // value = digits * 10^(exp10 - fraction.len()) * 2^exp2
    let (exp10, exp2): (i32, u32) = match suffix {
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (exponent.parse::<i32>().ok()?, 0)
        }
    };
    let mut mantissa: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .saturating_mul(10)
            .saturating_add(i128::from(b - b'0'));
    }
    mantissa = mantissa.saturating_mul(1i128 << exp2);
    // Scale to nano-units: multiply by 10^(9 + exp10 - fraction digits).
    let scale = 9i64 + i64::from(exp10) - fraction.len() as i64;
    let mut value = mantissa;
    if scale >= 0 {
        for _ in 0..scale.min(60) {
            value = value.saturating_mul(10);
        }
    } else {
        for _ in 0..(-scale).min(60) {
            let rounded_up = value % 10 != 0;
            value = value / 10 + i128::from(rounded_up);
        }
    }
    Some(Quantity(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_suffixes() {
        let q = |s| parse(s).map(|q| q.0);
        assert_eq!(q("1"), Some(1_000_000_000));
        assert_eq!(q("100m"), Some(100_000_000));
        assert_eq!(q("0.1"), Some(100_000_000));
        assert_eq!(q("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(q("1k"), Some(1_000_000_000_000));
        assert_eq!(q("1e3"), Some(1_000_000_000_000));
        assert_eq!(q("1E-3"), Some(1_000_000));
        assert_eq!(q(".5"), Some(500_000_000));
        assert_eq!(q("-1"), Some(-1_000_000_000));
        assert_eq!(q("0.5n"), Some(1));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("128Mi"), q("134217728"));
        for bad in ["", "Ki", "1.2.3", "1x", "1e", "1e+", "abc", "-", "."] {
            assert_eq!(q(bad), None, "{bad}");
        }
    }

    #[test]
    fn prints_the_canonical_form() {
        let cases = [
            ("1", "1"),
            ("1000m", "1"),
            ("500m", "500m"),
            ("0.5", "500m"),
            ("1500m", "1500m"),
            ("1000", "1k"),
            ("2000000", "2M"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("0", "0"),
            ("-2", "-2"),
            ("1e3", "1k"),
            ("10n", "10n"),
        ];
        for (written, canonical) in cases {
            let q = Written::from_json(&Value::String(written.into())).unwrap();
            assert_eq!(q.canonical(), canonical, "{written}");
        }
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert!(parse("1e300").is_some());
        assert!(parse("99999999999999999999999999999999999999999Ei").is_some());
        assert!(parse("1e-300").is_some());
    }
}
