//! Tests: data
