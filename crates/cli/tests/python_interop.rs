//! Interoperability with Pravega's official Python client (PyPI `pravega` 0.3.8): runs the pytest
//! suite in `tests/python` against this build's `pravaha` binary.
//!
//! The Python comes from `PRAVAHA_PYTHON` (a venv's python with `tests/python/requirements.txt`
//! installed; `.ci/run` sets it) or else from a venv this test makes under `CARGO_TARGET_TMPDIR`
//! with `python3 -m venv` and pip (skipped while a marker says the same requirements are in).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The whole pytest run; the suite itself takes well under two minutes.
const SUITE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Creating the venv and installing the requirements.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Between the interrupt and the kill when a run times out.
const INTERRUPT_GRACE: Duration = Duration::from_secs(20);

/// Found at run time (cargo sets `CARGO_MANIFEST_DIR` for the tests it runs), so that a test
/// binary built in another checkout sharing the target directory runs this checkout's suite.
fn repo_root() -> PathBuf {
    let crate_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&crate_dir)
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Runs `command` in its own process group with its output forwarded line by line (so that
/// the test harness captures it, or shows it with `--nocapture`). Past `timeout` the group gets
/// SIGINT (pytest tears its fixtures down) and, if still alive after a grace period, SIGKILL:
/// that ends the `pravaha` servers the suite started too.
fn run_bounded(command: &mut Command, what: &str, timeout: Duration) -> ExitStatus {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
    let forwarders = [
        forward(child.stdout.take().expect("stdout"), false),
        forward(child.stderr.take().expect("stderr"), true),
    ];
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if started.elapsed() > timeout {
            stop_group(&mut child);
            panic!("{what} did not finish within {timeout:?}; it was stopped");
        }
        thread::sleep(Duration::from_millis(100));
    };
    for forwarder in forwarders {
        forwarder.join().expect("output forwarder");
    }
    status
}

fn forward(stream: impl Read + Send + 'static, to_stderr: bool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    })
}

fn signal_group(child: &Child, signal: &str) {
    let group = format!("-{}", child.id());
    // The shell's kill: a process group is named by a negative id.
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$0\" -- \"$1\" 2>/dev/null", signal, &group])
        .status();
}

fn stop_group(child: &mut Child) {
    signal_group(child, "INT");
    let deadline = Instant::now() + INTERRUPT_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    signal_group(child, "KILL");
    let _ = child.kill();
    let _ = child.wait();
}

fn check(status: ExitStatus, what: &str) {
    assert!(
        status.success(),
        "{what} failed ({status}); its output is above"
    );
}

/// The venv's python, made (or brought up to date) under `CARGO_TARGET_TMPDIR` if needed.
fn own_venv(root: &Path) -> PathBuf {
    let venv = PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/pyvenv"));
    let python = venv.join("bin").join("python");
    let requirements_path = root.join("tests/python/requirements.txt");
    let requirements = fs::read(&requirements_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements_path.display()));
    let marker = venv.join("pravaha-requirements.txt");
    let has_python = fs::metadata(&python).is_ok();
    if has_python && fs::read(&marker).ok().as_deref() == Some(requirements.as_slice()) {
        return python;
    }
    if !has_python {
        match Command::new("python3").arg("--version").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "python3 --version failed ({}): the Python interop suite needs python3 with the \
                 venv module (or PRAVAHA_PYTHON set to a prepared venv's python)",
                output.status
            ),
            Err(error) => panic!(
                "python3 not found ({error}): the Python interop suite needs python3 with the \
                 venv module (or PRAVAHA_PYTHON set to a prepared venv's python)"
            ),
        }
        check(
            run_bounded(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv",
                SETUP_TIMEOUT,
            ),
            "python3 -m venv (on Debian the python3-venv package provides it)",
        );
    }
    let _ = fs::remove_file(&marker);
    check(
        run_bounded(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements_path),
            "pip install -r tests/python/requirements.txt",
            SETUP_TIMEOUT,
        ),
        "pip install -r tests/python/requirements.txt",
    );
    fs::write(&marker, &requirements).expect("write the requirements marker");
    python
}

#[test]
fn python_client_suite() {
    let root = repo_root();
    let python = match std::env::var_os("PRAVAHA_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => {
            let python = PathBuf::from(python);
            assert!(
                fs::metadata(&python).is_ok(),
                "PRAVAHA_PYTHON={} does not exist",
                python.display()
            );
            python
        }
        None => own_venv(&root),
    };
    println!("python: {}", python.display());
    let status = run_bounded(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "tests/python"])
            .current_dir(&root)
            .env("PRAVAHA_BIN", env!("CARGO_BIN_EXE_pravaha"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        "pytest tests/python",
        SUITE_TIMEOUT,
    );
    check(
        status,
        &format!("{} -m pytest tests/python", python.display()),
    );
}
