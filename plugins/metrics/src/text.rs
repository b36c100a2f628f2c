//! The bytes of a file, memory-mapped: parsing reads the page cache directly, in parallel, with no
//! copy into a buffer that would first have to be zeroed. What is not mapped (a pipe, a directory,
//! an empty file, a file on a file system that cannot map) is read instead, failing the way
//! `std::fs::read` fails.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

/// The contents of a file.
pub(crate) enum Text {
    /// Mapped into memory.
    Mapped(Mmap),
    /// Read into a buffer.
    Read(Vec<u8>),
}

impl Text {
    /// The contents of the file at `path`.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        // Only a regular file with a size is mapped (a file in /proc says it has none).
        if file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) {
            // SAFETY: the map is only read, as bytes. This assumes that no other process
            // truncates or rewrites the file while it is parsed (the caveat of every memory map:
            // a truncation would end the process with SIGBUS).
            if let Ok(map) = unsafe { Mmap::map(&file) } {
                return Ok(Text::Mapped(map));
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Text::Read(bytes))
    }
}

impl Deref for Text {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Text::Mapped(map) => map,
            Text::Read(bytes) => bytes,
        }
    }
}
