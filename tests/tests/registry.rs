//! The type registry: linking a connector crate registers its types; a name claimed twice is
//! reported (naming both Rust types) only when it is looked up.

#![allow(clippy::unwrap_used, clippy::items_after_statements)] // test code

use connections::{BaseConnection, ConnectParams, ConnectionCore, Error, Result, async_trait};
// Linking the connector crate is all it takes for its types to be found by name.
use files_connector as _;

macro_rules! unit_connection {
    ($name:ident, $type_name:literal) => {
        struct $name {
            core: ConnectionCore<Self>,
        }
        #[async_trait]
        impl BaseConnection for $name {
            type Raw = ();
            const TYPE_NAME: &'static str = $type_name;
            async fn connect(_: &ConnectParams) -> Result<()> {
                Ok(())
            }
            connections::core_accessors!();
        }
        connections::register_connection!($name);
    };
}

unit_connection!(FirstDup, "dup");
unit_connection!(SecondDup, "dup");

#[test]
fn a_name_registered_twice_names_both_types() {
    let err = connections::lookup_type("dup").unwrap_err();
    let Error::DuplicateType { name, rust_types } = &err else { panic!("{err:?}") };
    assert_eq!(name, "dup");
    let mut rust_types = rust_types.clone();
    rust_types.sort();
    assert_eq!(rust_types, ["registry::FirstDup", "registry::SecondDup"]);
    assert!(err.to_string().starts_with("connection type \"dup\" is registered more than once: by registry::"));
}

#[test]
fn other_names_are_unaffected_and_listed_sorted() {
    assert_eq!(connections::lookup_type("files").unwrap().name, "files");
    let names = connections::registered_names();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.contains(&"dup") && names.contains(&"files"));
    let types: Vec<&str> = connections::registered_types().iter().map(|t| t.name).collect();
    assert_eq!(types.iter().filter(|n| **n == "dup").count(), 2);
}
