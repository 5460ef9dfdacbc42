//! Running the `pravaha` client commands in tests: one run of the binary against a
//! standalone, its exit code and output, and a library client for checking the state it left.

use std::io::Write;
use std::process::{Command, Stdio};

use pravaha_client::{ClientConfig, ControllerClient};
use serde_json::Value;

use super::Standalone;

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success with nothing on stderr (no warning, no progress bar off a terminal)
    /// and answers stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "failed; stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "stderr of a successful run");
        self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    pub fn json(self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
    }

    /// Asserts exit code `code`, nothing on stdout, and an error on stderr containing
    /// `message`.
    pub fn fails(self, code: i32, message: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {} stderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.contains(message),
            "stderr {:?} lacks {message:?}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
    }
}

/// The controller URI of `standalone`.
pub fn uri(standalone: &Standalone) -> String {
    format!("tcp://{}", standalone.listeners.grpc)
}

/// A `pravaha` command with no client variables from the environment, logging at its
/// default level (warnings and errors).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pravaha"));
    command
        .args(args)
        .env_remove("PRAVAHA_CONTROLLER_URI")
        .env_remove("PRAVAHA_CLIENT_CONFIG")
        .env_remove("RUST_LOG");
    command
}

/// Runs `pravaha ARGS --controller URI` with `stdin`.
pub fn pravaha_at(uri: &str, args: &[&str], stdin: impl AsRef<[u8]>) -> Run {
    let mut child = command(args)
        .arg("--controller")
        .arg(uri)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pravaha");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_ref()).unwrap();
    drop(input);
    let output = child.wait_with_output().expect("wait for pravaha");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

pub fn pravaha(standalone: &Standalone, args: &[&str]) -> Run {
    pravaha_at(&uri(standalone), args, "")
}

pub fn pravaha_stdin(standalone: &Standalone, args: &[&str], stdin: impl AsRef<[u8]>) -> Run {
    pravaha_at(&uri(standalone), args, stdin)
}

/// A standalone with scope `scope` created.
pub fn standalone_with_scope(scope: &str) -> Standalone {
    let standalone = Standalone::start();
    pravaha(&standalone, &["scope", "create", scope]).ok();
    standalone
}

/// A runtime for library calls from synchronous tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A library controller client for `standalone`; create it inside the runtime.
pub fn controller(standalone: &Standalone) -> ControllerClient {
    let config = ClientConfig::builder()
        .controller_uri(uri(standalone))
        .build()
        .unwrap();
    ControllerClient::new(config).unwrap()
}

/// Runs `future` with a library controller client for `standalone`.
pub fn with_controller<T>(
    standalone: &Standalone,
    future: impl AsyncFnOnce(ControllerClient) -> T,
) -> T {
    runtime().block_on(async { future(controller(standalone)).await })
}

/// The events of `read --json` output, one object per line.
pub fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
