//! Starting a chapter's server as a real process, for the tests, the tour
//! and the benchmark.
//!
//! The server is started on `127.0.0.1:0` (unless told otherwise) so the OS
//! picks a free port, and [`ServerProcess::start`] waits for its
//! `listening on HOST:PORT` line to learn it: a readiness signal, not a
//! guess with `sleep`. The server runs in its own process group; dropping
//! the handle kills the whole group, so no worker outlives a test.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use client::connection::{Closed, Connection};

use crate::procfs;

/// How long a server may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Most of a server's stderr kept in memory; older lines are dropped.
const LOG_LIMIT: usize = 4 << 20;

/// A running server process; killed (with its process group) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// The thread copying stderr into `log`: finished once every process
    /// holding the server's stderr has exited.
    log_reader: thread::JoinHandle<()>,
    status: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts `program` with `args`, adding `--addr 127.0.0.1:0` unless
    /// `args` has an `--addr`, and waits for its `listening on` line.
    ///
    /// # Errors
    ///
    /// If the program cannot be started, exits, or does not announce its
    /// address within [`STARTUP_TIMEOUT`]; the error holds its stderr.
    pub fn start<S: AsRef<OsStr>>(
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> io::Result<ServerProcess> {
        let mut command = Command::new(program);
        command.args(args);
        if !args.iter().any(|a| a.as_ref() == "--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        ServerProcess::spawn(command)
    }

    /// Starts a prepared command (its stdout and stderr are taken over)
    /// and waits for its `listening on` line.
    ///
    /// # Errors
    ///
    /// As for [`ServerProcess::start`].
    pub fn spawn(mut command: Command) -> io::Result<ServerProcess> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that killing the group on drop also ends
            // any worker processes it forked.
            .process_group(0);
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("stdout was piped above");
        let stderr = child.stderr.take().expect("stderr was piped above");
        let log = Arc::new(Mutex::new(String::new()));
        let log_reader = collect_log(stderr, Arc::clone(&log));
        let (tx, rx) = mpsc::channel();
        let out = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&out);
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            if let Some(Ok(line)) = &first {
                keep_line(&kept, line);
            }
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for line in lines {
                let Ok(line) = line else { break };
                keep_line(&kept, &line);
            }
        });
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            stdout: out,
            log_reader,
            status: None,
        };
        let first = rx.recv_timeout(STARTUP_TIMEOUT);
        let line = match first {
            Ok(Some(Ok(line))) => line,
            _ => {
                // Give stderr a moment to arrive, for the error message.
                let _ = server.wait_timeout(Duration::from_millis(500));
                return Err(io::Error::other(format!(
                    "server did not announce its address; stderr:\n{}",
                    server.log()
                )));
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("unexpected first line {line:?}"))
            })?;
        server.addr = addr;
        Ok(server)
    }

    /// The address the server announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id (the master, for prefork).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` until `done` holds for the server's whole
    /// stderr so far (a line that says it read a message, closed a
    /// client, ...), looking every 10 ms. Returns whether it came in time:
    /// a readiness signal to wait on instead of a fixed sleep.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.log()) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Waits up to `timeout` for the end of the server's stderr: every
    /// process that held it (the server, its workers) has exited, so
    /// [`log`](Self::log) is complete and a line missing from it will
    /// never come. Returns whether the end came in time.
    pub fn wait_log_end(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.log_reader.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Everything the server wrote to stdout so far, starting with its
    /// `listening on` line.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The process ids of the server's process group: the server and any
    /// process it forked (prefork workers), read from `/proc`.
    pub fn group_pids(&self) -> Vec<u32> {
        procfs::group_pids(self.pid())
    }

    /// CPU time (user + system) used so far by the server's process
    /// group: every process's threads, and the children they reaped (see
    /// [`procfs::group_usage`]).
    pub fn group_cpu_time(&self) -> Duration {
        self.usage().cpu
    }

    /// CPU time, memory and processes of the server's process group now.
    pub fn usage(&self) -> procfs::Usage {
        // Only an unreadable `/proc` fails; then there is nothing to count.
        procfs::group_usage(self.pid()).unwrap_or_default()
    }

    /// A new [`Connection`] to the server, with read and write timeouts
    /// of `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`ServerProcess::connect`].
    pub fn connection(&self, timeout: Duration) -> io::Result<Connection> {
        Connection::connect(self.addr, timeout)
    }

    /// One polite session, the seed's: `messages` messages (`package 0`,
    /// `package 1`, ...), each waited for its `ack`, then `goodbye` and
    /// the server's orderly close with nothing after it. Every step gives
    /// up after `timeout`.
    ///
    /// # Errors
    ///
    /// If a step fails or times out, a reply is not `ack`, or the server
    /// sends anything after `goodbye` or resets the connection.
    pub fn session(
        &self,
        messages: usize,
        timeout: Duration,
    ) -> io::Result<()> {
        let mut conn = self.connection(timeout)?;
        for n in 0..messages {
            conn.send(format!("package {n}").as_bytes())?;
            conn.read_ack()?;
        }
        conn.send_goodbye()?;
        match conn.read_until_closed()? {
            (rest, Closed::Eof) if rest.is_empty() => Ok(()),
            (rest, closed) => Err(io::Error::other(format!(
                "after goodbye: {:?}, then {closed:?}",
                String::from_utf8_lossy(&rest)
            ))),
        }
    }

    /// Runs `clients` [sessions](Self::session) at once, one thread each,
    /// and returns how long they took together: what the observed
    /// parallelism (`client::load::parallelism`) is computed from.
    ///
    /// # Errors
    ///
    /// The first session's error, if any fails.
    pub fn sessions_at_once(
        &self,
        clients: usize,
        messages: usize,
        timeout: Duration,
    ) -> io::Result<Duration> {
        let started = Instant::now();
        thread::scope(|scope| {
            let sessions: Vec<_> = (0..clients)
                .map(|_| scope.spawn(|| self.session(messages, timeout)))
                .collect();
            sessions.into_iter().try_for_each(|session| {
                session
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })?;
        Ok(started.elapsed())
    }

    /// Sends `signal` to the server process (not its group).
    ///
    /// # Errors
    ///
    /// If the process no longer exists.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        kill(pid_of(self.child.id()), signal)?;
        Ok(())
    }

    /// Sends `signal` to the server's whole process group (a prefork
    /// master and its workers), as a terminal, `docker pause` or a
    /// supervisor would.
    ///
    /// # Errors
    ///
    /// If no process of the group exists any more.
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        killpg(pid_of(self.child.id()), signal)?;
        Ok(())
    }

    /// Stops the server the polite way, as a reader would: SIGTERM, then
    /// up to `timeout` for it to drain and exit. Returns its exit status,
    /// or `None` if it is still running (dropping the handle kills it).
    ///
    /// # Errors
    ///
    /// If waiting for the child fails.
    pub fn terminate(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<ExitStatus>> {
        // It may have exited already; then there is only the status.
        let _ = self.signal(Signal::SIGTERM);
        self.wait_timeout(timeout)
    }

    /// Waits up to `timeout` for the server to exit.
    ///
    /// # Errors
    ///
    /// If waiting for the child fails.
    pub fn wait_timeout(
        &mut self,
        timeout: Duration,
    ) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status {
                return Ok(Some(status));
            }
            if let Some(status) = self.child.try_wait()? {
                self.status = Some(status);
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new connection to the server, with read and write timeouts of
    /// `timeout`, so that a hung server fails the caller instead of
    /// hanging it.
    ///
    /// # Errors
    ///
    /// If the connection is refused or cannot be configured.
    pub fn connect(&self, timeout: Duration) -> io::Result<TcpStream> {
        Connection::connect(self.addr, timeout).map(Connection::into_stream)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // The whole group: a prefork master and all its workers.
        let _ = killpg(pid_of(self.child.id()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends one stdout line to `out`, bounded like the log.
fn keep_line(out: &Mutex<String>, line: &str) {
    let Ok(mut out) = out.lock() else { return };
    if out.len() <= LOG_LIMIT {
        out.push_str(line);
        out.push('\n');
    }
}

fn pid_of(id: u32) -> Pid {
    Pid::from_raw(i32::try_from(id).expect("process ids fit in i32"))
}

/// Copies the server's stderr into `log`, keeping at most [`LOG_LIMIT`].
fn collect_log(
    stderr: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(mut log) = log.lock() else { break };
            if log.len() > LOG_LIMIT {
                let cut = log.len() / 2;
                let cut = log[cut..].find('\n').map_or(cut, |i| cut + i + 1);
                log.drain(..cut);
            }
            log.push_str(&line);
            log.push('\n');
        }
    })
}
