//! Where each key of a YAML document is (line and column), so that errors found after
//! deserialisation (in the typed config or inside a plugin's settings) can point at the file.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use crate::error::Location;

/// Positions of every key (and sequence item) of one YAML file, by dotted path (`a.b.0.c`).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    file: String,
    positions: HashMap<String, (usize, usize)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

impl SourceMap {
    /// Index the keys of `text`, read from `file`. YAML syntax errors are left to the real parser;
    /// indexing simply stops there.
    pub fn build(file: &str, text: &str) -> Self {
        let mut positions = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        // The path of the value that starts now, given the innermost container.
        fn value_path(stack: &[Frame]) -> String {
            match stack.last() {
                Some(Frame::Map { path, key: Some(k) }) => join(path, k),
                Some(Frame::Seq { path, index }) => join(path, &index.to_string()),
                _ => String::new(),
            }
        }
        // A value of the innermost container is complete.
        fn value_done(stack: &mut [Frame]) {
            match stack.last_mut() {
                Some(Frame::Map { key, .. }) => *key = None,
                Some(Frame::Seq { index, .. }) => *index += 1,
                None => {}
            }
        }
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = (span.start.line(), span.start.col() + 1);
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = value_path(&stack);
                    if matches!(stack.last(), Some(Frame::Seq { .. })) {
                        positions.entry(path.clone()).or_insert(pos);
                    }
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map { path, key: None }
                    } else {
                        Frame::Seq { path, index: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    value_done(&mut stack);
                }
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map { path, key: key @ None }) = stack.last_mut() {
                        positions.insert(join(path, &value), pos);
                        *key = Some(value.into_owned());
                    } else {
                        if matches!(stack.last(), Some(Frame::Seq { .. })) {
                            positions.entry(value_path(&stack)).or_insert(pos);
                        }
                        value_done(&mut stack);
                    }
                }
                Event::Alias(_) => value_done(&mut stack),
                _ => {}
            }
        }
        Self {
            file: file.to_string(),
            positions,
        }
    }

    /// The location of a dotted key, or of its nearest enclosing key that is in the file.
    pub fn locate(&self, key: &str) -> Location {
        let mut probe = key;
        loop {
            if let Some(&(line, column)) = self.positions.get(probe) {
                return Location {
                    source: self.file.clone(),
                    line: Some(line),
                    column: Some(column),
                };
            }
            match probe.rfind('.') {
                Some(i) => probe = &probe[..i],
                None => {
                    return Location {
                        source: self.file.clone(),
                        line: None,
                        column: None,
                    }
                }
            }
        }
    }

    /// Whether the exact key is written in the file.
    pub fn contains(&self, key: &str) -> bool {
        self.positions.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: q\nbackbone:\n  kind: efficientnet-lite0\n  device: cpu\ndataset: {kind: csv-images, attributes: [sex, age_group]}\nlist:\n  - a: 1\n  - b: 2\n";

    #[test]
    fn keys_have_their_line_and_column() {
        let map = SourceMap::build("exp.yaml", DOC);
        let at = |k: &str| {
            let l = map.locate(k);
            (l.line.unwrap(), l.column.unwrap())
        };
        assert_eq!(at("name"), (1, 1));
        assert_eq!(at("backbone"), (2, 1));
        assert_eq!(at("backbone.device"), (4, 3));
        assert_eq!(at("dataset.kind"), (5, 11));
        assert_eq!(at("dataset.attributes.1"), (5, 47));
        assert_eq!(at("list.1.b"), (8, 5));
    }

    #[test]
    fn unknown_keys_fall_back_to_the_nearest_parent() {
        let map = SourceMap::build("exp.yaml", DOC);
        assert_eq!(map.locate("backbone.nope.deeper").line, Some(2));
        assert_eq!(map.locate("nothing").line, None);
        assert!(!map.contains("backbone.nope"));
    }
}
