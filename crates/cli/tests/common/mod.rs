//! A real `pravaha standalone` process for end-to-end tests: started on ephemeral ports in a
//! temporary data directory, restarted on the same ports and directory, stopped with SIGTERM or
//! killed with SIGKILL.

#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod official;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a standalone may take to print its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM may take to end it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The three listeners of a standalone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listeners {
    pub segment_store: SocketAddr,
    pub grpc: SocketAddr,
    pub rest: SocketAddr,
}

impl Listeners {
    fn ephemeral() -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        Listeners {
            segment_store: any,
            grpc: any,
            rest: any,
        }
    }
}

pub struct Standalone {
    child: Option<Child>,
    /// Arguments beyond the data directory and listeners, kept for restarts.
    args: Vec<String>,
    data_dir: PathBuf,
    /// Keeps the temporary directory alive (when the harness made it).
    _temp: Option<Arc<tempfile::TempDir>>,
    pub listeners: Listeners,
    /// Everything the process printed on stderr.
    log: Arc<Mutex<Vec<String>>>,
}

impl Standalone {
    /// Starts a standalone on ephemeral ports in a fresh temporary directory.
    pub fn start() -> Standalone {
        Standalone::start_with_args(&[])
    }

    /// As [`Standalone::start`], with more command-line arguments.
    pub fn start_with_args(args: &[&str]) -> Standalone {
        let temp = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let dir = temp.path().join("data");
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut standalone = Standalone::start_in(&dir, Listeners::ephemeral(), args);
        standalone._temp = Some(temp);
        standalone
    }

    /// Starts a standalone on `listeners` with its data in `data_dir`.
    pub fn start_in(data_dir: &Path, listeners: Listeners, args: Vec<String>) -> Standalone {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pravaha"))
            .arg("standalone")
            .args(&args)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--segment-store")
            .arg(listeners.segment_store.to_string())
            .arg("--grpc")
            .arg(listeners.grpc.to_string())
            .arg("--rest")
            .arg(listeners.rest.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pravaha standalone");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        {
            let log = log.clone();
            // Drains stderr for the life of the process so that it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(line.clone());
                    let _ = lines_tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut segment_store, mut grpc, mut rest) = (None, None, None);
        while segment_store.is_none() || grpc.is_none() || rest.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "standalone did not print its listeners within {START_TIMEOUT:?}; stderr:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            };
            let address = |prefix: &str| -> Option<SocketAddr> {
                line.strip_prefix(prefix)
                    .map(|rest| rest.trim().parse().expect("a listener address"))
            };
            if let Some(a) = address("segment store on ") {
                segment_store = Some(a);
            } else if let Some(a) = address("controller gRPC on ") {
                grpc = Some(a);
            } else if let Some(a) = address("controller REST on ") {
                rest = Some(a);
            }
        }
        Standalone {
            child: Some(child),
            args,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            listeners: Listeners {
                segment_store: segment_store.unwrap(),
                grpc: grpc.unwrap(),
                rest: rest.unwrap(),
            },
            log,
        }
    }

    /// The controller URI as the official clients take it.
    pub fn controller_uri(&self) -> String {
        self.listeners.grpc.to_string()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits for the process to end.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("-TERM")
    }

    /// Sends `signal` (as `kill` names it: "-TERM", "-INT"), then waits for the process to end.
    pub fn stop_with(&mut self, signal_name: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), signal_name);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "standalone did not stop within {STOP_TIMEOUT:?} of kill {signal_name}; stderr:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// Starts the process again on the same ports and data directory (after `stop` or `kill`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        // The old listening ports were just freed; if another process took one in between, the
        // start fails and says which.
        let restarted = Standalone::start_in(&self.data_dir, self.listeners, self.args.clone());
        assert_eq!(restarted.listeners, self.listeners);
        let mut restarted = restarted;
        self.child = restarted.child.take();
        self.log = restarted.log.clone();
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}
