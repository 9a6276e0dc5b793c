//! `cargo perfcheck`: finds, builds and runs the harness target of the current package (see
//! `perfcheck::cli::launch`).

use std::process::ExitCode;

#[global_allocator]
static ALLOC: perfcheck::stage::CountingAlloc = perfcheck::stage::CountingAlloc::system();

fn main() -> ExitCode {
    perfcheck::cli::launch::main()
}
