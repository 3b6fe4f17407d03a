//! Feature flags: the seed's `config/cognitive_features.yaml` and the platform's own keys.
//! The file is compiled in as the defaults (`build.rs`); a deploy-time variable, then the
//! platform's and the tenant's overrides (JSON documents in the file's shape) are laid over it.
//! Pure: the runtime reads the overrides and the variables and hands them here.

pub mod schema;

use serde_json::{Map, Value as Json};

pub use schema::{read_document, read_fields, Flag, Kind, Problem, Value, COUNT, KEYS};

include!(concat!(env!("OUT_DIR"), "/flag_defaults.rs"));

/// Where a flag's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    /// The deploy-time variable of that name.
    Variable(&'static str),
    Platform,
    Tenant,
}

impl Source {
    pub fn name(self) -> String {
        match self {
            Source::File => "file".into(),
            Source::Variable(name) => format!("variable {name}"),
            Source::Platform => "platform".into(),
            Source::Tenant => "tenant".into(),
        }
    }
}

/// The flags one request runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Flags {
    values: [Value; COUNT],
    sources: [Source; COUNT],
}

impl Default for Flags {
    fn default() -> Self {
        Flags { values: FILE, sources: [Source::File; COUNT] }
    }
}

impl Flags {
    /// Lays `value` from `source` over the flag.
    pub fn set(&mut self, flag: Flag, value: Value, source: Source) {
        if let (Some(slot), Some(from)) = (self.values.get_mut(flag as usize), self.sources.get_mut(flag as usize)) {
            *slot = value;
            *from = source;
        }
    }

    /// Lays a document's values over the flags (its `null`s leave them as they are).
    pub fn apply(&mut self, found: &[(Flag, Option<Value>)], source: Source) {
        for (flag, value) in found {
            if let Some(value) = value {
                self.set(*flag, *value, source);
            }
        }
    }

    /// Sets a flag from its deploy-time variable's text; the error names the variable.
    pub fn set_variable(&mut self, flag: Flag, text: &str) -> Result<(), String> {
        let key = flag.key();
        let Some(variable) = key.variable else { return Ok(()) };
        let value = match key.kind {
            Kind::Choice(_) => Json::from(text.trim()),
            _ => match crate::decimal(text) {
                Some(n) => Json::from(n / variable.per_unit),
                None => Json::Null,
            },
        };
        // A whole number divided may not be whole: read a `Whole` flag from the whole value.
        let value = match (key.kind, &value) {
            (Kind::Whole { .. }, Json::Number(n)) => {
                n.as_f64().filter(|x| x.fract() == 0.0 && *x >= 0.0).map_or(Json::Null, |x| Json::from(x as u64))
            }
            _ => value,
        };
        let read = schema::read_value(key.path, key.kind, &value)
            .map_err(|problem| format!("{} ({}): {}", variable.name, key.path, problem.message))?;
        self.set(flag, read, Source::Variable(variable.name));
        Ok(())
    }

    pub fn value(&self, flag: Flag) -> Value {
        self.values.get(flag as usize).copied().unwrap_or(Value::Bool(false))
    }

    pub fn source(&self, flag: Flag) -> Source {
        self.sources.get(flag as usize).copied().unwrap_or(Source::File)
    }

    /// Whether a switch is on: a `cognitive_features` switch only while the master switch is.
    pub fn on(&self, flag: Flag) -> bool {
        let on = matches!(self.value(flag), Value::Bool(true));
        let under_master = flag != Flag::Enabled && flag.path().starts_with("cognitive_features.");
        on && (!under_master || matches!(self.value(Flag::Enabled), Value::Bool(true)))
    }

    pub fn number(&self, flag: Flag) -> f64 {
        match self.value(flag) {
            Value::Number(n) => n,
            _ => 0.0,
        }
    }

    pub fn whole(&self, flag: Flag) -> u64 {
        // Whole flags are read whole and bounded.
        self.number(flag) as u64
    }

    pub fn choice(&self, flag: Flag) -> &'static str {
        match self.value(flag) {
            Value::Choice(word) => word,
            _ => "",
        }
    }

    /// Every flag's value, in the file's shape.
    pub fn document(&self) -> Json {
        let mut doc = Map::new();
        for flag in Flag::ALL {
            schema::insert(&mut doc, flag.path(), schema::to_json(self.value(*flag)));
        }
        Json::Object(doc)
    }

    /// Each flag's source, by its dotted path.
    pub fn sources(&self) -> Json {
        Json::Object(
            Flag::ALL.iter().map(|flag| (flag.path().to_owned(), Json::from(self.source(*flag).name()))).collect(),
        )
    }
}

/// Lays a partial document over a stored one (both in the file's shape): a `null` takes the
/// stored value away, and a mapping left empty goes too.
pub fn merge(stored: &mut Map<String, Json>, change: &Map<String, Json>) {
    for (name, value) in change {
        match value {
            Json::Null => {
                stored.remove(name);
            }
            Json::Object(inner) => {
                let entry = stored.entry(name.clone()).or_insert_with(|| Json::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Json::Object(Map::new());
                }
                if let Json::Object(target) = entry {
                    merge(target, inner);
                    if target.is_empty() {
                        stored.remove(name);
                    }
                }
            }
            other => {
                stored.insert(name.clone(), other.clone());
            }
        }
    }
}
