//! `spin.toml` (manifest version 2), read into what the runner needs: routes, components,
//! their KV stores and SQLite databases, outbound rules and resolved variables.
//!
//! Only the parts of the manifest this project uses are understood; unknown keys are ignored,
//! as Spin ignores them. Variables resolve the way Spin's environment provider does:
//! `SPIN_VARIABLE_<UPPER_NAME>` first, then the manifest default; a required variable with
//! neither is a startup error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

use crate::outbound::OutboundRules;
use crate::routes::Route;

/// An application, ready to run.
#[derive(Debug)]
pub struct App {
    /// HTTP triggers: a public route (or none, for a private component) and its component.
    pub triggers: Vec<Trigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentSpec>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// `None` for `route = { private = true }`: reachable only through service chaining.
    pub route: Option<Route>,
    pub component: String,
}

/// One `[component.<id>]`, with templates expanded.
#[derive(Debug)]
pub struct ComponentSpec {
    pub id: String,
    /// The Wasm file, resolved against the manifest's directory.
    pub source: PathBuf,
    pub outbound: OutboundRules,
    pub key_value_stores: Vec<String>,
    /// The SQLite databases the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
    /// The component's variables (`[component.<id>.variables]`), resolved.
    pub variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

impl App {
    /// Reads `path`, resolving variables from the process environment.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, |name| std::env::var(name).ok()).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a manifest; `env` looks up environment variables, `base` resolves sources.
    pub fn parse(text: &str, base: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text).context("invalid manifest")?;
        let version = match &raw.spin_manifest_version {
            toml::Value::Integer(v) => v.to_string(),
            toml::Value::String(v) => v.clone(),
            _ => String::from("(not a number)"),
        };
        if version != "2" {
            bail!("spin_manifest_version must be 2, found {version}");
        }

        let mut values = BTreeMap::new();
        for (name, variable) in &raw.variables {
            check_variable_name(name)?;
            let from_env = env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()));
            let value = match (from_env, &variable.default, variable.required) {
                (Some(value), _, _) => value,
                (None, Some(default), false) => default.clone(),
                (None, Some(_), true) => {
                    bail!("variable {name:?} cannot be both required and have a default")
                }
                (None, None, true) => {
                    bail!("required variable {name:?} has no value: set SPIN_VARIABLE_{}", name.to_ascii_uppercase())
                }
                (None, None, false) => {
                    bail!("variable {name:?} must either be required or have a default")
                }
            };
            values.insert(name.clone(), value);
        }

        let mut components = BTreeMap::new();
        for (id, raw_component) in raw.component {
            let source = match &raw_component.source {
                toml::Value::String(source) => base.join(source),
                _ => bail!("component {id:?}: only a local file `source` is supported"),
            };
            let mut variables = BTreeMap::new();
            for (name, template) in &raw_component.variables {
                check_variable_name(name)?;
                let value = expand(template, &values).with_context(|| format!("component {id:?} variable {name:?}"))?;
                variables.insert(name.clone(), value);
            }
            let hosts = raw_component
                .allowed_outbound_hosts
                .iter()
                .map(|host| expand(host, &values))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component {id:?} allowed_outbound_hosts"))?;
            let outbound =
                OutboundRules::parse(&hosts).with_context(|| format!("component {id:?} allowed_outbound_hosts"))?;
            components.insert(
                id.clone(),
                ComponentSpec {
                    id,
                    source,
                    outbound,
                    key_value_stores: raw_component.key_value_stores,
                    sqlite_databases: raw_component.sqlite_databases,
                    variables,
                },
            );
        }

        let mut triggers = Vec::new();
        for trigger in raw.trigger.http {
            if !components.contains_key(&trigger.component) {
                bail!("trigger refers to unknown component {:?}", trigger.component);
            }
            let route = match trigger.route {
                RawRoute::Path(path) => Some(Route::parse(&path)?),
                RawRoute::Private { private: true } => None,
                RawRoute::Private { private: false } => {
                    bail!("route = {{ private = false }} is not a route")
                }
            };
            triggers.push(Trigger { route, component: trigger.component });
        }
        Ok(Self { triggers, components })
    }
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and underscores, starting
/// with a letter.
fn check_variable_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid variable name {name:?}");
    }
    Ok(())
}

/// Expands `{{ name }}` placeholders with application variables.
fn expand(template: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let after = after.get(2..).unwrap_or_default();
        let Some(end) = after.find("}}") else {
            bail!("unterminated '{{{{' in {template:?}");
        };
        let (name, tail) = after.split_at(end);
        let name = name.trim();
        let Some(value) = values.get(name) else {
            bail!("unknown variable {name:?} in {template:?}");
        };
        out.push_str(value);
        rest = tail.get(2..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
api_key = { default = "", secret = true }
base = { default = "http://127.0.0.1:9" }
token = { required = true }
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = { private = true }
component = "inner"
[component.web]
source = "web.wasm"
allowed_outbound_hosts = ["{{ base }}", "http://*.spin.internal"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.web.variables]
api_key = "{{ api_key }}"
greeting = "hello {{token}}!"
[component.inner]
source = "inner.wasm"
"#;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
    }

    #[test]
    fn variables_come_from_the_environment_then_defaults() -> Result<()> {
        let app = App::parse(
            MANIFEST,
            Path::new("/app"),
            env(&[("SPIN_VARIABLE_TOKEN", "t0k"), ("SPIN_VARIABLE_API_KEY", "sk-1")]),
        )?;
        let web = app.components.get("web").context("web")?;
        assert_eq!(web.variables.get("api_key").map(String::as_str), Some("sk-1"));
        assert_eq!(web.variables.get("greeting").map(String::as_str), Some("hello t0k!"));
        assert_eq!(web.source, Path::new("/app/web.wasm"));
        assert_eq!(web.sqlite_databases, ["default"]);
        assert!(app.components.get("inner").context("inner")?.sqlite_databases.is_empty());
        assert!(web.outbound.allows(&"http://127.0.0.1:9/x".parse()?));
        assert!(!web.outbound.allows(&"http://127.0.0.1:10/x".parse()?));
        assert_eq!(app.triggers.len(), 2);
        assert!(app.triggers.iter().any(|t| t.route.is_none() && t.component == "inner"));
        Ok(())
    }

    #[test]
    fn a_required_variable_without_a_value_is_an_error() {
        let error = App::parse(MANIFEST, Path::new("."), env(&[])).err().map(|e| format!("{e:#}"));
        assert!(error.as_deref().is_some_and(|e| e.contains("SPIN_VARIABLE_TOKEN")), "{error:?}");
    }

    #[test]
    fn unknown_template_variables_and_components_are_errors() {
        let bad = MANIFEST.replace("{{ api_key }}", "{{ nope }}");
        assert!(App::parse(&bad, Path::new("."), env(&[("SPIN_VARIABLE_TOKEN", "x")])).is_err());
        let bad = MANIFEST.replace("component = \"inner\"", "component = \"ghost\"");
        assert!(App::parse(&bad, Path::new("."), env(&[("SPIN_VARIABLE_TOKEN", "x")])).is_err());
    }

    #[test]
    fn templates_expand_every_placeholder() -> Result<()> {
        let values = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        assert_eq!(expand("x{{a}}y{{ b }}z", &values)?, "x1y2z");
        assert_eq!(expand("plain", &values)?, "plain");
        assert!(expand("{{ a", &values).is_err());
        Ok(())
    }
}
