//! A small data app in the shape of a Streamlit app, served by axum: one page with the `pets`
//! table of `connection("pets_db")`, a filter bound as a `:owner` parameter, and a refresh
//! button that clears the cached result.
//!
//! ```text
//! cargo run --example webapp                  # http://127.0.0.1:8501
//! cargo run --example webapp 127.0.0.1:9000   # or WEBAPP_ADDR=127.0.0.1:9000
//! ```
//!
//! It runs in `examples/webapp/`, whose `.streamlit/secrets.toml` configures `pets_db` (a
//! SQLite file, made and filled at the first start); `WEBAPP_PROJECT=DIR` (or a second argument)
//! runs it in another project directory. Every request shares one connection and, per filter,
//! one cached result; edit the `url` in `secrets.toml` while it runs and the next request reads
//! the new database.

mod app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().or_else(|| std::env::var("WEBAPP_ADDR").ok()).unwrap_or_else(|| "127.0.0.1:8501".into());
    let project = args
        .next()
        .or_else(|| std::env::var("WEBAPP_PROJECT").ok())
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/webapp").into());
    // relative SQLite paths resolve against the project, as `streamlit run` from its folder
    std::env::set_current_dir(&project)?;
    app::seed_if_empty().await?;

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving http://{} (project {project})", listener.local_addr()?);
    app::serve(listener).await?;
    Ok(())
}
