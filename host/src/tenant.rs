//! Tenants: namespaces that own components and instances.
//!
//! A tenant's name is 1 to 63 characters: lower-case ASCII letters, digits
//! and `-`, starting with a letter or digit (`[a-z0-9][a-z0-9-]{0,62}`, the
//! shape of a DNS label, so a name fits in paths, URLs and metric labels
//! unchanged). [`Tenant::DEFAULT`] (`default`) is the tenant of everything
//! created without one.
//!
//! The store keys an instance by one string. The default tenant's keys are
//! the bare instance ids, so single-tenant data looks as it always did;
//! another tenant's keys are `@{tenant}/{id}`. An id a user or a guest
//! gives may therefore not start with `@` (nor be empty), so no id of one
//! tenant can be the key of another's instance. A child's derived id is
//! built from its parent's key, and so inherits the parent's tenant.

use std::fmt;

/// The longest tenant name.
pub const MAX_TENANT_NAME: usize = 63;

/// Marks the key of an instance outside the default tenant.
const KEY_MARK: char = '@';

/// Why a tenant name or an instance id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The tenant name breaks the naming rules.
    #[error(
        "tenant name '{name}' is invalid: {reason} (a tenant name is 1 to 63 characters of a-z, 0-9 and '-', not starting with '-')"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An instance id starts with `@`, which marks tenant-qualified keys.
    #[error("instance id '{0}' is invalid: an instance id may not start with '@'")]
    ReservedId(String),
    /// An instance id is empty.
    #[error("instance id must not be empty")]
    EmptyId,
}

/// A validated tenant name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(String);

impl Tenant {
    /// The name of the default tenant.
    pub const DEFAULT: &'static str = "default";

    /// The tenant called `name`, refused unless it follows the naming rules
    /// (see the module documentation).
    pub fn new(name: &str) -> Result<Self, TenantError> {
        let invalid = |reason| TenantError::InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_TENANT_NAME {
            return Err(invalid("it is longer than 63 characters"));
        }
        if name.starts_with('-') {
            return Err(invalid("it starts with '-'"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("it holds a character other than a-z, 0-9 or '-'"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The default tenant.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Whether this is the default tenant.
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    /// The store key of this tenant's instance `id`, refusing an id that is
    /// empty or starts with `@`.
    pub fn key(&self, id: &str) -> Result<String, TenantError> {
        check_id(id)?;
        Ok(if self.is_default() {
            id.to_owned()
        } else {
            format!("{KEY_MARK}{}/{id}", self.0)
        })
    }

    /// The instance id `key` has within this tenant, or `None` when `key`
    /// is another tenant's.
    pub fn id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let (tenant, id) = split_key(key);
        (tenant == self.0).then_some(id)
    }

    /// Whether `key` names an instance of this tenant.
    pub fn owns(&self, key: &str) -> bool {
        tenant_of_key(key) == self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Tenant {
    type Err = TenantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Refuse an instance id a user or a guest gives that could be mistaken
/// for a key: empty, or starting with `@`.
pub fn check_id(id: &str) -> Result<(), TenantError> {
    if id.is_empty() {
        return Err(TenantError::EmptyId);
    }
    if id.starts_with(KEY_MARK) {
        return Err(TenantError::ReservedId(id.to_owned()));
    }
    Ok(())
}

/// The tenant name and the instance id a store key holds. A key not marked
/// with `@` (or marked but malformed, which no checked id produces) belongs
/// to the default tenant.
pub fn split_key(key: &str) -> (&str, &str) {
    if let Some(rest) = key.strip_prefix(KEY_MARK)
        && let Some((tenant, id)) = rest.split_once('/')
    {
        return (tenant, id);
    }
    (Tenant::DEFAULT, key)
}

/// The name of the tenant that owns the instance with store key `key`:
/// what a store records as the instance's tenant.
pub fn tenant_of_key(key: &str) -> &str {
    split_key(key).0
}

/// The key of a child or detached instance the instance `parent_key` names
/// `id`: qualified with the parent's tenant, so a guest reaches only its
/// own tenant's instances. Refuses an id that is empty or starts with `@`.
pub fn child_key(parent_key: &str, id: &str) -> Result<String, TenantError> {
    check_id(id)?;
    let tenant = tenant_of_key(parent_key);
    if tenant == Tenant::DEFAULT {
        Ok(id.to_owned())
    } else {
        Ok(format!("{KEY_MARK}{tenant}/{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Tenant {
        Tenant::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_follow_the_documented_rules() {
        for good in ["a", "default", "acme-2", "0", &"x".repeat(63)] {
            assert!(Tenant::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "Acme",
            "a_b",
            "a/b",
            "@a",
            "a b",
            "é",
            &"x".repeat(64),
        ] {
            let err = Tenant::new(bad).err();
            assert!(
                matches!(err, Some(TenantError::InvalidName { .. })),
                "{bad}"
            );
        }
        let message = Tenant::new("A").err().map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some(
                "tenant name 'A' is invalid: it holds a character other than a-z, 0-9 or '-' (a tenant name is 1 to 63 characters of a-z, 0-9 and '-', not starting with '-')"
            )
        );
    }

    #[test]
    fn the_default_tenant_keys_are_the_bare_ids() {
        let default = Tenant::default();
        assert!(default.is_default());
        assert_eq!(default.key("order-1").ok().as_deref(), Some("order-1"));
        assert_eq!(default.id_of("order-1"), Some("order-1"));
        assert_eq!(default.id_of("p::1::3"), Some("p::1::3"));
        assert_eq!(tenant_of_key("order-1"), "default");
    }

    #[test]
    fn keys_round_trip_and_stay_in_their_tenant() {
        let acme = tenant("acme");
        let key = acme.key("a/b::1").unwrap_or_default();
        assert_eq!(key, "@acme/a/b::1");
        assert_eq!(acme.id_of(&key), Some("a/b::1"));
        assert_eq!(tenant_of_key(&key), "acme");
        assert!(acme.owns(&key));
        // Another tenant, and the default one, see nothing of it.
        assert_eq!(tenant("other").id_of(&key), None);
        assert_eq!(Tenant::default().id_of(&key), None);
        assert_eq!(acme.id_of("a/b::1"), None);
    }

    #[test]
    fn the_same_id_in_two_tenants_gives_two_keys() {
        let ids = ["x", "x::1::2", "default", "acme"];
        for id in ids {
            let keys: Vec<String> = ["default", "acme", "acme2", "b"]
                .into_iter()
                .filter_map(|t| tenant(t).key(id).ok())
                .collect();
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "{keys:?}");
        }
    }

    #[test]
    fn ids_that_look_like_keys_are_refused() {
        for t in ["default", "acme"] {
            assert_eq!(
                tenant(t).key("@acme/x"),
                Err(TenantError::ReservedId("@acme/x".into()))
            );
            assert_eq!(tenant(t).key(""), Err(TenantError::EmptyId));
        }
        assert!(child_key("parent", "@acme/x").is_err());
        assert!(child_key("@b/parent", "@acme/x").is_err());
    }

    #[test]
    fn a_child_id_takes_its_parents_tenant() {
        assert_eq!(child_key("p", "c").ok().as_deref(), Some("c"));
        assert_eq!(child_key("@b/p", "c").ok().as_deref(), Some("@b/c"));
        // A guest of tenant b naming tenant a's instance reaches b's own.
        let a_key = tenant("a").key("victim").unwrap_or_default();
        let b_child = child_key("@b/p", "victim").unwrap_or_default();
        assert_ne!(a_key, b_child);
        assert_eq!(tenant_of_key(&b_child), "b");
        // A derived id, built from the parent's key, keeps the tenant too.
        assert_eq!(tenant_of_key("@b/p::1::3"), "b");
        assert_eq!(tenant("b").id_of("@b/p::1::3"), Some("p::1::3"));
    }

    #[test]
    fn a_malformed_key_belongs_to_the_default_tenant() {
        assert_eq!(split_key("@nope"), ("default", "@nope"));
    }
}
