//! `cargo perfcheck`: finds, builds and runs the harness target of the current package (see
//! `perfcheck::harness::launch`).

use std::process::ExitCode;

#[global_allocator]
static ALLOC: perfcheck::stage::CountingAlloc = perfcheck::stage::CountingAlloc::system();

fn main() -> ExitCode {
    perfcheck::harness::launch::main()
}
