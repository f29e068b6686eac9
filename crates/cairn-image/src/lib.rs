//! Image assembly as a library: what goes into a cairn image or a host rootfs.
//!
//! Owns the recipe between a locked environment and its layers: which
//! packages a (named) container holds, what package configuration adds in
//! place of maintainer scripts, the environment's top layer (users, dpkg
//! status, activation data, the entrypoint), and turning a build plan into
//! layers and an image config through cairn-oci. It never prints and knows
//! nothing about terminals or the command line: the CLI builds a plan and
//! reports what this crate returns.

pub mod build;
pub mod configure;
pub mod configured;
mod elf;
mod error;
pub mod foreign;
pub mod kubernetes;
pub mod local_files;
pub mod named;
pub mod plan;
pub mod report;
mod root_copy;
pub mod sbom;
pub mod top_layer;
pub mod users;

pub use build::{
    ArchiveScope, BuildReporter, BuiltImage, NoReporter, build_all, build_all_into_archive,
};
pub use error::{ImageError, Result};
pub use foreign::foreign_entrypoint_var;
pub use named::Overrides;
pub use plan::{BuildPlan, Entrypoints, PlanRequest, image_name, split_tag_arg};
pub use report::{ImageReport, LayerReport, ReportTotal, image_report};
