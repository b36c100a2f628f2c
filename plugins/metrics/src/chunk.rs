//! One chunk of a file being parsed into its slots of the columns, with its own interner per
//! attribute. Records come in whole (checked field by field, every problem named) or, on the plain
//! fast path, one field at a time.

use crate::columns::Slots;
use crate::interner::{prefix, Interner};
use crate::layout::Layout;
use crate::number::{parse_binary, parse_score, shown};

/// A problem in a chunk: the record (0-based in the chunk), the column and what is wrong.
pub(crate) struct Problem {
    /// The record, counted from 0 at the chunk's start.
    pub(crate) record: usize,
    /// The field, when the problem is in one.
    pub(crate) column: Option<usize>,
    /// What is wrong.
    pub(crate) message: String,
}

/// The fields of one record.
pub(crate) trait Fields {
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

/// A parsed chunk: its number of records and its interned group values per attribute.
pub(crate) struct Chunk {
    /// Number of records.
    pub(crate) rows: usize,
    /// Per selected attribute, the values the chunk's codes stand for.
    pub(crate) interners: Vec<Interner>,
}

/// A chunk being parsed.
pub(crate) struct ChunkParser<'a> {
    slots: Slots<'a>,
    interners: Vec<Interner>,
    rows: usize,
}

impl<'a> ChunkParser<'a> {
    /// A parser filling `slots`.
    pub(crate) fn new(slots: Slots<'a>) -> Self {
        let interners = slots.codes.iter().map(|_| Interner::default()).collect();
        Self {
            slots,
            interners,
            rows: 0,
        }
    }

    /// Store the label of the current record.
    #[inline]
    pub(crate) fn label(&mut self, label: u8) {
        self.slots.y_true[self.rows] = label;
    }

    /// Store the score of the current record.
    #[inline]
    pub(crate) fn score(&mut self, score: f64) {
        self.slots.y_score[self.rows] = score;
    }

    /// Store the hard prediction of the current record.
    #[inline]
    pub(crate) fn prediction(&mut self, prediction: u8) {
        self.slots.y_pred[self.rows] = prediction;
    }

    /// Store the group value of attribute `a` of the current record, whose [`prefix`] is given.
    #[inline(always)]
    pub(crate) fn group(&mut self, a: usize, value: &[u8], prefix: u64) {
        let row = self.rows;
        self.slots.codes[a][row] = self.interners[a].intern(value, prefix, row);
    }

    /// The current record is complete: every value was stored.
    #[inline]
    pub(crate) fn end_record(&mut self) {
        self.rows += 1;
    }

    /// Check and add one whole record.
    pub(crate) fn push(&mut self, record: &impl Fields, layout: &Layout) -> Result<(), Problem> {
        let row = self.rows;
        let problem = |column: usize, message: String| Problem {
            record: row,
            column: Some(column),
            message,
        };
        let (count, width) = (record.count(), layout.width());
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
            self.prediction(pred);
        }
        self.label(label);
        self.score(score);
        for (a, &field) in layout.attributes.iter().enumerate() {
            let value = record.field(field);
            self.group(a, value, prefix(value));
        }
        self.rows += 1;
        Ok(())
    }

    /// The chunk's records and interners, once every record is in.
    pub(crate) fn finish(self) -> Chunk {
        Chunk {
            rows: self.rows,
            interners: self.interners,
        }
    }
}
