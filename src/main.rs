//! The `glint` binary: everything lives in the library; this only hands over the arguments.

fn main() -> std::process::ExitCode {
    glint::cli::main(std::env::args_os())
}
