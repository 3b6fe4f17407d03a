//! Who may do what: the four roles, the one permission table, and the API key format.
//!
//! Every permission check of the platform asks [`allows`]; the README's permission table is
//! this table in prose. A role outranks another when it may do everything the other may
//! ([`Role::rank`]): an admin creates keys of roles up to its own.

use serde::{Deserialize, Serialize};

/// A caller's role within its tenant; a new key's is `member` unless its creator says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every tenant.
    Owner,
    /// Everything within its own tenant.
    Admin,
    /// Every mode and dialect, knowledge reads and questions.
    #[default]
    Member,
    /// Its tenant's usage and metrics only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Higher is more; a viewer and a member are not comparable by what they may do, but no
    /// role below admin manages keys, so the order only matters from admin up.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
            Role::Viewer => 0,
        }
    }
}

/// Something a caller may want to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Any mode, in any dialect (a model call), `/v1/route`, token estimates.
    UseModels,
    /// List a tenant's knowledge documents and ask questions of them.
    ReadKnowledge,
    /// Add, replace or delete knowledge documents.
    WriteKnowledge,
    /// Create, list, change and revoke API keys of its tenant.
    ManageKeys,
    /// Read a tenant's limits and budget.
    ReadLimits,
    /// Set a tenant's limits and budget.
    SetLimits,
    /// Usage reports and the ledger.
    ReadUsage,
    /// `/admin/metrics` and the seed's `/api/v1/metrics`.
    ReadMetrics,
    /// The audit log.
    ReadAudit,
    /// Change a tenant's feature flags (`PUT /admin/tenants/{tenant}/flags`).
    SetFlags,
    /// Act on another tenant (`?tenant=`), and see platform-wide metrics.
    AnyTenant,
}

/// The permission table: the only place that says what a role may do.
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Owner => true,
        Role::Admin => !matches!(action, SetLimits | AnyTenant),
        Role::Member => matches!(action, UseModels | ReadKnowledge),
        Role::Viewer => matches!(action, ReadUsage | ReadMetrics),
    }
}

/// What every API key starts with.
pub const KEY_PREFIX: &str = "ock_";
/// Random characters after the prefix: 40 of 62 (about 238 bits).
pub const KEY_RANDOM_CHARS: usize = 40;
/// How much of a key lists show (the prefix and the first random characters).
const SHOWN_CHARS: usize = 12;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new key from random bytes, by rejection sampling (a byte of 248 or more is skipped, so every
/// character is uniform). `None` when `random` ran out first: ask again with more bytes (96
/// bytes fail with a probability below 10^-30).
pub fn new_key(random: &[u8]) -> Option<String> {
    let mut key = String::with_capacity(KEY_PREFIX.len().saturating_add(KEY_RANDOM_CHARS));
    key.push_str(KEY_PREFIX);
    let chars = random.iter().filter(|b| **b < 248).map(|b| ALPHABET.get(usize::from(b % 62)).copied().unwrap_or(b'0'));
    key.extend(chars.take(KEY_RANDOM_CHARS).map(char::from));
    (key.len() == KEY_PREFIX.len().saturating_add(KEY_RANDOM_CHARS)).then_some(key)
}

/// Whether a bearer token is shaped like an API key (not whether it is one).
pub fn looks_like_key(token: &str) -> bool {
    token
        .strip_prefix(KEY_PREFIX)
        .is_some_and(|rest| rest.len() >= 32 && rest.len() <= 128 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// What is stored instead of the key: its SHA-256, in hex. Keys carry 238 random bits, so a
/// plain hash cannot be reversed by guessing, and it lets a lookup be one indexed read.
pub fn key_hash(key: &str) -> String {
    crate::hex(&hmac_sha256::Hash::hash(key.as_bytes()))
}

/// The part of a key that lists and logs may show.
pub fn key_shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN_CHARS).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_table_gives_each_role_what_the_readme_says() {
        use Action::*;
        let all = [
            UseModels,
            ReadKnowledge,
            WriteKnowledge,
            ManageKeys,
            ReadLimits,
            SetLimits,
            ReadUsage,
            ReadMetrics,
            ReadAudit,
            AnyTenant,
        ];
        let may = |role| all.iter().copied().filter(|a| allows(role, *a)).collect::<Vec<_>>();
        assert_eq!(may(Role::Owner), all.to_vec());
        assert_eq!(
            may(Role::Admin),
            vec![UseModels, ReadKnowledge, WriteKnowledge, ManageKeys, ReadLimits, ReadUsage, ReadMetrics, ReadAudit]
        );
        assert_eq!(may(Role::Member), vec![UseModels, ReadKnowledge]);
        assert_eq!(may(Role::Viewer), vec![ReadUsage, ReadMetrics]);
    }

    #[test]
    fn roles_parse_by_their_names_only() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("user"), None);
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn keys_are_the_prefix_and_forty_uniform_alphanumerics() {
        let random: Vec<u8> = (0..=255u8).cycle().take(96).collect();
        let key = new_key(&random).unwrap();
        assert!(key.starts_with("ock_") && key.len() == 44, "{key}");
        assert!(looks_like_key(&key));
        assert_eq!(new_key(&[250; 96]), None, "only rejected bytes: not enough");
        assert_eq!(key_shown_prefix(&key).len(), 12);
        assert!(!looks_like_key("ock_short"));
        assert!(!looks_like_key("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert_eq!(key_hash("ock_x").len(), 64);
        assert_ne!(key_hash("ock_x"), key_hash("ock_y"));
    }
}
