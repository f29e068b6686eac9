//! The cairn that images carry as `/opt/cairn/bin/cairn`; see `cairn_cli::in_image`.

fn main() -> std::process::ExitCode {
    cairn_cli::in_image::main()
}
