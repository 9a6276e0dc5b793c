//! Human-readable numbers: durations, byte counts, grouped digits.

/// `12345678` -> `12,345,678`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds with a unit chosen so that three or four significant digits show:
/// `850ns`, `12.3µs`, `4.56ms`, `1.20s`.
pub fn duration_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    if unit == "ns" {
        format!("{v:.0}{unit}")
    } else if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// Bytes in binary units: `512B`, `1.5KiB`, `12.0MiB`.
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// A count that may be fractional per operation: `0`, `3`, `2.5`, `1,234`.
pub fn count(x: f64) -> String {
    if x >= 1000.0 {
        group_digits(x.round() as u64)
    } else if (x - x.round()).abs() < 0.005 {
        format!("{:.0}", x.round())
    } else if x < 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// A number with at most two decimals and no trailing zeros: `25`, `2.5`, `0.25`.
pub fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(12_345_678), "12,345,678");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration_ns(850.0), "850ns");
        assert_eq!(duration_ns(12_345.0), "12.3µs");
        assert_eq!(duration_ns(4_560_000.0), "4.56ms");
        assert_eq!(duration_ns(123_000_000.0), "123ms");
        assert_eq!(duration_ns(1_200_000_000.0), "1.20s");
    }

    #[test]
    fn bytes_and_counts() {
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(1536.0), "1.5KiB");
        assert_eq!(bytes(12.0 * 1024.0 * 1024.0), "12.0MiB");
        assert_eq!(count(3.0), "3");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(count(0.04), "0.04");
        assert_eq!(count(1234.4), "1,234");
    }
}
