//! fairlab built-in backbones.
