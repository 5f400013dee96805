//! The `llm-orchestrate` binary: parse the command line, run the command, exit with its code.

/// mimalloc: plan loading allocates many small values; it is markedly faster than the system allocator here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set`, from the static library behind [`ALLOCATOR`].
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay`: its place in mimalloc's `mi_option_t` (the same in v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // A run frees large temporaries again and again (status.json rewrites,
    // journal batches) while transparent huge pages make every touched 2 MiB
    // of the heap resident: mimalloc's default one-second purge delay kept a
    // 10,000-agent run at ~100 MiB where returning freed memory at once keeps
    // it at ~70 MiB. Only for the commands that run agents.
    let command = std::env::args_os().nth(1);
    if matches!(
        command.as_deref().and_then(std::ffi::OsStr::to_str),
        Some("run" | "resume")
    ) {
        // SAFETY: setting an option is allowed at any time; the option number
        // and the value are valid for the linked mimalloc.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    llm_orchestrate::cli::main()
}
