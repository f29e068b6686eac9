//! The `cairn` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    cairn_cli::main()
}
