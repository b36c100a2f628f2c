//! Predictions read from CSV: a header row naming `y_true`, `y_score`, optionally `y_pred`, and
//! attribute columns; one sample per row (RFC 4180 quoting). Group values are interned to codes
//! while parsing, so memory stays at a few bytes per sample and attribute.
//!
//! Large files without any quote character are cut at line ends into chunks that are parsed in
//! parallel; a file with quotes (where a line end can sit inside a field) is parsed in one pass.
//!
//! Every problem is a [`ConfigError`] naming the file, the row (the header is row 1) and the
//! column.

use std::path::Path;

use fairlab_framework::error::Location;
use fairlab_framework::metric::{GroupColumn, PredictionSet};
use fairlab_framework::ConfigError;
use rayon::prelude::*;

use crate::interner::Interner;

/// Data bytes per chunk when parsing in parallel.
const CHUNK_BYTES: usize = 4 << 20;

/// The column of true labels.
pub const Y_TRUE: &str = "y_true";
/// The column of scores (probability of class 1).
pub const Y_SCORE: &str = "y_score";
/// The optional column of hard predictions.
pub const Y_PRED: &str = "y_pred";

/// One sensitive attribute: the distinct group names (sorted) and each sample's group code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeColumn {
    /// The column name.
    pub name: String,
    /// The distinct values, sorted.
    pub levels: Vec<String>,
    /// Per sample, the index of its value in `levels`.
    pub codes: Vec<u32>,
}

/// Labels, scores, optional hard predictions and attributes of a set of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// True labels, 0 or 1.
    pub y_true: Vec<u8>,
    /// Scores in [0, 1].
    pub y_score: Vec<f64>,
    /// Hard predictions, 0 or 1, when the file has a `y_pred` column.
    pub y_pred: Option<Vec<u8>>,
    /// The attribute columns, in the order they were selected.
    pub attributes: Vec<AttributeColumn>,
}

impl Predictions {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y_true.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.y_true.is_empty()
    }

    /// A borrowed view to evaluate.
    pub fn as_set(&self) -> PredictionSet<'_> {
        PredictionSet {
            y_true: &self.y_true,
            y_score: &self.y_score,
            y_pred: self.y_pred.as_deref(),
            attributes: self
                .attributes
                .iter()
                .map(|a| {
                    (
                        a.name.as_str(),
                        GroupColumn::Coded {
                            levels: &a.levels,
                            codes: &a.codes,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Read a predictions CSV. `group_cols` selects the attribute columns; when empty, every column
/// other than `y_true`, `y_score` and `y_pred` is one.
pub fn read_predictions(path: &Path, group_cols: &[String]) -> Result<Predictions, ConfigError> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| file_error(&source, format!("cannot read the file: {e}")))?;
    let parsed = parse_chunks(&source, &bytes, group_cols)?;
    // The text is no longer needed: free it before the columns are joined.
    drop(bytes);
    parsed.assemble(&source)
}

/// Parse predictions CSV text; `source` names it in errors. See [`read_predictions`].
pub fn parse_predictions(source: &str, bytes: &[u8], group_cols: &[String]) -> Result<Predictions, ConfigError> {
    parse_chunks(source, bytes, group_cols)?.assemble(source)
}

/// The rows of a file, parsed chunk by chunk.
struct Parsed {
    layout: Layout,
    chunks: Vec<Chunk>,
    /// The 0-based data row each chunk starts at.
    first_rows: Vec<usize>,
    rows: usize,
}

/// Parse the header and, in parallel, the chunks of data rows.
fn parse_chunks(source: &str, bytes: &[u8], group_cols: &[String]) -> Result<Parsed, ConfigError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv_reader(bytes);
    let mut header = csv::ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut header)
        .map_err(|e| file_error(source, format!("row 1: {e}")))?;
    if !has_header {
        return Err(file_error(
            source,
            "the file is empty; expected a header row with `y_true` and `y_score`",
        ));
    }
    let data = &bytes[reader.position().byte() as usize..];
    let layout = Layout::new(source, &header, group_cols)?;

    let chunks = split_chunks(data);
    let parsed: Vec<Result<Chunk, Problem>> = chunks.par_iter().map(|c| parse_chunk(c, &layout)).collect();
    // Rows before each chunk, so that problems name the row in the whole file.
    let mut chunks = Vec::with_capacity(parsed.len());
    let mut first_rows = Vec::with_capacity(parsed.len());
    let mut rows = 0;
    for result in parsed {
        match result {
            Ok(chunk) => {
                first_rows.push(rows);
                rows += chunk.rows;
                chunks.push(chunk);
            }
            Err(p) => return Err(layout.error(source, rows + p.record, p.column, p.message)),
        }
    }
    if rows == 0 {
        return Err(file_error(source, "the file has a header but no data rows"));
    }
    Ok(Parsed {
        layout,
        chunks,
        first_rows,
        rows,
    })
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

fn file_error(source: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(message).with_location(Location {
        source: source.to_string(),
        line: None,
        column: None,
    })
}

/// Which field of a record holds what.
struct Layout {
    names: Vec<String>,
    y_true: usize,
    y_score: usize,
    y_pred: Option<usize>,
    attributes: Vec<usize>,
}

impl Layout {
    fn new(source: &str, header: &csv::ByteRecord, group_cols: &[String]) -> Result<Self, ConfigError> {
        let mut names = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let name = String::from_utf8(field.to_vec())
                .map_err(|_| file_error(source, format!("row 1, column {}: the name is not valid UTF-8", i + 1)))?;
            names.push(name);
        }
        let header_error =
            |column: &str, message: String| file_error(source, format!("row 1, column `{column}`: {message}"));
        let find = |name: &str| -> Result<Option<usize>, ConfigError> {
            let mut found = names.iter().enumerate().filter(|(_, n)| *n == name).map(|(i, _)| i);
            let first = found.next();
            if found.next().is_some() {
                return Err(header_error(
                    name,
                    "the header names this column more than once".to_string(),
                ));
            }
            Ok(first)
        };
        let columns = || names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let required = |name: &str| {
            find(name)?.ok_or_else(|| header_error(name, format!("missing column; the header has {}", columns())))
        };
        let y_true = required(Y_TRUE)?;
        let y_score = required(Y_SCORE)?;
        let y_pred = find(Y_PRED)?;
        let attributes = if group_cols.is_empty() {
            let mut attributes = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if ![Y_TRUE, Y_SCORE, Y_PRED].contains(&name.as_str()) {
                    find(name)?;
                    attributes.push(i);
                }
            }
            attributes
        } else {
            let mut attributes: Vec<usize> = Vec::new();
            for col in group_cols {
                if [Y_TRUE, Y_SCORE, Y_PRED].contains(&col.as_str()) {
                    return Err(header_error(
                        col,
                        "--group-col must name an attribute column, not a label, score or prediction column"
                            .to_string(),
                    ));
                }
                let i = find(col)?.ok_or_else(|| {
                    header_error(
                        col,
                        format!("no such column (--group-col); the header has {}", columns()),
                    )
                })?;
                if !attributes.contains(&i) {
                    attributes.push(i);
                }
            }
            attributes
        };
        Ok(Self {
            names,
            y_true,
            y_score,
            y_pred,
            attributes,
        })
    }

    /// An error at data row `record` (0-based, after the header) and, when known, a column.
    fn error(&self, source: &str, record: usize, column: Option<usize>, message: String) -> ConfigError {
        let row = record + 2;
        let message = match column {
            Some(c) => format!("row {row}, column `{}`: {message}", self.names[c]),
            None => format!("row {row}: {message}"),
        };
        file_error(source, message)
    }
}

/// A problem in a chunk: the record (0-based in the chunk), the column and what is wrong.
struct Problem {
    record: usize,
    column: Option<usize>,
    message: String,
}

/// The columns of one chunk, group values coded per chunk.
struct Chunk {
    rows: usize,
    y_true: Vec<u8>,
    y_score: Vec<f64>,
    y_pred: Vec<u8>,
    groups: Vec<(Interner, Vec<u32>)>,
}

/// Cut the data at line ends into chunks of about [`CHUNK_BYTES`]; one chunk when the data is
/// small or holds a quote (a line end inside a quoted field must not be a cut).
fn split_chunks(data: &[u8]) -> Vec<&[u8]> {
    if data.len() <= CHUNK_BYTES || data.contains(&b'"') {
        return vec![data];
    }
    let mut chunks = Vec::with_capacity(data.len() / CHUNK_BYTES + 1);
    let mut rest = data;
    while rest.len() > CHUNK_BYTES {
        match rest[CHUNK_BYTES..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                let (chunk, tail) = rest.split_at(CHUNK_BYTES + p + 1);
                chunks.push(chunk);
                rest = tail;
            }
            None => break,
        }
    }
    chunks.push(rest);
    chunks
}

/// The fields of one record.
trait Fields {
    /// Number of fields.
    fn count(&self) -> usize;
    /// Field `i` (< `count()`).
    fn field(&self, i: usize) -> &[u8];
}

impl Fields for csv::ByteRecord {
    fn count(&self) -> usize {
        self.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

impl Fields for Vec<&[u8]> {
    fn count(&self) -> usize {
        self.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        self[i]
    }
}

/// Whether plain splitting at `\n` and `,` reads `bytes` exactly as a CSV parser does: no quote,
/// and no carriage return other than in a `\r\n` line end.
fn is_plain(bytes: &[u8]) -> bool {
    !bytes.contains(&b'"')
        && (!bytes.contains(&b'\r')
            || bytes
                .iter()
                .enumerate()
                .all(|(i, &b)| b != b'\r' || bytes.get(i + 1) == Some(&b'\n')))
}

fn parse_chunk(bytes: &[u8], layout: &Layout) -> Result<Chunk, Problem> {
    // One record per line unless quoted fields span lines: exact capacities in the common case.
    let estimate = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut chunk = Chunk {
        rows: 0,
        y_true: Vec::with_capacity(estimate),
        y_score: Vec::with_capacity(estimate),
        y_pred: Vec::with_capacity(if layout.y_pred.is_some() { estimate } else { 0 }),
        groups: layout
            .attributes
            .iter()
            .map(|_| (Interner::default(), Vec::with_capacity(estimate)))
            .collect(),
    };
    if is_plain(bytes) {
        // The common case, several times faster than a general CSV parser. Like one, it skips
        // empty lines.
        let mut fields: Vec<&[u8]> = Vec::with_capacity(layout.names.len());
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                fields.clear();
                fields.extend(line.split(|&b| b == b','));
                chunk.push(&fields, layout)?;
            }
        }
    } else {
        let mut reader = csv_reader(bytes);
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => chunk.push(&record, layout)?,
                Ok(false) => break,
                Err(e) => {
                    return Err(Problem {
                        record: chunk.rows,
                        column: None,
                        message: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(chunk)
}

impl Chunk {
    /// Check and add one record.
    fn push(&mut self, record: &impl Fields, layout: &Layout) -> Result<(), Problem> {
        let row = self.rows;
        let problem = |column: usize, message: String| Problem {
            record: row,
            column: Some(column),
            message,
        };
        let (count, width) = (record.count(), layout.names.len());
        if count < width {
            let message = format!("missing: the row has {count} fields but the header has {width}");
            return Err(problem(count, message));
        }
        if count > width {
            return Err(Problem {
                record: row,
                column: None,
                message: format!("the row has {count} fields but the header has {width}"),
            });
        }
        let field = layout.y_true;
        let label = parse_binary(record.field(field)).ok_or_else(|| {
            let message = format!("the label must be 0 or 1, got {}", shown(record.field(field)));
            problem(field, message)
        })?;
        let score = parse_score(record.field(layout.y_score)).map_err(|m| problem(layout.y_score, m))?;
        if let Some(field) = layout.y_pred {
            let pred = parse_binary(record.field(field)).ok_or_else(|| {
                let message = format!("the prediction must be 0 or 1, got {}", shown(record.field(field)));
                problem(field, message)
            })?;
            self.y_pred.push(pred);
        }
        self.y_true.push(label);
        self.y_score.push(score);
        for (&field, (interner, codes)) in layout.attributes.iter().zip(&mut self.groups) {
            codes.push(interner.intern(record.field(field), row));
        }
        self.rows += 1;
        Ok(())
    }
}

/// A field as shown in messages: quoted, cut after 40 characters.
fn shown(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let mut cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

fn parse_number(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// `0` or `1` (also written as a number such as `1.0`).
fn parse_binary(field: &[u8]) -> Option<u8> {
    match field {
        b"0" => Some(0),
        b"1" => Some(1),
        _ => {
            let v = parse_number(field)?;
            [0.0, 1.0].iter().position(|&b| b == v).map(|b| b as u8)
        }
    }
}

fn parse_score(field: &[u8]) -> Result<f64, String> {
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

impl Parsed {
    /// Join the chunks, column by column in parallel: global sorted levels per attribute (checked
    /// to be UTF-8) and codes remapped to them.
    fn assemble(self, source: &str) -> Result<Predictions, ConfigError> {
        let Parsed {
            layout,
            chunks,
            first_rows,
            rows,
        } = self;
        let mut levels = Vec::with_capacity(layout.attributes.len());
        for (a, &column) in layout.attributes.iter().enumerate() {
            let mut distinct: Vec<String> = Vec::new();
            for (chunk, &first_row) in chunks.iter().zip(&first_rows) {
                for (value, row) in chunk.groups[a].0.values() {
                    let level = std::str::from_utf8(value).map_err(|_| {
                        let message = "the value is not valid UTF-8".to_string();
                        layout.error(source, first_row + row, Some(column), message)
                    })?;
                    distinct.push(level.to_string());
                }
            }
            distinct.sort_unstable();
            distinct.dedup();
            levels.push(distinct);
        }
        let codes = |a: usize| -> Vec<u32> {
            let mut codes = Vec::with_capacity(rows);
            for chunk in &chunks {
                let (interner, local) = &chunk.groups[a];
                let remap: Vec<u32> = interner
                    .values()
                    .map(|(value, _)| {
                        let value = std::str::from_utf8(value).expect("checked above");
                        let found = levels[a].binary_search_by(|l| l.as_str().cmp(value));
                        found.expect("every level is listed") as u32
                    })
                    .collect();
                codes.extend(local.iter().map(|&c| remap[c as usize]));
            }
            codes
        };
        let ((y_true, y_score), (y_pred, codes)) = rayon::join(
            || {
                rayon::join(
                    || concat(&chunks, rows, |c| &c.y_true),
                    || concat(&chunks, rows, |c| &c.y_score),
                )
            },
            || {
                rayon::join(
                    || layout.y_pred.map(|_| concat(&chunks, rows, |c| &c.y_pred)),
                    || (0..levels.len()).into_par_iter().map(codes).collect::<Vec<_>>(),
                )
            },
        );
        let attributes = layout
            .attributes
            .iter()
            .zip(levels)
            .zip(codes)
            .map(|((&column, levels), codes)| AttributeColumn {
                name: layout.names[column].clone(),
                levels,
                codes,
            })
            .collect();
        Ok(Predictions {
            y_true,
            y_score,
            y_pred,
            attributes,
        })
    }
}

/// One column of every chunk, joined.
fn concat<T: Copy>(chunks: &[Chunk], rows: usize, column: impl Fn(&Chunk) -> &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(rows);
    for chunk in chunks {
        out.extend_from_slice(column(chunk));
    }
    out
}
