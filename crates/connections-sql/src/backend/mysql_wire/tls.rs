//! The bulk reader's TLS: a rustls client configured as sqlx configures its own MySQL connections
//! (`sqlx-core`'s `net::tls::tls_rustls`), from the same `ssl_mode`, `ssl_ca`, `ssl_cert` and
//! `ssl_key`, so that the reader connects exactly when, and to exactly the servers, the pool's
//! connections do.
//!
//! | `ssl_mode` | server certificate | host name |
//! |---|---|---|
//! | `PREFERRED`, `REQUIRED` | not verified (as sqlx and the MySQL clients) | not checked |
//! | `VERIFY_CA` | verified against the Mozilla roots and `ssl_ca` | not checked |
//! | `VERIFY_IDENTITY` | verified against the Mozilla roots and `ssl_ca` | checked |
//!
//! A client certificate (`ssl_cert` with `ssl_key`) is presented in every mode.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::handshake::{Pem, TlsMode};

/// What a TLS connection is opened with.
pub(super) struct TlsSettings<'a> {
    pub(super) mode: TlsMode,
    pub(super) host: &'a str,
    pub(super) ca: Option<&'a Pem>,
    pub(super) cert: Option<&'a Pem>,
    pub(super) key: Option<&'a Pem>,
}

/// Wraps `stream` (TCP or a Unix socket, as sqlx) in TLS, the handshake included; a message
/// saying why not.
pub(super) async fn connect<S>(stream: S, settings: &TlsSettings<'_>) -> Result<TlsStream<S>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let config = config(settings).await?;
    let name = ServerName::try_from(settings.host.to_owned()).map_err(|e| format!("host name: {e}"))?;
    TlsConnector::from(Arc::new(config)).connect(name, stream).await.map_err(|e| format!("TLS handshake: {e}"))
}

/// The rustls client configuration for `settings`.
async fn config(settings: &TlsSettings<'_>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let identity = match (settings.cert, settings.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert.read().await?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("ssl_cert: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&key.read().await?).map_err(|e| format!("ssl_key: {e}"))?;
            Some((chain, key))
        }
        (None, None) => None,
        _ => return Err("ssl_cert and ssl_key go together".to_owned()),
    };
    let verifier: Arc<dyn ServerCertVerifier> =
        if settings.mode == TlsMode::Verify(false) || settings.mode == TlsMode::Verify(true) {
            let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            if let Some(ca) = settings.ca {
                for cert in CertificateDer::pem_slice_iter(&ca.read().await?) {
                    roots.add(cert.map_err(|e| format!("ssl_ca: {e}"))?).map_err(|e| format!("ssl_ca: {e}"))?;
                }
            }
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
            if settings.mode == TlsMode::Verify(true) { verifier } else { Arc::new(AnyHostName { verifier }) }
        } else {
            Arc::new(AnyCertificate { provider })
        };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| format!("ssl_cert/ssl_key: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `VERIFY_CA`: the certificate chain is verified, the host name is not.
#[derive(Debug)]
struct AnyHostName {
    verifier: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(TlsError::InvalidCertificate(CertificateError::NotValidForName)) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// `PREFERRED` and `REQUIRED`: an encrypted connection to whichever server answers (its
/// handshake signatures are still checked).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
