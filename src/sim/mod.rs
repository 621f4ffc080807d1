//! Simulated pump house (placeholder while the model is written).
