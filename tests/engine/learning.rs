//! Tests: learning
