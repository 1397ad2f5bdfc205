//! The web app: routes, the page, and the reaction to a secrets change. Kept apart from `main`
//! so that the test (`tests/webapp.rs`) serves the same app on a port of its own.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use connections::arrow::util::display::{ArrayFormatter, FormatOptions};
use connections::prelude::*;

/// How long a cached result is served (Streamlit's `ttl=600` of its tutorial).
const TTL: Duration = Duration::from_secs(600);

/// The connection every request uses: the factory hands all of them the same object.
async fn pets_db() -> Result<Arc<SqlConnection>, Error> {
    connections::connection("pets_db").open_as::<SqlConnection>().await
}

/// Creates and fills `pets` if the database has no such table yet.
pub(crate) async fn seed_if_empty() -> Result<(), Error> {
    let conn = pets_db().await?;
    conn.execute("CREATE TABLE IF NOT EXISTS pets (name TEXT, owner TEXT, age INTEGER)").await?;
    let count = conn.query("select count(*) as n from pets").await?;
    if count.to_csv_string()?.trim_end().ends_with("\n0") {
        let mut session = conn.session().await?;
        for (name, owner, age) in
            [("Tom", "Jerry", 3_i64), ("Rex", "Barbara", 7), ("Nemo", "Alex", 1), ("Felix", "Jerry", 5)]
        {
            session
                .execute_with(
                    "INSERT INTO pets VALUES (:name, :owner, :age)",
                    [("name", Param::from(name)), ("owner", Param::from(owner)), ("age", Param::from(age))],
                )
                .await?;
        }
        session.commit().await?;
    }
    conn.core().clear_cache(); // the count above must not be served later
    Ok(())
}

/// Serves the app on `listener` until the task is dropped.
pub(crate) async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    // A secrets change resets the connection whose section changed (the core does that); the
    // results it cached came from the old database, so they go too.
    let mut changes = connections::secrets_store().changed();
    tokio::spawn(async move {
        while changes.next().await.is_some() {
            tracing::info!("secrets changed: clearing cached results");
            connections::query_cache().clear();
        }
    });
    let app = Router::new().route("/", get(page)).route("/refresh", post(refresh)).route("/stats", get(stats));
    axum::serve(listener, app).await
}

#[derive(serde::Deserialize)]
struct Filter {
    owner: Option<String>,
}

/// The page: the filter form, the refresh button, the table.
async fn page(Query(filter): Query<Filter>) -> Response {
    let owner = filter.owner.unwrap_or_default();
    match pets_table(&owner).await {
        Ok(table) => Html(render(&owner, &table)).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("error: {error}\n")).into_response(),
    }
}

async fn pets_table(owner: &str) -> Result<DataFrame, Error> {
    let conn = pets_db().await?;
    let query = if owner.is_empty() {
        conn.query("select name, owner, age from pets order by name")
    } else {
        conn.query("select name, owner, age from pets where owner = :owner order by name").param("owner", owner)
    };
    query.ttl(TTL).await
}

/// "Refresh": drops the connection's cached results, then back to the page.
async fn refresh() -> Response {
    match pets_db().await {
        Ok(conn) => {
            conn.core().clear_cache();
            Redirect::to("/").into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("error: {error}\n")).into_response(),
    }
}

/// What the test (and a curious reader) checks: one connection, how often it connected, the
/// cache's hits and misses.
async fn stats() -> Response {
    let Ok(conn) = pets_db().await else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    let cache = connections::query_cache().stats();
    let body = format!(
        "{{\"instance\":\"{}\",\"connects\":{},\"hits\":{},\"misses\":{}}}\n",
        conn.core().instance_id(),
        conn.core().connect_count(),
        cache.hits,
        cache.misses
    );
    ([("content-type", "application/json")], body).into_response()
}

fn render(owner: &str, table: &DataFrame) -> String {
    let mut html =
        String::from("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Pets</title></head><body>\n");
    html.push_str("<h1>Pets</h1>\n");
    let _ = writeln!(
        html,
        "<form method=\"get\" action=\"/\"><label>Owner <input name=\"owner\" value=\"{}\"></label> \
         <button>Filter</button></form>",
        escape(owner)
    );
    html.push_str("<form method=\"post\" action=\"/refresh\"><button>Refresh</button></form>\n<table>\n<tr>");
    for name in table.column_names() {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr>\n");
    let options = FormatOptions::default().with_null("");
    for batch in table.batches() {
        let formatters: Vec<_> =
            batch.columns().iter().filter_map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok()).collect();
        for row in 0..batch.num_rows() {
            html.push_str("<tr>");
            for formatter in &formatters {
                let _ = write!(html, "<td>{}</td>", escape(&formatter.value(row).to_string()));
            }
            html.push_str("</tr>\n");
        }
    }
    let _ = writeln!(html, "</table>\n<p>{} rows</p>\n</body></html>", table.num_rows());
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
