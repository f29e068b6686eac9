//! `cairn-runc`: containerd's runc v2 shim runs it as `BinaryName` for the
//! `cairn` runtime class; see `cairn_cli::commands::kubernetes::runc`.

fn main() -> std::process::ExitCode {
    cairn_cli::runc_main()
}
