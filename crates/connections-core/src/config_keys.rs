//! Configuration keys declared once: a driver (or a third-party connector) lists its keys with
//! [`config_keys!`](crate::config_keys), and gets an enum whose `FromStr` takes each canonical
//! name and its aliases, whose `AsRef<str>` gives the canonical name back, an `ALL` list, and an
//! unknown-key error that lists the supported keys and suggests the closest. One closest-name
//! rule serves keys and connection type names alike.

use std::fmt;

use crate::error::ConfigProblem;

/// The key of a section that names the connection type: accepted in every section, never a
/// driver setting, never listed among a driver's keys.
pub const TYPE_KEY: &str = "type";

/// A set of configuration keys, usually made by [`config_keys!`](crate::config_keys).
pub trait ConfigKey: Copy + Eq + fmt::Debug + 'static {
    /// Every key, in documentation order.
    const ALL: &'static [Self];
    /// Where the keys live, for messages: `for a connection of type `sql``.
    const CONTEXT: &'static str;

    /// The canonical spelling.
    fn name(self) -> &'static str;

    /// The other accepted spellings.
    fn aliases(self) -> &'static [&'static str];

    /// The key spelled `text` (canonical or alias), or the error naming it, the supported keys
    /// and the closest one.
    fn parse(text: &str) -> Result<Self, UnknownKey> {
        let found = Self::ALL.iter().copied().find(|k| k.name() == text || k.aliases().contains(&text));
        found.ok_or_else(|| UnknownKey::new(text, Self::CONTEXT, Self::supported()))
    }

    /// The canonical names a message lists (all but [`TYPE_KEY`]).
    fn supported() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).filter(|k| *k != TYPE_KEY).collect()
    }
}

/// A key that is none of the supported ones: the error of a [`ConfigKey`] enum's `FromStr`.
/// Its message lists the supported keys and suggests the closest one.
///
/// ```
/// use connections_core::UnknownKey;
/// let unknown = UnknownKey::new("pasword", "for a connection of type `demo`", vec!["host", "password"]);
/// assert_eq!(unknown.closest(), Some("password"));
/// assert_eq!(
///     unknown.to_string(),
///     "`pasword`: unknown key for a connection of type `demo`; supported keys: host, password (did you mean `password`?)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    key: String,
    context: &'static str,
    supported: Vec<&'static str>,
}

impl UnknownKey {
    /// An unknown `key`; `context` says where (`for a connection of type `sql``).
    pub fn new(key: &str, context: &'static str, supported: Vec<&'static str>) -> Self {
        Self { key: key.to_owned(), context, supported }
    }

    /// The key as given.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The supported keys.
    pub fn supported(&self) -> &[&'static str] {
        &self.supported
    }

    /// The supported key closest to the one given, if it is close enough to be a likely typo.
    pub fn closest(&self) -> Option<&'static str> {
        closest_name(&self.key, &self.supported)
    }

    /// The configuration problem of this key, with `others` (more unknown keys of the same
    /// table) named too.
    pub fn problem(&self, others: &[Self]) -> ConfigProblem {
        ConfigProblem::UnknownKey {
            context: self.context.to_owned(),
            supported: self.supported.iter().map(|k| (*k).to_owned()).collect(),
            closest: self.closest().map(str::to_owned),
            also: others.iter().map(|o| o.key.clone()).filter(|k| *k != self.key).collect(),
            hint: String::new(),
        }
    }
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.problem(&[]))
    }
}

impl std::error::Error for UnknownKey {}

/// The candidate closest to `name`, if it is close enough to be a likely typo: at most a third of
/// its letters (one for short names, one more for names over three letters) edited, swapped
/// letters counting once, case ignored. Used for keys and for connection type names.
///
/// ```
/// use connections_core::closest_name;
/// let known = ["snowflake", "snowpark", "sql"];
/// assert_eq!(closest_name("SQL", &known), Some("sql"));
/// assert_eq!(closest_name("snowprak", &known), Some("snowpark"));
/// assert_eq!(closest_name("postgres", &known), None);
/// ```
pub fn closest_name<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), *k))
        .filter(|(distance, k)| *distance <= (k.chars().count() / 3).max(1) + usize::from(k.len() > 3))
        .min()
        .map(|(_, k)| k)
}

/// Declares a driver's configuration keys once: an enum with a doc line per key, its canonical
/// name and aliases, and the implementations of [`ConfigKey`], `FromStr` (with [`UnknownKey`]
/// as the error), `AsRef<str>` and `Display`.
///
/// ```
/// connections_core::config_keys! {
///     /// The keys of a connection of type `demo`.
///     pub enum DemoKey in "for a connection of type `demo`" {
///         /// `host`, a string.
///         Host = "host",
///         /// `user`, a string (also `username`).
///         User = "user" | "username",
///     }
/// }
/// use connections_core::ConfigKey;
/// assert_eq!("username".parse::<DemoKey>(), Ok(DemoKey::User));
/// assert_eq!(DemoKey::User.as_ref(), "user");
/// assert_eq!(DemoKey::ALL, &[DemoKey::Host, DemoKey::User]);
/// let unknown = "hots".parse::<DemoKey>().unwrap_err();
/// assert_eq!(unknown.closest(), Some("host"));
/// ```
#[macro_export]
macro_rules! config_keys {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $context:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $canonical:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $crate::ConfigKey for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            const CONTEXT: &'static str = $context;

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $canonical,)+
                }
            }

            fn aliases(self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant => &[$($alias),*],)+
                }
            }
        }

        impl $name {
            /// Every key, in documentation order.
            #[allow(dead_code)]
            $vis const ALL: &'static [Self] = <Self as $crate::ConfigKey>::ALL;
        }

        impl ::core::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                $crate::ConfigKey::name(*self)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str($crate::ConfigKey::name(*self))
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::UnknownKey;

            fn from_str(text: &str) -> ::core::result::Result<Self, $crate::UnknownKey> {
                <Self as $crate::ConfigKey>::parse(text)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::config_keys! {
        /// Test keys.
        enum Demo in "in a test" {
            /// One.
            One = "one" | "uno",
            /// The type key, accepted and never listed.
            Type = "type",
        }
    }

    #[test]
    fn keys_parse_with_aliases_and_list_without_type() {
        assert_eq!("uno".parse::<Demo>(), Ok(Demo::One));
        assert_eq!(Demo::One.to_string(), "one");
        assert_eq!(<Demo as ConfigKey>::supported(), ["one"]);
        let unknown = "onr".parse::<Demo>().unwrap_err();
        assert_eq!(unknown.to_string(), "`onr`: unknown key in a test; supported keys: one (did you mean `one`?)");
    }

    #[test]
    fn suggestions_are_close_matches_only() {
        let known = ["snowflake", "snowpark", "sql"];
        assert_eq!(closest_name("sqll", &known), Some("sql"));
        assert_eq!(closest_name("snowflak", &known), Some("snowflake"));
        assert_eq!(closest_name("", &known), None);
    }
}
