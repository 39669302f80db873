//! The TLS of `https://` trackers: a rustls client whose trusted roots are Mozilla's (the
//! `webpki-roots` set), or, when `SSL_CERT_FILE` names a PEM file, that file's certificates
//! instead (as OpenSSL reads the variable). Never trusts a certificate for another name.

use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The process's client configuration, built once from `SSL_CERT_FILE` or the built-in roots.
/// An unreadable `SSL_CERT_FILE` is an error every https announce reports.
pub fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| config_with_roots(std::env::var_os("SSL_CERT_FILE").as_deref()))
        .clone()
}

/// A client configuration trusting the certificates of the PEM file `cert_file`, or the
/// built-in roots when there is none.
pub fn config_with_roots(cert_file: Option<&OsStr>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match cert_file.filter(|f| !f.is_empty()) {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(file) => {
            let path = std::path::Path::new(file);
            let bad = |e: &dyn std::fmt::Display| format!("SSL_CERT_FILE {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The cryptography: *ring*, which ureq already links (aws-lc-rs would add a C build). rustls
/// 0.23.48 deprecates it for lacking post-quantum key exchange, not for a weakness.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
