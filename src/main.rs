//! The binary is thin on purpose: everything lives in the library so tests can drive it.

fn main() -> std::process::ExitCode {
    mailswarm::cli::main()
}
