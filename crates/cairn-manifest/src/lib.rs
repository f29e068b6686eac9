//! The environment's manifest (`manifest.toml`) and lock (`manifest.lock`).
