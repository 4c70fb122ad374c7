//! The `glint` binary: everything lives in the library; this only hands over the arguments.

/// mimalloc instead of glibc's malloc: a request makes many small allocations (header values,
/// JSON, the record), and glibc's bins and consolidation cost a third of its instructions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    glint::cli::main(std::env::args_os())
}
