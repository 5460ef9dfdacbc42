//! TLS towards the controller, through a terminating proxy with certificates made by rcgen:
//! the chain is verified, and the hostname unless turned off.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::admin::*;
use common::Standalone;
use pravaha_client::config::ClientConfig;
use pravaha_client::{ControllerClient, ControllerError, StreamManager};

mod tls {
    use super::*;
    use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    pub struct Authority {
        pub certificate: Certificate,
        pub key: KeyPair,
    }

    pub fn authority() -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let certificate = params.self_signed(&key).unwrap();
        Authority { certificate, key }
    }

    /// A TLS listener (certificate for `localhost`, ALPN h2) that forwards the decrypted bytes
    /// to `backend`; returns its address and the task serving it.
    pub async fn proxy(
        authority: &Authority,
        backend: SocketAddr,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let certificate = params
            .signed_by(&key, &authority.certificate, &authority.key)
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A refused handshake is what some tests expect: just drop the socket.
                    let Ok(mut secure) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut secure, &mut plain).await;
                });
            }
        });
        (address, task)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_chain_and_optionally_the_hostname() {
    let standalone = Standalone::start().await;
    let authority = tls::authority();
    let (address, proxy) = tls::proxy(&authority, standalone.grpc_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, authority.certificate.pem()).unwrap();
    let stranger = dir.path().join("other-ca");
    std::fs::create_dir(&stranger).unwrap();
    std::fs::write(stranger.join("ca.crt"), tls::authority().certificate.pem()).unwrap();

    let client = |uri: String, ca: &std::path::Path, check_hostname: bool| {
        let config = ClientConfig::builder()
            .controller_uri(uri)
            .ca_cert_path(ca)
            .disable_hostname_verification(!check_hostname)
            .retry_policy(quick_retries(1))
            .request_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        StreamManager::new(config).unwrap()
    };
    let port = address.port();
    bounded(async {
        // The certificate names localhost and chains to the trusted CA.
        let trusted = client(format!("tls://localhost:{port}"), &ca_file, true);
        assert!(trusted.create_scope("secure").await.unwrap());
        assert!(trusted.scope_exists("secure").await.unwrap());

        // By IP address the name does not match: refused, unless the check is off.
        let by_ip = client(format!("tls://127.0.0.1:{port}"), &ca_file, true);
        let error = by_ip.scope_exists("secure").await.unwrap_err();
        assert!(
            matches!(&error, ControllerError::CertificateRejected { message } if message.contains("127.0.0.1")),
            "{error:?}"
        );
        let unchecked = client(format!("tls://127.0.0.1:{port}"), &ca_file, false);
        assert!(unchecked.scope_exists("secure").await.unwrap());

        // A chain to another CA is refused even without the hostname check.
        let untrusted = client(format!("tls://localhost:{port}"), &stranger, false);
        let error = untrusted.scope_exists("secure").await.unwrap_err();
        assert!(
            matches!(error, ControllerError::CertificateRejected { .. }),
            "{error:?}"
        );

        // Plain gRPC to the TLS port fails too.
        let plain = StreamManager::new(
            ClientConfig::builder()
                .controller_uri(format!("tcp://127.0.0.1:{port}"))
                .retry_policy(quick_retries(1))
                .build()
                .unwrap(),
        )
        .unwrap();
        assert!(plain.scope_exists("secure").await.is_err());
    })
    .await;

    // A CA path that holds no certificate is a configuration error at creation.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    let error = ControllerClient::new(
        ClientConfig::builder()
            .controller_uri("tls://localhost:1")
            .ca_cert_path(&empty)
            .build()
            .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(error, ControllerError::Config(_)), "{error:?}");
    proxy.abort();
}
