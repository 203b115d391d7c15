//! The requests a sample prints when it starts, runnable as tests.
