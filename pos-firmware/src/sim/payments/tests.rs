//! Tests of the simulated payment back end, as sentences.
