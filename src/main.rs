//! The `llm-orchestrate` binary: parse the command line, run the command, exit with its code.

/// mimalloc: plan loading allocates many small values; it is markedly faster than the system allocator here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    llm_orchestrate::cli::main()
}
