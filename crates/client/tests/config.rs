//! Client configuration: the builder, the environment (through a fake lookup, never the
//! process environment) and TOML files, their round trips and their errors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use pravaha_client::config::{
    ClientConfig, ConfigError, ControllerUri, Credentials, RetryPolicy, ServerAddress, TlsConfig,
    UriScheme, DEFAULT_MAX_IN_FLIGHT_BYTES_PER_WRITER,
};

fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn full_config() -> ClientConfig {
    ClientConfig::builder()
        .controller_uri("tls://c1.example.com:9191,c2.example.com")
        .ca_cert_path("/etc/pravaha/ca.pem")
        .ca_cert_path("/etc/pravaha/certs")
        .disable_hostname_verification(true)
        .basic_auth("admin", "s3cret")
        .retry_policy(RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(800),
            multiplier: 1.5,
            max_attempts: 5,
        })
        .request_timeout(Duration::from_secs(7))
        .max_in_flight_bytes_per_writer(1 << 20)
        .build()
        .expect("a valid configuration")
}

#[test]
fn defaults_reach_a_local_standalone() {
    let config = ClientConfig::default();
    assert_eq!(
        config.controller_uri().endpoints(),
        [ServerAddress::new("127.0.0.1", 9090)]
    );
    assert!(!config.tls_enabled());
    assert_eq!(config.credentials(), &Credentials::None);
    assert_eq!(config.retry_policy(), &RetryPolicy::default());
    assert_eq!(config.request_timeout(), Duration::from_secs(30));
    assert_eq!(
        config.max_in_flight_bytes_per_writer(),
        DEFAULT_MAX_IN_FLIGHT_BYTES_PER_WRITER
    );
    assert_eq!(DEFAULT_MAX_IN_FLIGHT_BYTES_PER_WRITER, 16 * 1024 * 1024);
    assert_eq!(ClientConfig::builder().build().unwrap(), config);
    assert_eq!(ClientConfig::from_toml_str("").unwrap(), config);
    assert_eq!(ClientConfig::from_env_with(|_| None).unwrap(), config);
}

#[test]
fn builder_settings_are_kept() {
    let config = full_config();
    let uri = config.controller_uri();
    assert_eq!(uri.scheme(), Some(UriScheme::Tls));
    assert_eq!(
        uri.endpoints(),
        [
            ServerAddress::new("c1.example.com", 9191),
            ServerAddress::new("c2.example.com", 9090)
        ]
    );
    assert!(config.tls_enabled());
    assert!(
        !config.tls().enabled,
        "the scheme, not the flag, turned TLS on"
    );
    assert_eq!(
        config.tls().ca_cert_paths,
        [
            PathBuf::from("/etc/pravaha/ca.pem"),
            PathBuf::from("/etc/pravaha/certs")
        ]
    );
    assert!(config.tls().disable_hostname_verification);
    assert_eq!(config.credentials(), &Credentials::basic("admin", "s3cret"));
    assert_eq!(config.retry_policy().max_attempts, 5);
    assert_eq!(config.request_timeout(), Duration::from_secs(7));
    assert_eq!(config.max_in_flight_bytes_per_writer(), 1 << 20);

    let changed = config
        .to_builder()
        .bearer_token("abc")
        .max_in_flight_bytes_per_writer(7)
        .build()
        .unwrap();
    assert_eq!(changed.credentials(), &Credentials::bearer("abc"));
    assert_eq!(changed.controller_uri(), config.controller_uri());
    assert_eq!(changed.max_in_flight_bytes_per_writer(), 7);
}

#[test]
fn toml_round_trips() {
    let config = full_config();
    let text = config.to_toml_string();
    assert!(text.contains("version = 1"), "{text}");
    assert_eq!(ClientConfig::from_toml_str(&text).unwrap(), config);

    let bearer = ClientConfig::builder()
        .controller_uri("10.1.2.3")
        .tls(TlsConfig {
            enabled: true,
            ..TlsConfig::default()
        })
        .bearer_token("eyJhbGciOiJIUzI1NiJ9.e30.sig")
        .build()
        .unwrap();
    assert!(bearer.tls_enabled());
    let text = bearer.to_toml_string();
    assert_eq!(ClientConfig::from_toml_str(&text).unwrap(), bearer);
}

#[test]
fn files_are_read_and_their_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.toml");
    std::fs::write(
        &path,
        r#"
        version = 1
        controller_uri = "pravegas://controller.example.com"
        request_timeout_ms = 1500

        [credentials]
        username = "reader"
        password = "pw"

        [retry]
        max_attempts = 2
        "#,
    )
    .unwrap();
    let config = ClientConfig::from_file(&path).unwrap();
    assert!(config.tls_enabled());
    assert_eq!(config.controller_uri().endpoints()[0].port, 9090);
    assert_eq!(config.request_timeout(), Duration::from_millis(1500));
    assert_eq!(
        config.credentials().authorization_header().as_deref(),
        Some("Basic cmVhZGVyOnB3")
    );
    assert_eq!(config.retry_policy().max_attempts, 2);
    assert_eq!(
        config.retry_policy().initial_delay,
        Duration::from_millis(100)
    );

    // An unknown key, at the top and in a section, is refused by name.
    std::fs::write(&path, "controller_uri = \"h:1\"\nrequest_timout_ms = 5\n").unwrap();
    let error = ClientConfig::from_file(&path).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }), "{error:?}");
    assert!(text.contains("request_timout_ms"), "{text}");
    assert!(text.contains("client.toml"), "{text}");
    let error = ClientConfig::from_toml_str("[retry]\nmax_attempt = 3\n").unwrap_err();
    assert!(error.to_string().contains("max_attempt"), "{error}");
    let error = ClientConfig::from_toml_str("[tls]\nenabeld = true\n").unwrap_err();
    assert!(error.to_string().contains("enabeld"), "{error}");

    // Wrong types name the key too.
    let error = ClientConfig::from_toml_str("request_timeout_ms = \"soon\"").unwrap_err();
    assert!(error.to_string().contains("request_timeout_ms"), "{error}");

    let error = ClientConfig::from_toml_str("version = 2").unwrap_err();
    assert!(
        matches!(error, ConfigError::UnsupportedVersion { found: 2, .. }),
        "{error:?}"
    );

    let missing = dir.path().join("absent.toml");
    assert!(matches!(
        ClientConfig::from_file(&missing),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn environment_sets_every_key() {
    let lookup = environment(&[
        (
            "PRAVAHA_CONTROLLER_URI",
            "tcp://10.0.0.1:9090, 10.0.0.2:9191",
        ),
        ("PRAVAHA_REQUEST_TIMEOUT_MS", "2500"),
        ("PRAVAHA_MAX_IN_FLIGHT_BYTES_PER_WRITER", "1048576"),
        ("PRAVAHA_TLS_CA_CERT_PATHS", "/a.pem, /b"),
        ("PRAVAHA_TLS_DISABLE_HOSTNAME_VERIFICATION", "1"),
        ("PRAVAHA_USERNAME", "u"),
        ("PRAVAHA_PASSWORD", "p"),
        ("PRAVAHA_RETRY_INITIAL_DELAY_MS", "5"),
        ("PRAVAHA_RETRY_MAX_DELAY_MS", "50"),
        ("PRAVAHA_RETRY_MULTIPLIER", "3"),
        ("PRAVAHA_RETRY_MAX_ATTEMPTS", "4"),
    ]);
    let config = ClientConfig::from_env_with(lookup).unwrap();
    assert_eq!(
        config.controller_uri().to_string(),
        "tcp://10.0.0.1:9090,10.0.0.2:9191"
    );
    assert!(!config.tls_enabled());
    assert_eq!(config.request_timeout(), Duration::from_millis(2500));
    assert_eq!(config.max_in_flight_bytes_per_writer(), 1 << 20);
    assert_eq!(
        config.tls().ca_cert_paths,
        [PathBuf::from("/a.pem"), PathBuf::from("/b")]
    );
    assert!(config.tls().disable_hostname_verification);
    assert_eq!(config.credentials(), &Credentials::basic("u", "p"));
    assert_eq!(
        config.retry_policy(),
        &RetryPolicy {
            initial_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            multiplier: 3.0,
            max_attempts: 4,
        }
    );

    let token = ClientConfig::from_env_with(environment(&[
        ("PRAVAHA_CONTROLLER_URI", "ctl.example.com"),
        ("PRAVAHA_TLS_ENABLED", "true"),
        ("PRAVAHA_TOKEN", "t"),
        ("PRAVAHA_USERNAME", ""), // empty counts as unset
    ]))
    .unwrap();
    assert!(token.tls_enabled());
    assert_eq!(
        token.credentials().authorization_header().as_deref(),
        Some("Bearer t")
    );
}

#[test]
fn environment_overrides_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.toml");
    std::fs::write(
        &path,
        "controller_uri = \"file-host:1\"\n[retry]\nmax_attempts = 9\n",
    )
    .unwrap();
    let path_text = path.to_str().unwrap();
    let config = ClientConfig::from_env_with(environment(&[
        ("PRAVAHA_CLIENT_CONFIG", path_text),
        ("PRAVAHA_CONTROLLER_URI", "env-host:2"),
    ]))
    .unwrap();
    assert_eq!(config.controller_uri().to_string(), "env-host:2");
    assert_eq!(config.retry_policy().max_attempts, 9);
}

#[test]
fn environment_errors_name_the_variable() {
    let cases = [
        ("PRAVAHA_RETRY_MAX_ATTEMPTS", "many"),
        ("PRAVAHA_REQUEST_TIMEOUT_MS", "-1"),
        ("PRAVAHA_TLS_ENABLED", "yes please"),
        ("PRAVAHA_RETRY_MULTIPLIER", "x2"),
    ];
    for (name, value) in cases {
        let error = ClientConfig::from_env_with(environment(&[(name, value)])).unwrap_err();
        assert!(
            matches!(&error, ConfigError::InvalidValue { key, .. } if key.contains(name)),
            "{name}: {error:?}"
        );
    }
    let error =
        ClientConfig::from_env_with(environment(&[("PRAVAHA_CONTROLLER_URI", "http://h:1")]))
            .unwrap_err();
    assert!(matches!(error, ConfigError::InvalidUri { .. }), "{error:?}");
}

#[test]
fn bad_uris_are_refused_with_the_reason() {
    for bad in [
        "http://h:9090",
        "tcp://",
        "tcp://h:port",
        "tcp://h:0",
        "tcp://h:9090/path",
        "tcp://a:1,tls://b:2",
        "a:1,,b:2",
        "::1",
    ] {
        let error = bad.parse::<ControllerUri>().unwrap_err();
        assert!(
            matches!(&error, ConfigError::InvalidUri { uri, .. } if uri == bad),
            "{bad}: {error:?}"
        );
        let built = ClientConfig::builder().controller_uri(bad).build();
        assert!(built.is_err(), "{bad}");
    }
    let error = ClientConfig::from_toml_str("controller_uri = \"ftp://h\"").unwrap_err();
    assert!(error.to_string().contains("ftp"), "{error}");

    // Accepted forms.
    for (good, shown) in [
        ("h", "h:9090"),
        ("tcp://h:1,tcp://i:2", "tcp://h:1,i:2"),
        ("pravega://h", "tcp://h:9090"),
        ("SSL://[::1]:7", "tls://[::1]:7"),
    ] {
        let uri: ControllerUri = good.parse().unwrap();
        assert_eq!(uri.to_string(), shown);
        assert_eq!(uri.to_string().parse::<ControllerUri>().unwrap(), uri);
    }
}

#[test]
fn inconsistent_values_are_refused_by_key() {
    let invalid_key = |result: Result<ClientConfig, ConfigError>| match result {
        Err(ConfigError::InvalidValue { key, .. }) => key,
        other => panic!("expected an invalid value, got {other:?}"),
    };
    assert_eq!(
        invalid_key(
            ClientConfig::builder()
                .controller_uri("tcp://h")
                .tls_enabled(true)
                .build()
        ),
        "tls.enabled"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str(
            "[credentials]\nusername = \"u\"\n"
        )),
        "credentials.password"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str(
            "[credentials]\nusername = \"u\"\npassword = \"p\"\ntoken = \"t\"\n"
        )),
        "credentials.token"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str("[retry]\nmax_attempts = 0\n")),
        "retry.max_attempts"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str("[retry]\nmultiplier = 0.5\n")),
        "retry.multiplier"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str(
            "[retry]\ninitial_delay_ms = 10\nmax_delay_ms = 5\n"
        )),
        "retry.max_delay_ms"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str("request_timeout_ms = 0")),
        "request_timeout_ms"
    );
    assert_eq!(
        invalid_key(ClientConfig::from_toml_str(
            "max_in_flight_bytes_per_writer = 0"
        )),
        "max_in_flight_bytes_per_writer"
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let config = ClientConfig::builder()
        .basic_auth("admin", "hunter2")
        .build()
        .unwrap();
    let shown = format!("{config:?}");
    assert!(
        shown.contains("admin") && !shown.contains("hunter2"),
        "{shown}"
    );
    let bearer = ClientConfig::builder()
        .bearer_token("tok-123")
        .build()
        .unwrap();
    assert!(!format!("{bearer:?}").contains("tok-123"));
    let builder = ClientConfig::builder().basic_auth("a", "hunter2");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

#[test]
fn retry_delays_back_off_with_bounded_jitter() {
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(300),
        multiplier: 3.0,
        max_attempts: 10,
    };
    let expected = [10, 30, 90, 270, 300, 300];
    for (attempt, millis) in (1..).zip(expected) {
        let full = Duration::from_millis(millis);
        assert_eq!(policy.delay(attempt), full, "attempt {attempt}");
        for jitter in [0.0, 0.25, 0.999, 1.0] {
            let delay = policy.jittered_delay(attempt, jitter);
            assert!(delay >= full / 2 && delay <= full, "{attempt} {jitter}");
        }
    }
    assert_eq!(policy.jittered_delay(1, f64::NAN), Duration::from_millis(5));
    assert_eq!(policy.jittered_delay(1, 7.0), Duration::from_millis(10));
}
