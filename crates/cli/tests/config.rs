//! Configuration of the `pravaha` binary, run for real: the reference config is the defaults,
//! precedence (flags > environment > file > defaults), errors that name the key and its source,
//! and the servers' start-up lines and clean shutdown. Temporary directories, ephemeral ports.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_pravaha");
const TIMEOUT: Duration = Duration::from_secs(30);

/// A file of the repository. The checkout is found at run time (cargo sets
/// `CARGO_MANIFEST_DIR` for the tests it runs): a test binary built in another checkout that
/// shares the target directory must still read this one's files.
fn repository_file(relative: &str) -> std::path::PathBuf {
    let crate_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    Path::new(&crate_dir).join("../..").join(relative)
}

/// The binary with no inherited environment, so that the caller's `PRAVAHA_*` cannot leak in.
fn pravaha(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().env("NO_COLOR", "1").args(args);
    command.envs(env.iter().copied());
    command
}

/// Runs to completion (killed after [`TIMEOUT`]) with nothing on stdin: exit success, stdout,
/// stderr.
/// `standalone` on `data_dir`, every server on an ephemeral port, then `extra`.
fn standalone_args<'a>(data_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["standalone", "--data-dir", data_dir.to_str().unwrap()];
    for flag in ["--segment-store", "--grpc", "--rest"] {
        args.extend([flag, "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    args
}

fn run(command: Command) -> (bool, String, String) {
    run_with_input(command, "")
}

/// [`run`] with `input` on stdin.
fn run_with_input(mut command: Command, input: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropped at the end of the statement: the child sees the end of its input. A child that
    // exits without reading it closes the pipe, which is not this helper's failure.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output().unwrap();
        done.send(()).ok();
        output
    });
    if finished.recv_timeout(TIMEOUT).is_err() {
        Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status()
            .ok();
        panic!("pravaha did not exit within {TIMEOUT:?}");
    }
    let output = waiter.join().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

/// `pravaha config`'s output as (key, value, source); unset keys have value and source "".
fn effective(args: &[&str], env: &[(&str, &str)]) -> Vec<(String, String, String)> {
    let mut all_args = vec!["config"];
    all_args.extend_from_slice(args);
    let (ok, stdout, stderr) = run(pravaha(&all_args, env));
    assert!(ok, "pravaha config failed: {stderr}");
    stdout
        .lines()
        .skip(1)
        .map(|line| {
            if let Some(unset) = line.strip_prefix("# ") {
                let key = unset.split(' ').next().unwrap();
                return (key.to_owned(), String::new(), String::new());
            }
            let (key, rest) = line.split_once(" = ").unwrap();
            let (value, source) = rest.rsplit_once("  # ").unwrap();
            (key.to_owned(), value.to_owned(), source.to_owned())
        })
        .collect()
}

fn value_of(effective: &[(String, String, String)], key: &str) -> (String, String) {
    let (_, value, source) = effective.iter().find(|(name, _, _)| name == key).unwrap();
    (value.clone(), source.clone())
}

fn env_name(key: &str) -> String {
    format!("PRAVAHA_{}", key.replace('.', "_").to_uppercase())
}

#[test]
fn the_reference_config_holds_every_key_at_its_default() {
    let defaults = effective(&[], &[]);
    let reference_path = repository_file("config/pravaha.toml");
    let reference = effective(&["--config", reference_path.to_str().unwrap()], &[]);
    let values = |entries: &[(String, String, String)]| -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(key, value, _)| (key.clone(), value.clone()))
            .collect()
    };
    assert_eq!(values(&reference), values(&defaults));
    let text = std::fs::read_to_string(&reference_path).unwrap();
    let docs = std::fs::read_to_string(repository_file("docs/configuration.md")).unwrap();
    for (key, value, source) in &reference {
        if !value.is_empty() {
            assert!(
                source.starts_with("config file"),
                "{key} is not set in the reference"
            );
        }
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("{leaf} =")) || text.contains(&format!("[[{key}]]")),
            "{key} is not in the reference"
        );
        assert!(
            docs.contains(&format!("`{leaf}`")),
            "{key} is not documented"
        );
        if key != "version" {
            assert!(
                docs.contains(&env_name(key)),
                "{} is not documented",
                env_name(key)
            );
        }
    }
}

#[test]
fn the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pravaha.toml");
    std::fs::write(&file, "data_dir = \"file\"\ncontainers = 2\n").unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("PRAVAHA_CONFIG", file),
        ("PRAVAHA_DATA_DIR", "env"),
        ("PRAVAHA_CONTROLLER_AUTOSCALE", "0"),
        ("PRAVAHA_TOKEN_SIGNING_KEY", "secret-signing-key"),
        (
            "PRAVAHA_CONTROLLER_SEGMENT_STORES",
            "10.0.0.5:1@store-1:2/0 10.0.0.6:1/1",
        ),
    ];
    let (ok, stdout, _) = run(pravaha(&["config"], &env));
    assert!(ok && !stdout.contains("secret-signing-key"), "{stdout}");
    let effective = effective(&[], &env);
    let env_source = |name: &str| format!("environment variable {name}");
    assert_eq!(
        value_of(&effective, "data_dir"),
        ("\"env\"".into(), env_source("PRAVAHA_DATA_DIR"))
    );
    let file_source = format!("config file {file}");
    assert_eq!(
        value_of(&effective, "containers"),
        ("2".into(), file_source)
    );
    assert_eq!(value_of(&effective, "controller.autoscale").0, "false");
    let (stores, _) = value_of(&effective, "controller.segment_stores");
    let expected = concat!(
        r#"[{ address = "10.0.0.5:1", advertised_host = "store-1", advertised_port = 2, "#,
        r#"containers = [0] }, { address = "10.0.0.6:1", containers = [1] }]"#
    );
    assert_eq!(stores, expected);
}

#[test]
fn an_unknown_key_in_the_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pravaha.toml");
    std::fs::write(&file, "[segment_store]\nlisten_adress = \"127.0.0.1:0\"\n").unwrap();
    let data_dir = dir.path().join("data");
    let args = standalone_args(&data_dir, &["--config", file.to_str().unwrap()]);
    let (ok, _, stderr) = run(pravaha(&args, &[]));
    assert!(!ok);
    assert!(stderr.contains("unknown field `listen_adress`"), "{stderr}");
    assert!(stderr.contains("pravaha.toml"), "{stderr}");
    assert!(std::fs::metadata(&data_dir).is_err(), "nothing starts");
}

#[test]
fn bad_values_name_the_key_and_the_source() {
    let (ok, _, stderr) = run(pravaha(&["config"], &[("PRAVAHA_CONTAINERS", "four")]));
    assert!(!ok);
    assert!(stderr.contains("invalid containers in environment variable PRAVAHA_CONTAINERS"));
    assert!(stderr.contains("\"four\" is not an integer"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pravaha.toml");
    std::fs::write(&file, "[segment_store]\nowned_containers = [1, 7]\n").unwrap();
    let (ok, _, stderr) = run(pravaha(
        &["segmentstore", "--config", file.to_str().unwrap()],
        &[],
    ));
    assert!(!ok);
    let expected = format!(
        "segment_store.owned_containers (config file {}) names container 7, but containers = 4 \
         (built-in default)",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let env = [(
        "PRAVAHA_CONTROLLER_SEGMENT_STORES",
        "127.0.0.1:1/0,1 127.0.0.1:2/1,2",
    )];
    let (ok, _, stderr) = run(pravaha(&["controller", "--containers", "3"], &env));
    assert!(!ok);
    assert!(
        stderr.contains(
            "controller.segment_stores (environment variable PRAVAHA_CONTROLLER_SEGMENT_STORES) \
             container 1 has 2 owners"
        ),
        "{stderr}"
    );
}

/// A running server whose stderr is read line by line on a thread.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// A test that fails (panics) while a server runs must not leave it running.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one starts with `prefix`; returns the rest of it.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                self.child.kill().ok();
                panic!(
                    "no line {prefix:?} within {TIMEOUT:?}; saw {:#?}",
                    self.seen
                );
            };
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// SIGTERM, then a clean exit within the time-out.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!("no exit within {TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.try_iter());
        assert!(status.success(), "exit {status}; stderr {:#?}", self.seen);
        let unexpected: Vec<_> = self
            .seen
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(unexpected.is_empty(), "{unexpected:#?}");
    }
}

#[test]
fn standalone_takes_flags_over_the_environment_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Addresses that cannot be bound, so a lost override fails start-up.
    let occupied = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = occupied.local_addr().unwrap().to_string();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let file = path("pravaha.toml");
    let text = format!(
        "data_dir = {:?}\n[segment_store]\nlisten = \"{busy}\"\n\
         [controller]\ngrpc = \"{busy}\"\nrest = \"{busy}\"\n",
        path("from-file")
    );
    std::fs::write(&file, text).unwrap();
    let env = [
        ("PRAVAHA_DATA_DIR", path("from-env")),
        ("PRAVAHA_CONTROLLER_GRPC", busy.clone()),
        ("PRAVAHA_CONTROLLER_REST", "127.0.0.1:0".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let data_dir = path("from-flag");
    let args = [
        "standalone",
        "--config",
        &file,
        "--data-dir",
        &data_dir,
        "--segment-store",
        "127.0.0.1:0",
        "--grpc",
        "127.0.0.1:0",
    ];
    let mut server = Server::start(pravaha(&args, &env));
    let store = server.wait_for("segment store on ");
    let grpc = server.wait_for("controller gRPC on ");
    let rest = server.wait_for("controller REST on ");
    let ready = server.wait_for("ready in ");
    for address in [&store, &grpc, &rest] {
        assert!(
            address.starts_with("127.0.0.1:") && *address != busy,
            "{address}"
        );
    }
    assert!(ready.ends_with(" ms"), "{ready}");
    assert!(std::fs::metadata(Path::new(&data_dir).join("log")).is_ok());
    for ignored in ["from-file", "from-env"] {
        assert!(
            std::fs::metadata(path(ignored)).is_err(),
            "{ignored} was used"
        );
    }
    server.terminate();
    drop(occupied);
}

#[test]
fn the_controller_finds_a_separate_segment_store_by_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let args = [
        "segmentstore",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--containers",
        "2",
    ];
    let mut store = Server::start(pravaha(&args, &[]));
    let address = store.wait_for("segment store on ");
    store.wait_for("ready in ");
    let env = [
        ("PRAVAHA_CONTAINERS", "2"),
        ("PRAVAHA_CONTROLLER_GRPC", "127.0.0.1:0"),
        ("PRAVAHA_CONTROLLER_REST", "127.0.0.1:0"),
    ];
    let spec = format!("{address}@localhost/0,1");
    let mut controller = Server::start(pravaha(&["controller", "--segment-store", &spec], &env));
    controller.wait_for("controller gRPC on 127.0.0.1:");
    controller.wait_for("controller REST on 127.0.0.1:");
    controller.wait_for("ready in ");
    controller.terminate();
    store.terminate();
}

#[test]
fn a_password_file_makes_clients_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let (hashed, digest, _) = run_with_input(pravaha(&["password-hash"], &[]), "1111_aaaa\n");
    assert!(hashed);
    let passwd = dir.path().join("passwd");
    std::fs::write(
        &passwd,
        format!(
            "# Pravega's format\nadmin:{}:prn::*,READ_UPDATE\n",
            digest.trim()
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let args = standalone_args(&data_dir, &[]);
    let env = [
        ("PRAVAHA_CONTROLLER_PASSWORD_FILE", passwd.to_str().unwrap()),
        ("PRAVAHA_TOKEN_SIGNING_KEY", "a long random secret"),
    ];
    let mut server = Server::start(pravaha(&args, &env));
    let users = server.wait_for("controller credentials: ");
    assert!(users.starts_with("1 user(s) from "), "{users}");
    let grpc = server.wait_for("controller gRPC on ");
    server.wait_for("ready in ");
    let uri = format!("tcp://{grpc}");
    let client = |args: &[&str], env: &[(&str, &str)], stdin: &str| {
        let mut all = args.to_vec();
        all.extend(["--controller", &uri]);
        run_with_input(pravaha(&all, env), stdin)
    };
    let (ok, _, stderr) = client(&["scope", "create", "shop"], &[], "");
    assert!(!ok);
    assert!(stderr.contains("check the credentials"), "{stderr}");
    let wrong = [("PRAVAHA_USERNAME", "admin"), ("PRAVAHA_PASSWORD", "nope")];
    let (ok, _, stderr) = client(&["scope", "create", "shop"], &wrong, "");
    assert!(!ok);
    assert!(stderr.contains("invalid user name or password"), "{stderr}");

    let admin = [
        ("PRAVAHA_USERNAME", "admin"),
        ("PRAVAHA_PASSWORD", "1111_aaaa"),
    ];
    let steps: [(&[&str], &str, &str); 5] = [
        (&["scope", "create", "shop"], "", "created scope shop\n"),
        (
            &["stream", "create", "shop/orders"],
            "",
            "created stream shop/orders\n",
        ),
        (
            &["write", "shop/orders"],
            "one\ntwo\n",
            "wrote 2 events (6 bytes) to shop/orders\n",
        ),
        (
            &["stream", "seal", "shop/orders"],
            "",
            "sealed stream shop/orders\n",
        ),
        (&["read", "shop/orders"], "", "one\ntwo\n"),
    ];
    for (args, stdin, expected) in steps {
        let (ok, stdout, stderr) = client(args, &admin, stdin);
        assert!(ok, "{args:?}: {stderr}");
        assert_eq!(stdout, expected, "{args:?}");
    }
    server.terminate();
}
