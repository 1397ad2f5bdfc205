//! The registry of connection types: every linked type, by name, collected with `inventory`.

use std::any::TypeId;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::connection::{AnyConnection, BaseConnection};
use crate::error::{Error, Result};
use crate::lifecycle::{Blueprint, ConnectionCore};

type OpenFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn AnyConnection>>> + Send>>;

/// A registered connection type. Made by [`register_connection!`](crate::register_connection);
/// list them with [`registered_types`].
#[derive(Debug)]
pub struct ConnectionType {
    /// The type name (`type = "..."`).
    pub name: &'static str,
    /// Other names it answers to.
    pub aliases: &'static [&'static str],
    /// The Rust type, as written in the macro call.
    pub rust_type: &'static str,
    /// The module that registered it.
    pub defined_in: &'static str,
    /// Whether a connection named like the type has that type.
    pub name_implies_type: bool,
    /// A deprecation note, if the type is deprecated.
    pub deprecation: Option<&'static str>,
    type_id: fn() -> TypeId,
    open: fn(Blueprint) -> OpenFuture,
}

inventory::collect!(ConnectionType);

impl ConnectionType {
    /// The registration of `C`; use [`register_connection!`](crate::register_connection).
    #[doc(hidden)]
    pub const fn of<C: BaseConnection>(rust_type: &'static str, defined_in: &'static str) -> Self {
        Self {
            name: C::TYPE_NAME,
            aliases: C::ALIASES,
            rust_type,
            defined_in,
            name_implies_type: C::NAME_IMPLIES_TYPE,
            deprecation: C::DEPRECATION,
            type_id: TypeId::of::<C>,
            open: open::<C>,
        }
    }

    /// The Rust type with the module that registered it.
    pub fn qualified_rust_type(&self) -> String {
        format!("{}::{}", self.defined_in, self.rust_type)
    }

    /// How the factory opens a connection of this type.
    pub(crate) fn opener(&self) -> Opener {
        Opener { name: self.name, type_id: (self.type_id)(), deprecation: self.deprecation, open: self.open }
    }
}

/// What the factory needs to open a connection of one Rust type: from the registry, or straight
/// from the type (`open_as::<C>()` works whether or not `C` is registered).
#[derive(Clone, Copy)]
pub(crate) struct Opener {
    pub(crate) name: &'static str,
    pub(crate) type_id: TypeId,
    deprecation: Option<&'static str>,
    open: fn(Blueprint) -> OpenFuture,
}

impl Opener {
    pub(crate) fn of<C: BaseConnection>() -> Self {
        Self { name: C::TYPE_NAME, type_id: TypeId::of::<C>(), deprecation: C::DEPRECATION, open: open::<C> }
    }

    pub(crate) async fn open(self, blueprint: Blueprint) -> Result<Arc<dyn AnyConnection>> {
        if let Some(note) = self.deprecation {
            warn_once(self.name, note);
        }
        (self.open)(blueprint).await
    }
}

/// Makes a connection object of type `C` and connects it, so that a misconfiguration fails here.
fn open<C: BaseConnection>(blueprint: Blueprint) -> OpenFuture {
    Box::pin(async move {
        let core = ConnectionCore::<C>::new(blueprint);
        core.raw().await?;
        Ok(Arc::new(C::from_core(core)) as Arc<dyn AnyConnection>)
    })
}

fn warn_once(type_name: &'static str, note: &'static str) {
    static WARNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut warned = WARNED.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if warned.insert(type_name) {
        tracing::warn!(r#type = type_name, "{note}");
    }
}

/// Registers a connection type under its `TYPE_NAME` (and `ALIASES`), from any crate.
///
/// Write it at item level, right below the type's `impl BaseConnection`. Registration happens
/// at link time: an application finds a connector crate's types as long as the crate is linked
/// (depend on it and `use the_connector as _;` somewhere).
///
/// ```compile_fail
/// # use connections_core::*;
/// # struct C;
/// fn not_here() {
///     connections_core::register_connection!(C); // inside a function: does not compile
/// }
/// ```
#[macro_export]
macro_rules! register_connection {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::ConnectionType::of::<$ty>(::core::stringify!($ty), ::core::module_path!())
        }
    };
}

type Index = BTreeMap<&'static str, Vec<&'static ConnectionType>>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = Index::new();
        for ty in inventory::iter::<ConnectionType> {
            for name in std::iter::once(&ty.name).chain(ty.aliases) {
                index.entry(name).or_default().push(ty);
            }
        }
        index
    })
}

/// Every registered type, sorted by name.
///
/// ```
/// for ty in connections_core::registered_types() {
///     println!("{} ({})", ty.name, ty.qualified_rust_type());
/// }
/// ```
pub fn registered_types() -> Vec<&'static ConnectionType> {
    let mut types: Vec<&'static ConnectionType> = inventory::iter::<ConnectionType>.into_iter().collect();
    types.sort_by_key(|t| (t.name, t.defined_in));
    types
}

/// Every registered name (type names and aliases), sorted.
pub fn registered_names() -> Vec<&'static str> {
    index().keys().copied().collect()
}

/// The type registered under `name` (or alias).
///
/// Streamlit's own class paths name their types (`streamlit.connections.SQLConnection` is
/// `"sql"`); they need not be registered (then the error says so).
///
/// Errors: an unknown name lists the registered names and suggests the closest; a name two types
/// claim names both; another Python class path (`module.Class`) says that it has no meaning here.
///
/// ```
/// let err = connections_core::lookup_type("streamlit.connections.SnowparkConnection").unwrap_err();
/// assert!(err.to_string().starts_with(
///     "streamlit.connections.SnowparkConnection is Streamlit's class for connection type \"snowpark\""
/// ));
/// ```
pub fn lookup(name: &str) -> Result<&'static ConnectionType> {
    if let Some(type_name) = streamlit_class_type(name) {
        return match index().get(type_name).map(Vec::as_slice) {
            None | Some([]) => Err(Error::UnregisteredStreamlitType {
                class_path: name.to_owned(),
                type_name,
                known: registered_names(),
            }),
            Some(_) => lookup(type_name),
        };
    }
    match index().get(name).map(Vec::as_slice) {
        Some([only]) => Ok(only),
        Some(several) => Err(Error::DuplicateType {
            name: name.to_owned(),
            rust_types: several.iter().map(|t| t.qualified_rust_type()).collect(),
        }),
        None if name.contains('.') => Err(Error::PythonTypePath { name: name.to_owned(), known: registered_names() }),
        None => {
            let known = registered_names();
            let closest = closest(name, &known);
            Err(Error::UnknownType { name: name.to_owned(), known, closest })
        }
    }
}

/// Streamlit's own connection classes, by every path Streamlit accepts for them, and the type
/// names they stand for. (Core knows no driver; these are Streamlit's names, not crates.)
const STREAMLIT_CLASSES: &[(&str, &str)] = &[
    ("streamlit.connections.SQLConnection", "sql"),
    ("streamlit.connections.sql_connection.SQLConnection", "sql"),
    ("streamlit.connections.SnowflakeConnection", "snowflake"),
    ("streamlit.connections.snowflake_connection.SnowflakeConnection", "snowflake"),
    ("streamlit.connections.SnowflakeCallersRightsConnection", "snowflake-callers-rights"),
    ("streamlit.connections.snowflake_connection.SnowflakeCallersRightsConnection", "snowflake-callers-rights"),
    ("streamlit.connections.SnowparkConnection", "snowpark"),
    ("streamlit.connections.snowpark_connection.SnowparkConnection", "snowpark"),
];

/// The type name a Streamlit class path stands for.
fn streamlit_class_type(name: &str) -> Option<&'static str> {
    STREAMLIT_CLASSES.iter().find(|(path, _)| *path == name).map(|(_, type_name)| *type_name)
}

/// The known name closest to `name`, if it is close enough to be a likely typo (the one rule of
/// [`closest_name`](crate::closest_name), shared with configuration keys).
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    crate::config_keys::closest_name(name, known)
}
