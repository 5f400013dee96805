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
/// `mi_option_allow_thp`: its place in mimalloc v3's `mi_option_t` (the version linked here).
const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

fn main() -> std::process::ExitCode {
    let command = std::env::args_os().nth(1);
    let command = command.as_deref().and_then(std::ffi::OsStr::to_str);
    if command == Some("__janitor") && std::env::args_os().len() == 2 {
        // Started by every run beside its first agents: skip building the
        // whole command-line parser (a few milliseconds of CPU at the moment
        // the run starts up).
        return std::process::ExitCode::from(llm_orchestrate::drivers::janitor::janitor_main());
    }
    if matches!(command, Some("run" | "resume")) {
        // SAFETY: setting an option is allowed at any time; the option number
        // and the value are valid for the linked mimalloc.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    if matches!(
        command,
        Some("run" | "resume" | "ingest" | "mock-provider" | "worker" | "serve")
    ) {
        keep_heap_off_huge_pages();
    }
    llm_orchestrate::cli::main()
}

/// Heap settings for the commands that run agents or serve requests.
///
/// A run frees large temporaries again and again (status.json rewrites,
/// journal batches, request bodies): mimalloc's default one-second purge
/// delay kept a 10,000-agent run at ~100 MiB where returning freed memory at
/// once (`run`/`resume` set the delay to 0) keeps it at ~70 MiB. But mimalloc
/// also asks for transparent huge pages on its arenas (`MADV_HUGEPAGE`), so
/// every fresh or purged-then-reused 64 KiB page faulted in, and zeroed, a
/// whole 2 MiB page: 8 % of a 1,000-agent API run's CPU, and 28 % of the
/// `mock-provider` serving it. The heap therefore stays on normal pages in
/// these commands: later arenas are not advised (`allow_thp` off; set after
/// mimalloc started, so it does not disable huge pages for the whole process,
/// which agent processes would inherit) and the arenas already mapped are
/// advised back (`MADV_NOHUGEPAGE` on every mapping `/proc/self/smaps` flags
/// `hg`). Plan loading (`validate`, `analyze`) keeps mimalloc's defaults.
fn keep_heap_off_huge_pages() {
    // SAFETY: as above; `allow_thp` is only read when memory is mapped.
    unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in huge_page_mappings(&smaps) {
        // SAFETY: advice on a range of this process's own mappings, as read
        // just now; MADV_NOHUGEPAGE changes no contents.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_NOHUGEPAGE,
            );
        }
    }
}

/// The address ranges of the mappings advised `MADV_HUGEPAGE` (`VmFlags` holding `hg`).
fn huge_page_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(range) = current.take()
                && flags.split_whitespace().any(|flag| flag == "hg")
            {
                ranges.push(range);
            }
            continue;
        }
        let Some((range, _)) = line.split_once(' ') else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) {
            current = Some((start, end));
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::{MI_OPTION_ALLOW_THP, MI_OPTION_PURGE_DELAY, huge_page_mappings};

    unsafe extern "C" {
        /// mimalloc's `mi_option_get`.
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    }

    /// The option numbers are positions in mimalloc's enum: if another
    /// mimalloc version moved them, their defaults would not match.
    #[test]
    fn the_option_numbers_name_the_options_meant() {
        assert!(
            std::env::vars().all(|(name, _)| !name.starts_with("MIMALLOC_")),
            "run without MIMALLOC_* variables: they change the defaults checked here"
        );
        // SAFETY: reading an option of the linked mimalloc.
        let (purge_delay, allow_thp) = unsafe {
            (
                mi_option_get(MI_OPTION_PURGE_DELAY),
                mi_option_get(MI_OPTION_ALLOW_THP),
            )
        };
        assert_eq!(purge_delay, 1000, "mimalloc v3's default purge delay (ms)");
        assert_eq!(
            allow_thp, 1,
            "mimalloc v3 allows transparent huge pages by default"
        );
    }

    #[test]
    fn only_mappings_flagged_hg_are_found() {
        let smaps = "\
7f0000000000-7f0040000000 rw-p 00000000 00:00 0 
Size:            1048576 kB
VmFlags: rd wr mr mw me ac hg 
7f0040000000-7f0040200000 rw-p 00000000 00:00 0 
Size:               2048 kB
VmFlags: rd wr mr mw me ac nh 
55d000000000-55d000001000 r--p 00000000 08:01 123    /usr/bin/llm-orchestrate
Size:                  4 kB
VmFlags: rd mr mw me 
";
        assert_eq!(
            huge_page_mappings(smaps),
            vec![(0x7f00_0000_0000, 0x7f00_4000_0000)]
        );
    }
}
