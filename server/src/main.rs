//! `brain-server`: see `brain-server --help`.

fn main() -> std::process::ExitCode {
    brain_server::cli::main()
}
