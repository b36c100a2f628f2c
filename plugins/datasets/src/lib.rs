//! fairlab built-in datasets.
