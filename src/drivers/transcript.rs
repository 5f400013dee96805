//! Agents' transcripts (`agents/<id>/output.log` of API agents), written by
//! one background thread for every agent of the process.
//!
//! Creating an agent's folder and log costs file-system work (milliseconds on
//! a busy ext4 disk) that must not sit between an agent's start and its first
//! model request, and streamed text arrives in many small pieces from
//! callbacks that cannot wait. So writes are queued to a single writer thread
//! that creates, appends and closes the files in order. Closing a transcript
//! queues its close and returns: an attempt never waits for the disk (on a
//! busy ext4 disk, allocating the inodes of a thousand new folders and logs
//! took longer than the agents' turns). [`flush_all`] waits until everything
//! queued so far is in the files; the engine calls it before a run ends, so
//! every log is complete when the run is. Within a run a log may lag its
//! attempt by the queue; a later attempt of the same agent appends after it,
//! since the thread handles operations in order.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

use tokio::sync::oneshot;

enum Op {
    Open {
        id: u64,
        path: PathBuf,
        header: String,
    },
    Write {
        id: u64,
        text: String,
    },
    Close {
        id: u64,
    },
    /// Confirms that every earlier operation is done (see [`flush_all`]).
    Flush {
        done: oneshot::Sender<()>,
    },
}

static WRITER: OnceLock<Option<Mutex<mpsc::Sender<Op>>>> = OnceLock::new();

fn writer() -> Option<&'static Mutex<mpsc::Sender<Op>>> {
    WRITER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Op>();
            std::thread::Builder::new()
                .name("llmo-transcripts".into())
                .spawn(move || {
                    yield_to_the_run();
                    write_all(&rx)
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// How much lower than the rest of the process this thread runs (added to
/// its nice value; +10 weighs a tenth of a normal thread when the CPUs are busy).
pub const NICENESS: libc::c_int = 10;

/// Lowers this thread's scheduling priority by [`NICENESS`]. Transcripts are
/// never waited for until the run's end, but creating a thousand folders and
/// logs is a tenth of a large API run's CPU (more on ext4), and it used to
/// compete, in the bursts when a hundred agents end together, with the work
/// that starts their successors. At a lower priority it takes the idle time
/// between bursts instead. Raising a nice value needs no privilege; if it
/// fails anyway, the thread just runs at normal priority.
fn yield_to_the_run() {
    // SAFETY: `nice` has no preconditions. On Linux the nice value belongs
    // to the calling thread (see setpriority(2), "BUGS"), not the process.
    unsafe {
        let _ = libc::nice(NICENESS);
    }
}

/// Applies queued operations in order. Writes are buffered per file and
/// flushed whenever the queue runs empty (and before a close is confirmed):
/// streamed text arrives in pieces of a few bytes, and one `write` per piece
/// was most of this thread's time.
fn write_all(rx: &mpsc::Receiver<Op>) {
    let mut files: HashMap<u64, Option<BufWriter<File>>> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(op) = next {
            apply(op, &mut files);
            next = rx.try_recv().ok();
        }
        // Only open transcripts (at most one per running agent); flushing
        // an empty buffer writes nothing.
        files.values_mut().for_each(flush);
    }
}

fn apply(op: Op, files: &mut HashMap<u64, Option<BufWriter<File>>>) {
    match op {
        Op::Open { id, path, header } => {
            let file = path.parent().and_then(|dir| {
                std::fs::create_dir_all(dir).ok()?;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .ok()?;
                let mut file = BufWriter::with_capacity(BUFFER_BYTES, file);
                file.write_all(header.as_bytes()).ok()?;
                Some(file)
            });
            files.insert(id, file);
        }
        Op::Write { id, text } => {
            if let Some(slot) = files.get_mut(&id)
                && let Some(file) = slot
                && file.write_all(text.as_bytes()).is_err()
            {
                *slot = None;
            }
        }
        Op::Close { id } => {
            if let Some(mut slot) = files.remove(&id) {
                flush(&mut slot);
            }
        }
        Op::Flush { done } => {
            files.values_mut().for_each(flush);
            let _ = done.send(());
        }
    }
}

/// Writes out a file's buffer; a file that cannot be written is dropped.
fn flush(slot: &mut Option<BufWriter<File>>) {
    if let Some(file) = slot
        && file.flush().is_err()
    {
        *slot = None;
    }
}

/// Bytes buffered per transcript before a write.
const BUFFER_BYTES: usize = 8 * 1024;

/// One attempt's transcript. Dropping it without [`Transcript::close`] (an
/// attempt cancelled mid-turn) still closes the file after what was queued.
pub struct Transcript {
    id: u64,
    closed: bool,
}

impl Transcript {
    /// Starts a transcript at `path` (its folder is created), beginning with `header`.
    pub fn open(path: PathBuf, header: String) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        send(Op::Open { id, path, header });
        Self { id, closed: false }
    }

    /// Appends text (best effort: a file that cannot be written is skipped).
    pub fn write(&self, text: &str) {
        send(Op::Write {
            id: self.id,
            text: text.to_string(),
        });
    }

    /// Queues the transcript's close, after everything written before.
    pub fn close(mut self) {
        send(Op::Close { id: self.id });
        self.closed = true;
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        if !self.closed {
            send(Op::Close { id: self.id });
        }
    }
}

/// Waits until every transcript operation queued so far is done: the files
/// hold everything written to them. Returns at once when no transcript was
/// ever opened in this process.
pub async fn flush_all() {
    let Some(Some(writer)) = WRITER.get() else {
        return;
    };
    let (done, flushed) = oneshot::channel();
    let sent = writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(Op::Flush { done })
        .is_ok();
    if sent {
        let _ = flushed.await;
    }
}

fn send(op: Op) {
    if let Some(writer) = writer() {
        let tx = writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = tx.send(op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_transcript_holds_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents/A/output.log");
        let transcript = Transcript::open(path.clone(), "==> header <==\n".into());
        for i in 0..100 {
            transcript.write(&format!("{i}\n"));
        }
        transcript.close();
        flush_all().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: String = std::iter::once("==> header <==\n".to_string())
            .chain((0..100).map(|i| format!("{i}\n")))
            .collect();
        assert_eq!(text, expected);
    }

    #[tokio::test]
    async fn the_writer_thread_runs_below_the_run_priority() {
        let dir = tempfile::tempdir().unwrap();
        Transcript::open(dir.path().join("A/output.log"), String::new()).close();
        flush_all().await;
        let tasks = std::fs::read_dir("/proc/self/task").unwrap();
        let nice_of_writer = tasks
            .filter_map(|t| {
                let stat = std::fs::read_to_string(t.ok()?.path().join("stat")).ok()?;
                let (name, rest) = stat.split_once(") ")?;
                name.ends_with("llmo-transcript").then_some(())?;
                // Fields after the name: state is field 3, nice is field 19.
                rest.split(' ').nth(16)?.parse::<i32>().ok()
            })
            .next()
            .expect("the writer thread is running");
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(
            nice_of_writer,
            (own + NICENESS).min(19),
            "this test thread is at {own}"
        );
    }

    #[tokio::test]
    async fn an_unwritable_transcript_is_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agents"), "a file in the way").unwrap();
        let transcript = Transcript::open(dir.path().join("agents/A/output.log"), String::new());
        transcript.write("lost");
        transcript.close();
        flush_all().await;
        assert!(!dir.path().join("agents/A").exists());
    }
}
