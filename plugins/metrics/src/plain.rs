//! The fast path for text without quotes, which is nearly every predictions file. There a record
//! is a run of bytes other than `\r` and `\n` (so `\n`, `\r\n` and a lone `\r` end records, and
//! empty lines hold none) and its fields are separated by commas: exactly what the CSV parser reads
//! from such text, in one pass over the bytes with no copy. The first quote stops the pass, since
//! quoted fields can hold commas and line ends.
//!
//! Labels, predictions and scores are read as the bytes are scanned; group values are found eight
//! bytes at a time, and that word is their interning key.

use crate::chunk::{ChunkParser, Problem};
use crate::interner::prefix;
use crate::layout::{Layout, Role};
use crate::number::{parse_binary, parse_score, plain_decimal_at};
use crate::swar::{bytes_equal, first, word_at, WORD};

/// Why a chunk stopped before its end.
pub(crate) enum Stop {
    /// The text has a quote: it must be read by the CSV parser, from the start of the file.
    Quoted,
    /// A record is bad.
    Problem(Problem),
}

/// The bytes that end a field (comma, line ends) or stop the pass (quote).
const SPECIAL: [u8; 4] = [b',', b'\n', b'\r', b'"'];

/// Parse the records of `bytes` into `parser`. Each value is stored as soon as it is read; a
/// record with a bad value or the wrong number of fields is then read again whole, by
/// [`ChunkParser::push`], which names the problem.
pub(crate) fn parse_plain(bytes: &[u8], layout: &Layout, parser: &mut ChunkParser<'_>) -> Result<(), Stop> {
    let roles = &layout.roles;
    let mut pos = 0;
    while pos < bytes.len() {
        if matches!(bytes[pos], b'\n' | b'\r') {
            pos += 1;
            continue;
        }
        let start = pos;
        let mut fields = 0;
        let mut stored = true;
        loop {
            let (end, ok) = match roles.get(fields) {
                Some(&role) => read_field(bytes, pos, role, parser),
                None => (scan_field(bytes, pos).0, false),
            };
            stored &= ok;
            fields += 1;
            pos = end;
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b'"') => return Err(Stop::Quoted),
                _ => break,
            }
        }
        if stored && fields == roles.len() {
            parser.end_record();
        } else {
            let record: Vec<&[u8]> = bytes[start..pos].split(|&b| b == b',').collect();
            parser.push(&record, layout).map_err(Stop::Problem)?;
        }
    }
    Ok(())
}

/// Read the field at `pos` into `parser` as `role` says: where the field ends, and whether its
/// value was stored (`false` for a bad value). Labels, predictions and scores are read while they
/// are scanned when they are plain (`0`, `1`, a plain decimal in [0, 1]); anything else is found
/// first, then read in full.
#[inline]
fn read_field(bytes: &[u8], pos: usize, role: Role, parser: &mut ChunkParser<'_>) -> (usize, bool) {
    let rest = |pos| scan_field(bytes, pos).0;
    match role {
        Role::Label | Role::Prediction => {
            let (value, end) = match bytes.get(pos) {
                Some(&digit @ (b'0' | b'1')) if ends_field(bytes, pos + 1) => (Some(digit - b'0'), pos + 1),
                _ => {
                    let end = rest(pos);
                    (parse_binary(&bytes[pos..end]), end)
                }
            };
            match value {
                Some(v) if role == Role::Label => parser.label(v),
                Some(v) => parser.prediction(v),
                None => {}
            }
            (end, value.is_some())
        }
        Role::Score => {
            let (score, end) = match plain_decimal_at(bytes, pos) {
                Some((score, end)) if score <= 1.0 && ends_field(bytes, end) => (Some(score), end),
                _ => {
                    let end = rest(pos);
                    (parse_score(&bytes[pos..end]).ok(), end)
                }
            };
            if let Some(score) = score {
                parser.score(score);
            }
            (end, score.is_some())
        }
        Role::Attribute(a) => {
            let (end, prefix) = scan_field(bytes, pos);
            parser.group(a, &bytes[pos..end], prefix);
            (end, true)
        }
        Role::Unused => (rest(pos), true),
    }
}

/// Whether a field ends at `pos`: a comma, a line end or the end of the text.
#[inline]
fn ends_field(bytes: &[u8], pos: usize) -> bool {
    matches!(bytes.get(pos), None | Some(b',' | b'\n' | b'\r'))
}

/// Where the field at `from` ends (the first [`SPECIAL`] byte, or the end of `bytes`), found
/// eight bytes at a time without a branch per byte, and the field's [`prefix`].
#[inline(always)]
fn scan_field(bytes: &[u8], from: usize) -> (usize, u64) {
    let mut pos = from;
    while let Some(word) = word_at(bytes, pos) {
        let found = SPECIAL.iter().fold(0, |found, &b| found | bytes_equal(word, b));
        if found != 0 {
            let end = pos + first(found);
            if pos > from {
                return (end, prefix(&bytes[from..end]));
            }
            // The whole field is in this word: its prefix is the word cut at the end.
            return (end, word & ((1 << (8 * (end - from))) - 1));
        }
        pos += WORD;
    }
    let end = pos
        + bytes[pos..]
            .iter()
            .position(|b| SPECIAL.contains(b))
            .unwrap_or(bytes.len() - pos);
    (end, prefix(&bytes[from..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_ends_at_the_first_comma_line_end_or_quote() {
        let text = b"abc,0.123456789,x\r\nlong field without end\"q\"\n\xff\x80,,";
        for from in 0..text.len() {
            let end = from
                + text[from..]
                    .iter()
                    .position(|b| SPECIAL.contains(b))
                    .unwrap_or(text.len() - from);
            assert_eq!(scan_field(text, from), (end, prefix(&text[from..end])), "{from}");
        }
        assert_eq!(scan_field(b"no end at all", 3), (13, prefix(b"end at a")));
    }
}
