//! The one place outbound HTTP clients are built: image fetches and the vision
//! and decision model backends all start from [`builder`], so every client
//! uses the same TLS provider and names brain in its user agent.

/// Makes rustls use the `ring` provider (already linked for the database
/// drivers) for every HTTP client in the process. reqwest is built without a
/// bundled provider, so this must run before any `reqwest::Client` is built;
/// [`builder`] calls it, and repeated calls are harmless.
pub fn install_tls_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client builder with the TLS provider installed and the user agent
/// `<product>/<server version>`; callers add their own timeouts and policies.
pub fn builder(product: &str) -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder().user_agent(format!("{product}/{}", env!("CARGO_PKG_VERSION")))
}

/// Builds `builder`, naming `purpose` (e.g. "vision model client") in the
/// internal error if the client cannot be built.
pub fn build(builder: reqwest::ClientBuilder, purpose: &str) -> Result<reqwest::Client, crate::error::Error> {
    builder.build().map_err(|e| crate::error::Error::internal(format!("{purpose}: {e}")))
}

/// A client for an OpenAI-compatible model backend: one `timeout` bounds both
/// connecting and the whole request.
pub fn model_client(timeout: std::time::Duration, purpose: &str) -> Result<reqwest::Client, crate::error::Error> {
    build(builder("brain").timeout(timeout).connect_timeout(timeout), purpose)
}
