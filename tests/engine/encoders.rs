//! Tests: encoders
