//! The HTTP transport: snowflake-api's client (reqwest with its transient-retry middleware),
//! plus a middleware that sends its requests to the configured `host`/`port`/`protocol` instead
//! of `https://<account>.snowflakecomputing.com`, and identifies this library.

use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};

use crate::config::Endpoint;
use crate::error::SnowflakeError;

/// What the client says it is, in `User-Agent` and in the login request.
pub const CLIENT_APP_ID: &str = "connections-snowflake";
/// This library's version.
pub const CLIENT_APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sends requests addressed to `<account>.snowflakecomputing.com` to the endpoint instead, and
/// sets this library's `User-Agent` on every request. Other URLs (result chunks on cloud storage)
/// keep their address.
struct Rewrite {
    account_host: String,
    endpoint: Endpoint,
    user_agent: reqwest::header::HeaderValue,
}

#[async_trait::async_trait]
impl Middleware for Rewrite {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let url = req.url_mut();
        if url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&self.account_host)) {
            // these setters fail only for URLs that cannot have a host, which these are not
            let _ = url.set_scheme(&self.endpoint.protocol);
            let _ = url.set_host(Some(&self.endpoint.host));
            let _ = url.set_port(Some(self.endpoint.port));
            // snowflake-api writes one path with a leading slash after its own
            let path = url.path().replace("//", "/");
            url.set_path(&path);
        }
        req.headers_mut().insert(reqwest::header::USER_AGENT, self.user_agent.clone());
        next.run(req, extensions).await
    }
}

/// The HTTP client of one connection.
pub(crate) fn client(account: &str, endpoint: &Endpoint) -> Result<ClientWithMiddleware, SnowflakeError> {
    let builder = snowflake_api::connection::Connection::default_client_builder()
        .map_err(|e| SnowflakeError::transport("creating the HTTP client", e))?;
    let user_agent = format!("{CLIENT_APP_ID}/{CLIENT_APP_VERSION} (Rust)");
    let rewrite = Rewrite {
        account_host: format!("{account}.snowflakecomputing.com"),
        endpoint: endpoint.clone(),
        user_agent: reqwest::header::HeaderValue::from_str(&user_agent).expect("a plain ASCII header"),
    };
    Ok(builder.with(rewrite).build())
}
