//! JSON Lines trace output.
