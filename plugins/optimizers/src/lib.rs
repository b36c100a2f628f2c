//! fairlab built-in optimizers.
