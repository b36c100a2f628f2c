//! The parsed columns of a file. They are allocated once, zeroed, for an upper bound on the number
//! of records; each chunk of the file fills its own slots in place (chunks run in parallel), and
//! the columns are closed up afterwards where a chunk had fewer records than slots.

use crate::layout::Layout;

/// Labels, scores, hard predictions and group codes of every record.
pub(crate) struct Columns {
    /// True labels.
    pub(crate) y_true: Vec<u8>,
    /// Scores.
    pub(crate) y_score: Vec<f64>,
    /// Hard predictions, when the file has them.
    pub(crate) y_pred: Option<Vec<u8>>,
    /// Group codes per selected attribute (codes of each chunk's interners until remapped).
    pub(crate) codes: Vec<Vec<u32>>,
}

/// One chunk's slots in every column.
pub(crate) struct Slots<'a> {
    /// True labels.
    pub(crate) y_true: &'a mut [u8],
    /// Scores.
    pub(crate) y_score: &'a mut [f64],
    /// Hard predictions (empty when the file has none).
    pub(crate) y_pred: &'a mut [u8],
    /// Group codes per selected attribute.
    pub(crate) codes: Vec<&'a mut [u32]>,
}

impl Columns {
    /// Columns of `records` zeros for the fields of `layout`.
    pub(crate) fn zeroed(records: usize, layout: &Layout) -> Self {
        Self {
            y_true: vec![0; records],
            y_score: vec![0.0; records],
            y_pred: layout.y_pred.map(|_| vec![0; records]),
            codes: layout.attributes.iter().map(|_| vec![0; records]).collect(),
        }
    }

    /// Consecutive slots, `lens[k]` records for chunk `k`.
    pub(crate) fn slots(&mut self, lens: &[usize]) -> Vec<Slots<'_>> {
        let y_pred = match &mut self.y_pred {
            Some(y_pred) => split(y_pred, lens),
            None => lens.iter().map(|_| <&mut [u8]>::default()).collect(),
        };
        let mut codes: Vec<_> = self.codes.iter_mut().map(|c| split(c, lens).into_iter()).collect();
        split(&mut self.y_true, lens)
            .into_iter()
            .zip(split(&mut self.y_score, lens))
            .zip(y_pred)
            .map(|((y_true, y_score), y_pred)| Slots {
                y_true,
                y_score,
                y_pred,
                codes: codes
                    .iter_mut()
                    .map(|c| c.next().expect("one slice per chunk"))
                    .collect(),
            })
            .collect()
    }

    /// Chunk `k` filled the first `rows[k]` of its `slots[k]` slots: move the records together and
    /// drop the unused slots.
    pub(crate) fn close_up(&mut self, slots: &[usize], rows: &[usize]) {
        let total = rows.iter().sum();
        if slots != rows {
            close_up(&mut self.y_true, slots, rows);
            close_up(&mut self.y_score, slots, rows);
            if let Some(y_pred) = &mut self.y_pred {
                close_up(y_pred, slots, rows);
            }
            for codes in &mut self.codes {
                close_up(codes, slots, rows);
            }
        }
        self.y_true.truncate(total);
        self.y_score.truncate(total);
        if let Some(y_pred) = &mut self.y_pred {
            y_pred.truncate(total);
        }
        for codes in &mut self.codes {
            codes.truncate(total);
        }
    }
}

/// Consecutive slices of `lens[k]` elements.
pub(crate) fn split<'a, T>(mut column: &'a mut [T], lens: &[usize]) -> Vec<&'a mut [T]> {
    lens.iter()
        .map(|&len| {
            let (head, tail) = std::mem::take(&mut column).split_at_mut(len);
            column = tail;
            head
        })
        .collect()
}

/// Move the first `rows[k]` elements of each consecutive part of `slots[k]` elements together.
fn close_up<T: Copy>(column: &mut [T], slots: &[usize], rows: &[usize]) {
    let (mut from, mut to) = (0, 0);
    for (&slots, &rows) in slots.iter().zip(rows) {
        column.copy_within(from..from + rows, to);
        from += slots;
        to += rows;
    }
}
