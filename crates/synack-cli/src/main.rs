//! The `synack` command line.

fn main() {}
