//! Tests: simulate
