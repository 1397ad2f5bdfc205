//! The seed's example, end to end:
//!
//! ```python
//! conn = st.connection('pets_db', type='sql')
//! pet_owners = conn.query('select * from pet_owners')
//! st.dataframe(pet_owners)
//! ```
//!
//! Run it with `cargo run --example pets`. It reads `examples/pets/.streamlit/secrets.toml`,
//! creates and fills `pet_owners` in `examples/pets/pets.db` if needed, and prints the table.

use connections::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Run from the example's project folder, where its `.streamlit/` is (as `streamlit run`
    // would be started from the app's folder).
    std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pets"))?;

    let conn = connections::connection("pets_db").with_type("sql").open_as::<SqlConnection>().await?;

    // The table of Streamlit's tutorial, written in one transaction.
    let mut session = conn.session().await?;
    session.execute("CREATE TABLE IF NOT EXISTS pet_owners (person TEXT, pet TEXT)").await?;
    session.execute("DELETE FROM pet_owners").await?;
    for (owner, pet) in [("jerry", "fish"), ("barbara", "cat"), ("alex", "puppy")] {
        session
            .execute_with(
                "INSERT INTO pet_owners (person, pet) VALUES (:owner, :pet)",
                [("owner", owner), ("pet", pet)],
            )
            .await?;
    }
    session.commit().await?;

    let pet_owners = conn.query("select * from pet_owners").await?;
    println!("{pet_owners}");
    Ok(())
}
