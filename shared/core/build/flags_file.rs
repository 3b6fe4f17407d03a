//! `config/cognitive_features.yaml` read at build time: YAML into the JSON document the schema
//! reads, checked whole, and written out as Rust (the flags' defaults in every function). No
//! YAML parser ships in the Wasm. Included by `build.rs` and by the tests beside `schema.rs`.

use serde_json::{Map, Value as Json};
use yaml_rust2::{Yaml, YamlLoader};

use super::schema::{self, Flag, Problem, Value};

/// The file's text as the Rust source of `pub const FILE: [Value; COUNT]`, or the first
/// problem, naming the key's path.
pub fn compile(text: &str) -> Result<String, Problem> {
    let docs = YamlLoader::load_from_str(text)
        .map_err(|err| Problem { path: String::new(), message: format!("not YAML: {err}") })?;
    let doc = match docs.as_slice() {
        [doc] => to_json("", doc)?,
        _ => return Err(Problem { path: String::new(), message: "must hold exactly one YAML document".into() }),
    };
    let found = schema::read_document(&doc, true)?;
    let mut out = String::from("pub const FILE: [Value; COUNT] = [\n");
    for flag in Flag::ALL {
        let value = found.iter().find(|(f, _)| f == flag).and_then(|(_, v)| *v);
        let rust = match value {
            Some(Value::Bool(on)) => format!("Value::Bool({on})"),
            Some(Value::Number(n)) => format!("Value::Number({n:?})"),
            Some(Value::Choice(word)) => format!("Value::Choice({word:?})"),
            None => return Err(Problem { path: flag.path().to_owned(), message: "missing".into() }),
        };
        out.push_str(&format!("    {rust}, // {}\n", flag.path()));
    }
    out.push_str("];\n");
    Ok(out)
}

fn to_json(path: &str, yaml: &Yaml) -> Result<Json, Problem> {
    let wrong = |what: &str| Problem { path: path.to_owned(), message: format!("{what} is not a flag's value") };
    Ok(match yaml {
        Yaml::Boolean(on) => Json::Bool(*on),
        Yaml::Integer(n) => Json::from(*n),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| wrong("this number"))?,
        Yaml::String(text) => Json::String(text.clone()),
        Yaml::Null => Json::Null,
        Yaml::Hash(fields) => {
            let mut map = Map::new();
            for (key, value) in fields {
                let Yaml::String(name) = key else {
                    return Err(Problem { path: path.to_owned(), message: "keys must be words".into() });
                };
                let inner = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                map.insert(name.clone(), to_json(&inner, value)?);
            }
            Json::Object(map)
        }
        Yaml::Array(_) => return Err(wrong("a list")),
        _ => return Err(wrong("this value")),
    })
}
