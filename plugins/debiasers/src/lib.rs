//! fairlab built-in debiasers.
