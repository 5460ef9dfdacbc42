//! TLS towards the controller: the trusted roots (CA files or the system's) and a certificate
//! verifier that can skip the hostname check, handed to tonic's rustls (ring) connector.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ConfigError, TlsConfig};

/// The verifier for `tls`: chains must lead to a trusted root; the name is checked unless
/// `disable_hostname_verification`. Reads the CA files (blocking, once, at client creation).
pub(crate) fn verifier(tls: &TlsConfig) -> Result<Arc<dyn ServerCertVerifier>, ConfigError> {
    let roots = if tls.ca_cert_paths.is_empty() {
        system_roots()?
    } else {
        let mut roots = RootCertStore::empty();
        for path in &tls.ca_cert_paths {
            for certificate in read_certificates(path)? {
                roots
                    .add(certificate)
                    .map_err(|error| ConfigError::Certificate {
                        path: path.clone(),
                        message: error.to_string(),
                    })?;
            }
        }
        roots
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|error| ConfigError::Certificate {
            path: PathBuf::new(),
            message: error.to_string(),
        })?;
    Ok(Arc::new(Verifier {
        inner,
        check_hostname: !tls.disable_hostname_verification,
    }))
}

fn system_roots() -> Result<RootCertStore, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(ConfigError::Certificate {
            path: PathBuf::from("<system roots>"),
            message: format!(
                "no trusted root certificates found ({}); set tls.ca_cert_paths",
                errors.join("; ")
            ),
        });
    }
    Ok(roots)
}

/// The certificates of a PEM file, or of every `*.pem`, `*.crt` and `*.cer` file of a
/// directory (in name order).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let failed = |message: String| ConfigError::Certificate {
        path: path.to_owned(),
        message,
    };
    let metadata = std::fs::metadata(path).map_err(|error| failed(error.to_string()))?;
    let files = if metadata.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|error| failed(error.to_string()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|file| {
                file.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ["pem", "crt", "cer"].contains(&e))
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut certificates = Vec::new();
    for file in &files {
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_file_iter(file)
            .map_err(|error| failed(format!("{}: {error}", file.display())))?
            .collect();
        certificates
            .extend(parsed.map_err(|error| failed(format!("{}: {error}", file.display())))?);
    }
    if certificates.is_empty() {
        return Err(failed("no PEM certificate found".into()));
    }
    Ok(certificates)
}

/// WebPKI verification, optionally forgiving a certificate that names another host (the name
/// is checked only after the chain is, so the chain is always verified).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    check_hostname: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
