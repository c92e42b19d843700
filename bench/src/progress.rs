//! A one-line progress display on stderr (rewritten in place on a terminal, one line per
//! step otherwise, e.g. under `cargo xtask` in CI logs).

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

pub struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    tty: bool,
    dirty: bool,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self { total, done: 0, start: Instant::now(), tty: std::io::stderr().is_terminal(), dirty: false }
    }

    /// A free-form status line (set-up, tear-down).
    pub fn note(&mut self, msg: &str) {
        self.clear();
        eprintln!("{msg}");
    }

    /// About to run one measurement.
    pub fn start_step(&mut self, label: &str) {
        if self.tty {
            self.draw(&format!("{label} …"));
        }
    }

    /// One measurement finished, with a short result text.
    pub fn finish_step(&mut self, label: &str, result: &str) {
        self.done += 1;
        let line = format!("{label}: {result}");
        if self.tty {
            self.draw(&line);
        } else {
            eprintln!("{} {line}", self.prefix());
        }
    }

    pub fn finish(&mut self) {
        self.clear();
    }

    fn prefix(&self) -> String {
        let elapsed = self.start.elapsed();
        let eta = if self.done == 0 {
            String::from("?")
        } else {
            let per = elapsed.as_secs_f64() / self.done as f64;
            fmt_duration(Duration::from_secs_f64(per * (self.total - self.done.min(self.total)) as f64))
        };
        let width = self.total.to_string().len();
        format!("[{:>width$}/{}] {} elapsed, ETA {eta} |", self.done, self.total, fmt_duration(elapsed))
    }

    fn draw(&mut self, msg: &str) {
        let mut line = format!("{} {msg}", self.prefix());
        line.truncate(line.char_indices().nth(150).map(|(i, _)| i).unwrap_or(line.len()));
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        self.dirty = true;
    }

    fn clear(&mut self) {
        if self.dirty {
            eprint!("\r\x1b[2K");
            self.dirty = false;
        }
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
