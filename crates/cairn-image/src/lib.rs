//! Image assembly as a library: what goes into a cairn image or a host rootfs.
//!
//! Owns the recipe between a locked environment and its layers: which
//! packages a (named) container holds, what package configuration adds in
//! place of maintainer scripts, the environment's top layer (users, dpkg
//! status, activation data, the entrypoint), and turning a build plan into
//! layers and an image config through cairn-oci. It never prints and knows
//! nothing about terminals or the command line: the CLI builds a plan and
//! reports what this crate returns.

pub mod configure;
