//! The https check's TLS client (keepalived's `SSL_GET`): one rustls client configuration
//! for every probe, and the name a probe presents.
//!
//! The server's certificate is not verified, as keepalived's `SSL_GET` does not verify it
//! by default: a health check asks whether the server answers its page, not who it is, and
//! real servers behind a load balancer commonly hold the service's certificate (for the
//! VIP's name, not the server's address), a self-signed one, or one from a private CA the
//! gateway does not hold. Checking the chain would mark such servers down for what is no
//! failure of theirs. The handshake's signature is still checked against the certificate
//! the server sent (so the server holds that certificate's key): that costs nothing and
//! refuses a garbled handshake.
//!
//! The name: `--host` when the check has one (the SNI and the `Host` header, as keepalived
//! sends its `virtualhost`), else the server's address, which rustls sends no SNI for.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// Takes any certificate chain; checks the handshake's signatures with `ring`'s algorithms.
#[derive(Debug)]
struct NoCertificateVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The configuration every https probe shares (built once).
fn config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        // Deprecated since rustls 0.23.48 for its lack of a post-quantum key exchange: what
        // a health check's secrecy needs not, while aws-lc-rs, which has one, needs cmake.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(NoCertificateVerification(Arc::clone(&provider)));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            // ring's provider has TLS 1.2 and 1.3 suites for every safe version.
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Arc::new(config)
    }))
}

/// The TLS server name (SNI) of a check's `host`, a `Host` header's value: the name or
/// address without its port; `None` if it is neither a DNS name nor an address.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        // `name:port`; a bare IPv6 address has more than one colon.
        None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or(host),
        None => host,
    };
    ServerName::try_from(name.to_string()).ok()
}

/// A client connection to `server` named `host` (see the module doc), with `request`
/// queued: rustls sends it once the handshake is done.
pub fn connect(host: Option<&str>, server: IpAddr, request: &[u8]) -> Result<ClientConnection, String> {
    let name = match host {
        // The check refused such a host (`Check::new`): this is for a caller that did not.
        Some(h) => server_name(h).ok_or_else(|| sni_refusal(h))?,
        None => ServerName::IpAddress(server.into()),
    };
    let mut conn = ClientConnection::new(config(), name).map_err(|e| format!("TLS: {e}"))?;
    // Before the handshake rustls buffers what is written (up to its limit, far above a
    // request's few hundred bytes).
    std::io::Write::write_all(&mut conn.writer(), request).map_err(|e| format!("TLS: {e}"))?;
    Ok(conn)
}

/// Why `host` cannot be an https check's SNI.
pub fn sni_refusal(host: &str) -> String {
    format!("host {host:?} is neither a DNS name nor an address for the TLS SNI")
}

/// A TLS failure as a probe's reason: during the handshake, "TLS handshake failed: ...".
pub fn reason(conn: &ClientConnection, e: &rustls::Error) -> String {
    if conn.is_handshaking() {
        format!("TLS handshake failed: {e}")
    } else {
        format!("TLS error: {e}")
    }
}

/// The reason of a server that closed the connection in the middle of the handshake.
pub const CLOSED_IN_HANDSHAKE: &str = "TLS handshake failed: the server closed the connection";

/// The tests' TLS servers' configuration: a self-signed certificate made for them, for a
/// name the probes never ask for (they verify none).
#[cfg(test)]
pub(crate) fn test_server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(vec!["rs".into()]).unwrap();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key_pair.serialize_der());
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        Arc::new(config)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sni_is_the_host_without_its_port_or_none_for_an_address() {
        let server: IpAddr = "192.0.2.7".parse().unwrap();
        for (host, name) in [
            ("www.example", "www.example"),
            ("www.example:8443", "www.example"),
            ("192.0.2.9", "192.0.2.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            assert_eq!(server_name(host).map(|n| n.to_str().into_owned()).as_deref(), Some(name), "{host}");
            assert!(connect(Some(host), server, b"GET /").is_ok(), "{host}");
        }
        assert_eq!(
            connect(Some("bad_name!"), server, b"GET /").unwrap_err(),
            "host \"bad_name!\" is neither a DNS name nor an address for the TLS SNI"
        );
        assert!(connect(None, server, b"GET /").is_ok());
    }
}
