//! The shard index of a sharded checkpoint (`model.safetensors.index.json`): its
//! `weight_map` of tensor name -> shard file, read without copying names that have no
//! escapes. Everything else in the file (`metadata`) is skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A string, borrowed from the input when it has no escapes.
struct Str<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(
                self,
                v: String,
            ) -> std::result::Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// `(tensor, shard file)` pairs of an index's `weight_map`.
pub type WeightMap<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

pub fn parse_index(text: &str) -> std::result::Result<WeightMap<'_>, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let map = IndexSeed
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    map.ok_or_else(|| "it has no weight_map".to_string())
}

struct IndexSeed;

impl<'de> DeserializeSeed<'de> for IndexSeed {
    type Value = Option<WeightMap<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed {
    type Value = Option<WeightMap<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a weight_map")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut weight_map = None;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            if key == "weight_map" && weight_map.is_none() {
                weight_map = Some(map.next_value_seed(WeightMapSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(weight_map)
    }
}

struct WeightMapSeed;

impl<'de> DeserializeSeed<'de> for WeightMapSeed {
    type Value = WeightMap<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WeightMapSeed {
    type Value = WeightMap<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("weight_map to map tensor names to shard file names")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Str(tensor)) = map.next_key::<Str<'de>>()? {
            let Str(shard) = map.next_value::<Str<'de>>()?;
            entries.push((tensor, shard));
        }
        Ok(entries)
    }
}
