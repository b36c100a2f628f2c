//! The values of the label, score and prediction fields, and how a bad field is shown in messages.
//!
//! Numbers read exactly as `str::parse::<f64>` reads them (after trimming spaces). The plain
//! decimals that prediction files are made of (`0.741849`) take a fast path that gives the same,
//! correctly rounded, result.

/// Powers of ten exactly representable as `f64`.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Digits that always fit in a `u64`.
const MAX_DIGITS: usize = 19;

/// A field as shown in messages: quoted, cut after 40 characters.
pub(crate) fn shown(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let mut cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

/// The plain decimal at the start of `bytes[from..]`, `digits` or `digits.digits`, and where it
/// ends, when its digits form an integer of at most 2^53 and it has at most 22 decimals: that
/// integer and the power of ten are then exact, so their quotient is the correctly rounded value,
/// as `str::parse` gives it. `None` otherwise, and when there is no such decimal.
#[inline]
pub(crate) fn plain_decimal_at(bytes: &[u8], from: usize) -> Option<(f64, usize)> {
    let (mut mantissa, whole) = digit_run(bytes, from, 0);
    let mut end = from + whole;
    let mut decimals = 0;
    if bytes.get(end) == Some(&b'.') {
        (mantissa, decimals) = digit_run(bytes, end + 1, mantissa);
        if decimals == 0 {
            return None;
        }
        end += 1 + decimals;
    }
    let exact = whole > 0 && whole + decimals <= MAX_DIGITS && decimals < POWERS_OF_TEN.len();
    // (Converted as an `i64`, which is one instruction: the mantissa is below 2^63.)
    (exact && mantissa <= 1 << 53).then(|| (mantissa as i64 as f64 / POWERS_OF_TEN[decimals], end))
}

/// The run of ASCII digits at `bytes[pos..]` appended to the digits of `value`: the resulting
/// integer (wrapping around if it overflows) and the length of the run.
#[inline]
fn digit_run(bytes: &[u8], mut pos: usize, mut value: u64) -> (u64, usize) {
    let start = pos;
    while let Some(&b @ b'0'..=b'9') = bytes.get(pos) {
        value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        pos += 1;
    }
    (value, pos - start)
}

/// A number, spaces around it allowed.
#[inline]
fn parse_number(field: &[u8]) -> Option<f64> {
    match plain_decimal_at(field, 0) {
        Some((value, end)) if end == field.len() => Some(value),
        _ => std::str::from_utf8(field).ok()?.trim().parse().ok(),
    }
}

/// `0` or `1` (also written as a number such as `1.0`).
#[inline]
pub(crate) fn parse_binary(field: &[u8]) -> Option<u8> {
    match field {
        b"0" => Some(0),
        b"1" => Some(1),
        _ => {
            let v = parse_number(field)?;
            [0.0, 1.0].iter().position(|&b| b == v).map(|b| b as u8)
        }
    }
}

/// A probability in [0, 1]; the message says what is wrong otherwise.
#[inline]
pub(crate) fn parse_score(field: &[u8]) -> Result<f64, String> {
    let score =
        parse_number(field).ok_or_else(|| format!("the score must be a number in [0, 1], got {}", shown(field)))?;
    if score.is_nan() {
        return Err("the score is NaN; it must be a probability in [0, 1]".to_string());
    }
    if !(0.0..=1.0).contains(&score) {
        return Err(format!(
            "the score must be a probability in [0, 1], got {}",
            shown(field)
        ));
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn std_parse(text: &str) -> Option<f64> {
        text.trim().parse().ok()
    }

    #[test]
    fn plain_decimals_read_as_str_parse_reads_them() {
        for text in [
            "0",
            "1",
            "0.5",
            "0.741849",
            "1.000000",
            "0.1",
            "0.3",
            "9007199254740992",
            "0.9007199254740993",
            "0.0000000000000000000001",
            "00000.25",
        ] {
            assert_eq!(parse_number(text.as_bytes()), std_parse(text), "{text}");
        }
    }

    #[test]
    fn other_numbers_take_the_general_path() {
        for text in [
            "",
            ".",
            "1.",
            ".5",
            "-0.0",
            "+1",
            "1e-3",
            " 0.75 ",
            "inf",
            "NaN",
            "0.5.5",
            "1,5",
            "9007199254740993",
            "0.00000000000000000000001",
            "12345678901234567890",
        ] {
            let plain = plain_decimal_at(text.as_bytes(), 0).filter(|&(_, end)| end == text.len());
            assert_eq!(plain.map(|(v, _)| v.to_bits()), None, "{text}");
            assert_eq!(
                parse_number(text.as_bytes()).map(f64::to_bits),
                std_parse(text).map(f64::to_bits),
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_decimal_reads_as_str_parse_reads_it(int in "[0-9]{1,12}", frac in proptest::option::of("[0-9]{0,16}")) {
            let text = match frac {
                Some(frac) => format!("{int}.{frac}"),
                None => int,
            };
            prop_assert_eq!(
                parse_number(text.as_bytes()).map(f64::to_bits),
                std_parse(&text).map(f64::to_bits),
                "{}", text
            );
        }
    }
}
