//! Predictions read from CSV: a header row naming `y_true`, `y_score`, optionally `y_pred`, and
//! attribute columns; one sample per row (RFC 4180 quoting). Group values are interned to codes
//! while parsing, so memory stays at a few bytes per sample and attribute.
//!
//! The file is memory-mapped and cut at line ends into chunks that are parsed in parallel, straight
//! into columns allocated once, by the plain fast path ([`crate::plain`]). A file with a quote
//! (where a line end can sit inside a field) is parsed by the CSV parser, in one pass.
//!
//! Every problem is a [`ConfigError`] naming the file, the row (the header is row 1) and the
//! column.

use std::path::Path;

use fairlab_framework::metric::{GroupColumn, PredictionSet};
use fairlab_framework::ConfigError;
use rayon::prelude::*;

use crate::chunk::{Chunk, ChunkParser, Problem};
use crate::columns::{split, Columns, Slots};
use crate::layout::{file_error, Layout};
use crate::plain::{parse_plain, Stop};
use crate::text::Text;

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
    let text = Text::open(path).map_err(|e| file_error(&source, format!("cannot read the file: {e}")))?;
    let parsed = parse_chunks(&source, &text, group_cols)?;
    // The text is no longer needed: release it before the columns are assembled.
    drop(text);
    parsed.assemble(&source)
}

/// Parse predictions CSV text; `source` names it in errors. See [`read_predictions`].
pub fn parse_predictions(source: &str, bytes: &[u8], group_cols: &[String]) -> Result<Predictions, ConfigError> {
    parse_chunks(source, bytes, group_cols)?.assemble(source)
}

/// The rows of a file, parsed chunk by chunk into the columns.
struct Parsed {
    layout: Layout,
    columns: Columns,
    /// The slots each chunk had.
    slots: Vec<usize>,
    chunks: Vec<Chunk>,
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

    let parts = split_chunks(data);
    let mut slots: Vec<usize> = parts.par_iter().map(|part| record_bound(part)).collect();
    let mut columns = Columns::zeroed(slots.iter().sum(), &layout);
    let results: Vec<Result<Chunk, Stop>> = columns
        .slots(&slots)
        .into_par_iter()
        .zip(&parts)
        .map(|(chunk_slots, part)| {
            let mut parser = ChunkParser::new(chunk_slots);
            parse_plain(part, &layout, &mut parser)?;
            Ok(parser.finish())
        })
        .collect();
    // The first chunk that stopped early decides: a problem is reported with its row in the whole
    // file; a quote (before any problem) means the whole file is the CSV parser's.
    let mut chunks = Vec::with_capacity(results.len());
    let mut rows = 0;
    for result in results {
        match result {
            Ok(chunk) => {
                rows += chunk.rows;
                chunks.push(chunk);
            }
            Err(Stop::Problem(p)) => return Err(layout.error(source, rows + p.record, p.column, p.message)),
            Err(Stop::Quoted) => {
                slots = vec![slots.iter().sum()];
                let whole = columns.slots(&slots).pop().expect("one chunk");
                let chunk = parse_general(data, &layout, whole)
                    .map_err(|p| layout.error(source, p.record, p.column, p.message))?;
                rows = chunk.rows;
                chunks = vec![chunk];
                break;
            }
        }
    }
    if rows == 0 {
        return Err(file_error(source, "the file has a header but no data rows"));
    }
    Ok(Parsed {
        layout,
        columns,
        slots,
        chunks,
    })
}

fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

/// Parse text with the CSV parser (RFC 4180 quoting) into `slots`.
fn parse_general(bytes: &[u8], layout: &Layout, slots: Slots<'_>) -> Result<Chunk, Problem> {
    let mut parser = ChunkParser::new(slots);
    let mut reader = csv_reader(bytes);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => parser.push(&record, layout)?,
            Ok(false) => return Ok(parser.finish()),
            Err(e) => {
                return Err(Problem {
                    record: parser.finish().rows,
                    column: None,
                    message: e.to_string(),
                })
            }
        }
    }
}

/// Cut the data after line ends into chunks of about [`CHUNK_BYTES`].
fn split_chunks(data: &[u8]) -> Vec<&[u8]> {
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

/// At least the number of records in `bytes`, read plainly or as CSV: a record ends at a `\n`, at
/// a `\r` not followed by `\n`, or at the end of the text (where the last byte either ends a
/// record or is in an unterminated one).
fn record_bound(bytes: &[u8]) -> usize {
    let next = bytes.get(1..).unwrap_or_default();
    // Counted in runs of 255 into a `u8`, which vectorises well.
    let ends: usize = bytes
        .chunks(255)
        .zip(next.chunks(255))
        .map(|(run, next)| {
            let ends = run.iter().zip(next).fold(0u8, |n, (&b, &next)| {
                n + u8::from((b == b'\n') | ((b == b'\r') & (next != b'\n')))
            });
            usize::from(ends)
        })
        .sum();
    ends + usize::from(!bytes.is_empty())
}

impl Parsed {
    /// Close up the columns, then the levels of each attribute: sorted and checked to be UTF-8,
    /// with every chunk's codes remapped to them (in parallel).
    fn assemble(self, source: &str) -> Result<Predictions, ConfigError> {
        let Parsed {
            layout,
            mut columns,
            slots,
            chunks,
        } = self;
        let rows: Vec<usize> = chunks.iter().map(|c| c.rows).collect();
        columns.close_up(&slots, &rows);
        // The 0-based data row each chunk starts at.
        let first_rows: Vec<usize> = rows
            .iter()
            .scan(0, |before, &r| {
                *before += r;
                Some(*before - r)
            })
            .collect();
        let mut levels = Vec::with_capacity(layout.attributes.len());
        for (a, &column) in layout.attributes.iter().enumerate() {
            let mut distinct: Vec<String> = Vec::new();
            for (chunk, &first_row) in chunks.iter().zip(&first_rows) {
                for (value, row) in chunk.interners[a].values() {
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
        // Every chunk's codes of every attribute, with the global codes of its local ones.
        let mut remaps = Vec::with_capacity(chunks.len() * levels.len());
        for ((codes, levels), a) in columns.codes.iter_mut().zip(&levels).zip(0..) {
            for (local, chunk) in split(codes, &rows).into_iter().zip(&chunks) {
                let remap: Vec<u32> = chunk.interners[a]
                    .values()
                    .map(|(value, _)| {
                        let value = std::str::from_utf8(value).expect("checked above");
                        let found = levels.binary_search_by(|l| l.as_str().cmp(value));
                        found.expect("every level is listed") as u32
                    })
                    .collect();
                remaps.push((local, remap));
            }
        }
        remaps
            .into_par_iter()
            .for_each(|(local, remap)| local.iter_mut().for_each(|c| *c = remap[*c as usize]));
        let attributes = layout
            .attributes
            .iter()
            .zip(levels)
            .zip(columns.codes)
            .map(|((&column, levels), codes)| AttributeColumn {
                name: layout.names[column].clone(),
                levels,
                codes,
            })
            .collect();
        Ok(Predictions {
            y_true: columns.y_true,
            y_score: columns.y_score,
            y_pred: columns.y_pred,
            attributes,
        })
    }
}
