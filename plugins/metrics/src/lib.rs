//! fairlab built-in metrics.
