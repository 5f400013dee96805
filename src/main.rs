//! The `llm-orchestrate` binary: parse the command line, run the command, exit with its code.

fn main() -> std::process::ExitCode {
    llm_orchestrate::cli::main()
}
