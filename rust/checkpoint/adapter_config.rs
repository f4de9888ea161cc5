//! `adapter_config.json`: the fields the checkpoint checks compare with the tensors.
//!
//! Parsed leniently: a field of an unexpected type counts as absent (PEFT itself would
//! fail elsewhere); only an unreadable file or invalid JSON makes the config unusable.
//! `rank_pattern` keeps the file's order, since PEFT tries its keys in order.

use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::discovery::error_text::describe_io_error;
use crate::regular_file::{read_limited, Limited};
use crate::storage::{self, Location};

pub const CONFIG_FILE: &str = "adapter_config.json";

/// Largest config read; real ones are a few kilobytes.
const MAX_CONFIG_LEN: u64 = 64 * 1024 * 1024;

/// `target_modules` as PEFT accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetModules {
    /// Absent or null: PEFT's per-architecture default.
    Default,
    /// A string: a regex, or `all-linear`. Not checked.
    Pattern(String),
    /// A list of module names matched as suffixes.
    List(Vec<String>),
}

/// The fields peftfix reads.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    pub peft_type: Option<String>,
    pub r: Option<u64>,
    /// `(pattern, rank)` in file order.
    pub rank_pattern: Vec<(String, u64)>,
    pub target_modules: TargetModules,
    pub use_dora: Option<bool>,
    pub fan_in_fan_out: bool,
    /// Modules trained as full copies; PEFT matches an entry as a suffix of the path.
    pub modules_to_save: Vec<String>,
    /// PEFT 0.18's switch that keeps tied embeddings tied when one of them is adapted.
    pub ensure_weight_tying: bool,
    /// `trainable_token_indices`: `(embedding entry, indices)`; a plain list targets the
    /// input embedding (entry `None`).
    pub trainable_token_indices: Vec<(Option<String>, Vec<u64>)>,
}

/// The outcome of looking for the config.
#[derive(Debug, Clone)]
pub enum ConfigStatus {
    Loaded(AdapterConfig),
    Missing(PathBuf),
    Unreadable(PathBuf, String),
}

/// Reads the config at `location`, local or remote.
pub fn load_at(location: &Location) -> ConfigStatus {
    let file = match location {
        Location::Local(path) => return load(path),
        Location::Remote(file) => file,
    };
    let path = location.error_path();
    match storage::wait(file, file.fetch_small(MAX_CONFIG_LEN)) {
        Ok(Some(Limited::Within((bytes, _)))) => match parse(&bytes) {
            Ok(config) => ConfigStatus::Loaded(config),
            Err(reason) => ConfigStatus::Unreadable(path, reason),
        },
        Ok(Some(Limited::TooLarge(len))) => ConfigStatus::Unreadable(path, too_large(len)),
        Ok(None) => ConfigStatus::Missing(path),
        Err(err) => ConfigStatus::Unreadable(path, err.reason()),
    }
}

/// Reads the local file `path`.
pub fn load(path: &Path) -> ConfigStatus {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return ConfigStatus::Missing(path.to_path_buf())
        }
        Err(err) => return ConfigStatus::Unreadable(path.to_path_buf(), describe_io_error(&err)),
    };
    if !meta.is_file() {
        return ConfigStatus::Unreadable(path.to_path_buf(), "not a regular file".into());
    }
    // Not a plain read: the type was checked by name, and a FIFO swapped in since would block.
    match read_limited(path, MAX_CONFIG_LEN) {
        Ok(Limited::Within(bytes)) => match parse(&bytes) {
            Ok(config) => ConfigStatus::Loaded(config),
            Err(reason) => ConfigStatus::Unreadable(path.to_path_buf(), reason),
        },
        Ok(Limited::TooLarge(len)) => ConfigStatus::Unreadable(path.to_path_buf(), too_large(len)),
        Err(err) => ConfigStatus::Unreadable(path.to_path_buf(), describe_io_error(&err)),
    }
}

fn too_large(len: u64) -> String {
    format!("{len} bytes is too large for a config")
}

/// Parses config JSON.
pub fn parse(bytes: &[u8]) -> Result<AdapterConfig, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|err| format!("not UTF-8 (at byte {})", err.valid_up_to()))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fields = TopSeed
        .deserialize(&mut deserializer)
        .map_err(|err| format!("invalid JSON: {err}"))?;
    deserializer
        .end()
        .map_err(|err| format!("invalid JSON: {err}"))?;
    let mut config = AdapterConfig {
        peft_type: None,
        r: None,
        rank_pattern: Vec::new(),
        target_modules: TargetModules::Default,
        use_dora: None,
        fan_in_fan_out: false,
        modules_to_save: Vec::new(),
        ensure_weight_tying: false,
        trainable_token_indices: Vec::new(),
    };
    for field in fields {
        match field {
            Field::Value(name, value) => match name.as_str() {
                "peft_type" => config.peft_type = value.as_str().map(str::to_owned),
                "r" => config.r = value.as_u64(),
                "use_dora" => config.use_dora = value.as_bool(),
                "fan_in_fan_out" => config.fan_in_fan_out = value.as_bool().unwrap_or(false),
                "modules_to_save" => config.modules_to_save = strings(&value),
                "ensure_weight_tying" => {
                    config.ensure_weight_tying = value.as_bool().unwrap_or(false)
                }
                "trainable_token_indices" => {
                    config.trainable_token_indices = match &value {
                        Value::Array(_) => vec![(None, indices(&value))],
                        Value::Object(map) => map
                            .iter()
                            .map(|(entry, list)| (Some(entry.clone()), indices(list)))
                            .collect(),
                        _ => Vec::new(),
                    }
                }
                "target_modules" => {
                    config.target_modules = match value {
                        Value::String(text) => TargetModules::Pattern(text),
                        Value::Array(items) => TargetModules::List(
                            items
                                .into_iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect(),
                        ),
                        _ => TargetModules::Default,
                    }
                }
                _ => {}
            },
            Field::RankPattern(entries) => {
                config.rank_pattern = entries
                    .into_iter()
                    .filter_map(|(key, value)| value.as_u64().map(|rank| (key, rank)))
                    .collect();
            }
        }
    }
    Ok(config)
}

/// The strings of a JSON list; anything else gives none.
fn strings(value: &Value) -> Vec<String> {
    value.as_array().map_or_else(Vec::new, |items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// The non-negative integers of a JSON list; anything else gives none.
fn indices(value: &Value) -> Vec<u64> {
    value.as_array().map_or_else(Vec::new, |items| {
        items.iter().filter_map(Value::as_u64).collect()
    })
}

impl AdapterConfig {
    /// Whether the tuner is LoRA (rank checks apply); an absent `peft_type` counts as LoRA.
    pub fn is_lora(&self) -> bool {
        self.peft_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("LORA"))
    }
}

/// Field selection at the top level of the config object.
enum Field {
    Value(String, Value),
    RankPattern(Vec<(String, Value)>),
}

const WANTED: [&str; 9] = [
    "peft_type",
    "r",
    "use_dora",
    "fan_in_fan_out",
    "target_modules",
    "rank_pattern",
    "modules_to_save",
    "ensure_weight_tying",
    "trainable_token_indices",
];

struct TopSeed;

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Vec<Field>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Vec<Field>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "rank_pattern" {
                // An object keeps its order; anything else (null) means no pattern.
                let value: OrderedMap = map.next_value()?;
                fields.push(Field::RankPattern(value.0));
            } else if WANTED.contains(&key.as_str()) {
                fields.push(Field::Value(key, map.next_value()?));
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(fields)
    }
}

/// A JSON object as ordered pairs; any other JSON value gives no pairs.
struct OrderedMap(Vec<(String, Value)>);

impl<'de> de::Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    pairs.push((k, v));
                }
                Ok(OrderedMap(pairs))
            }
            fn visit_unit<E: de::Error>(self) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<OrderedMap, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedMap, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `rank_pattern` compiled: which rank PEFT gives a module path.
pub struct RankRules {
    default: Option<u64>,
    patterns: Vec<Pattern>,
}

struct Pattern {
    key: String,
    rank: u64,
    full: Option<Regex>,
    suffix: Option<Regex>,
}

/// Where a module's expected rank comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RankSource<'a> {
    R,
    Pattern(&'a str),
}

impl RankRules {
    pub fn new(config: &AdapterConfig) -> Self {
        let patterns = config
            .rank_pattern
            .iter()
            .map(|(key, rank)| Pattern {
                key: key.clone(),
                rank: *rank,
                full: Regex::new(&format!("^(?:{key})$")).ok(),
                suffix: Regex::new(&format!("^(?:.*\\.)?(?:{key})$")).ok(),
            })
            .collect();
        Self {
            default: config.r,
            patterns,
        }
    }

    pub fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// `r`, for a module no pattern matches.
    pub fn default_rank(&self) -> Option<(u64, RankSource<'_>)> {
        self.default.map(|r| (r, RankSource::R))
    }

    /// The rank PEFT gives `module`: the `rank_pattern` entry matching it exactly or as a
    /// full regex match, else the first matching it as a suffix, else `r`.
    pub fn rank_for(&self, module: &str) -> Option<(u64, RankSource<'_>)> {
        if let Some(p) = self
            .patterns
            .iter()
            .find(|p| p.key == module || p.full.as_ref().is_some_and(|re| re.is_match(module)))
        {
            return Some((p.rank, RankSource::Pattern(&p.key)));
        }
        if let Some(p) = self.patterns.iter().find(|p| match &p.suffix {
            Some(re) => re.is_match(module),
            None => module.ends_with(&format!(".{}", p.key)),
        }) {
            return Some((p.rank, RankSource::Pattern(&p.key)));
        }
        self.default.map(|r| (r, RankSource::R))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read() {
        let config = parse(
            br#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
                "rank_pattern": {"v_proj": 4, "layers\\.0\\..*": 2}, "use_dora": true, "fan_in_fan_out": true,
                "modules_to_save": null, "nested": {"a": [1, {"b": 2}]}}"#,
        )
        .unwrap();
        assert_eq!(config.peft_type.as_deref(), Some("LORA"));
        assert_eq!(config.r, Some(8));
        assert_eq!(
            config.target_modules,
            TargetModules::List(vec!["q_proj".into(), "v_proj".into()])
        );
        assert_eq!(
            config.rank_pattern,
            vec![("v_proj".into(), 4), ("layers\\.0\\..*".into(), 2)]
        );
        assert_eq!(config.use_dora, Some(true));
        assert!(config.fan_in_fan_out);
        assert!(config.is_lora());
    }

    #[test]
    fn lenient_types_and_errors() {
        let config = parse(br#"{"r": "8", "target_modules": "all-linear", "rank_pattern": null, "peft_type": "IA3"}"#).unwrap();
        assert_eq!(config.r, None);
        assert_eq!(
            config.target_modules,
            TargetModules::Pattern("all-linear".into())
        );
        assert!(config.rank_pattern.is_empty());
        assert!(!config.is_lora());
        assert!(parse(b"{").unwrap_err().contains("invalid JSON"));
        assert!(parse(b"[]").is_err());
        assert!(parse(b"\xff").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn rank_rules_follow_peft() {
        let config = parse(br#"{"r": 8, "rank_pattern": {"model.layers.0.self_attn.q_proj": 2, "layers\\.1\\..*": 3, "v_proj": 4, "[bad": 5}}"#).unwrap();
        let rules = RankRules::new(&config);
        assert_eq!(
            rules.rank_for("model.layers.0.self_attn.q_proj").unwrap().0,
            2
        );
        // A regex matches the whole path, or its end after a dot.
        assert_eq!(rules.rank_for("layers.1.self_attn.k_proj").unwrap().0, 3);
        assert_eq!(
            rules.rank_for("model.layers.1.self_attn.k_proj").unwrap().0,
            3
        );
        assert_eq!(
            rules
                .rank_for("model.xlayers.1.self_attn.k_proj")
                .unwrap()
                .0,
            8
        );
        assert_eq!(
            rules.rank_for("model.layers.5.self_attn.v_proj").unwrap(),
            (4, RankSource::Pattern("v_proj"))
        );
        assert_eq!(rules.rank_for("model.layers.5.mlp.x.[bad").unwrap().0, 5);
        assert_eq!(
            rules.rank_for("model.layers.5.self_attn.q_proj").unwrap(),
            (8, RankSource::R)
        );
    }

    #[test]
    fn load_missing_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(&dir.path().join(CONFIG_FILE)),
            ConfigStatus::Missing(_)
        ));
        std::fs::write(dir.path().join(CONFIG_FILE), "{nope").unwrap();
        assert!(matches!(
            load(&dir.path().join(CONFIG_FILE)),
            ConfigStatus::Unreadable(_, _)
        ));
        assert!(matches!(load(dir.path()), ConfigStatus::Unreadable(_, _)));
        std::fs::write(dir.path().join(CONFIG_FILE), "{\"r\": 4}").unwrap();
        assert!(matches!(
            load(&dir.path().join(CONFIG_FILE)),
            ConfigStatus::Loaded(AdapterConfig { r: Some(4), .. })
        ));
    }
}
